/* execnet-spawn.c: the launcher kit, execnet_transport_spawn()
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-transport.h>

#include "execnet-inbox-private.h"
#include "execnet-io-worker-private.h"

/* A spawned gateway is a small tree of processes in a process group of its
 * own, so that ending the group ends everything the remote started:
 *
 *   master (I/O thread)
 *     └─ guard: leads the group, runs no program
 *          └─ launcher argv... python3 -u -c ... (the remote interpreter)
 *               └─ whatever the launcher or the remote code starts
 *
 * The guard is a forked copy of the master that never returns to it. It
 * exists for the one case the master cannot handle itself, the master's
 * own sudden death: PR_SET_PDEATHSIG can signal one process, not a group,
 * and a signal sent to the interpreter would not reach its children. The
 * guard gets SIGUSR1 when the master dies and kills the whole group. When
 * the launcher ends, the guard kills whatever it left in the group (a
 * launcher that forks must not orphan its child, a remote's own
 * subprocesses must not outlive it), then exits with the launcher's status,
 * so that waiting for the guard is waiting for the launcher.
 *
 * The master's polite terminate sends SIGTERM to the whole group; the
 * guard ignores it (it ends with the launcher). A forced one asks the
 * guard (SIGUSR2) to kill the rest of the group with SIGKILL, so that the
 * guard still reaps the launcher before it exits.
 *
 * The death signal is tied to the thread that forked, not to the process:
 * the fork therefore always happens in the library's I/O thread, which
 * lives as long as the process, whichever thread calls spawn. */

/**
 * execnet_transport_write_stderr:
 * @data: (array length=length) (element-type guint8): bytes the remote
 *   interpreter or its launcher wrote on its stderr
 * @length: the number of bytes in @data
 *
 * Writes @data to this process's stderr, as a local child's stderr would
 * reach it: transports that read the remote's stderr themselves (ssh) pass
 * it on with this, as the launcher kit does. A failure to write (stderr a
 * closed pipe) is ignored and never raises `SIGPIPE`: the signal is
 * blocked in the calling thread around the write, and one it raised is
 * taken back. Callable from any thread.
 *
 * Since: 1.0
 */
void
execnet_transport_write_stderr (const char *data,
                                gsize       length)
{
  sigset_t pipe_only, saved;
  gboolean broken = FALSE;
  gsize done = 0;

  g_return_if_fail (data != NULL || length == 0);

  sigemptyset (&pipe_only);
  sigaddset (&pipe_only, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_only, &saved);

  while (done < length)
    {
      gssize n = write (STDERR_FILENO, data + done, length - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          broken = n < 0 && errno == EPIPE;
          break;
        }
      done += n;
    }

  if (broken && !sigismember (&saved, SIGPIPE))
    {
      const struct timespec now = { 0, 0 };

      while (sigtimedwait (&pipe_only, NULL, &now) < 0 && errno == EINTR)
        ;
    }
  pthread_sigmask (SIG_SETMASK, &saved, NULL);
}

/* The remote's stderr pipe. Every chunk read is passed on to our own
 * stderr, where a local child's would have gone, and kept for error
 * messages. Reading and keeping happen together under the lock, so that
 * once a drain returns, everything the remote wrote before it ended is in
 * the connection's error output. */
typedef struct
{
  gatomicrefcount ref_count;
  GMutex lock;                 /* guards reading fd */
  int fd;                      /* (owned) non-blocking */
  GWeakRef connection;         /* ExecnetConnection */
} StderrPipe;

static StderrPipe *
stderr_pipe_new (int                fd,
                 ExecnetConnection *connection)
{
  StderrPipe *self = g_new0 (StderrPipe, 1);

  g_atomic_ref_count_init (&self->ref_count);
  g_mutex_init (&self->lock);
  self->fd = fd;
  g_weak_ref_init (&self->connection, connection);

  return self;
}

static StderrPipe *
stderr_pipe_ref (StderrPipe *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

static void
stderr_pipe_unref (StderrPipe *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  close (self->fd);
  g_weak_ref_clear (&self->connection);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/* Any thread: reads what is there; FALSE at end of file. */
static gboolean
stderr_pipe_drain (StderrPipe *self)
{
  g_autoptr(ExecnetConnection) connection = g_weak_ref_get (&self->connection);
  gboolean open = TRUE;
  char buffer[4096];

  g_mutex_lock (&self->lock);
  for (;;)
    {
      gssize n = read (self->fd, buffer, sizeof buffer);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          open = n < 0 && errno == EAGAIN;
          break;
        }
      execnet_transport_write_stderr (buffer, n);
      if (connection != NULL)
        execnet_connection_append_error_output (connection, buffer, n);
    }
  g_mutex_unlock (&self->lock);

  return open;
}

/* I/O thread. */
static gboolean
on_stderr_readable (int          fd,
                    GIOCondition condition,
                    gpointer     user_data)
{
  return stderr_pipe_drain (user_data) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

#define EXECNET_TYPE_SPAWN_CONNECTION (execnet_spawn_connection_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSpawnConnection, execnet_spawn_connection, EXECNET, SPAWN_CONNECTION, ExecnetConnection)

struct _ExecnetSpawnConnection
{
  ExecnetConnection parent_instance;

  GSubprocess *subprocess;     /* (owned) the guard */
  pid_t group;                 /* the process group: the guard's pid */
  StderrPipe *stderr_pipe;     /* (owned) */
  GSource *stderr_source;      /* (owned) reads it in the I/O thread */
};

G_DEFINE_FINAL_TYPE (ExecnetSpawnConnection, execnet_spawn_connection, EXECNET_TYPE_CONNECTION)

static void
execnet_spawn_connection_terminate (ExecnetConnection *connection,
                                    gboolean           force)
{
  ExecnetSpawnConnection *self = EXECNET_SPAWN_CONNECTION (connection);

  /* Once the guard is reaped it has emptied the group, and the number may
   * name someone else's group one day: signal only a live guard's. */
  if (self->group <= 0 || g_subprocess_get_identifier (self->subprocess) == NULL)
    return;

  /* The guard kills the group for us, so that it can still reap the
   * launcher: once the guard's end is seen, the interpreter is gone, not
   * a zombie waiting for init. */
  if (force)
    kill (self->group, SIGUSR2);
  else
    killpg (self->group, SIGTERM);
}

static void
on_guard_waited (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetSpawnConnection *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!g_subprocess_wait_finish (G_SUBPROCESS (source), result, &error))
    {
      _execnet_task_return_error (task, error);
      return;
    }

  if (self->stderr_pipe != NULL)
    stderr_pipe_drain (self->stderr_pipe);

  execnet_connection_set_exit_status (EXECNET_CONNECTION (self),
                                      g_subprocess_get_status (self->subprocess));
  _execnet_task_return_boolean (task, TRUE);
}

static void
execnet_spawn_connection_wait_async (ExecnetConnection   *connection,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  ExecnetSpawnConnection *self = EXECNET_SPAWN_CONNECTION (connection);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, execnet_spawn_connection_wait_async);
  g_subprocess_wait_async (self->subprocess, cancellable, on_guard_waited, task);
}

static gboolean
execnet_spawn_connection_wait_finish (ExecnetConnection  *connection,
                                      GAsyncResult       *result,
                                      GError            **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_spawn_connection_finalize (GObject *object)
{
  ExecnetSpawnConnection *self = EXECNET_SPAWN_CONNECTION (object);

  if (self->stderr_source != NULL)
    g_source_destroy (self->stderr_source);
  g_clear_pointer (&self->stderr_source, g_source_unref);
  g_clear_pointer (&self->stderr_pipe, stderr_pipe_unref);
  g_clear_object (&self->subprocess);

  G_OBJECT_CLASS (execnet_spawn_connection_parent_class)->finalize (object);
}

static void
execnet_spawn_connection_class_init (ExecnetSpawnConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  ExecnetConnectionClass *connection_class = EXECNET_CONNECTION_CLASS (klass);

  object_class->finalize = execnet_spawn_connection_finalize;
  connection_class->terminate = execnet_spawn_connection_terminate;
  connection_class->wait_async = execnet_spawn_connection_wait_async;
  connection_class->wait_finish = execnet_spawn_connection_wait_finish;
}

static void
execnet_spawn_connection_init (ExecnetSpawnConnection *self)
{
}

/* Set in the guard, read by its signal handlers. */
static pid_t guard_group;
static pid_t guard_parent_group;

/* The guard: the master died. */
static void
on_master_died (int signum)
{
  kill (-guard_group, SIGKILL);
  _exit (128 + SIGKILL);
}

/* The guard: the master's forced terminate. Leave the group, kill it,
 * then go on to reap the launcher. */
static void
on_kill_requested (int signum)
{
  setpgid (0, guard_parent_group);
  kill (-guard_group, SIGKILL);
}

/* What the launcher execs, found by the master before it forks. */
typedef struct
{
  const char *path;            /* the program, found in PATH as GLib would */
  char * const *argv;
} LauncherExec;

/* Written by the launcher when it could not exec; it shares the guard's
 * memory until it execs or exits (vfork). */
static volatile int launcher_exec_errno;

/* Runs in the forked child before exec: it splits into the guard, which
 * never returns, and the launcher. The launcher is a vfork of the guard
 * that execs at once, so that the master's page tables are copied once per
 * start, not twice; if it cannot exec, the guard returns instead, and
 * GLib's exec fails the same way and reports why to the master.
 * Only async-signal-safe calls from here on. */
static void
spawn_child_setup (gpointer user_data)
{
  const LauncherExec *exec_args = user_data;
  pid_t master = getppid ();
  struct sigaction action;
  sigset_t unblock;
  pid_t launcher;
  int status;

  guard_parent_group = getpgrp ();
  setpgid (0, 0);
  guard_group = getpid ();

  launcher_exec_errno = 0;
  launcher = vfork ();
  if (launcher < 0)
    _exit (127);
  if (launcher == 0)
    {
      /* The launcher ends with the guard, however that ends. */
      prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (getppid () != guard_group)
        _exit (127);
      execvp (exec_args->path, exec_args->argv);
      launcher_exec_errno = errno != 0 ? errno : ENOEXEC;
      _exit (127);
    }
  if (launcher_exec_errno != 0)
    {
      while (waitpid (launcher, &status, 0) < 0 && errno == EINTR)
        ;
      return;
    }

  /* The guard holds no file descriptor: not the remote's pipes, whose end
   * of file must come when the remote ends, and not GLib's report pipe,
   * whose end tells the master that the launcher was exec'd. */
  for (int fd = 0; fd < 3; fd++)
    close (fd);
  close_range (3, ~0U, 0);

  memset (&action, 0, sizeof action);
  action.sa_handler = on_master_died;
  sigemptyset (&action.sa_mask);
  sigaction (SIGUSR1, &action, NULL);
  action.sa_handler = on_kill_requested;
  sigaction (SIGUSR2, &action, NULL);
  action.sa_handler = SIG_IGN;
  sigaction (SIGTERM, &action, NULL);
  sigaction (SIGINT, &action, NULL);
  sigaction (SIGHUP, &action, NULL);
  sigaction (SIGQUIT, &action, NULL);
  sigaction (SIGPIPE, &action, NULL);
  sigemptyset (&unblock);
  sigaddset (&unblock, SIGUSR1);
  sigaddset (&unblock, SIGUSR2);
  sigprocmask (SIG_UNBLOCK, &unblock, NULL);

  prctl (PR_SET_PDEATHSIG, SIGUSR1);
  if (getppid () != master)
    on_master_died (SIGUSR1);  /* it died before the line above */

  while (waitpid (launcher, &status, 0) < 0)
    if (errno != EINTR)
      _exit (127);

  /* Leave the group, then end what the launcher left in it. */
  setpgid (0, guard_parent_group);
  kill (-guard_group, SIGKILL);

  if (WIFEXITED (status))
    _exit (WEXITSTATUS (status));

  action.sa_handler = SIG_DFL;
  sigaction (WTERMSIG (status), &action, NULL);
  sigemptyset (&unblock);
  sigaddset (&unblock, WTERMSIG (status));
  sigprocmask (SIG_UNBLOCK, &unblock, NULL);
  kill (getpid (), WTERMSIG (status));
  _exit (128 + WTERMSIG (status));
}

/* Larger pipes mean fewer wake-ups per megabyte on both sides. Not every
 * system allows 1 MiB (pipe-max-size); the default size works too. */
#define PIPE_SIZE (1 << 20)

typedef struct
{
  ExecnetXSpec *xspec;                 /* (unowned) */
  const char * const *launcher_argv;   /* (unowned) */
  GCancellable *cancellable;           /* (unowned) (nullable) */

  GMutex lock;
  GCond cond;
  gboolean done;                       /* (lock lock) */
  ExecnetConnection *connection;       /* (lock lock) (owned) the result */
  GError *error;                       /* (lock lock) (owned) or this */
} SpawnCall;

/* Builds the whole command line: the launcher's words, then Python's. */
static char **
build_argv (ExecnetXSpec        *xspec,
            const char * const  *launcher_argv,
            GError             **error)
{
  g_auto(GStrv) python_argv = execnet_transport_build_python_argv (xspec, error);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  if (python_argv == NULL)
    return NULL;
  if (launcher_argv != NULL)
    g_strv_builder_addv (builder, (const char **) launcher_argv);
  g_strv_builder_addv (builder, (const char **) python_argv);

  return g_strv_builder_end (builder);
}

/* I/O thread: forks and makes the connection. */
static ExecnetConnection *
spawn_in_io_thread (ExecnetXSpec        *xspec,
                    const char * const  *launcher_argv,
                    GCancellable        *cancellable,
                    GError             **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autoptr(GIOStream) stream = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *address = NULL;
  g_auto(GStrv) argv = NULL;
  g_autofree char *path = NULL;
  LauncherExec exec_args;
  const char *identifier;
  ExecnetSpawnConnection *connection;
  GInputStream *output;
  GOutputStream *input;

  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return NULL;

  argv = build_argv (xspec, launcher_argv, error);
  if (argv == NULL)
    return NULL;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* GSubprocess searches the PATH of the environment it passes on, which
   * is ours: so does g_find_program_in_path(). */
  path = g_find_program_in_path (argv[0]);
  exec_args.path = path != NULL ? path : argv[0];
  exec_args.argv = argv;
  g_subprocess_launcher_set_child_setup (launcher, spawn_child_setup, &exec_args, NULL);
  subprocess = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv, &local_error);
  if (subprocess == NULL)
    {
      if (launcher_argv != NULL && launcher_argv[0] != NULL)
        g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                     "cannot run “%s”: %s; install it, or name the program by its full path",
                     argv[0], local_error->message);
      else
        g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                     "cannot start the Python interpreter “%s”: %s; "
                     "name an installed Python 3 with python=",
                     argv[0], local_error->message);
      return NULL;
    }

  input = g_subprocess_get_stdin_pipe (subprocess);
  output = g_subprocess_get_stdout_pipe (subprocess);
  fcntl (g_unix_output_stream_get_fd (G_UNIX_OUTPUT_STREAM (input)), F_SETPIPE_SZ, PIPE_SIZE);
  fcntl (g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (output)), F_SETPIPE_SZ, PIPE_SIZE);
  stream = g_simple_io_stream_new (output, input);
  /* A launcher that exits at once may be reaped already, its group gone. */
  identifier = g_subprocess_get_identifier (subprocess);
  address = g_strdup_printf ("%s pid %s", argv[0], identifier != NULL ? identifier : "(ended)");

  connection = g_object_new (EXECNET_TYPE_SPAWN_CONNECTION,
                             "stream", stream,
                             "remote-address", address,
                             "bootstrap-mode", EXECNET_BOOTSTRAP_STDIO,
                             NULL);
  connection->group = identifier != NULL ? atoi (identifier) : 0;
  connection->subprocess = g_steal_pointer (&subprocess);

  {
    int fd = fcntl (g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (g_subprocess_get_stderr_pipe (connection->subprocess))),
                    F_DUPFD_CLOEXEC, 3);

    if (fd >= 0)
      {
        g_unix_set_fd_nonblocking (fd, TRUE, NULL);
        connection->stderr_pipe = stderr_pipe_new (fd, EXECNET_CONNECTION (connection));
        connection->stderr_source = g_unix_fd_source_new (fd, G_IO_IN | G_IO_HUP | G_IO_ERR);
        g_source_set_static_name (connection->stderr_source, "[execnet] launcher stderr");
        g_source_set_callback (connection->stderr_source, G_SOURCE_FUNC (on_stderr_readable),
                               stderr_pipe_ref (connection->stderr_pipe),
                               (GDestroyNotify) stderr_pipe_unref);
        g_source_attach (connection->stderr_source, g_main_context_get_thread_default ());
      }
  }

  return EXECNET_CONNECTION (connection);
}

static gboolean
spawn_call_in_io_thread (gpointer data)
{
  SpawnCall *call = data;
  ExecnetConnection *connection;
  GError *error = NULL;

  connection = spawn_in_io_thread (call->xspec, call->launcher_argv, call->cancellable, &error);

  g_mutex_lock (&call->lock);
  call->connection = connection;
  call->error = error;
  call->done = TRUE;
  g_cond_signal (&call->cond);
  g_mutex_unlock (&call->lock);

  return G_SOURCE_REMOVE;
}

/**
 * execnet_transport_spawn:
 * @xspec: the spec of the gateway
 * @launcher_argv: (array zero-terminated=1) (nullable): the program that
 *   starts the interpreter and its arguments, such as `sudo -n -u alice`,
 *   or %NULL (or an empty array) to start the interpreter directly
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError
 *
 * Starts a Python interpreter for @xspec through a launcher: runs
 * @launcher_argv followed by the command line of
 * [func@Execnet.Transport.build_python_argv], and returns a connection over
 * its standard input and output. This is the whole of most transports that
 * reach a Python through another program (`sudo`, `docker exec -i`,
 * `kubectl exec -i`, `srun`): see
 * [Transports, and how to write one](transports.html).
 *
 * The launcher runs in a process group of its own, and the connection's
 * terminate signals the whole group, so that a launcher that forks, and any
 * process the remote code starts, end with the gateway. Whatever is left in
 * the group when the launcher exits is killed. If this process dies, the
 * group is killed too.
 *
 * What the launcher and the interpreter write to stderr is passed on to
 * this process's stderr, and its tail is kept
 * ([method@Execnet.Connection.dup_error_output]) so that a failed bootstrap
 * quotes it: "sudo: a password is required".
 *
 * Call it from a transport's `open_async`; it may be called from any
 * thread, and does its work in the library's I/O thread (see the
 * description of `PR_SET_PDEATHSIG` in [the transports page](transports.html)).
 * It does not wait for the interpreter to start: a launcher that fails
 * shows as a failed bootstrap, with its stderr quoted.
 *
 * Returns: (transfer full): the connection, or %NULL with
 *   %EXECNET_ERROR_BOOTSTRAP if the launcher (or, without one, the
 *   interpreter) cannot be executed, or %EXECNET_ERROR_INVALID_SPEC if the
 *   spec's `python=` cannot be split into words
 *
 * Since: 1.0
 */
ExecnetConnection *
execnet_transport_spawn (ExecnetXSpec        *xspec,
                         const char * const  *launcher_argv,
                         GCancellable        *cancellable,
                         GError             **error)
{
  SpawnCall call = { xspec, launcher_argv, cancellable, };

  g_return_val_if_fail (xspec != NULL, NULL);
  g_return_val_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (_execnet_io_worker_is_current ())
    return spawn_in_io_thread (xspec, launcher_argv, cancellable, error);

  g_mutex_init (&call.lock);
  g_cond_init (&call.cond);
  _execnet_io_worker_invoke (spawn_call_in_io_thread, &call, NULL);
  g_mutex_lock (&call.lock);
  while (!call.done)
    g_cond_wait (&call.cond, &call.lock);
  g_mutex_unlock (&call.lock);
  g_mutex_clear (&call.lock);
  g_cond_clear (&call.cond);

  if (call.error != NULL)
    g_propagate_error (error, call.error);

  return call.connection;
}
