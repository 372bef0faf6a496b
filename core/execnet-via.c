/* execnet-via.c: gateways started by another gateway (via=ID)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-gateway.h>
#include <execnet/execnet-channel.h>

#include <glib-unix.h>

#include "execnet-inbox-private.h"
#include "execnet-io-worker-private.h"
#include "execnet-util-private.h"
#include "execnet-via-private.h"

/* A gateway with via=ID is started by the agent of gateway ID: the master
 * runs core/remote/relay.py there with remote_exec, sends it the command
 * line of the new interpreter (popen: the Python command; ssh: the ssh
 * client with it), and the relay starts it and pumps its stdin and stdout
 * over that channel in chunks as large as its reads return.
 *
 * On the master, the new gateway's connection is one end of a socketpair,
 * so its wire, bootstrap and framing are exactly those of any other
 * transport. The library's I/O thread pumps the other end, like every
 * other stream, with no thread of its own: "out" reads what the wire
 * writes (at most one chunk of OUT_CHUNK bytes at a time, handed to the
 * relay channel without a copy, and the next read waits until that one is
 * sent), "in" takes one item at a time from the channel and writes it to
 * the socket (the next receive waits until the socket took all of it).
 * So each direction holds at most one chunk, whatever the volume.
 *
 * The interpreter's exit status comes back as ('exit', returncode); when
 * the channel ends without one (the via gateway died) the process counts
 * as ended with an unknown status, which is true: the relay's death closed
 * its stdin, and our agent exits at EOF.
 *
 * Nesting needs nothing more: the via gateway may itself be a via gateway.
 */

#define OUT_CHUNK (256 * 1024)

typedef struct {
  gatomicrefcount ref;
  /* Written once before the pumps start, never again: read without the
   * lock. The weak reference is thread-safe itself. */
  ExecnetChannel *channel;     /* (owned) the relay task's channel */
  int fd;                      /* the pumps' end of the socketpair, non-blocking */
  GWeakRef connection;         /* the ExecnetViaConnection, for its error output */

  /* I/O thread only */
  GSource *read_source;        /* (owned) (nullable) "out" waits for the wire */
  GSource *write_source;       /* (owned) (nullable) "in" waits for room */
  GVariant *pending;           /* (owned) (nullable) the item "in" is writing */
  gsize pending_offset;        /* how much of it the socket took */
  int wait_status;             /* -1 when unknown, until "in" ends */

  GMutex lock;                 /* guards everything below */
  gboolean ended;              /* the "in" pump finished */
  int final_status;            /* -1 when unknown */
  GPtrArray *waiters;          /* (owned) (element-type GTask) wait_async calls */
} Relay;

static Relay *
relay_ref (Relay *relay)
{
  g_atomic_ref_count_inc (&relay->ref);
  return relay;
}

static void
relay_unref (Relay *relay)
{
  if (!g_atomic_ref_count_dec (&relay->ref))
    return;

  g_assert (relay->read_source == NULL && relay->write_source == NULL);
  g_clear_pointer (&relay->pending, g_variant_unref);
  g_object_unref (relay->channel);
  g_weak_ref_clear (&relay->connection);
  close (relay->fd);
  g_ptr_array_unref (relay->waiters);
  g_mutex_clear (&relay->lock);
  g_free (relay);
}

/* Sends a control item, such as ('eof',), ignoring a closed channel. */
static void
relay_send_control (Relay      *relay,
                    const char *what)
{
  execnet_channel_send_async (relay->channel, g_variant_new ("(s)", what), NULL, NULL, NULL);
}

static void out_wait (Relay *relay);

/* I/O thread: one chunk went to the relay channel; read the next. */
static void
on_out_sent (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Relay *relay = user_data;

  if (execnet_channel_send_finish (EXECNET_CHANNEL (source), result, NULL))
    out_wait (relay);
  /* Else the relay is gone: nothing more goes there. */
  relay_unref (relay);
}

/* I/O thread: the "out" pump, what the wire writes, to the relay. */
static gboolean
on_out_readable (int          fd,
                 GIOCondition condition,
                 gpointer     user_data)
{
  Relay *relay = user_data;
  guint8 *buffer = g_malloc (OUT_CHUNK);
  g_autoptr(GBytes) chunk = NULL;
  gssize n;

  do
    n = read (relay->fd, buffer, OUT_CHUNK);
  while (n < 0 && errno == EINTR);

  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    {
      g_free (buffer);
      return G_SOURCE_CONTINUE;
    }

  g_clear_pointer (&relay->read_source, g_source_unref);
  if (n <= 0)
    {
      /* The wire closed its writing side: the interpreter's stdin ends. */
      g_free (buffer);
      relay_send_control (relay, "eof");
      return G_SOURCE_REMOVE;
    }

  /* The buffer becomes the item: no copy. */
  chunk = g_bytes_new_take (g_realloc (buffer, n), n);
  execnet_channel_send_async (relay->channel,
                              g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, chunk, TRUE),
                              NULL, on_out_sent, relay_ref (relay));
  return G_SOURCE_REMOVE;
}

/* I/O thread */
static void
out_wait (Relay *relay)
{
  relay->read_source = g_unix_fd_source_new (relay->fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
  g_source_set_static_name (relay->read_source, "[execnet] via out");
  g_source_set_callback (relay->read_source, G_SOURCE_FUNC (on_out_readable),
                         relay_ref (relay), (GDestroyNotify) relay_unref);
  g_source_attach (relay->read_source, _execnet_io_worker_get_context ());
}

static void in_receive (Relay *relay);

/* I/O thread: the channel ended (the exit status came, or the via gateway
 * is gone): the wire reads the end of the stream, and wait() returns. */
static void
in_end (Relay *relay)
{
  GPtrArray *waiters;

  if (relay->write_source != NULL)
    {
      g_source_destroy (relay->write_source);
      g_clear_pointer (&relay->write_source, g_source_unref);
    }
  g_clear_pointer (&relay->pending, g_variant_unref);
  shutdown (relay->fd, SHUT_WR);
  execnet_channel_close (relay->channel, NULL, NULL);

  g_mutex_lock (&relay->lock);
  relay->ended = TRUE;
  relay->final_status = relay->wait_status;
  waiters = g_steal_pointer (&relay->waiters);
  relay->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_unlock (&relay->lock);

  for (guint i = 0; i < waiters->len; i++)
    _execnet_task_return_boolean (g_ptr_array_index (waiters, i), TRUE);
  g_ptr_array_unref (waiters);
}

/* I/O thread: writes what it can of the pending item; TRUE when it is all
 * written (or the wire is gone, which takes nothing more). */
static gboolean
in_write_pending (Relay *relay)
{
  gsize size;
  const guint8 *bytes = g_variant_get_fixed_array (relay->pending, &size, 1);

  while (relay->pending_offset < size)
    {
      gssize n = send (relay->fd, bytes + relay->pending_offset,
                       size - relay->pending_offset, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return FALSE;
      if (n <= 0)
        break;
      relay->pending_offset += n;
    }
  g_clear_pointer (&relay->pending, g_variant_unref);
  return TRUE;
}

/* I/O thread */
static gboolean
on_in_writable (int          fd,
                GIOCondition condition,
                gpointer     user_data)
{
  Relay *relay = user_data;

  if (!in_write_pending (relay))
    return G_SOURCE_CONTINUE;
  g_clear_pointer (&relay->write_source, g_source_unref);
  in_receive (relay);
  return G_SOURCE_REMOVE;
}

/* I/O thread: the "in" pump, what the interpreter writes, to the wire. */
static void
on_in_received (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Relay *relay = user_data;
  g_autoptr(GVariant) item = execnet_channel_receive_finish (EXECNET_CHANNEL (source), result, NULL);

  if (item == NULL)
    in_end (relay);
  else if (g_variant_is_of_type (item, G_VARIANT_TYPE_BYTESTRING))
    {
      relay->pending = g_steal_pointer (&item);
      relay->pending_offset = 0;
      if (in_write_pending (relay))
        in_receive (relay);
      else
        {
          relay->write_source = g_unix_fd_source_new (relay->fd, G_IO_OUT | G_IO_HUP | G_IO_ERR);
          g_source_set_static_name (relay->write_source, "[execnet] via in");
          g_source_set_callback (relay->write_source, G_SOURCE_FUNC (on_in_writable),
                                 relay_ref (relay), (GDestroyNotify) relay_unref);
          g_source_attach (relay->write_source, _execnet_io_worker_get_context ());
        }
    }
  else if (g_variant_is_of_type (item, G_VARIANT_TYPE ("(say)")))
    {
      g_autoptr(ExecnetConnection) connection = g_weak_ref_get (&relay->connection);
      g_autoptr(GVariant) bytes = g_variant_get_child_value (item, 1);

      /* The interpreter's (or its ssh client's) stderr, kept to quote
       * if the bootstrap fails. */
      if (connection != NULL)
        execnet_connection_append_error_output (connection, g_variant_get_data (bytes),
                                                g_variant_get_size (bytes));
      in_receive (relay);
    }
  else if (g_variant_is_of_type (item, G_VARIANT_TYPE ("(sx)")))
    {
      gint64 code;

      g_variant_get (item, "(&sx)", NULL, &code);
      /* Python's returncode: the exit code, or minus the signal. */
      relay->wait_status = code >= 0 ? (int) (code & 0xff) << 8 : (int) (-code & 0x7f);
      in_end (relay);
    }
  else
    in_receive (relay);

  relay_unref (relay);
}

/* I/O thread */
static void
in_receive (Relay *relay)
{
  execnet_channel_receive_async (relay->channel, NULL, on_in_received, relay_ref (relay));
}

/* I/O thread: both pumps start. */
static gboolean
start_pumps (gpointer data)
{
  Relay *relay = data;

  out_wait (relay);
  in_receive (relay);
  return G_SOURCE_REMOVE;
}

/* Any thread: the connection is finalized; the "out" pump stops reading
 * (the socket it reads is shut down too, so it would only see EOF). */
static gboolean
stop_out_pump (gpointer data)
{
  Relay *relay = data;

  if (relay->read_source != NULL)
    {
      g_source_destroy (relay->read_source);
      g_clear_pointer (&relay->read_source, g_source_unref);
      relay_send_control (relay, "eof");
    }
  return G_SOURCE_REMOVE;
}

#define EXECNET_TYPE_VIA_CONNECTION (execnet_via_connection_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetViaConnection, execnet_via_connection, EXECNET, VIA_CONNECTION, ExecnetConnection)

struct _ExecnetViaConnection
{
  ExecnetConnection parent_instance;

  /* Both written once before the connection is handed out: read without
   * a lock (the relay has its own). */
  Relay *relay;          /* (owned) */
  GSocket *socket;       /* (owned) the wire's end */
};

G_DEFINE_FINAL_TYPE (ExecnetViaConnection, execnet_via_connection, EXECNET_TYPE_CONNECTION)

static gboolean
execnet_via_connection_close_write (ExecnetConnection  *connection,
                                    GError            **error)
{
  ExecnetViaConnection *self = EXECNET_VIA_CONNECTION (connection);

  return g_socket_shutdown (self->socket, FALSE, TRUE, error);
}

static void
execnet_via_connection_terminate (ExecnetConnection *connection,
                                  gboolean           force)
{
  ExecnetViaConnection *self = EXECNET_VIA_CONNECTION (connection);

  if (force)
    relay_send_control (self->relay, "kill");
  g_socket_shutdown (self->socket, TRUE, TRUE, NULL);
}

static void
execnet_via_connection_wait_async (ExecnetConnection   *connection,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  ExecnetViaConnection *self = EXECNET_VIA_CONNECTION (connection);
  Relay *relay = self->relay;
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, execnet_via_connection_wait_async);

  g_mutex_lock (&relay->lock);
  if (!relay->ended)
    {
      g_ptr_array_add (relay->waiters, g_steal_pointer (&task));
      g_mutex_unlock (&relay->lock);
      return;
    }
  g_mutex_unlock (&relay->lock);

  _execnet_task_return_boolean (task, TRUE);
}

static gboolean
execnet_via_connection_wait_finish (ExecnetConnection  *connection,
                                    GAsyncResult       *result,
                                    GError            **error)
{
  ExecnetViaConnection *self = EXECNET_VIA_CONNECTION (connection);
  int wait_status;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  g_mutex_lock (&self->relay->lock);
  wait_status = self->relay->final_status;
  g_mutex_unlock (&self->relay->lock);
  if (wait_status >= 0)
    execnet_connection_set_exit_status (connection, wait_status);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_via_connection_finalize (GObject *object)
{
  ExecnetViaConnection *self = EXECNET_VIA_CONNECTION (object);

  g_socket_shutdown (self->socket, TRUE, TRUE, NULL);
  g_clear_object (&self->socket);
  _execnet_io_worker_invoke (stop_out_pump, g_steal_pointer (&self->relay),
                             (GDestroyNotify) relay_unref);

  G_OBJECT_CLASS (execnet_via_connection_parent_class)->finalize (object);
}

static void
execnet_via_connection_class_init (ExecnetViaConnectionClass *klass)
{
  ExecnetConnectionClass *connection_class = EXECNET_CONNECTION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = execnet_via_connection_finalize;
  connection_class->close_write = execnet_via_connection_close_write;
  connection_class->terminate = execnet_via_connection_terminate;
  connection_class->wait_async = execnet_via_connection_wait_async;
  connection_class->wait_finish = execnet_via_connection_wait_finish;
}

static void
execnet_via_connection_init (ExecnetViaConnection *self)
{
}

/* I/O thread: a clearer error for a via= gateway whose bootstrap failed,
 * or %NULL to keep the bootstrap's own. The ssh client exits with 255
 * when it fails itself (refused, unknown host, keys): that is a fault of the
 * way from @via to the host, not of the Python there. */
GError *
_execnet_via_explain_failure (ExecnetGateway    *via,
                              ExecnetXSpec      *xspec,
                              ExecnetConnection *connection)
{
  int status = execnet_connection_get_exit_status (connection);
  g_autofree char *output = NULL;

  if (g_strcmp0 (execnet_xspec_get_scheme (xspec), "ssh") != 0 ||
      !WIFEXITED (status) || WEXITSTATUS (status) != 255)
    return NULL;

  output = execnet_connection_dup_error_output (connection);
  return g_error_new (EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                      "the ssh client that via=%s ran for “%s” failed (exit status 255)%s%s; "
                      "check that the host, port, user and keys of ssh=%s work from the "
                      "host of gateway %s",
                      execnet_gateway_get_id (via), execnet_xspec_to_string (xspec),
                      output != NULL ? ": " : "", output != NULL ? g_strstrip (output) : "",
                      execnet_xspec_get (xspec, "ssh"), execnet_gateway_get_id (via));
}

/* The command line the relay runs for @xspec. */
static GVariant *
relay_argv (ExecnetXSpec  *xspec,
            GError       **error)
{
  const char *scheme = execnet_xspec_get_scheme (xspec);
  g_autoptr(GStrvBuilder) argv = g_strv_builder_new ();
  g_auto(GStrv) result = NULL;

  if (g_strcmp0 (scheme, "popen") == 0)
    {
      g_auto(GStrv) python = execnet_transport_build_python_argv (xspec, error);

      if (python == NULL)
        return NULL;
      g_strv_builder_addv (argv, (const char **) python);
    }
  else if (g_strcmp0 (scheme, "ssh") == 0)
    {
      g_auto(GStrv) args = NULL;
      g_autofree char *command = execnet_transport_build_python_command (xspec, error);

      if (command == NULL)
        return NULL;
      if (!g_shell_parse_argv (execnet_xspec_get (xspec, "ssh"), NULL, &args, error))
        {
          g_prefix_error (error, "invalid spec “%s”: ssh= ", execnet_xspec_to_string (xspec));
          return NULL;
        }
      g_strv_builder_add (argv, "ssh");
      if (execnet_xspec_get (xspec, "ssh_config") != NULL)
        g_strv_builder_add_many (argv, "-F", execnet_xspec_get (xspec, "ssh_config"), NULL);
      g_strv_builder_addv (argv, (const char **) args);
      g_strv_builder_add (argv, command);
    }
  else
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: via= starts popen and ssh gateways only, "
                   "not %s ones",
                   execnet_xspec_to_string (xspec), scheme != NULL ? scheme : "transport-less");
      return NULL;
    }

  result = g_strv_builder_end (argv);
  return g_variant_new_strv ((const char * const *) result, -1);
}

/* Any thread: has @via start the interpreter of @xspec and returns the
 * connection to it. Never blocks: the relay's answer is the interpreter's
 * bootstrap acknowledgement, read by the caller like any other. */
ExecnetConnection *
_execnet_via_connect (ExecnetGateway  *via,
                      ExecnetXSpec    *xspec,
                      GError         **error)
{
  g_autoptr(GBytes) source = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) argv = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) stream = NULL;
  g_autofree char *address = NULL;
  ExecnetViaConnection *self;
  Relay *relay;
  int fds[2];

  argv = relay_argv (xspec, error);
  if (argv == NULL)
    return NULL;
  g_variant_ref_sink (argv);

  source = _execnet_remote_lookup ("/org/execnet/remote/relay.py");
  channel = execnet_gateway_remote_exec (via, g_bytes_get_data (source, NULL), error);
  if (channel == NULL)
    {
      g_prefix_error (error, "via=%s: ", execnet_gateway_get_id (via));
      return NULL;
    }
  if (!execnet_channel_send (channel, argv, error))
    {
      g_prefix_error (error, "via=%s: ", execnet_gateway_get_id (via));
      return NULL;
    }

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) < 0)
    {
      int saved_errno = errno;

      execnet_channel_close (channel, NULL, NULL);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "via=%s: cannot make a socket pair: %s; raise the file descriptor limit",
                   execnet_gateway_get_id (via), g_strerror (saved_errno));
      return NULL;
    }
  socket = g_socket_new_from_fd (fds[0], error);
  if (socket == NULL)
    {
      close (fds[0]);
      close (fds[1]);
      execnet_channel_close (channel, NULL, NULL);
      return NULL;
    }
  stream = g_socket_connection_factory_create_connection (socket);

  relay = g_new0 (Relay, 1);
  g_atomic_ref_count_init (&relay->ref);
  relay->channel = g_steal_pointer (&channel);
  relay->fd = fds[1];
  relay->wait_status = -1;
  relay->final_status = -1;
  relay->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_init (&relay->lock);

  address = g_strdup_printf ("%s via %s", execnet_xspec_to_string (xspec),
                             execnet_gateway_get_id (via));
  self = g_object_new (EXECNET_TYPE_VIA_CONNECTION,
                       "stream", stream,
                       "remote-address", address,
                       "bootstrap-mode", EXECNET_BOOTSTRAP_STDIO,
                       NULL);
  self->socket = g_steal_pointer (&socket);
  self->relay = relay;
  g_weak_ref_init (&relay->connection, self);

  _execnet_io_worker_invoke (start_pumps, relay_ref (relay), (GDestroyNotify) relay_unref);

  return EXECNET_CONNECTION (self);
}
