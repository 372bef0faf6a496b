/* execnet-socket.c: gateways to interpreters started by a socket server
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include <gio/gio.h>
#include <glib-unix.h>
#include <execnet/execnet.h>

#include "execnet-socket-auth.h"
#include "execnet-socket-private.h"

/* The socket transport connects to a socket server (`execnet-tool
 * socketserver`, or Python execnet's socketserver.py) that starts a Python
 * interpreter for each connection. That interpreter executes the first line
 * it reads, with the connected socket as `clientsock`; the core sends our
 * agent as that line, in socket mode, so from then on the agent talks over
 * the same socket.
 *
 * With `token_file=`, we first answer the server's challenge and check the
 * server's own proof (see execnet-socket-auth.h); only then does the core
 * see the connection. Without it we hand the connection over at once,
 * which is what a Python execnet master does too, so that both work
 * against a server running with --insecure.
 *
 * Everything here runs in the library's I/O thread and never blocks it:
 * the name lookup, the connection, reading the token file and the
 * handshake are all asynchronous, and one deadline (`connect_timeout=`)
 * bounds them together.
 *
 * A socket gives no exit status, and the interpreter is not our child.
 * Exiting, the core sends GATEWAY_TERMINATE, on which the agent exits as
 * on end-of-file; we leave the write side open then (close_write() sends
 * nothing), because ending it by force needs it: terminate() sends one
 * byte of urgent (out-of-band) data, then shuts the socket down. Our
 * server watches each connection for that byte and kills the interpreter's
 * process group, and it closes its end of the connection only once the
 * interpreter has exited and what was left in its group was killed. So the
 * server closing the connection is the interpreter's end (wait_async());
 * a server that ignores the byte (Python execnet's) confirms nothing when
 * the interpreter does not end by itself, and execnet_group_terminate()
 * then says so. */

#define DEFAULT_CONNECT_TIMEOUT 30.0

#define EXECNET_TYPE_SOCKET_CONNECTION (execnet_socket_connection_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSocketConnection, execnet_socket_connection, EXECNET, SOCKET_CONNECTION, ExecnetConnection)

struct _ExecnetSocketConnection
{
  ExecnetConnection parent_instance;

  gint forced;                      /* (atomic) the urgent byte was sent */
};

G_DEFINE_DYNAMIC_TYPE (ExecnetSocketConnection, execnet_socket_connection, EXECNET_TYPE_CONNECTION)

#define EXECNET_TYPE_SOCKET_TRANSPORT (execnet_socket_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSocketTransport, execnet_socket_transport, EXECNET, SOCKET_TRANSPORT, GObject)

struct _ExecnetSocketTransport
{
  GObject parent_instance;

  /* Written by prepare, in the thread that makes the gateway, before the
   * I/O thread opens the spec it answered; freed with the transport. */
  ExecnetSocketInstalled *installed; /* (owned) (nullable) for installvia= */
};

static void execnet_socket_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ExecnetSocketTransport, execnet_socket_transport, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (EXECNET_TYPE_TRANSPORT,
                                                               execnet_socket_transport_iface_init))

static GSocket *
connection_get_socket (ExecnetConnection *connection)
{
  GIOStream *stream = execnet_connection_get_stream (connection);

  return g_socket_connection_get_socket (G_SOCKET_CONNECTION (stream));
}

/* Any thread. Nothing goes out: the agent ends on GATEWAY_TERMINATE,
 * which came before, and a shut write side could no longer carry the
 * urgent byte that terminate() may have to send. */
static gboolean
execnet_socket_connection_close_write (ExecnetConnection  *connection,
                                       GError            **error)
{
  return TRUE;
}

/* Any thread. Shutting down, unlike closing, is safe while the I/O thread
 * has reads pending on the socket: they complete with end-of-file, and the
 * descriptor stays valid until the stream is finalized.
 *
 * The first time with @force: the urgent byte (our server kills the
 * interpreter's process group), then end-of-file; reading goes on, so that
 * the server closing the connection tells wait_async() all has ended.
 * Otherwise, or again: both ways down, which lets go of the connection for
 * good (and ends wait_async(), confirming nothing). */
static void
execnet_socket_connection_terminate (ExecnetConnection *connection,
                                     gboolean           force)
{
  ExecnetSocketConnection *self = EXECNET_SOCKET_CONNECTION (connection);
  GSocket *socket = connection_get_socket (connection);

  if (force && g_atomic_int_compare_and_exchange (&self->forced, FALSE, TRUE))
    {
      static const char urgent = '!';

      /* Best effort: if it cannot go out, nothing will confirm the end,
       * and execnet_group_terminate() says so. */
      if (send (g_socket_get_fd (socket), &urgent, 1, MSG_OOB | MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
        g_debug ("socket: cannot ask the server to end the interpreter: %s", g_strerror (errno));
      g_socket_shutdown (socket, FALSE, TRUE, NULL);
      return;
    }

  g_socket_shutdown (socket, TRUE, TRUE, NULL);
}

static gboolean
on_socket_closed (gint         fd,
                  GIOCondition condition,
                  gpointer     user_data)
{
  GTask *task = user_data;

  if (!g_task_return_error_if_cancelled (task))
    g_task_return_boolean (task, TRUE);
  return G_SOURCE_REMOVE;
}

/* I/O thread. The interpreter's end, as far as a socket tells: the server
 * closed its end (POLLRDHUP, which GLib passes on to poll() as it is), or
 * the connection is gone. The task holds the connection, so the
 * descriptor stays open while it is watched. */
static void
execnet_socket_connection_wait_async (ExecnetConnection   *connection,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (connection, cancellable, callback, user_data);
  g_autoptr(GSource) source = NULL;

  g_task_set_source_tag (task, execnet_socket_connection_wait_async);
  source = g_unix_fd_source_new (g_socket_get_fd (connection_get_socket (connection)),
                                 G_IO_HUP | G_IO_ERR | POLLRDHUP);
  if (cancellable != NULL)
    {
      g_autoptr(GSource) cancelled = g_cancellable_source_new (cancellable);

      g_source_set_dummy_callback (cancelled);
      g_source_add_child_source (source, cancelled);
    }
  g_task_attach_source (task, source, G_SOURCE_FUNC (on_socket_closed));
}

static void
execnet_socket_connection_class_init (ExecnetSocketConnectionClass *klass)
{
  ExecnetConnectionClass *connection_class = EXECNET_CONNECTION_CLASS (klass);

  connection_class->close_write = execnet_socket_connection_close_write;
  connection_class->terminate = execnet_socket_connection_terminate;
  connection_class->wait_async = execnet_socket_connection_wait_async;
}

static void
execnet_socket_connection_class_finalize (ExecnetSocketConnectionClass *klass)
{
}

static void
execnet_socket_connection_init (ExecnetSocketConnection *self)
{
}

typedef enum {
  STAGE_TOKEN,       /* reading the token file */
  STAGE_CONNECT,     /* resolving and connecting */
  STAGE_CHALLENGE,   /* waiting for the server's challenge */
  STAGE_ANSWER,      /* writing our answer */
  STAGE_VERDICT,     /* waiting for the server's verdict and proof */
} Stage;

/* The state of one open_async(), in the I/O thread. */
typedef struct
{
  ExecnetXSpec *xspec;              /* (owned) for the start phases */
  char *address;                    /* (owned) HOST:PORT as the spec wrote it */
  GSocketConnectable *connectable;  /* (owned) */
  char *token_path;                 /* (owned) (nullable) as the spec wrote it */
  guchar *token;                    /* (owned) (nullable) wiped before it is freed */
  gsize token_length;

  gdouble timeout;
  guint keepalive;                  /* seconds, 0 for the system's defaults */
  GSource *deadline;                /* (owned) (nullable) */
  gboolean timed_out;
  GCancellable *cancellable;        /* (owned) ours: cancelled by the caller's or the deadline */
  GCancellable *caller_cancellable; /* (owned) (nullable) */
  gulong cancelled_id;

  Stage stage;
  GSocketConnection *connection;    /* (owned) (nullable) once connected */
  char line[EXECNET_SOCKET_AUTH_LINE_MAX];
  gsize line_length;
  char server_nonce[EXECNET_SOCKET_AUTH_HEX_LEN + 1];
  char client_nonce[EXECNET_SOCKET_AUTH_HEX_LEN + 1];
  char *answer;                     /* (owned) (nullable) our line while it is written */
} Open;

static void
open_free (gpointer data)
{
  Open *open = data;

  g_clear_pointer (&open->xspec, execnet_xspec_unref);
  if (open->deadline != NULL)
    {
      g_source_destroy (open->deadline);
      g_source_unref (open->deadline);
    }
  if (open->caller_cancellable != NULL)
    {
      g_cancellable_disconnect (open->caller_cancellable, open->cancelled_id);
      g_object_unref (open->caller_cancellable);
    }
  g_clear_object (&open->cancellable);
  g_clear_object (&open->connection);
  g_clear_object (&open->connectable);
  if (open->token != NULL)
    {
      memset (open->token, 0, open->token_length);
      g_free (open->token);
    }
  g_free (open->token_path);
  g_free (open->address);
  g_free (open->answer);
  memset (open->line, 0, sizeof open->line);
  g_free (open);
}

static gboolean
on_deadline (gpointer data)
{
  Open *open = data;

  open->timed_out = TRUE;
  g_cancellable_cancel (open->cancellable);

  return G_SOURCE_REMOVE;
}

static void
on_caller_cancelled (GCancellable *cancellable,
                     gpointer      data)
{
  g_cancellable_cancel (data);
}

/* Reports that the deadline passed, in the words that fit the stage. */
static void
return_timed_out (GTask *task)
{
  Open *open = g_task_get_task_data (task);

  switch (open->stage)
    {
    case STAGE_TOKEN:
    case STAGE_CONNECT:
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                               "socket: could not connect to %s within %g seconds; "
                               "check the address and any firewall, or raise connect_timeout=",
                               open->address, open->timeout);
      break;
    case STAGE_CHALLENGE:
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: the server at %s did not ask for a token within %g seconds: "
                               "is it running with --insecure, or is it not an execnet-glib socket "
                               "server? A spec with token_file= talks only to a server that "
                               "proves it holds the same token",
                               open->address, open->timeout);
      break;
    case STAGE_ANSWER:
    case STAGE_VERDICT:
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                               "socket: the server at %s did not complete the authentication "
                               "within %g seconds; raise connect_timeout= if it is just slow",
                               open->address, open->timeout);
      break;
    }
}

/* Reports @error from an I/O step, unless it is the deadline's doing. */
static void
return_io_error (GTask      *task,
                 GError     *error,
                 const char *doing)
{
  Open *open = g_task_get_task_data (task);

  if (open->timed_out)
    {
      g_error_free (error);
      return_timed_out (task);
    }
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_task_return_error (task, error);
  else
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: lost the connection to %s while %s: %s",
                               open->address, doing, error->message);
      g_error_free (error);
    }
}

static void
return_connection (GTask *task)
{
  Open *open = g_task_get_task_data (task);
  ExecnetConnection *connection;

  connection = g_object_new (EXECNET_TYPE_SOCKET_CONNECTION,
                             "stream", open->connection,
                             "remote-address", open->address,
                             "bootstrap-mode", EXECNET_BOOTSTRAP_SOCKET,
                             NULL);
  g_task_return_pointer (task, connection, g_object_unref);
}

static void read_line (GTask *task);

/* I/O thread: the verdict line is in open->line, newline included. */
static void
check_verdict (GTask *task)
{
  Open *open = g_task_get_task_data (task);
  const gsize prefix_length = strlen (EXECNET_SOCKET_AUTH_ACCEPTED_PREFIX);
  g_autofree char *expected = NULL;

  if (open->line_length == strlen (EXECNET_SOCKET_AUTH_REJECTED_LINE) &&
      memcmp (open->line, EXECNET_SOCKET_AUTH_REJECTED_LINE, open->line_length) == 0)
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: the server at %s rejected the token from “%s”; "
                               "the file must hold the same token as the server's --token-file",
                               open->address, open->token_path);
      return;
    }

  if (open->line_length != prefix_length + EXECNET_SOCKET_AUTH_HEX_LEN + 1 ||
      memcmp (open->line, EXECNET_SOCKET_AUTH_ACCEPTED_PREFIX, prefix_length) != 0)
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: the server at %s answered the authentication with "
                               "something other than “OK” or “NO”; is it an execnet-glib "
                               "socket server of a compatible version?",
                               open->address);
      return;
    }

  expected = _execnet_socket_auth_mac (open->token, open->token_length,
                                       EXECNET_SOCKET_AUTH_SERVER_ROLE,
                                       open->server_nonce, open->client_nonce);
  if (!_execnet_socket_auth_equal (open->line + prefix_length, expected, EXECNET_SOCKET_AUTH_HEX_LEN))
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: the server at %s accepted our token but could not prove "
                               "that it holds the token from “%s” itself: it is not the server "
                               "you meant to reach, or it uses a different token file",
                               open->address, open->token_path);
      return;
    }

  return_connection (task);
}

static void
on_answer_written (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Open *open = g_task_get_task_data (task);
  GError *error = NULL;

  /* I/O thread */
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      return_io_error (task, error, "sending the answer to its challenge");
      return;
    }

  open->stage = STAGE_VERDICT;
  open->line_length = 0;
  read_line (g_steal_pointer (&task));
}

/* I/O thread: the challenge line is in open->line, newline included. */
static void
answer_challenge (GTask *task)
{
  Open *open = g_task_get_task_data (task);
  const gsize prefix_length = strlen (EXECNET_SOCKET_AUTH_CHALLENGE_PREFIX);
  g_autofree char *mac = NULL;
  GOutputStream *output;
  GError *error = NULL;

  if (open->line_length != prefix_length + EXECNET_SOCKET_AUTH_HEX_LEN + 1 ||
      memcmp (open->line, EXECNET_SOCKET_AUTH_CHALLENGE_PREFIX, prefix_length) != 0 ||
      !_execnet_socket_auth_is_hex (open->line + prefix_length, EXECNET_SOCKET_AUTH_HEX_LEN))
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: the server at %s sent something other than an "
                               "authentication challenge: is it an execnet-glib socket server "
                               "of a compatible version?",
                               open->address);
      return;
    }

  memcpy (open->server_nonce, open->line + prefix_length, EXECNET_SOCKET_AUTH_HEX_LEN);
  if (!_execnet_socket_auth_make_nonce (open->client_nonce, &error))
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: cannot authenticate to %s: %s", open->address, error->message);
      g_error_free (error);
      return;
    }

  mac = _execnet_socket_auth_mac (open->token, open->token_length,
                                  EXECNET_SOCKET_AUTH_CLIENT_ROLE,
                                  open->server_nonce, open->client_nonce);
  open->answer = g_strdup_printf ("%s %s\n", open->client_nonce, mac);
  open->stage = STAGE_ANSWER;

  output = g_io_stream_get_output_stream (G_IO_STREAM (open->connection));
  g_output_stream_write_all_async (output, open->answer, strlen (open->answer),
                                   G_PRIORITY_DEFAULT, open->cancellable,
                                   on_answer_written, g_object_ref (task));
}

static void
on_line_read (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Open *open = g_task_get_task_data (task);
  GError *error = NULL;
  const char *newline;
  gssize n;

  /* I/O thread */
  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n < 0)
    {
      if (open->stage == STAGE_CHALLENGE && open->line_length == 0 && !open->timed_out &&
          !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                                   "socket: the server at %s dropped the connection at once (%s); "
                                   "it may be at its --max-connections limit or stopping: see its log",
                                   open->address, error->message);
          g_error_free (error);
        }
      else
        return_io_error (task, error,
                         open->stage == STAGE_CHALLENGE ? "waiting for its challenge" : "waiting for its verdict");
      return;
    }

  if (n == 0)
    {
      if (open->stage == STAGE_CHALLENGE && open->line_length == 0)
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                                 "socket: the server at %s closed the connection at once; "
                                 "it may be at its --max-connections limit or stopping: see its log",
                                 open->address);
      else if (open->stage == STAGE_VERDICT)
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                                 "socket: the server at %s closed the connection instead of "
                                 "accepting the token from “%s”; see its log",
                                 open->address, open->token_path);
      else
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                                 "socket: the server at %s closed the connection in the middle "
                                 "of its challenge; see its log",
                                 open->address);
      return;
    }

  /* The server sends nothing beyond a line until we answer it, so a read
   * never takes more than one line, and bytes after the newline are a
   * protocol error rather than data to keep for later. */
  newline = memchr (open->line + open->line_length, '\n', n);
  open->line_length += n;
  if (newline != NULL && newline != open->line + open->line_length - 1)
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: the server at %s sent more than the authentication "
                               "asks for; is it an execnet-glib socket server of a compatible version?",
                               open->address);
      return;
    }

  if (newline == NULL)
    {
      if (open->line_length == sizeof open->line)
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                                 "socket: the server at %s sent a line that is too long for "
                                 "the authentication; is it an execnet-glib socket server?",
                                 open->address);
      else
        read_line (g_steal_pointer (&task));
      return;
    }

  if (open->stage == STAGE_CHALLENGE)
    answer_challenge (task);
  else
    check_verdict (task);
}

/* I/O thread: reads on into open->line until it ends with a newline. */
static void
read_line (GTask *task)
{
  Open *open = g_task_get_task_data (task);
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (open->connection));

  g_input_stream_read_async (input, open->line + open->line_length,
                             sizeof open->line - open->line_length,
                             G_PRIORITY_DEFAULT, open->cancellable, on_line_read, task);
}

static void
on_connected (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Open *open = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  GSocket *socket;

  /* I/O thread */
  open->connection = g_socket_client_connect_finish (G_SOCKET_CLIENT (source), result, &error);
  if (open->connection == NULL)
    {
      if (open->timed_out)
        return_timed_out (task);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, g_steal_pointer (&error));
      else if (error->domain == G_RESOLVER_ERROR)
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                                 "socket: cannot find the host of %s: %s; "
                                 "check the name in socket=HOST:PORT",
                                 open->address, error->message);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                                 "socket: connection to %s refused: is a socket server "
                                 "(execnet-tool socketserver) running there, on that port?",
                                 open->address);
      else
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                                 "socket: cannot connect to %s: %s; check the address and "
                                 "that the network lets you reach it",
                                 open->address, error->message);
      return;
    }

  /* Frames are small and answered one by one: without this, Nagle's
   * algorithm would hold back each of them for an acknowledgement. */
  socket = g_socket_connection_get_socket (open->connection);
  if (g_socket_get_family (socket) == G_SOCKET_FAMILY_IPV4 ||
      g_socket_get_family (socket) == G_SOCKET_FAMILY_IPV6)
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  /* A server that stops answering (the network between us died) fails
   * the gateway after keepalive= seconds rather than never. */
  if (!_execnet_socket_set_keepalive (socket, open->keepalive, &error))
    g_warning ("socket: cannot watch the connection to %s with keepalive=%u: %s",
               open->address, open->keepalive, error->message);

  if (open->token == NULL)
    {
      return_connection (task);
      return;
    }

  open->stage = STAGE_CHALLENGE;
  read_line (g_steal_pointer (&task));
}

static void
start_connect (GTask *task)
{
  Open *open = g_task_get_task_data (task);
  g_autoptr(GSocketClient) client = g_socket_client_new ();

  /* execnet connects directly; a proxy configured for the web has no
   * business relaying gateways. */
  g_socket_client_set_enable_proxy (client, FALSE);
  open->stage = STAGE_CONNECT;
  execnet_transport_log_socket_client_phases (open->xspec, client);
  g_socket_client_connect_async (client, open->connectable, open->cancellable,
                                 on_connected, task);
}

static void
on_token_loaded (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  Open *open = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  char *contents = NULL;
  gsize length = 0;

  /* I/O thread */
  if (!g_file_load_contents_finish (G_FILE (source), result, &contents, &length, NULL, &error))
    {
      if (open->timed_out)
        return_timed_out (task);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error (task, g_steal_pointer (&error));
      else
        g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                                 "socket: cannot read the token file “%s” named by token_file=: %s",
                                 open->token_path, error->message);
      g_object_unref (task);
      return;
    }

  open->token = (guchar *) contents;
  open->token_length = _execnet_socket_auth_strip_token (contents, length);
  if (open->token_length == 0)
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                               "socket: the token file “%s” named by token_file= is empty; "
                               "put the server's token in it",
                               open->token_path);
      g_object_unref (task);
      return;
    }

  start_connect (task);
}

/* Expands a leading "~/" the way a shell would, since specs are often
 * written by hand. */
static GFile *
token_file_new (const char *path)
{
  if (g_str_has_prefix (path, "~/"))
    {
      g_autofree char *expanded = g_build_filename (g_get_home_dir (), path + 2, NULL);

      return g_file_new_for_path (expanded);
    }
  return g_file_new_for_path (path);
}

/* Checks the spec and fills @open; returns FALSE with @error set if the
 * spec cannot work. */
static gboolean
open_parse_spec (Open          *open,
                 ExecnetXSpec  *xspec,
                 GError       **error)
{
  const char *spec = execnet_xspec_to_string (xspec);
  const char *address = execnet_xspec_get (xspec, "socket");
  const char *timeout = execnet_xspec_get (xspec, "connect_timeout");
  const char *token_file = execnet_xspec_get (xspec, "token_file");
  const char *keepalive = execnet_xspec_get (xspec, "keepalive");
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GSocketConnectable) connectable = NULL;
  const char *port;

  if (execnet_xspec_has (xspec, "python"))
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: python= does not apply to socket gateways, the "
                   "server chooses the interpreter (its --python option); remove it",
                   spec);
      return FALSE;
    }

  if (address == NULL || *address == '\0')
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: socket= needs the server's address, as in "
                   "socket=HOST:PORT (socket=[::1]:PORT for an IPv6 address)",
                   spec);
      return FALSE;
    }

  /* A number, as execnet requires: GIO would also look up service names. */
  port = strrchr (address, ':');
  if (port != NULL && port[1] != '\0' && strspn (port + 1, "0123456789") == strlen (port + 1))
    connectable = g_network_address_parse (address, 0, &local_error);
  if (connectable == NULL || g_network_address_get_port (G_NETWORK_ADDRESS (connectable)) == 0)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: socket=%s is not HOST:PORT with a port from 1 to 65535 "
                   "(write an IPv6 address in brackets: socket=[::1]:PORT)",
                   spec, address);
      return FALSE;
    }

  open->timeout = DEFAULT_CONNECT_TIMEOUT;
  if (timeout != NULL)
    {
      char *end = NULL;

      open->timeout = g_ascii_strtod (timeout, &end);
      if (*timeout == '\0' || end == NULL || *end != '\0' || !(open->timeout > 0) ||
          open->timeout > G_MAXUINT / 1000)
        {
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                       "invalid spec “%s”: connect_timeout=%s is not a positive number of seconds",
                       spec, timeout);
          return FALSE;
        }
    }

  open->keepalive = EXECNET_SOCKET_DEFAULT_KEEPALIVE;
  if (keepalive != NULL)
    {
      guint64 seconds = 0;

      if (!g_ascii_string_to_unsigned (keepalive, 10, 0, 24 * 3600, &seconds, NULL))
        {
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                       "invalid spec “%s”: keepalive=%s is not a whole number of seconds "
                       "from 0 (the system's defaults) to 86400",
                       spec, keepalive);
          return FALSE;
        }
      open->keepalive = (guint) seconds;
    }

  if (token_file != NULL && *token_file == '\0')
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: token_file= needs the path of the file holding the "
                   "server's token",
                   spec);
      return FALSE;
    }

  open->address = g_strdup (address);
  open->connectable = g_steal_pointer (&connectable);
  open->token_path = g_strdup (token_file);

  return TRUE;
}

/* I/O thread. */
static void
execnet_socket_transport_open_async (ExecnetTransport    *transport,
                                     ExecnetXSpec        *xspec,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  GTask *task = g_task_new (transport, cancellable, callback, user_data);
  Open *open = g_new0 (Open, 1);
  GError *error = NULL;

  g_task_set_source_tag (task, execnet_socket_transport_open_async);
  g_task_set_task_data (task, open, open_free);
  open->xspec = execnet_xspec_ref (xspec);

  if (!open_parse_spec (open, xspec, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  open->cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      open->caller_cancellable = g_object_ref (cancellable);
      open->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (on_caller_cancelled),
                                                  g_object_ref (open->cancellable),
                                                  g_object_unref);
    }

  open->deadline = g_timeout_source_new ((guint) (open->timeout * 1000.0));
  g_source_set_callback (open->deadline, on_deadline, open, NULL);
  g_source_attach (open->deadline, g_main_context_get_thread_default ());

  if (open->token_path != NULL)
    {
      g_autoptr(GFile) file = token_file_new (open->token_path);

      open->stage = STAGE_TOKEN;
      g_file_load_contents_async (file, open->cancellable, on_token_loaded, task);
    }
  else
    start_connect (task);
}

static ExecnetConnection *
execnet_socket_transport_open_finish (ExecnetTransport  *transport,
                                      GAsyncResult      *result,
                                      GError           **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static const char * const *
execnet_socket_transport_get_keys (ExecnetTransport *transport)
{
  static const char * const keys[] = {
    "token_file",
    "installvia",
    "keepalive",
    NULL
  };

  return keys;
}

/* A server that wants a token greets with its challenge where a master
 * without one expects the bootstrap's answer; the core quotes that line as
 * an answer that is not the agent's, and we say what it means. */
static GError *
execnet_socket_transport_explain_failure (ExecnetTransport  *transport,
                                          ExecnetXSpec      *xspec,
                                          ExecnetConnection *connection,
                                          const GError      *error)
{
  g_autoptr(GBytes) answer = execnet_connection_dup_bootstrap_answer (connection);
  gsize length = 0;
  const char *data = answer != NULL ? g_bytes_get_data (answer, &length) : NULL;

  if (data == NULL || length < strlen (EXECNET_SOCKET_AUTH_GREETING) ||
      memcmp (data, EXECNET_SOCKET_AUTH_GREETING, strlen (EXECNET_SOCKET_AUTH_GREETING)) != 0)
    return NULL;

  return g_error_new (EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                      "the socket server at %s requires a token: add token_file=PATH "
                      "(a file holding the server's token) to the spec",
                      execnet_connection_get_remote_address (connection));
}

/* installvia=ID: the spec to open names a one-shot server that gateway
 * ID starts (execnet-socket-installvia.c); any other spec is opened as it
 * is. */
static void
execnet_socket_transport_prepare_async (ExecnetTransport    *transport,
                                        ExecnetGroup        *group,
                                        ExecnetXSpec        *xspec,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  if (execnet_xspec_get (xspec, "installvia") != NULL)
    {
      _execnet_socket_install_via_async (transport, group, xspec, cancellable, callback, user_data);
      return;
    }

  task = g_task_new (transport, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_socket_transport_prepare_async);
  g_task_return_pointer (task, execnet_xspec_ref (xspec), (GDestroyNotify) execnet_xspec_unref);
}

static ExecnetXSpec *
execnet_socket_transport_prepare_finish (ExecnetTransport  *transport,
                                         GAsyncResult      *result,
                                         GError           **error)
{
  ExecnetSocketTransport *self = EXECNET_SOCKET_TRANSPORT (transport);

  if (g_task_get_source_tag (G_TASK (result)) == execnet_socket_transport_prepare_async)
    return g_task_propagate_pointer (G_TASK (result), error);

  g_clear_pointer (&self->installed, _execnet_socket_installed_free);
  return _execnet_socket_install_via_finish (result, &self->installed, error);
}

/* Any thread: the server opening would connect to, read as opening reads
 * the spec; nothing is resolved or connected. */
static GVariant *
execnet_socket_transport_describe (ExecnetTransport  *transport,
                                   ExecnetXSpec      *xspec,
                                   GError           **error)
{
  g_autoptr(GVariantBuilder) description = g_variant_builder_new (G_VARIANT_TYPE_VARDICT);
  Open *open;
  GNetworkAddress *address;

  /* The server is started through that gateway; its address is known
   * only then. */
  if (execnet_xspec_get (xspec, "installvia") != NULL)
    {
      g_variant_builder_add (description, "{sv}", "installvia",
                             g_variant_new_string (execnet_xspec_get (xspec, "installvia")));
      return g_variant_builder_end (description);
    }

  open = g_new0 (Open, 1);
  if (!open_parse_spec (open, xspec, error))
    {
      open_free (open);
      return NULL;
    }

  address = G_NETWORK_ADDRESS (open->connectable);
  g_variant_builder_add (description, "{sv}", "hostname",
                         g_variant_new_string (g_network_address_get_hostname (address)));
  g_variant_builder_add (description, "{sv}", "port",
                         g_variant_new_uint32 (g_network_address_get_port (address)));
  if (open->token_path != NULL)
    {
      g_autoptr(GFile) token = token_file_new (open->token_path);
      g_autofree char *path = g_file_get_path (token);

      g_variant_builder_add (description, "{sv}", "tokenfile", g_variant_new_string (path));
    }
  g_variant_builder_add (description, "{sv}", "connecttimeout", g_variant_new_double (open->timeout));
  g_variant_builder_add (description, "{sv}", "keepalive", g_variant_new_uint32 (open->keepalive));
  open_free (open);

  return g_variant_builder_end (description);
}

static void
execnet_socket_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->describe = execnet_socket_transport_describe;
  iface->get_keys = execnet_socket_transport_get_keys;
  iface->prepare_async = execnet_socket_transport_prepare_async;
  iface->prepare_finish = execnet_socket_transport_prepare_finish;
  iface->open_async = execnet_socket_transport_open_async;
  iface->open_finish = execnet_socket_transport_open_finish;
  iface->explain_failure = execnet_socket_transport_explain_failure;
}

static void
execnet_socket_transport_finalize (GObject *object)
{
  ExecnetSocketTransport *self = EXECNET_SOCKET_TRANSPORT (object);

  g_clear_pointer (&self->installed, _execnet_socket_installed_free);

  G_OBJECT_CLASS (execnet_socket_transport_parent_class)->finalize (object);
}

static void
execnet_socket_transport_class_init (ExecnetSocketTransportClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = execnet_socket_transport_finalize;
}

static void
execnet_socket_transport_class_finalize (ExecnetSocketTransportClass *klass)
{
}

static void
execnet_socket_transport_init (ExecnetSocketTransport *self)
{
}

G_MODULE_EXPORT void   g_io_execnet_socket_load   (GIOModule *module);
G_MODULE_EXPORT void   g_io_execnet_socket_unload (GIOModule *module);
G_MODULE_EXPORT char **g_io_execnet_socket_query  (void);

G_MODULE_EXPORT void
g_io_execnet_socket_load (GIOModule *module)
{
  g_type_module_use (G_TYPE_MODULE (module));

  execnet_transport_register_extension_point ();
  execnet_socket_connection_register_type (G_TYPE_MODULE (module));
  execnet_socket_transport_register_type (G_TYPE_MODULE (module));
  g_io_extension_point_implement (EXECNET_TRANSPORT_EXTENSION_POINT_NAME,
                                  EXECNET_TYPE_SOCKET_TRANSPORT, "socket", 0);
}

G_MODULE_EXPORT void
g_io_execnet_socket_unload (GIOModule *module)
{
}

G_MODULE_EXPORT char **
g_io_execnet_socket_query (void)
{
  return g_strsplit (EXECNET_TRANSPORT_EXTENSION_POINT_NAME, "!", 0);
}
