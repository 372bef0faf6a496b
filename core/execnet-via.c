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

#include "execnet-inbox-private.h"
#include "execnet-resources.h"
#include "execnet-via-private.h"

/* A gateway with via=ID is started by the agent of gateway ID: the master
 * runs core/remote/relay.py there with remote_exec, sends it the command
 * line of the new interpreter (popen: the Python command; ssh: the ssh
 * client with it), and the relay starts it and pumps its stdin and stdout
 * over that channel in chunks as large as its reads return.
 *
 * On the master, the new gateway's connection is one end of a socketpair,
 * so its wire, bootstrap and framing are exactly those of any other
 * transport. Two threads of the relay pump the other end: "out" reads what
 * the wire writes and sends it on the channel, "in" receives from the
 * channel and writes it to the socket. The interpreter's exit status comes
 * back as ('exit', returncode); when the channel ends without one (the via
 * gateway died) the process counts as ended with an unknown status, which
 * is true: the relay's death closed its stdin, and our agent exits at EOF.
 *
 * Nesting needs nothing more: the via gateway may itself be a via gateway.
 */

typedef struct {
  gatomicrefcount ref;
  /* Written once before the pumps start, never again: read without the
   * lock. The weak reference is thread-safe itself. */
  ExecnetChannel *channel;     /* (owned) the relay task's channel */
  int fd;                      /* the pumps' end of the socketpair */
  GWeakRef connection;         /* the ExecnetViaConnection, for its error output */

  GMutex lock;                 /* guards everything below */
  gboolean ended;              /* the "in" pump finished */
  int wait_status;             /* -1 when unknown */
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
  execnet_channel_send (relay->channel, g_variant_new ("(s)", what), NULL);
}

/* The "out" thread: what the wire writes, to the relay. */
static gpointer
pump_out (gpointer data)
{
  Relay *relay = data;
  gsize size = 256 * 1024;
  g_autofree guint8 *buffer = g_malloc (size);

  for (;;)
    {
      gssize n = read (relay->fd, buffer, size);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      if (!execnet_channel_send (relay->channel,
                                 g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, buffer, n, 1),
                                 NULL))
        break;
    }

  /* The wire closed its writing side: the interpreter's stdin ends. */
  relay_send_control (relay, "eof");
  relay_unref (relay);
  return NULL;
}

static gboolean
write_all (int           fd,
           const guint8 *data,
           gsize         size)
{
  while (size > 0)
    {
      gssize n = write (fd, data, size);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      data += n;
      size -= n;
    }
  return TRUE;
}

/* The "in" thread: what the interpreter writes, to the wire. */
static gpointer
pump_in (gpointer data)
{
  Relay *relay = data;
  int wait_status = -1;
  GPtrArray *waiters;

  for (;;)
    {
      g_autoptr(GVariant) item = execnet_channel_receive (relay->channel, -1, NULL);

      if (item == NULL)
        break;
      if (g_variant_is_of_type (item, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize size;
          const guint8 *bytes = g_variant_get_fixed_array (item, &size, 1);

          /* A wire that is gone takes nothing more; keep receiving until
           * the exit status arrives. */
          write_all (relay->fd, bytes, size);
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
        }
      else if (g_variant_is_of_type (item, G_VARIANT_TYPE ("(sx)")))
        {
          gint64 code;

          g_variant_get (item, "(&sx)", NULL, &code);
          /* Python's returncode: the exit code, or minus the signal. */
          wait_status = code >= 0 ? (int) (code & 0xff) << 8 : (int) (-code & 0x7f);
          break;
        }
    }

  /* The wire reads the end of the stream; the relay task may finish. */
  shutdown (relay->fd, SHUT_WR);
  execnet_channel_close (relay->channel, NULL, NULL);

  g_mutex_lock (&relay->lock);
  relay->ended = TRUE;
  relay->wait_status = wait_status;
  waiters = g_steal_pointer (&relay->waiters);
  relay->waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_mutex_unlock (&relay->lock);

  for (guint i = 0; i < waiters->len; i++)
    _execnet_task_return_boolean (g_ptr_array_index (waiters, i), TRUE);
  g_ptr_array_unref (waiters);

  relay_unref (relay);
  return NULL;
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
  wait_status = self->relay->wait_status;
  g_mutex_unlock (&self->relay->lock);
  if (wait_status >= 0)
    execnet_connection_set_exit_status (connection, wait_status);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_via_connection_finalize (GObject *object)
{
  ExecnetViaConnection *self = EXECNET_VIA_CONNECTION (object);

  /* Wakes the "out" pump if it still reads. */
  g_socket_shutdown (self->socket, TRUE, TRUE, NULL);
  g_clear_object (&self->socket);
  relay_unref (self->relay);

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

  source = g_resource_lookup_data (_execnet_remote_get_resource (), "/org/execnet/remote/relay.py",
                                   G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
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

  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0)
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

  g_thread_unref (g_thread_new ("execnet-via-out", pump_out, relay_ref (relay)));
  g_thread_unref (g_thread_new ("execnet-via-in", pump_in, relay_ref (relay)));

  return EXECNET_CONNECTION (self);
}
