/* execnet-ssh.c: gateways to Python interpreters on other hosts, over SSH
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <execnet/execnet.h>

#include "execnet-ssh-private.h"

/* The ssh transport runs the remote interpreter through an SSH session of
 * its own, made with libssh inside this process, rather than through the
 * ssh program as execnet does: connection, host key and authentication
 * failures then come back as distinct errors with the host named, instead
 * of as an interpreter that never answered.
 *
 * Opening blocks (name resolution, the handshake, authentication), so it
 * runs in a thread of its own per gateway, bounded by connect_timeout=;
 * from then on the session is non-blocking and served by the core's I/O
 * thread (execnet-ssh-session.c). The remote command's stdin and stdout
 * are the gateway's stream, its stderr is copied to ours.
 *
 * Files: execnet-ssh-args.c reads the spec's ssh words,
 * execnet-ssh-connect.c makes the session, execnet-ssh-session.c drives
 * it (and the connection's spawner, spawner.py, whose protocol
 * execnet-ssh-spawner.c speaks), execnet-ssh-stream.c wraps it in a
 * GIOStream. See doc/ssh.md. */

#define EXECNET_TYPE_SSH_CONNECTION (execnet_ssh_connection_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSshConnection, execnet_ssh_connection, EXECNET, SSH_CONNECTION, ExecnetConnection)

struct _ExecnetSshConnection
{
  ExecnetConnection parent_instance;

  ExecnetSshSession *session;   /* (owned) */
};

G_DEFINE_DYNAMIC_TYPE (ExecnetSshConnection, execnet_ssh_connection, EXECNET_TYPE_CONNECTION)

#define EXECNET_TYPE_SSH_TRANSPORT (execnet_ssh_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSshTransport, execnet_ssh_transport, EXECNET, SSH_TRANSPORT, GObject)

struct _ExecnetSshTransport
{
  GObject parent_instance;
};

static void execnet_ssh_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ExecnetSshTransport, execnet_ssh_transport, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (EXECNET_TYPE_TRANSPORT,
                                                               execnet_ssh_transport_iface_init))

/* ExecnetSshConnection */

static gboolean
execnet_ssh_connection_close_write (ExecnetConnection  *connection,
                                    GError            **error)
{
  ExecnetSshConnection *self = EXECNET_SSH_CONNECTION (connection);

  return _execnet_ssh_session_send_eof (self->session, error);
}

static void
execnet_ssh_connection_terminate (ExecnetConnection *connection,
                                  gboolean           force)
{
  ExecnetSshConnection *self = EXECNET_SSH_CONNECTION (connection);

  _execnet_ssh_session_terminate (self->session, force);
}

/* Runs in the wait_async caller's main context. */
static void
complete_wait (GTask *task)
{
  ExecnetSshConnection *self = g_task_get_source_object (task);
  int wait_status;

  if (_execnet_ssh_session_get_ending (self->session, &wait_status))
    execnet_connection_set_exit_status (EXECNET_CONNECTION (self), wait_status);
  g_task_return_boolean (task, TRUE);
}

static gboolean
on_ended (gpointer user_data)
{
  GTask *task = user_data;

  if (!g_task_return_error_if_cancelled (task))
    complete_wait (task);
  return G_SOURCE_REMOVE;
}

static void
execnet_ssh_connection_wait_async (ExecnetConnection   *connection,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  ExecnetSshConnection *self = EXECNET_SSH_CONNECTION (connection);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  g_autoptr(GSource) source = NULL;

  g_task_set_source_tag (task, execnet_ssh_connection_wait_async);

  if (_execnet_ssh_session_is_ready (self->session, EXECNET_SSH_WAIT_ENDED))
    {
      complete_wait (task);
      return;
    }

  source = _execnet_ssh_session_create_source (self->session, EXECNET_SSH_WAIT_ENDED);
  if (cancellable != NULL)
    {
      g_autoptr(GSource) cancelled = g_cancellable_source_new (cancellable);

      g_source_set_dummy_callback (cancelled);
      g_source_add_child_source (source, cancelled);
    }
  g_source_set_priority (source, g_task_get_priority (task));
  g_source_set_callback (source, on_ended, g_object_ref (task), g_object_unref);
  g_source_attach (source, g_task_get_context (task));
}

static gboolean
execnet_ssh_connection_wait_finish (ExecnetConnection  *connection,
                                    GAsyncResult       *result,
                                    GError            **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_ssh_connection_dispose (GObject *object)
{
  ExecnetSshConnection *self = EXECNET_SSH_CONNECTION (object);

  if (self->session != NULL)
    _execnet_ssh_session_set_owner (self->session, NULL);

  G_OBJECT_CLASS (execnet_ssh_connection_parent_class)->dispose (object);
}

static void
execnet_ssh_connection_finalize (GObject *object)
{
  ExecnetSshConnection *self = EXECNET_SSH_CONNECTION (object);

  g_clear_pointer (&self->session, _execnet_ssh_session_unref);

  G_OBJECT_CLASS (execnet_ssh_connection_parent_class)->finalize (object);
}

static void
execnet_ssh_connection_class_init (ExecnetSshConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExecnetConnectionClass *connection_class = EXECNET_CONNECTION_CLASS (klass);

  object_class->dispose = execnet_ssh_connection_dispose;
  object_class->finalize = execnet_ssh_connection_finalize;
  connection_class->close_write = execnet_ssh_connection_close_write;
  connection_class->terminate = execnet_ssh_connection_terminate;
  connection_class->wait_async = execnet_ssh_connection_wait_async;
  connection_class->wait_finish = execnet_ssh_connection_wait_finish;
}

static void
execnet_ssh_connection_class_finalize (ExecnetSshConnectionClass *klass)
{
}

static void
execnet_ssh_connection_init (ExecnetSshConnection *self)
{
}

/* ExecnetSshTransport */

/* Runs in its own thread; blocks for up to the spec's connect_timeout. A
 * thread per open rather than GTask's shared pool: a batch of unreachable
 * hosts must not hold up the application's other GTask work for that long. */
static gpointer
open_thread (gpointer data)
{
  g_autoptr(GTask) task = data;
  ExecnetXSpec *xspec = g_task_get_task_data (task);
  g_autoptr(ExecnetSshSession) session = NULL;
  g_autoptr(GIOStream) stream = NULL;
  ExecnetSshConnection *connection;
  GError *error = NULL;

  session = _execnet_ssh_connect (xspec, g_task_get_cancellable (task), &error);
  if (session == NULL)
    {
      g_task_return_error (task, error);
      return NULL;
    }

  stream = _execnet_ssh_stream_new (session);
  connection = g_object_new (EXECNET_TYPE_SSH_CONNECTION,
                             "stream", stream,
                             "remote-address", _execnet_ssh_session_get_address (session),
                             "bootstrap-mode", EXECNET_BOOTSTRAP_STDIO,
                             NULL);
  connection->session = g_steal_pointer (&session);
  _execnet_ssh_session_set_owner (connection->session, EXECNET_CONNECTION (connection));
  g_task_return_pointer (task, connection, g_object_unref);
  return NULL;
}

static void
execnet_ssh_transport_open_async (ExecnetTransport    *transport,
                                  ExecnetXSpec        *xspec,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (transport, cancellable, callback, user_data);
  g_autoptr(GError) error = NULL;
  GThread *thread;

  g_task_set_source_tag (task, execnet_ssh_transport_open_async);
  g_task_set_task_data (task, execnet_xspec_ref (xspec), (GDestroyNotify) execnet_xspec_unref);

  thread = g_thread_try_new ("execnet-ssh-open", open_thread, g_object_ref (task), &error);
  if (thread == NULL)
    {
      g_object_unref (task);  /* the thread's reference */
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                               "ssh: cannot start a thread to connect: %s", error->message);
      return;
    }
  g_thread_unref (thread);
}

static ExecnetConnection *
execnet_ssh_transport_open_finish (ExecnetTransport  *transport,
                                   GAsyncResult      *result,
                                   GError           **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static const char * const *
execnet_ssh_transport_get_keys (ExecnetTransport *transport)
{
  static const char * const keys[] = {
    "ssh_config",
    "ssh_share",
    "ssh_spawner",
    NULL
  };

  return keys;
}

static GVariant *
execnet_ssh_transport_describe (ExecnetTransport  *transport,
                                ExecnetXSpec      *xspec,
                                GError           **error)
{
  return _execnet_ssh_describe (xspec, error);
}

static void
execnet_ssh_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->get_keys = execnet_ssh_transport_get_keys;
  iface->describe = execnet_ssh_transport_describe;
  iface->open_async = execnet_ssh_transport_open_async;
  iface->open_finish = execnet_ssh_transport_open_finish;
}

static void
execnet_ssh_transport_class_init (ExecnetSshTransportClass *klass)
{
}

static void
execnet_ssh_transport_class_finalize (ExecnetSshTransportClass *klass)
{
}

static void
execnet_ssh_transport_init (ExecnetSshTransport *self)
{
}

/* The module */

G_MODULE_EXPORT void   g_io_execnet_ssh_load   (GIOModule *module);
G_MODULE_EXPORT void   g_io_execnet_ssh_unload (GIOModule *module);
G_MODULE_EXPORT char **g_io_execnet_ssh_query  (void);

G_MODULE_EXPORT void
g_io_execnet_ssh_load (GIOModule *module)
{
  /* Pinned: libssh keeps global state (its crypto backend) that must not
   * go away while the process runs, and our types stay registered. */
  g_type_module_use (G_TYPE_MODULE (module));
  ssh_init ();

  execnet_transport_register_extension_point ();
  _execnet_ssh_stream_register (G_TYPE_MODULE (module));
  execnet_ssh_connection_register_type (G_TYPE_MODULE (module));
  execnet_ssh_transport_register_type (G_TYPE_MODULE (module));
  g_io_extension_point_implement (EXECNET_TRANSPORT_EXTENSION_POINT_NAME,
                                  EXECNET_TYPE_SSH_TRANSPORT, "ssh", 0);
}

G_MODULE_EXPORT void
g_io_execnet_ssh_unload (GIOModule *module)
{
}

G_MODULE_EXPORT char **
g_io_execnet_ssh_query (void)
{
  return g_strsplit (EXECNET_TRANSPORT_EXTENSION_POINT_NAME, "!", 0);
}
