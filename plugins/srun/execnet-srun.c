/* execnet-srun.c: gateways to Python as a Slurm task
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-launcher.h"

/* `srun[=PARTITION]//time=LIMIT//srun_args=WORDS`: `srun -u --ntasks=1
 * [--partition=P] [--time=T] WORDS --input=0 python3 ...`: one task per
 * gateway, so `4*srun` makes four gateways, each its own job (or, inside
 * an allocation, where srun finds SLURM_JOB_ID, its own job step).
 *
 * A job that waits in the queue longer than connect_timeout= fails the
 * gateway with a timeout; srun has said "job N queued and waiting for
 * resources" on stderr by then, and the job is cancelled (scancel N), so
 * that it does not start later for nobody.
 *
 * srun must be stopped with a signal it can act on: on SIGTERM it cancels
 * its job (or step), which ends the task wherever it runs; killed outright,
 * it leaves the job running on its node. So the connection stands in front
 * of the spawned one and turns a forced terminate into SIGTERM first, and
 * SIGKILL only if srun is still there after KILL_GRACE seconds. */

#define KILL_GRACE 10

#define EXECNET_TYPE_SRUN_CONNECTION (execnet_srun_connection_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSrunConnection, execnet_srun_connection, EXECNET, SRUN_CONNECTION, ExecnetConnection)

struct _ExecnetSrunConnection
{
  ExecnetConnection parent_instance;

  ExecnetConnection *launcher;   /* (owned) srun, as spawned */
  GMainContext *context;         /* (owned) the I/O thread's, for the kill timer */
  gboolean ended;                /* (atomic) srun was reaped */
};

G_DEFINE_FINAL_TYPE (ExecnetSrunConnection, execnet_srun_connection, EXECNET_TYPE_CONNECTION)

static gboolean
execnet_srun_connection_close_write (ExecnetConnection  *connection,
                                     GError            **error)
{
  return execnet_connection_close_write (EXECNET_SRUN_CONNECTION (connection)->launcher, error);
}

static gboolean
on_kill_grace_over (gpointer data)
{
  ExecnetSrunConnection *self = data;

  if (!g_atomic_int_get (&self->ended))
    execnet_connection_terminate (self->launcher, TRUE);
  return G_SOURCE_REMOVE;
}

/* Any thread. */
static void
execnet_srun_connection_terminate (ExecnetConnection *connection,
                                   gboolean           force)
{
  ExecnetSrunConnection *self = EXECNET_SRUN_CONNECTION (connection);
  g_autoptr(GSource) timer = NULL;

  execnet_connection_terminate (self->launcher, FALSE);
  if (!force)
    return;
  timer = g_timeout_source_new_seconds (KILL_GRACE);
  g_source_set_callback (timer, on_kill_grace_over, g_object_ref (self), g_object_unref);
  g_source_attach (timer, self->context);
}

static void
on_launcher_waited (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetSrunConnection *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!execnet_connection_wait_finish (self->launcher, result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  g_atomic_int_set (&self->ended, TRUE);
  execnet_connection_set_exit_status (EXECNET_CONNECTION (self),
                                      execnet_connection_get_exit_status (self->launcher));
  g_task_return_boolean (task, TRUE);
}

static void
execnet_srun_connection_wait_async (ExecnetConnection   *connection,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  ExecnetSrunConnection *self = EXECNET_SRUN_CONNECTION (connection);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, execnet_srun_connection_wait_async);
  execnet_connection_wait_async (self->launcher, cancellable, on_launcher_waited, task);
}

static gboolean
execnet_srun_connection_wait_finish (ExecnetConnection  *connection,
                                     GAsyncResult       *result,
                                     GError            **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_srun_connection_finalize (GObject *object)
{
  ExecnetSrunConnection *self = EXECNET_SRUN_CONNECTION (object);

  g_clear_object (&self->launcher);
  g_clear_pointer (&self->context, g_main_context_unref);
  G_OBJECT_CLASS (execnet_srun_connection_parent_class)->finalize (object);
}

static void
execnet_srun_connection_class_init (ExecnetSrunConnectionClass *klass)
{
  ExecnetConnectionClass *connection_class = EXECNET_CONNECTION_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = execnet_srun_connection_finalize;
  connection_class->close_write = execnet_srun_connection_close_write;
  connection_class->terminate = execnet_srun_connection_terminate;
  connection_class->wait_async = execnet_srun_connection_wait_async;
  connection_class->wait_finish = execnet_srun_connection_wait_finish;
}

static void
execnet_srun_connection_init (ExecnetSrunConnection *self)
{
}

/* The launcher's output: the spawned connection keeps it, not ours. */
static char *
dup_launcher_output (ExecnetConnection *connection)
{
  if (EXECNET_IS_SRUN_CONNECTION (connection))
    connection = EXECNET_SRUN_CONNECTION (connection)->launcher;
  return execnet_connection_dup_error_output (connection);
}

#define EXECNET_TYPE_SRUN_TRANSPORT (execnet_srun_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSrunTransport, execnet_srun_transport, EXECNET, SRUN_TRANSPORT, GObject)

struct _ExecnetSrunTransport
{
  GObject parent_instance;
};

static void execnet_srun_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExecnetSrunTransport, execnet_srun_transport, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXECNET_TYPE_TRANSPORT,
                                                      execnet_srun_transport_iface_init))

static char **
build_argv (ExecnetXSpec  *xspec,
            GError       **error)
{
  return _execnet_launcher_srun_argv (xspec, g_getenv ("SLURM_JOB_ID") != NULL, error);
}

static void
on_launcher_opened (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(ExecnetConnection) launcher = NULL;
  ExecnetSrunConnection *self;
  GError *error = NULL;

  launcher = g_task_propagate_pointer (G_TASK (result), &error);
  if (launcher == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  self = g_object_new (EXECNET_TYPE_SRUN_CONNECTION,
                       "stream", execnet_connection_get_stream (launcher),
                       "remote-address", execnet_connection_get_remote_address (launcher),
                       "bootstrap-mode", execnet_connection_get_bootstrap_mode (launcher),
                       NULL);
  self->launcher = g_steal_pointer (&launcher);
  self->context = g_main_context_ref_thread_default ();
  g_task_return_pointer (task, self, g_object_unref);
}

static void
execnet_srun_transport_open_async (ExecnetTransport    *transport,
                                   ExecnetXSpec        *xspec,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  GTask *task = g_task_new (transport, cancellable, callback, user_data);

  g_task_set_source_tag (task, execnet_srun_transport_open_async);
  _execnet_launcher_open_async (transport, xspec, "srun",
                                "install the Slurm client (srun) and its configuration",
                                build_argv, cancellable, on_launcher_opened, task);
}

static const char * const *
execnet_srun_transport_get_keys (ExecnetTransport *transport)
{
  static const char * const keys[] = { "time", "srun_args", NULL };

  return keys;
}

/* I/O thread: must not block, so scancel runs on its own; GSubprocess
 * reaps it. If it fails, srun's own end cancels a job that never started. */
static void
cancel_job (const char *job_id)
{
  g_autoptr(GSubprocess) scancel = NULL;

  scancel = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                              NULL, "scancel", job_id, NULL);
}

static GError *
execnet_srun_transport_explain_failure (ExecnetTransport  *transport,
                                        ExecnetXSpec      *xspec,
                                        ExecnetConnection *connection,
                                        const GError      *error)
{
  g_autofree char *output = dup_launcher_output (connection);
  g_autofree char *job_id = NULL;
  GError *explained;

  explained = _execnet_launcher_explain_srun (xspec, output,
                                              g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT),
                                              &job_id);
  if (job_id != NULL)
    cancel_job (job_id);
  /* The core's own message would quote our (empty) error output. */
  if (explained == NULL && output != NULL && *g_strstrip (output) != '\0')
    explained = g_error_new (error->domain, error->code, "%s; srun's error output ends with: %s",
                             error->message, output);
  return explained;
}

static void
execnet_srun_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->open_async = execnet_srun_transport_open_async;
  iface->get_keys = execnet_srun_transport_get_keys;
  iface->explain_failure = execnet_srun_transport_explain_failure;
}

static void
execnet_srun_transport_class_init (ExecnetSrunTransportClass *klass)
{
}

static void
execnet_srun_transport_init (ExecnetSrunTransport *self)
{
}

EXECNET_DEFINE_TRANSPORT_MODULE (srun, EXECNET_TYPE_SRUN_TRANSPORT)
