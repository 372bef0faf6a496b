/* execnet-popen.c: gateways to local Python subprocesses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>

#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <execnet/execnet.h>

/* The popen transport starts the interpreter named by `python=` (default
 * `python3`) as a child process and talks to it over its stdin and stdout;
 * its stderr is the caller's, so remote tracebacks and stray output stay
 * visible.
 *
 * The child must never outlive us: it exits on end-of-file on its stdin,
 * and in case it is stuck, it also gets SIGKILL when we die
 * (PR_SET_PDEATHSIG). The death signal fires when the *thread* that forked
 * the child ends, which is why the core calls open_async() in its I/O
 * thread, which lives as long as the process. */

#define EXECNET_TYPE_POPEN_CONNECTION (execnet_popen_connection_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetPopenConnection, execnet_popen_connection, EXECNET, POPEN_CONNECTION, ExecnetConnection)

struct _ExecnetPopenConnection
{
  ExecnetConnection parent_instance;

  GSubprocess *subprocess;   /* (owned) */
};

G_DEFINE_DYNAMIC_TYPE (ExecnetPopenConnection, execnet_popen_connection, EXECNET_TYPE_CONNECTION)

#define EXECNET_TYPE_POPEN_TRANSPORT (execnet_popen_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetPopenTransport, execnet_popen_transport, EXECNET, POPEN_TRANSPORT, GObject)

struct _ExecnetPopenTransport
{
  GObject parent_instance;
};

static void execnet_popen_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ExecnetPopenTransport, execnet_popen_transport, G_TYPE_OBJECT, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (EXECNET_TYPE_TRANSPORT,
                                                               execnet_popen_transport_iface_init))

static void
execnet_popen_connection_terminate (ExecnetConnection *connection,
                                    gboolean           force)
{
  ExecnetPopenConnection *self = EXECNET_POPEN_CONNECTION (connection);

  if (force)
    g_subprocess_force_exit (self->subprocess);
  else
    g_subprocess_send_signal (self->subprocess, SIGTERM);
}

static void
on_subprocess_waited (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetPopenConnection *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!g_subprocess_wait_finish (G_SUBPROCESS (source), result, &error))
    {
      g_task_return_error (task, error);
      return;
    }

  execnet_connection_set_exit_status (EXECNET_CONNECTION (self),
                                      g_subprocess_get_status (self->subprocess));
  g_task_return_boolean (task, TRUE);
}

static void
execnet_popen_connection_wait_async (ExecnetConnection   *connection,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  ExecnetPopenConnection *self = EXECNET_POPEN_CONNECTION (connection);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, execnet_popen_connection_wait_async);
  g_subprocess_wait_async (self->subprocess, cancellable, on_subprocess_waited, task);
}

static gboolean
execnet_popen_connection_wait_finish (ExecnetConnection  *connection,
                                      GAsyncResult       *result,
                                      GError            **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_popen_connection_finalize (GObject *object)
{
  ExecnetPopenConnection *self = EXECNET_POPEN_CONNECTION (object);

  g_clear_object (&self->subprocess);

  G_OBJECT_CLASS (execnet_popen_connection_parent_class)->finalize (object);
}

static void
execnet_popen_connection_class_init (ExecnetPopenConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExecnetConnectionClass *connection_class = EXECNET_CONNECTION_CLASS (klass);

  object_class->finalize = execnet_popen_connection_finalize;
  connection_class->terminate = execnet_popen_connection_terminate;
  connection_class->wait_async = execnet_popen_connection_wait_async;
  connection_class->wait_finish = execnet_popen_connection_wait_finish;
}

static void
execnet_popen_connection_class_finalize (ExecnetPopenConnectionClass *klass)
{
}

static void
execnet_popen_connection_init (ExecnetPopenConnection *self)
{
}

/* Larger pipes mean fewer wake-ups per megabyte on both sides. Not every
 * system allows 1 MiB (pipe-max-size); the default size works too. */
#define PIPE_SIZE (1 << 20)

static void
grow_pipes (GSubprocess *subprocess)
{
  fcntl (g_unix_output_stream_get_fd (G_UNIX_OUTPUT_STREAM (g_subprocess_get_stdin_pipe (subprocess))),
         F_SETPIPE_SZ, PIPE_SIZE);
  fcntl (g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (g_subprocess_get_stdout_pipe (subprocess))),
         F_SETPIPE_SZ, PIPE_SIZE);
}

/* Runs in the forked child, before exec. */
static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
execnet_popen_transport_open_async (ExecnetTransport    *transport,
                                    ExecnetXSpec        *xspec,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (transport, cancellable, callback, user_data);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *address = NULL;
  g_auto(GStrv) argv = NULL;
  GError *error = NULL;

  g_task_set_source_tag (task, execnet_popen_transport_open_async);
  /* Once a process is started, the connection is returned even if the
   * start was cancelled meanwhile: the gateway then kills and reaps it. */
  g_task_set_check_cancellable (task, FALSE);

  argv = execnet_transport_build_python_argv (xspec, &error);
  if (argv == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  execnet_transport_log_phase (xspec, "starting-python", "starting %s", argv[0]);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  subprocess = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv, &local_error);
  if (subprocess == NULL)
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                               "popen: cannot start the Python interpreter “%s”: %s; "
                               "name an installed Python 3 with python=",
                               argv[0], local_error->message);
      return;
    }

  grow_pipes (subprocess);
  stream = g_simple_io_stream_new (g_subprocess_get_stdout_pipe (subprocess),
                                   g_subprocess_get_stdin_pipe (subprocess));
  address = g_strdup_printf ("%s pid %s", argv[0], g_subprocess_get_identifier (subprocess));

  {
    ExecnetPopenConnection *connection;

    connection = g_object_new (EXECNET_TYPE_POPEN_CONNECTION,
                               "stream", stream,
                               "remote-address", address,
                               "bootstrap-mode", EXECNET_BOOTSTRAP_STDIO,
                               NULL);
    connection->subprocess = g_steal_pointer (&subprocess);
    g_task_return_pointer (task, connection, g_object_unref);
  }
}

static ExecnetConnection *
execnet_popen_transport_open_finish (ExecnetTransport  *transport,
                                     GAsyncResult      *result,
                                     GError           **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
execnet_popen_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->open_async = execnet_popen_transport_open_async;
  iface->open_finish = execnet_popen_transport_open_finish;
}

static void
execnet_popen_transport_class_init (ExecnetPopenTransportClass *klass)
{
}

static void
execnet_popen_transport_class_finalize (ExecnetPopenTransportClass *klass)
{
}

static void
execnet_popen_transport_init (ExecnetPopenTransport *self)
{
}

G_MODULE_EXPORT void   g_io_execnet_popen_load   (GIOModule *module);
G_MODULE_EXPORT void   g_io_execnet_popen_unload (GIOModule *module);
G_MODULE_EXPORT char **g_io_execnet_popen_query  (void);

G_MODULE_EXPORT void
g_io_execnet_popen_load (GIOModule *module)
{
  g_type_module_use (G_TYPE_MODULE (module));

  execnet_transport_register_extension_point ();
  execnet_popen_connection_register_type (G_TYPE_MODULE (module));
  execnet_popen_transport_register_type (G_TYPE_MODULE (module));
  g_io_extension_point_implement (EXECNET_TRANSPORT_EXTENSION_POINT_NAME,
                                  EXECNET_TYPE_POPEN_TRANSPORT, "popen", 0);
}

G_MODULE_EXPORT void
g_io_execnet_popen_unload (GIOModule *module)
{
}

G_MODULE_EXPORT char **
g_io_execnet_popen_query (void)
{
  return g_strsplit (EXECNET_TRANSPORT_EXTENSION_POINT_NAME, "!", 0);
}
