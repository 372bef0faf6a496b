/* execnet-tool-socketserver.c: execnet-tool socketserver
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include "execnet-tool.h"
#include "execnet-socket-auth.h"

/* A socket server in the sense of execnet: for each connection it starts a
 * Python interpreter that reads one line from the connection, evaluates it
 * to a string of Python source and executes that with the connected socket
 * bound to `clientsock`. Python execnet's masters and our socket transport
 * both bootstrap their gateways that way.
 *
 * What we add is a door: with --token-file, a connection must answer a
 * challenge (execnet-socket-auth.h, doc/protocol.md) before any process is
 * started for it, and serving without a token needs --insecure (plus
 * --allow-remote-insecure beyond loopback).
 *
 * Shape: one thread and a GMainLoop. Handshakes are asynchronous and
 * bounded by a deadline, so a silent or slow peer costs a few bytes of
 * memory, never a thread or a process. Each authenticated connection is
 * handed to its own interpreter as file descriptor 3, in a process group of
 * its own; the interpreter reads the line itself (SERVE_SCRIPT) and ends
 * when the connection does. We keep one copy of the connection, only to
 * watch it for the client's urgent byte (kill the interpreter's process
 * group now) and to close it ourselves once the interpreter has exited and
 * we have killed what is left in its group: the client sees the connection
 * close only then, which is how it knows that all has ended. Every live connection, in the handshake or with an
 * interpreter, counts against --max-connections. SIGTERM and SIGINT close
 * the listener, end the interpreters (SIGTERM, then SIGKILL after
 * STOP_GRACE_SECONDS), reap them and exit 0. */

#define COMMAND "socketserver"

/* How long a peer has to answer the challenge: a peer that holds a slot
 * without authenticating holds it this long at most. */
#define HANDSHAKE_SECONDS 5
/* After refusing a peer we read (and discard) what it already sent, for a
 * while, before closing: closing with unread data would make the kernel
 * reset the connection, and the peer might then lose our answer. */
#define DRAIN_SECONDS 2
#define DRAIN_MAX_BYTES (1024 * 1024)
/* How long the interpreters get to end after SIGTERM when we stop. */
#define STOP_GRACE_SECONDS 5
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_MAX_PER_PEER 32

/* File descriptors: what the server needs whatever it serves (standard
 * streams, the listener, GLib's wakeups and signal pipe, a spawn's
 * transient pipes and copies), and what each connection holds. The
 * connection limit is clamped so that accepting cannot run out of them. */
#define FD_RESERVE 24
#define FDS_PER_CONNECTION 2  /* the connection (then our copy of it), and the wait for its interpreter */

/* When accepting fails (out of file descriptors, most likely), accepting
 * pauses, first for ACCEPT_BACKOFF_MIN_MS, doubling up to
 * ACCEPT_BACKOFF_MAX_MS while it keeps failing, instead of retrying at
 * once: retrying at once is a busy loop that fills the log. */
#define ACCEPT_BACKOFF_MIN_MS 50
#define ACCEPT_BACKOFF_MAX_MS 2000

/* A line that a peer can make us repeat is logged at most once per
 * LOG_INTERVAL_SECONDS, with a count of those left out. */
#define LOG_INTERVAL_SECONDS 1

/* The program each interpreter runs (`python3 -c SERVE_SCRIPT PEER`), with
 * the connection as file descriptor 3.
 *
 * It reads exactly one line without consuming anything after it: it peeks
 * at what has arrived and takes bytes up to the first newline only, so the
 * code the line carries finds the rest of the stream intact. The line is
 * capped at 64 MiB and must arrive within 60 seconds.
 *
 * The namespace holds `clientsock` and `address` as Python execnet's server
 * provides them, but deliberately no `execmodel`: execnet's socket
 * bootstrap looks the name up and makes its own execution model when it is
 * missing, and would fail on anything else.
 *
 * When the code returns, the interpreter exits at once, so threads that
 * user code left behind cannot keep it alive after its connection ended. */
static const char SERVE_SCRIPT[] =
  "import os, socket, sys\n"
  "def drop(why):\n"
  "    sys.stderr.write('execnet-tool socketserver: %s: %s; closed it\\n' % (sys.argv[1], why))\n"
  "    sys.stderr.flush()\n"
  "    os._exit(1)\n"
  "sock = socket.socket(fileno=3)\n"
  "sock.settimeout(60)\n"
  "line = bytearray()\n"
  "try:\n"
  "    while not line.endswith(b'\\n'):\n"
  "        if len(line) > 64 << 20:\n"
  "            drop('its first line is longer than 64 MiB')\n"
  "        seen = sock.recv(1 << 16, socket.MSG_PEEK)\n"
  "        if not seen:\n"
  "            drop('it disconnected in the middle of its first line' if line else\n"
  "                 'it disconnected without sending anything')\n"
  "        line += sock.recv(seen.find(b'\\n') + 1 or len(seen))\n"
  "except socket.timeout:\n"
  "    drop('no complete first line within 60 seconds')\n"
  "except OSError as e:\n"
  "    drop('cannot read its first line: %s' % (e,))\n"
  "sock.settimeout(None)\n"
  "try:\n"
  "    source = eval(bytes(line), {'__builtins__': {}})\n"
  "    if not isinstance(source, str):\n"
  "        raise TypeError('it is a %s, not a string' % type(source).__name__)\n"
  "    code = compile(source + '\\n', '<socket server>', 'exec')\n"
  "except Exception as e:\n"
  "    drop('its first line is not a Python string literal of Python source (%s: %s)'\n"
  "         % (type(e).__name__, str(e)[:200]))\n"
  "try:\n"
  "    address = sock.getpeername()\n"
  "except OSError:\n"
  "    address = None\n"
  "status = 0\n"
  "try:\n"
  "    exec(code, {'clientsock': sock, 'address': address, '__name__': '__channelexec__'})\n"
  "except SystemExit as e:\n"
  "    status = 0 if e.code is None else e.code if isinstance(e.code, int) else 1\n"
  "except BaseException:\n"
  "    import traceback\n"
  "    traceback.print_exc()\n"
  "    status = 1\n"
  "for f in (sys.stdout, sys.stderr):\n"
  "    try:\n"
  "        f.flush()\n"
  "    except Exception:\n"
  "        pass\n"
  "os._exit(status)\n";

static char *listen_text = NULL;
static char *token_path = NULL;
static gboolean insecure = FALSE;
static gboolean allow_remote_insecure = FALSE;
static int max_connections = DEFAULT_MAX_CONNECTIONS;
static int max_per_peer = DEFAULT_MAX_PER_PEER;
static int keepalive = EXECNET_SOCKET_DEFAULT_KEEPALIVE;
static char *python_text = NULL;

static const GOptionEntry entries[] = {
  { "listen", 'l', 0, G_OPTION_ARG_STRING, &listen_text,
    "Address and port to listen on (default 127.0.0.1:8888; port 0 picks a free one; "
    "[::1]:PORT for IPv6)", "ADDR:PORT" },
  { "token-file", 't', 0, G_OPTION_ARG_FILENAME, &token_path,
    "Require clients to prove they hold the token in FILE (mode 600)", "FILE" },
  { "insecure", 0, 0, G_OPTION_ARG_NONE, &insecure,
    "Serve without authentication: anyone who can connect can run code as you", NULL },
  { "allow-remote-insecure", 0, 0, G_OPTION_ARG_NONE, &allow_remote_insecure,
    "Allow --insecure on an address that is not loopback", NULL },
  { "max-connections", 'n', 0, G_OPTION_ARG_INT, &max_connections,
    "Serve at most N connections at once, 0 for as many as the file descriptor "
    "limit allows (default 64, and never more than that limit allows)", "N" },
  { "max-per-peer", 0, 0, G_OPTION_ARG_INT, &max_per_peer,
    "Let one address hold at most N connections that have not authenticated yet, "
    "0 for no limit (default 32; with --token-file only)", "N" },
  { "keepalive", 0, 0, G_OPTION_ARG_INT, &keepalive,
    "End a connection whose client has not answered for about N seconds (a dead "
    "network), and with it its interpreter; 0 for the system's defaults (default 60)", "N" },
  { "python", 0, 0, G_OPTION_ARG_STRING, &python_text,
    "The Python interpreter to start for each connection (default python3)", "COMMAND" },
  G_OPTION_ENTRY_NULL
};

typedef struct _Server Server;

typedef enum {
  CLIENT_HANDSHAKE,  /* challenge sent, reading the answer */
  CLIENT_VERDICT,    /* writing "OK ..." */
  CLIENT_DRAINING,   /* refused: reading what it sent before closing */
  CLIENT_SERVED,     /* its interpreter runs */
} ClientState;

/* One accepted connection, from accept to the end of its interpreter. */
typedef struct
{
  Server *server;                   /* (unowned) outlives its clients */
  char *peer;                       /* (owned) ADDR:PORT, for the log */
  char *host;                       /* (owned) ADDR alone, for the per-peer limit */
  gboolean counted;                 /* counts against its host's unauthenticated connections */
  ClientState state;
  GSocketConnection *connection;    /* (owned) (nullable) ours until the interpreter has it */
  GCancellable *cancellable;        /* (owned) cancelled by the deadline or by stopping */
  GSource *deadline;                /* (owned) (nullable) */
  gboolean timed_out;

  char server_nonce[EXECNET_SOCKET_AUTH_HEX_LEN + 1];
  char challenge[EXECNET_SOCKET_AUTH_LINE_MAX];
  char line[EXECNET_SOCKET_AUTH_LINE_MAX];   /* the answer as it arrives */
  gsize line_length;
  char *verdict;                    /* (owned) (nullable) "OK ..." while it is written */
  gsize drained;

  GSubprocess *child;               /* (owned) (nullable) in CLIENT_SERVED */
  GPid child_pid;                   /* 0 if none: the interpreter, and its process group */
  int watch_fd;                     /* (owned) -1 if none: our copy of the served connection */
  GSource *urgent_source;           /* (owned) (nullable) watches watch_fd for the urgent byte */
} Client;

/* Repeats of one kind of log line, see LOG_INTERVAL_SECONDS. */
typedef struct
{
  gint64 last_time;                 /* monotonic; 0: never logged */
  guint left_out;
} LogLimit;

struct _Server
{
  GMainLoop *loop;                  /* (owned) */
  GSocketListener *listener;        /* (owned) */
  GCancellable *accepting;          /* (owned) cancelled when we stop */
  GSource *accept_retry;            /* (owned) (nullable) the pause after a failed accept */
  guint accept_backoff_ms;          /* 0 after a successful accept */
  guchar *token;                    /* (owned) (nullable) wiped before it is freed */
  gsize token_length;
  char **python_argv;               /* (owned) */
  guint max_connections;            /* never 0 once running */
  guint max_per_peer;               /* 0: no limit */
  guint keepalive;                  /* seconds, 0 for the system's defaults */
  GHashTable *clients;              /* (owned) Client* set; the table owns them */
  GHashTable *unauthenticated;      /* (owned) host -> GUINT_TO_POINTER (count) */
  gboolean stopping;
  GSource *kill_timer;              /* (owned) (nullable) */

  LogLimit accept_failures;
  LogLimit refused_full;
  LogLimit refused_per_peer;
  LogLimit keepalive_failures;
};

/* Discarded input of refused peers; its contents are never looked at. */
static guint8 drain_buffer[64 * 1024];

static void
server_log (const char *peer,
            const char *format,
            ...) G_GNUC_PRINTF (2, 3);

static void
server_log (const char *peer,
            const char *format,
            ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  if (peer != NULL)
    execnet_tool_print_error (COMMAND, "%s: %s", peer, message);
  else
    execnet_tool_print_error (COMMAND, "%s", message);
}

/* Logs like server_log(), but a line of this kind at most once per
 * LOG_INTERVAL_SECONDS: a peer (or a shortage) that makes us repeat it
 * must not fill the disk. */
static void
server_log_limited (LogLimit   *limit,
                    const char *peer,
                    const char *format,
                    ...) G_GNUC_PRINTF (3, 4);

static void
server_log_limited (LogLimit   *limit,
                    const char *peer,
                    const char *format,
                    ...)
{
  g_autofree char *message = NULL;
  gint64 now = g_get_monotonic_time ();
  va_list args;

  if (limit->last_time != 0 && now - limit->last_time < LOG_INTERVAL_SECONDS * G_USEC_PER_SEC)
    {
      limit->left_out++;
      return;
    }

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  if (limit->left_out > 0)
    server_log (peer, "%s (and %u more like it since the last)", message, limit->left_out);
  else
    server_log (peer, "%s", message);
  limit->last_time = now;
  limit->left_out = 0;
}

/* The client no longer counts against its host's unauthenticated
 * connections: it authenticated, or it is gone. */
static void
client_uncount (Client *client)
{
  GHashTable *counts = client->server->unauthenticated;
  guint count;

  if (!client->counted)
    return;
  client->counted = FALSE;

  count = GPOINTER_TO_UINT (g_hash_table_lookup (counts, client->host));
  if (count <= 1)
    g_hash_table_remove (counts, client->host);
  else
    g_hash_table_insert (counts, g_strdup (client->host), GUINT_TO_POINTER (count - 1));
}

static void
client_free (gpointer data)
{
  Client *client = data;

  client_uncount (client);

  if (client->deadline != NULL)
    {
      g_source_destroy (client->deadline);
      g_source_unref (client->deadline);
    }
  if (client->connection != NULL)
    g_io_stream_close (G_IO_STREAM (client->connection), NULL, NULL);
  g_clear_object (&client->connection);
  if (client->urgent_source != NULL)
    {
      g_source_destroy (client->urgent_source);
      g_source_unref (client->urgent_source);
    }
  if (client->watch_fd >= 0)
    close (client->watch_fd);
  g_clear_object (&client->cancellable);
  g_clear_object (&client->child);
  g_free (client->verdict);
  g_free (client->peer);
  g_free (client->host);
  g_free (client);
}

static void
server_quit_if_done (Server *server)
{
  if (server->stopping && g_hash_table_size (server->clients) == 0)
    g_main_loop_quit (server->loop);
}

/* The connection is over as far as we are concerned. */
static void
client_finish (Client *client)
{
  Server *server = client->server;

  g_hash_table_remove (server->clients, client);
  server_quit_if_done (server);
}

static gboolean
on_client_deadline (gpointer data)
{
  Client *client = data;

  client->timed_out = TRUE;
  g_cancellable_cancel (client->cancellable);
  g_clear_pointer (&client->deadline, g_source_unref);

  return G_SOURCE_REMOVE;
}

static void
client_set_deadline (Client *client,
                     guint   seconds)
{
  if (client->deadline != NULL)
    {
      g_source_destroy (client->deadline);
      g_source_unref (client->deadline);
    }
  client->timed_out = FALSE;
  client->deadline = g_timeout_source_new_seconds (seconds);
  g_source_set_callback (client->deadline, on_client_deadline, client, NULL);
  g_source_attach (client->deadline, NULL);
}

static void drain (Client *client);

static void
on_drained (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  Client *client = user_data;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, NULL);
  if (n <= 0)
    {
      client_finish (client);
      return;
    }

  client->drained += n;
  drain (client);
}

static void
drain (Client *client)
{
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (client->connection));

  if (client->drained >= DRAIN_MAX_BYTES || g_cancellable_is_cancelled (client->cancellable))
    {
      client_finish (client);
      return;
    }

  g_input_stream_read_async (input, drain_buffer, sizeof drain_buffer, G_PRIORITY_DEFAULT,
                             client->cancellable, on_drained, client);
}

/* Refuses the peer: logs @why, tells it "NO" if @say_no, and closes the
 * connection after draining it for a moment. No interpreter was started. */
static void
client_refuse (Client     *client,
               gboolean    say_no,
               const char *why)
{
  GSocket *socket = g_socket_connection_get_socket (client->connection);

  server_log (client->peer, "%s; refused it, no process started", why);

  /* Best effort and without blocking: the send buffer holds at most our
   * challenge line, so three more bytes always fit. */
  if (say_no)
    g_socket_send_with_blocking (socket, EXECNET_SOCKET_AUTH_REJECTED_LINE,
                                 strlen (EXECNET_SOCKET_AUTH_REJECTED_LINE), FALSE, NULL, NULL);
  g_socket_shutdown (socket, FALSE, TRUE, NULL);

  if (client->server->stopping)
    {
      client_finish (client);
      return;
    }

  client->state = CLIENT_DRAINING;
  g_cancellable_reset (client->cancellable);
  client_set_deadline (client, DRAIN_SECONDS);
  drain (client);
}

/* SIGKILL to the interpreter's process group: whatever is in it. TRUE if
 * anything was. */
static gboolean
client_kill_group (Client *client)
{
  return client->child_pid > 0 && kill (-client->child_pid, SIGKILL) == 0;
}

/* Runs in the forked child, before exec. */
static void
child_setup (gpointer user_data)
{
  pid_t server_pid = GPOINTER_TO_INT (user_data);

  /* Die with the server, even if it is killed. The check after the prctl
   * covers a server that died before it. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
  if (getppid () != server_pid)
    _exit (1);
  /* Out of the server's process group, so that ^C in the server's terminal
   * reaches the server alone, which then ends its interpreters in order. */
  setpgid (0, 0);
  signal (SIGPIPE, SIG_DFL);
}

static void
on_child_exited (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Client *client = user_data;
  GSubprocess *child = G_SUBPROCESS (source);
  g_autoptr(GError) error = NULL;

  if (!g_subprocess_wait_finish (child, result, &error))
    server_log (client->peer, "cannot wait for its Python: %s", error->message);
  else if (g_subprocess_get_if_signaled (child))
    server_log (client->peer, "its Python ended by signal %d (%s)",
                g_subprocess_get_term_sig (child), g_strsignal (g_subprocess_get_term_sig (child)));
  else
    server_log (client->peer, "its Python exited with status %d", g_subprocess_get_exit_status (child));

  /* What it started in its process group and left running goes with it.
   * Only then do we close our copy of the connection, which tells the
   * client that it has all ended (as far as it held the connection:
   * something that left the group and closed its copy escapes us). */
  if (client_kill_group (client))
    server_log (client->peer, "killed what its Python left running in its process group %d",
                (int) client->child_pid);

  client_finish (client);
}

/* Our copy of the served connection is readable in some way: urgent data
 * is the client asking us to end its interpreter by force (what
 * execnet_group_terminate() does when the interpreter did not exit in
 * time); anything else (the connection reset) ends the watch. */
static gboolean
on_client_urgent (gint         fd,
                  GIOCondition condition,
                  gpointer     user_data)
{
  Client *client = user_data;

  if (condition & G_IO_PRI)
    {
      server_log (client->peer, "its client asked to end it; killing the process group of "
                  "its Python (pid %d)", (int) client->child_pid);
      client_kill_group (client);
    }

  g_clear_pointer (&client->urgent_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* Hands the connection to a new interpreter and lets go of it. */
static void
client_serve (Client *client)
{
  Server *server = client->server;
  GSocket *socket = g_socket_connection_get_socket (client->connection);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  int socket_fd, stdout_fd;

  if (client->deadline != NULL)
    {
      g_source_destroy (client->deadline);
      g_clear_pointer (&client->deadline, g_source_unref);
    }
  client_uncount (client);

  for (guint i = 0; server->python_argv[i] != NULL; i++)
    g_ptr_array_add (argv, server->python_argv[i]);
  g_ptr_array_add (argv, (char *) "-c");
  g_ptr_array_add (argv, (char *) SERVE_SCRIPT);
  g_ptr_array_add (argv, client->peer);
  g_ptr_array_add (argv, NULL);

  /* Copies that only the child keeps (close-on-exec here, dup2'ed into
   * place there). Its standard output goes to our standard error: our
   * standard output carries only the "listening on" line. */
  socket_fd = fcntl (g_socket_get_fd (socket), F_DUPFD_CLOEXEC, 3);
  stdout_fd = fcntl (STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  client->watch_fd = fcntl (g_socket_get_fd (socket), F_DUPFD_CLOEXEC, 3);
  if (socket_fd < 0 || stdout_fd < 0 || client->watch_fd < 0)
    {
      int saved_errno = errno;

      if (socket_fd >= 0)
        close (socket_fd);
      if (stdout_fd >= 0)
        close (stdout_fd);
      server_log (client->peer, "cannot start a Python for it: %s; closed it", g_strerror (saved_errno));
      client_finish (client);
      return;
    }

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, GINT_TO_POINTER (getpid ()), NULL);
  g_subprocess_launcher_take_fd (launcher, socket_fd, 3);
  g_subprocess_launcher_take_stdout_fd (launcher, stdout_fd);

  client->child = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  /* The interpreter holds the connection now, and we watch_fd. (Closing
   * one of several descriptors of a socket sends nothing to the peer.) */
  g_io_stream_close (G_IO_STREAM (client->connection), NULL, NULL);
  g_clear_object (&client->connection);

  if (client->child == NULL)
    {
      server_log (client->peer, "cannot start the Python interpreter “%s”: %s; closed it",
                  server->python_argv[0], error->message);
      client_finish (client);
      return;
    }

  client->state = CLIENT_SERVED;
  client->child_pid = (GPid) g_ascii_strtoll (g_subprocess_get_identifier (client->child), NULL, 10);
  client->urgent_source = g_unix_fd_source_new (client->watch_fd, G_IO_PRI);
  g_source_set_callback (client->urgent_source, G_SOURCE_FUNC (on_client_urgent), client, NULL);
  g_source_attach (client->urgent_source, NULL);
  server_log (client->peer, "%sstarted Python (pid %s)",
              server->token != NULL ? "authenticated; " : "",
              g_subprocess_get_identifier (client->child));
  g_subprocess_wait_async (client->child, NULL, on_child_exited, client);
}

static void
on_verdict_written (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Client *client = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      if (client->timed_out)
        server_log (client->peer, "it did not take our answer within %d seconds; closed it",
                    HANDSHAKE_SECONDS);
      else if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        server_log (client->peer, "lost it after it authenticated: %s", error->message);
      client_finish (client);
      return;
    }

  if (client->server->stopping)
    {
      client_finish (client);
      return;
    }

  client_serve (client);
}

/* The answer line is complete in client->line, newline included. */
static void
client_check_answer (Client *client)
{
  Server *server = client->server;
  const char *client_nonce = client->line;
  const char *mac = client->line + EXECNET_SOCKET_AUTH_HEX_LEN + 1;
  g_autofree char *expected = NULL;
  g_autofree char *proof = NULL;
  GOutputStream *output;

  if (client->line_length != 2 * EXECNET_SOCKET_AUTH_HEX_LEN + 2 ||
      client->line[EXECNET_SOCKET_AUTH_HEX_LEN] != ' ' ||
      !_execnet_socket_auth_is_hex (client_nonce, EXECNET_SOCKET_AUTH_HEX_LEN) ||
      !_execnet_socket_auth_is_hex (mac, EXECNET_SOCKET_AUTH_HEX_LEN))
    {
      client_refuse (client, TRUE, "its answer to the challenge is malformed");
      return;
    }

  expected = _execnet_socket_auth_mac (server->token, server->token_length,
                                       EXECNET_SOCKET_AUTH_CLIENT_ROLE,
                                       client->server_nonce, client_nonce);
  if (!_execnet_socket_auth_equal (mac, expected, EXECNET_SOCKET_AUTH_HEX_LEN))
    {
      client_refuse (client, TRUE, "wrong token");
      return;
    }

  {
    char nonce[EXECNET_SOCKET_AUTH_HEX_LEN + 1];

    memcpy (nonce, client_nonce, EXECNET_SOCKET_AUTH_HEX_LEN);
    nonce[EXECNET_SOCKET_AUTH_HEX_LEN] = '\0';
    proof = _execnet_socket_auth_mac (server->token, server->token_length,
                                      EXECNET_SOCKET_AUTH_SERVER_ROLE,
                                      client->server_nonce, nonce);
  }
  client->verdict = g_strconcat (EXECNET_SOCKET_AUTH_ACCEPTED_PREFIX, proof, "\n", NULL);
  client->state = CLIENT_VERDICT;

  output = g_io_stream_get_output_stream (G_IO_STREAM (client->connection));
  g_output_stream_write_all_async (output, client->verdict, strlen (client->verdict),
                                   G_PRIORITY_DEFAULT, client->cancellable,
                                   on_verdict_written, client);
}

static void read_answer (Client *client);

static void
on_answer_read (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Client *client = user_data;
  g_autoptr(GError) error = NULL;
  const char *newline;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n < 0)
    {
      if (client->timed_out)
        client_refuse (client, TRUE, "no answer to the challenge within "
                       G_STRINGIFY (HANDSHAKE_SECONDS) " seconds");
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        client_finish (client);  /* we are stopping */
      else
        {
          server_log (client->peer, "lost it during the challenge: %s; no process started",
                      error->message);
          client_finish (client);
        }
      return;
    }

  if (n == 0)
    {
      server_log (client->peer, "it disconnected %s the challenge; no process started",
                  client->line_length > 0 ? "in the middle of its answer to" : "without answering");
      client_finish (client);
      return;
    }

  /* A client that knows the protocol sends nothing after its answer until
   * it has our verdict; anything else is refused, not buffered. */
  newline = memchr (client->line + client->line_length, '\n', n);
  client->line_length += n;
  if (newline != NULL && newline != client->line + client->line_length - 1)
    {
      client_refuse (client, TRUE, "it sent more than an answer to the challenge "
                     "(a client without a token?)");
      return;
    }
  if (newline == NULL)
    {
      if (client->line_length == sizeof client->line)
        client_refuse (client, TRUE, "its answer to the challenge is too long "
                       "(a client without a token?)");
      else
        read_answer (client);
      return;
    }

  client_check_answer (client);
}

static void
read_answer (Client *client)
{
  GInputStream *input = g_io_stream_get_input_stream (G_IO_STREAM (client->connection));

  g_input_stream_read_async (input, client->line + client->line_length,
                             sizeof client->line - client->line_length,
                             G_PRIORITY_DEFAULT, client->cancellable, on_answer_read, client);
}

static void
on_challenge_written (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Client *client = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      if (client->timed_out)
        client_refuse (client, FALSE, "it did not take the challenge within "
                       G_STRINGIFY (HANDSHAKE_SECONDS) " seconds");
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        client_finish (client);
      else
        {
          server_log (client->peer, "lost it before the challenge: %s; no process started",
                      error->message);
          client_finish (client);
        }
      return;
    }

  read_answer (client);
}

static void
client_challenge (Client *client)
{
  g_autoptr(GError) error = NULL;
  GOutputStream *output;

  if (!_execnet_socket_auth_make_nonce (client->server_nonce, &error))
    {
      server_log (client->peer, "%s; closed it, no process started", error->message);
      client_finish (client);
      return;
    }

  g_snprintf (client->challenge, sizeof client->challenge, "%s%s\n",
              EXECNET_SOCKET_AUTH_CHALLENGE_PREFIX, client->server_nonce);
  client->state = CLIENT_HANDSHAKE;
  client_set_deadline (client, HANDSHAKE_SECONDS);

  output = g_io_stream_get_output_stream (G_IO_STREAM (client->connection));
  g_output_stream_write_all_async (output, client->challenge, strlen (client->challenge),
                                   G_PRIORITY_DEFAULT, client->cancellable,
                                   on_challenge_written, client);
}

/* The address of @address without its port, for the per-peer limit. */
static char *
describe_host (GSocketAddress *address)
{
  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return g_strdup ("(unknown peer)");
  return g_inet_address_to_string (g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address)));
}

static char *
describe_socket_address (GSocketAddress *address)
{
  GInetAddress *inet;
  g_autofree char *text = NULL;
  guint16 port;

  if (!G_IS_INET_SOCKET_ADDRESS (address))
    return g_strdup ("(unknown peer)");

  inet = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (address));
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (address));
  text = g_inet_address_to_string (inet);
  if (g_inet_address_get_family (inet) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[%s]:%u", text, port);
  return g_strdup_printf ("%s:%u", text, port);
}

static void
handle_connection (Server            *server,
                   GSocketConnection *connection)
{
  g_autoptr(GSocketAddress) address = NULL;
  g_autofree char *peer = NULL;
  g_autofree char *host = NULL;
  g_autoptr(GError) error = NULL;
  Client *client;
  guint from_host = 0;

  address = g_socket_connection_get_remote_address (connection, NULL);
  peer = address != NULL ? describe_socket_address (address) : g_strdup ("(unknown peer)");
  host = address != NULL ? describe_host (address) : g_strdup ("(unknown peer)");

  if (server->stopping)
    {
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return;
    }

  if (g_hash_table_size (server->clients) >= server->max_connections)
    {
      server_log_limited (&server->refused_full, peer,
                          "already serving %u connections (--max-connections); closed it",
                          g_hash_table_size (server->clients));
      g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
      return;
    }

  /* Only a peer that has not authenticated is limited per address: one
   * that holds the token may hold as many slots as it likes. */
  if (server->token != NULL)
    {
      from_host = GPOINTER_TO_UINT (g_hash_table_lookup (server->unauthenticated, host));
      if (server->max_per_peer > 0 && from_host >= server->max_per_peer)
        {
          server_log_limited (&server->refused_per_peer, peer,
                              "%s already holds %u connections that have not authenticated "
                              "(--max-per-peer); closed it",
                              host, from_host);
          g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
          return;
        }
    }

  /* Set before the interpreter inherits the socket: a client that goes
   * away without a word (its network died) ends the interpreter's reads
   * with an error, and the interpreter with them. */
  if (!_execnet_socket_set_keepalive (g_socket_connection_get_socket (connection),
                                      server->keepalive, &error))
    server_log_limited (&server->keepalive_failures, peer,
                        "cannot set --keepalive on the connection: %s", error->message);

  client = g_new0 (Client, 1);
  client->server = server;
  client->peer = g_steal_pointer (&peer);
  client->host = g_strdup (host);
  client->watch_fd = -1;
  client->connection = g_object_ref (connection);
  client->cancellable = g_cancellable_new ();
  g_hash_table_add (server->clients, client);

  if (server->token != NULL)
    {
      client->counted = TRUE;
      g_hash_table_insert (server->unauthenticated, g_steal_pointer (&host),
                           GUINT_TO_POINTER (from_host + 1));
      client_challenge (client);
    }
  else
    client_serve (client);
}

static void accept_next (Server *server);

static gboolean
on_accept_retry (gpointer data)
{
  Server *server = data;

  g_clear_pointer (&server->accept_retry, g_source_unref);
  accept_next (server);

  return G_SOURCE_REMOVE;
}

static void
on_accepted (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Server *server = user_data;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;

  connection = g_socket_listener_accept_finish (G_SOCKET_LISTENER (source), result, NULL, &error);
  if (connection == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;  /* we are stopping */

      /* Out of file descriptors, or memory: the pending connection stays
       * in the backlog, so trying again at once would fail at once. */
      server->accept_backoff_ms = CLAMP (server->accept_backoff_ms * 2,
                                         ACCEPT_BACKOFF_MIN_MS, ACCEPT_BACKOFF_MAX_MS);
      server_log_limited (&server->accept_failures, NULL,
                          "cannot accept a connection: %s; pausing accepts for %u ms",
                          error->message, server->accept_backoff_ms);
      server->accept_retry = g_timeout_source_new (server->accept_backoff_ms);
      g_source_set_callback (server->accept_retry, on_accept_retry, server, NULL);
      g_source_attach (server->accept_retry, NULL);
      return;
    }

  server->accept_backoff_ms = 0;
  handle_connection (server, connection);
  accept_next (server);
}

static void
accept_next (Server *server)
{
  if (server->stopping)
    return;
  g_socket_listener_accept_async (server->listener, server->accepting, on_accepted, server);
}

/* The most connections the file descriptor limit allows, or 0 if it sets
 * none. */
static guint
connections_allowed_by_fd_limit (guint64 *fd_limit)
{
  struct rlimit limit;

  if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
    return 0;

  *fd_limit = limit.rlim_cur;
  if (limit.rlim_cur <= FD_RESERVE + FDS_PER_CONNECTION)
    return 1;
  return MIN ((limit.rlim_cur - FD_RESERVE) / FDS_PER_CONNECTION, G_MAXINT);
}

static gboolean
on_kill_timer (gpointer data)
{
  Server *server = data;
  GHashTableIter iter;
  gpointer key;

  g_clear_pointer (&server->kill_timer, g_source_unref);

  g_hash_table_iter_init (&iter, server->clients);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Client *client = key;

      if (client->child != NULL)
        {
          server_log (client->peer, "its Python (pid %d) did not end within %d seconds; "
                      "killing its process group", (int) client->child_pid, STOP_GRACE_SECONDS);
          client_kill_group (client);
        }
    }

  return G_SOURCE_REMOVE;
}

static gboolean
on_stop_signal (gpointer data)
{
  Server *server = data;
  GHashTableIter iter;
  gpointer key;

  if (server->stopping)
    return G_SOURCE_CONTINUE;

  server->stopping = TRUE;
  server_log (NULL, "stopping: ending %u connection(s)", g_hash_table_size (server->clients));

  g_cancellable_cancel (server->accepting);
  if (server->accept_retry != NULL)
    {
      g_source_destroy (server->accept_retry);
      g_clear_pointer (&server->accept_retry, g_source_unref);
    }
  g_socket_listener_close (server->listener);

  g_hash_table_iter_init (&iter, server->clients);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      Client *client = key;

      if (client->child != NULL)
        g_subprocess_send_signal (client->child, SIGTERM);
      else
        g_cancellable_cancel (client->cancellable);
    }

  server->kill_timer = g_timeout_source_new_seconds (STOP_GRACE_SECONDS);
  g_source_set_callback (server->kill_timer, on_kill_timer, server, NULL);
  g_source_attach (server->kill_timer, NULL);

  server_quit_if_done (server);

  return G_SOURCE_CONTINUE;
}

/* Parses ADDR:PORT or [ADDR]:PORT; ADDR is numeric or "localhost". */
static GInetSocketAddress *
parse_listen_address (const char  *text,
                      GError     **error)
{
  g_autofree char *host = NULL;
  g_autoptr(GInetAddress) address = NULL;
  const char *port_text;
  guint64 port;

  if (text[0] == '[')
    {
      const char *end = strstr (text, "]:");

      if (end == NULL)
        goto invalid;
      host = g_strndup (text + 1, end - text - 1);
      port_text = end + 2;
    }
  else
    {
      const char *colon = strrchr (text, ':');

      if (colon == NULL || memchr (text, ':', colon - text) != NULL)
        goto invalid;
      host = g_strndup (text, colon - text);
      port_text = colon + 1;
    }

  if (!g_ascii_string_to_unsigned (port_text, 10, 0, 65535, &port, NULL))
    goto invalid;

  if (g_strcmp0 (host, "localhost") == 0)
    address = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  else
    address = g_inet_address_new_from_string (host);
  if (address == NULL)
    goto invalid;

  return G_INET_SOCKET_ADDRESS (g_inet_socket_address_new (address, port));

invalid:
  g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
               "--listen %s is not ADDRESS:PORT with a numeric address (127.0.0.1:8888, "
               "0.0.0.0:8888, [::1]:8888) and a port from 0 to 65535",
               text);
  return NULL;
}

/* The longest token file we read; tokens are a few dozen bytes. */
#define TOKEN_FILE_MAX_BYTES (64 * 1024)

/* Reads the token, refusing anything but a regular file of ours that no
 * other user can read. The file is opened without blocking and checked
 * through its descriptor, so a FIFO or a device cannot hang the server
 * before it listens, and what was checked is what is read. */
static gboolean
load_token (Server      *server,
            const char  *path,
            GError     **error)
{
  g_autofree char *contents = g_malloc (TOKEN_FILE_MAX_BYTES + 1);
  gsize length = 0;
  struct stat st;
  int fd;

  fd = g_open (path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0);
  if (fd < 0 || fstat (fd, &st) != 0)
    {
      int saved_errno = errno;

      if (fd >= 0)
        close (fd);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "cannot read the token file “%s”: %s", path, g_strerror (saved_errno));
      return FALSE;
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "the token file “%s” is not a regular file; give a file that holds "
                   "the token",
                   path);
      return FALSE;
    }
  if (st.st_uid != geteuid ())
    {
      close (fd);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "the token file “%s” belongs to user %u, not to the user the server "
                   "runs as (%u), who could not keep it secret; use a token file of "
                   "your own",
                   path, (guint) st.st_uid, (guint) geteuid ());
      return FALSE;
    }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    {
      close (fd);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "the token file “%s” can be read by other users, who could then run "
                   "code as you; make it private with “chmod 600 %s”",
                   path, path);
      return FALSE;
    }

  while (length <= TOKEN_FILE_MAX_BYTES)
    {
      gssize n = read (fd, contents + length, TOKEN_FILE_MAX_BYTES + 1 - length);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int saved_errno = errno;

          close (fd);
          memset (contents, 0, length);
          g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                       "cannot read the token file “%s”: %s", path, g_strerror (saved_errno));
          return FALSE;
        }
      if (n == 0)
        break;
      length += n;
    }
  close (fd);

  if (length > TOKEN_FILE_MAX_BYTES)
    {
      memset (contents, 0, TOKEN_FILE_MAX_BYTES + 1);
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "the token file “%s” is longer than %d bytes; put only the token in it",
                   path, TOKEN_FILE_MAX_BYTES);
      return FALSE;
    }
  contents[length] = '\0';

  length = _execnet_socket_auth_strip_token (contents, length);
  if (length == 0)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "the token file “%s” is empty; put a long random token in it, for "
                   "example with “head -c 32 /dev/urandom | base64 > %s”",
                   path, path);
      return FALSE;
    }

  server->token = (guchar *) g_steal_pointer (&contents);
  server->token_length = length;
  return TRUE;
}

static void
server_clear (Server *server)
{
  g_clear_pointer (&server->clients, g_hash_table_unref);
  g_clear_pointer (&server->unauthenticated, g_hash_table_unref);
  if (server->listener != NULL)
    g_socket_listener_close (server->listener);
  g_clear_object (&server->listener);
  g_clear_object (&server->accepting);
  if (server->accept_retry != NULL)
    {
      g_source_destroy (server->accept_retry);
      g_clear_pointer (&server->accept_retry, g_source_unref);
    }
  g_clear_pointer (&server->loop, g_main_loop_unref);
  if (server->kill_timer != NULL)
    {
      g_source_destroy (server->kill_timer);
      g_clear_pointer (&server->kill_timer, g_source_unref);
    }
  if (server->token != NULL)
    {
      memset (server->token, 0, server->token_length);
      g_clear_pointer (&server->token, g_free);
    }
  g_clear_pointer (&server->python_argv, g_strfreev);
}

static void
clear_options (void)
{
  g_clear_pointer (&listen_text, g_free);
  g_clear_pointer (&token_path, g_free);
  g_clear_pointer (&python_text, g_free);
}

int
execnet_tool_socketserver (int    argc,
                           char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GInetSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) effective = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *shown = NULL;
  Server server = { 0 };
  GInetAddress *inet;
  guint term_id, int_id;

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
    "Serve Python interpreters to socket=HOST:PORT gateways.\n"
    "\n"
    "For each connection, a new Python interpreter (--python) reads one line,\n"
    "a Python string literal, and runs the source it holds with the connection\n"
    "as `clientsock`: the socket server contract of execnet, so both execnet-glib\n"
    "and Python execnet masters can use it.");
  g_option_context_set_description (context,
    "Whoever can run code through this server runs it as you. With --token-file,\n"
    "a client must prove it holds the same token (an HMAC-SHA256 challenge)\n"
    "before any process is started for it; give it token_file=FILE in its spec.\n"
    "Without a token the server only starts with --insecure, and only on a\n"
    "loopback address unless --allow-remote-insecure is given too. The token\n"
    "protects who may start code, not the data: nothing is encrypted, so use\n"
    "ssh or a tunnel across networks you do not trust. More in execnet-tool(1)\n"
    "(SOCKET SERVER) and, when the API reference is installed, in\n"
    EXECNET_DOC_DIR "/socket.html.\n"
    "\n"
    "The first line on standard output is “listening on ADDRESS:PORT”; the log,\n"
    "and the output of the interpreters, go to standard error. SIGTERM or SIGINT\n"
    "stop the server and its interpreters.");
  g_option_context_add_main_entries (context, entries, NULL);

  max_connections = DEFAULT_MAX_CONNECTIONS;
  max_per_peer = DEFAULT_MAX_PER_PEER;
  keepalive = EXECNET_SOCKET_DEFAULT_KEEPALIVE;
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      int status = execnet_tool_report_error (COMMAND, error);

      clear_options ();
      return status;
    }
  if (argc > 1)
    {
      execnet_tool_print_error (COMMAND, "unexpected argument “%s”; see --help", argv[1]);
      clear_options ();
      return EXECNET_TOOL_EXIT_USAGE;
    }

  address = parse_listen_address (listen_text != NULL ? listen_text : "127.0.0.1:8888", &error);
  if (address == NULL)
    goto usage_error;
  inet = g_inet_socket_address_get_address (address);

  if (max_connections < 0)
    {
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--max-connections %d: give a number of connections, or 0 for no limit",
                   max_connections);
      goto usage_error;
    }
  if (max_per_peer < 0)
    {
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--max-per-peer %d: give a number of connections, or 0 for no limit",
                   max_per_peer);
      goto usage_error;
    }
  if (keepalive < 0 || keepalive > 24 * 3600)
    {
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--keepalive %d: give a number of seconds up to 86400, or 0 for the "
                   "system's defaults",
                   keepalive);
      goto usage_error;
    }
  server.max_connections = max_connections;
  server.max_per_peer = max_per_peer;
  server.keepalive = (guint) keepalive;

  if (token_path != NULL && insecure)
    {
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--token-file and --insecure contradict each other; give one of them");
      goto usage_error;
    }
  if (token_path == NULL && !insecure)
    {
      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "refusing to serve without authentication: give --token-file FILE "
                   "(see SOCKET SERVER in execnet-tool(1)), or --insecure to let anyone who can connect "
                   "run code as you");
      goto usage_error;
    }
  if (insecure && !g_inet_address_get_is_loopback (inet) && !allow_remote_insecure)
    {
      g_autofree char *host = g_inet_address_to_string (inet);

      g_set_error (&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "refusing --insecure on %s, which is not a loopback address: anyone "
                   "who can reach it could run code as you. Use --token-file, or add "
                   "--allow-remote-insecure if you really mean it",
                   host);
      goto usage_error;
    }
  if (token_path != NULL && !load_token (&server, token_path, &error))
    goto usage_error;

  if (!g_shell_parse_argv (python_text != NULL ? python_text : "python3", NULL,
                           &server.python_argv, &error))
    {
      g_prefix_error (&error, "--python: ");
      goto usage_error;
    }

  if (insecure && !g_inet_address_get_is_loopback (inet))
    execnet_tool_print_error (COMMAND, "WARNING: serving without authentication on a "
                              "non-loopback address: anyone who can reach it can run code as you");

  /* A peer that goes away must cost an EPIPE, not the server. */
  signal (SIGPIPE, SIG_IGN);

  {
    guint64 fd_limit = 0;
    guint allowed = connections_allowed_by_fd_limit (&fd_limit);

    if (allowed > 0 && (server.max_connections == 0 || server.max_connections > allowed))
      {
        if (server.max_connections != 0)
          execnet_tool_print_error (COMMAND, "--max-connections %u is more than the file "
                                    "descriptor limit (%" G_GUINT64_FORMAT ") allows; serving "
                                    "at most %u at once (raise the limit with ulimit -n)",
                                    server.max_connections, fd_limit, allowed);
        server.max_connections = allowed;
      }
    else if (server.max_connections == 0)
      server.max_connections = G_MAXUINT;
  }

  server.loop = g_main_loop_new (NULL, FALSE);
  server.clients = g_hash_table_new_full (NULL, NULL, client_free, NULL);
  server.unauthenticated = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  server.listener = g_socket_listener_new ();
  server.accepting = g_cancellable_new ();
  g_socket_listener_set_backlog (server.listener, 128);
  if (!g_socket_listener_add_address (server.listener, G_SOCKET_ADDRESS (address),
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                      &effective, &error))
    {
      int status;

      g_prefix_error (&error, "cannot listen on %s: ", listen_text != NULL ? listen_text : "127.0.0.1:8888");
      status = execnet_tool_report_error (COMMAND, error);
      server_clear (&server);
      clear_options ();
      return status;
    }
  accept_next (&server);

  term_id = g_unix_signal_add (SIGTERM, on_stop_signal, &server);
  int_id = g_unix_signal_add (SIGINT, on_stop_signal, &server);

  shown = describe_socket_address (effective);
  g_print ("listening on %s\n", shown);
  fflush (stdout);
  server_log (NULL, "listening on %s, %s", shown,
              server.token != NULL ? "clients must prove they hold the token"
                                   : "WITHOUT authentication (--insecure)");

  g_main_loop_run (server.loop);

  g_source_remove (term_id);
  g_source_remove (int_id);
  server_log (NULL, "stopped");
  server_clear (&server);
  clear_options ();

  return EXECNET_TOOL_EXIT_OK;

usage_error:
  {
    int status = execnet_tool_report_error (COMMAND, error);

    server_clear (&server);
    clear_options ();
    return status;
  }
}
