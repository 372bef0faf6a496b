/* test-socket.c: the socket transport against a real `execnet-tool socketserver`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <glib/gstdio.h>
#include <gio/gio.h>
#include <execnet/execnet.h>

#include "test-helpers.h"

/* Every test starts the server from the build tree (the EXECNET_TOOL
 * environment variable names it) on 127.0.0.1, port 0, reads the port from
 * the first line it prints, and stops it with SIGTERM at the end, checking
 * that it exits with status 0.
 *
 * The server logs one line per event on stderr; a thread collects them so
 * that a test can wait for the line that says the server made its decision
 * (for example "refused it") instead of sleeping. Which processes the
 * server started is read from /proc: its children. */

/* The interpreter for the servers and for Python execnet as a master:
 * the system's, where the distribution's python3-execnet is installed,
 * unless EXECNET_TEST_PYTHON names another. */
static const char *
python_path (void)
{
  const char *path = g_getenv ("EXECNET_TEST_PYTHON");

  return path != NULL && *path != '\0' ? path : "/usr/bin/python3";
}

#define PYTHON python_path ()

/* Generous bounds for things that normally take milliseconds. */
#define DEADLINE_SECONDS 30

typedef struct
{
  GSubprocess *process;     /* (owned) */
  GPid pid;
  guint16 port;
  char *address;            /* (owned) 127.0.0.1:PORT */

  GThread *log_thread;      /* (owned) */
  GMutex lock;
  GCond cond;
  GString *log;             /* (lock lock) (owned) everything it wrote on stderr */
  gboolean log_closed;      /* (lock lock) */
} Server;

typedef struct
{
  char *dir;                /* (owned) a private temporary directory */
  char *token_path;         /* (owned) mode 600, the servers' token */
  char *wrong_token_path;   /* (owned) another token */
  Server *server;           /* (owned) (nullable) */
} Fixture;

static const char *
tool_path (void)
{
  const char *path = g_getenv ("EXECNET_TOOL");

  if (path == NULL)
    g_error ("set EXECNET_TOOL to the path of the built execnet-tool");
  return path;
}

static gpointer
log_thread_main (gpointer data)
{
  Server *server = data;
  GInputStream *stderr_pipe = g_subprocess_get_stderr_pipe (server->process);
  char buffer[4096];

  for (;;)
    {
      gssize n = g_input_stream_read (stderr_pipe, buffer, sizeof buffer, NULL, NULL);

      g_mutex_lock (&server->lock);
      if (n <= 0)
        {
          server->log_closed = TRUE;
          g_cond_broadcast (&server->cond);
          g_mutex_unlock (&server->lock);
          break;
        }
      g_string_append_len (server->log, buffer, n);
      g_cond_broadcast (&server->cond);
      g_mutex_unlock (&server->lock);
    }

  return NULL;
}

static guint
count_occurrences (const char *haystack,
                   const char *needle)
{
  guint count = 0;

  for (const char *p = strstr (haystack, needle); p != NULL; p = strstr (p + 1, needle))
    count++;
  return count;
}

/* Waits until the server's log holds @needle at least @times times. */
static void
server_wait_for_log (Server     *server,
                     const char *needle,
                     guint       times)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_TIME_SPAN_SECOND;
  gboolean found;

  g_mutex_lock (&server->lock);
  while (!(found = count_occurrences (server->log->str, needle) >= times) &&
         !server->log_closed)
    if (!g_cond_wait_until (&server->cond, &server->lock, deadline))
      break;
  if (!found)
    g_error ("the server's log did not show “%s” %u time(s); it is:\n%s",
             needle, times, server->log->str);
  g_mutex_unlock (&server->lock);
}

static guint
server_count_log (Server     *server,
                  const char *needle)
{
  guint count;

  g_mutex_lock (&server->lock);
  count = count_occurrences (server->log->str, needle);
  g_mutex_unlock (&server->lock);

  return count;
}

/* The processes whose parent is @pid, from /proc/PID/stat. */
static GArray *
list_children (GPid pid)
{
  GArray *children = g_array_new (FALSE, FALSE, sizeof (GPid));
  g_autoptr(GDir) proc = g_dir_open ("/proc", 0, NULL);
  const char *name;

  g_assert_nonnull (proc);
  while ((name = g_dir_read_name (proc)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *stat = NULL;
      const char *after_comm;
      char state;
      int ppid;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_build_filename ("/proc", name, "stat", NULL);
      if (!g_file_get_contents (path, &stat, NULL, NULL))
        continue;  /* it ended meanwhile */
      /* "PID (COMM) STATE PPID ...", where COMM may hold anything. */
      after_comm = strrchr (stat, ')');
      if (after_comm == NULL || sscanf (after_comm + 1, " %c %d", &state, &ppid) != 2)
        continue;
      if (ppid == pid)
        {
          GPid child = atoi (name);

          g_array_append_val (children, child);
        }
    }

  return children;
}

static guint
count_children (GPid pid)
{
  g_autoptr(GArray) children = list_children (pid);

  return children->len;
}

/* Polls until @pid has no children left (they end asynchronously, after
 * their connection closed); fails after a generous deadline. */
static void
wait_no_children (GPid pid)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_TIME_SPAN_SECOND;
  guint left;

  while ((left = count_children (pid)) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (left, ==, 0);
}

static gboolean
process_exists (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d", pid);

  return g_file_test (path, G_FILE_TEST_EXISTS);
}

/* In the server's process before it runs: it stops (ending its
 * interpreters) when the test dies, even of a failed assertion, and,
 * unless @data is 0, may open that many files at most. */
static void
server_child_setup (gpointer data)
{
  struct rlimit limit = { GPOINTER_TO_UINT (data), GPOINTER_TO_UINT (data) };

  prctl (PR_SET_PDEATHSIG, SIGTERM);
  if (limit.rlim_cur > 0)
    setrlimit (RLIMIT_NOFILE, &limit);
}

/* Starts the server with @options and, unless it is 0, a limit of @fd_limit
 * open files. */
static Server *
server_start_limited (const char * const *options,
                      guint               fd_limit)
{
  Server *server = g_new0 (Server, 1);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  const char *port_text;
  guint64 port;

  g_ptr_array_add (argv, (char *) tool_path ());
  g_ptr_array_add (argv, (char *) "socketserver");
  g_ptr_array_add (argv, (char *) "--listen");
  g_ptr_array_add (argv, (char *) "127.0.0.1:0");
  g_ptr_array_add (argv, (char *) "--python");
  g_ptr_array_add (argv, (char *) PYTHON);
  for (guint i = 0; options[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) options[i]);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, server_child_setup, GUINT_TO_POINTER (fd_limit), NULL);
  server->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  server->pid = atoi (g_subprocess_get_identifier (server->process));
  g_mutex_init (&server->lock);
  g_cond_init (&server->cond);
  server->log = g_string_new (NULL);
  server->log_thread = g_thread_new ("server-log", log_thread_main, server);

  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server->process));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  if (line == NULL || !g_str_has_prefix (line, "listening on 127.0.0.1:"))
    {
      g_subprocess_wait (server->process, NULL, NULL);
      g_thread_join (g_steal_pointer (&server->log_thread));
      g_error ("the server did not start: it printed “%s”; its log:\n%s",
               line != NULL ? line : "", server->log->str);
    }

  port_text = strrchr (line, ':') + 1;
  g_assert_true (g_ascii_string_to_unsigned (port_text, 10, 1, 65535, &port, NULL));
  server->port = port;
  server->address = g_strdup_printf ("127.0.0.1:%u", server->port);

  return server;
}

static Server *
server_start (const char * const *options)
{
  return server_start_limited (options, 0);
}

/* Stops the server with SIGTERM and checks that it exited with status 0
 * and left no child. */
static void
server_stop (Server *server)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_send_signal (server->process, SIGTERM);
  g_subprocess_wait (server->process, NULL, &error);
  g_assert_no_error (error);
  g_thread_join (g_steal_pointer (&server->log_thread));

  if (g_test_verbose ())
    g_test_message ("server log:\n%s", server->log->str);
  g_assert_true (g_subprocess_get_if_exited (server->process));
  g_assert_cmpint (g_subprocess_get_exit_status (server->process), ==, 0);
  g_assert_cmpuint (count_children (server->pid), ==, 0);
  g_assert_nonnull (strstr (server->log->str, "stopped"));

  g_object_unref (server->process);
  g_string_free (server->log, TRUE);
  g_mutex_clear (&server->lock);
  g_cond_clear (&server->cond);
  g_free (server->address);
  g_free (server);
}

static char *
write_token (const char *dir,
             const char *name,
             const char *token)
{
  char *path = g_build_filename (dir, name, NULL);
  g_autoptr(GError) error = NULL;

  g_file_set_contents_full (path, token, -1, G_FILE_SET_CONTENTS_NONE, 0600, &error);
  g_assert_no_error (error);
  return path;
}

static void
fixture_set_up (Fixture       *fixture,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;

  fixture->dir = g_dir_make_tmp ("test-socket-XXXXXX", &error);
  g_assert_no_error (error);
  /* A trailing newline, as an editor would leave it, is not part of it. */
  fixture->token_path = write_token (fixture->dir, "token", "correct horse battery staple 4711\n");
  fixture->wrong_token_path = write_token (fixture->dir, "wrong-token", "correct horse battery staple 4712\n");
}

static void
fixture_tear_down (Fixture       *fixture,
                   gconstpointer  user_data)
{
  if (fixture->server != NULL)
    server_stop (fixture->server);
  g_unlink (fixture->token_path);
  g_unlink (fixture->wrong_token_path);
  g_rmdir (fixture->dir);
  g_free (fixture->token_path);
  g_free (fixture->wrong_token_path);
  g_free (fixture->dir);
}

static void
start_token_server (Fixture *fixture)
{
  const char *options[] = { "--token-file", fixture->token_path, NULL };

  fixture->server = server_start (options);
}

static void
start_insecure_server (Fixture *fixture)
{
  const char *options[] = { "--insecure", NULL };

  fixture->server = server_start (options);
}

static char *
token_spec (Fixture    *fixture,
            const char *token_path)
{
  return g_strdup_printf ("socket=%s//token_file=%s", fixture->server->address, token_path);
}

/* Sends each value to an echoing remote and checks that it comes back
 * equal. */
static void
assert_round_trips (ExecnetGateway *gateway)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  GVariant *values[] = {
    g_variant_new_int64 (42),
    g_variant_new_int64 (-(G_GINT64_CONSTANT (1) << 40)),
    g_variant_new_string ("grüße über den Socket"),
    g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "\0\1\2\377", 4, 1),
    g_variant_new_double (2.5),
    g_variant_new_boolean (TRUE),
    g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL),
    g_variant_new_parsed ("(int64 1, 'two')"),
    g_variant_new_parsed ("[<int64 1>, <'x'>]"),
    g_variant_new_parsed ("{'a': <int64 1>, 'b': <'c'>}"),
  };

  channel = execnet_gateway_remote_exec (gateway,
                                         "n = channel.receive()\n"
                                         "for i in range(n):\n"
                                         "    channel.send(channel.receive())\n",
                                         &error);
  g_assert_no_error (error);

  execnet_channel_send (channel, g_variant_new_int64 (G_N_ELEMENTS (values)), &error);
  g_assert_no_error (error);
  for (gsize i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GVariant) sent = g_variant_ref_sink (values[i]);
      g_autoptr(GVariant) received = NULL;

      execnet_channel_send (channel, sent, &error);
      g_assert_no_error (error);
      received = execnet_channel_receive (channel, DEADLINE_SECONDS, &error);
      g_assert_no_error (error);
      if (!g_variant_equal (sent, received))
        {
          g_autofree char *a = g_variant_print (sent, TRUE);
          g_autofree char *b = g_variant_print (received, TRUE);

          g_error ("sent %s, got back %s", a, b);
        }
    }

  execnet_channel_wait_close (channel, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
}

/* The pid of the gateway's remote interpreter. */
static GPid
remote_pid (ExecnetGateway *gateway)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = execnet_gateway_remote_info (gateway, &error);
  gint64 pid;

  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (info, "pid", "x", &pid));
  return (GPid) pid;
}

static void
test_token_round_trip (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(GArray) children = NULL;
  ExecnetGateway *gateway;
  GPid pid;

  start_token_server (fixture);
  spec = token_spec (fixture, fixture->token_path);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  g_assert_cmpstr (execnet_gateway_get_remote_address (gateway), ==, fixture->server->address);

  assert_round_trips (gateway);
  /* What the served interpreter writes comes back as over popen. */
  test_assert_remote_output (gateway);

  /* The interpreter is the server's child, the only one. */
  pid = remote_pid (gateway);
  children = list_children (fixture->server->pid);
  g_assert_cmpuint (children->len, ==, 1);
  g_assert_cmpint (g_array_index (children, GPid, 0), ==, pid);

  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
  wait_no_children (fixture->server->pid);
  server_wait_for_log (fixture->server, "its Python exited with status 0", 1);
}

static void
test_killed_mid_frame (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  ExecnetGateway *gateway;

  start_token_server (fixture);
  spec = token_spec (fixture, fixture->token_path);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);

  test_assert_killed_mid_frame (gateway);

  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
  wait_no_children (fixture->server->pid);
}

/* Asserts that process @pid is dead within DEADLINE_SECONDS: gone, or a
 * zombie left to whoever adopted it. Polls: it is not our child. */
static void
assert_dead (GPid pid)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_SECONDS * G_TIME_SPAN_SECOND;
  char state;

  while ((state = test_process_state (pid)) != 0 && state != 'Z' &&
         g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_true (state == 0 || state == 'Z');
}

/* Runs @source on @gateway, which sends one pid back first; returns it,
 * checked to be alive. */
static GPid
remote_exec_for_pid (ExecnetGateway *gateway,
                     const char     *source)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GError) error = NULL;
  GPid pid;

  channel = execnet_gateway_remote_exec (gateway, source, &error);
  g_assert_no_error (error);
  item = execnet_channel_receive (channel, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
  pid = (GPid) g_variant_get_int64 (item);
  g_assert_true (process_exists (pid));
  return pid;
}

/* What the remote code started and left running ends with its
 * interpreter: the server kills the interpreter's process group. */
static void
test_terminate_ends_grandchild (Fixture       *fixture,
                                gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  ExecnetGateway *gateway;
  GPid grandchild;

  start_token_server (fixture);
  spec = token_spec (fixture, fixture->token_path);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);

  grandchild = remote_exec_for_pid (gateway,
                                    "import subprocess\n"
                                    "channel.send(subprocess.Popen(['sleep', '600']).pid)\n");

  g_assert_true (execnet_group_terminate (group, DEADLINE_SECONDS, &error));
  g_assert_no_error (error);
  /* Confirmed: nothing is left that holds the connection. */
  assert_dead (grandchild);
  server_wait_for_log (fixture->server, "killed what its Python left running", 1);
}

/* A remote that started a grandchild and then holds the GIL in C ignores
 * the request to exit; terminate() asks the server to kill it, and
 * returns TRUE only once the server confirmed that the interpreter's
 * whole process group has ended. */
static void
test_terminate_stuck_with_grandchild (Fixture       *fixture,
                                      gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  ExecnetGateway *gateway;
  GPid interpreter, grandchild;

  start_token_server (fixture);
  spec = token_spec (fixture, fixture->token_path);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  interpreter = remote_pid (gateway);

  /* PyDLL calls keep the GIL: no Python code runs in that process again. */
  grandchild = remote_exec_for_pid (gateway,
                                    "import ctypes, subprocess\n"
                                    "channel.send(subprocess.Popen(['sleep', '600']).pid)\n"
                                    "ctypes.PyDLL(None).sleep(600)\n");

  g_assert_true (execnet_group_terminate (group, 1.0, &error));
  g_assert_no_error (error);
  server_wait_for_log (fixture->server, "its client asked to end it", 1);
  assert_dead (interpreter);
  assert_dead (grandchild);
  wait_no_children (fixture->server->pid);
}

static void
on_terminated (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
  g_main_context_wakeup (NULL);
}

/* Something that left the interpreter's process group keeps the
 * connection open: the server cannot end it, so nothing confirms the end,
 * and terminate() (or terminate_async(), as @user_data says) says so, in
 * bounded time, naming where. */
static void
test_terminate_unconfirmed (Fixture       *fixture,
                            gconstpointer  user_data)
{
  gboolean use_async = GPOINTER_TO_INT (user_data);
  gboolean terminated;
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *address = NULL;
  ExecnetGateway *gateway;
  GPid escaped;
  gint64 start;

  start_token_server (fixture);
  spec = token_spec (fixture, fixture->token_path);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  address = g_strdup (execnet_gateway_get_remote_address (gateway));

  escaped = remote_exec_for_pid (gateway,
                                 "import os, stat, subprocess\n"
                                 "fds = []\n"
                                 "for fd in map(int, os.listdir('/proc/self/fd')):\n"
                                 "    try:\n"
                                 "        if stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
                                 "            fds.append(fd)\n"
                                 "    except OSError:\n"
                                 "        pass\n"
                                 "child = subprocess.Popen(['sleep', '600'], pass_fds=fds,\n"
                                 "                         start_new_session=True)\n"
                                 "channel.send(child.pid)\n");

  start = g_get_monotonic_time ();
  if (use_async)
    {
      g_autoptr(GAsyncResult) result = NULL;

      execnet_group_terminate_async (group, 1.0, NULL, on_terminated, &result);
      while (result == NULL)
        g_main_context_iteration (NULL, TRUE);
      terminated = execnet_group_terminate_finish (group, result, &error);
    }
  else
    terminated = execnet_group_terminate (group, 1.0, &error);
  g_assert_false (terminated);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
  g_assert_nonnull (strstr (error->message, "nothing confirmed its end"));
  g_assert_nonnull (strstr (error->message, address));
  /* The timeout, then 5 seconds for the confirmation; generous margin. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, DEADLINE_SECONDS * G_TIME_SPAN_SECOND);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);

  /* It was right: the escaped process lives. */
  g_assert_true (process_exists (escaped));
  g_assert_cmpint (kill (escaped, SIGKILL), ==, 0);
  assert_dead (escaped);
  wait_no_children (fixture->server->pid);
}

#define N_CONCURRENT 16

static void
test_token_concurrent (Fixture       *fixture,
                       gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) specs = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GHashTable) pids = g_hash_table_new (NULL, NULL);

  start_token_server (fixture);
  for (guint i = 0; i < N_CONCURRENT; i++)
    g_ptr_array_add (specs, token_spec (fixture, fixture->token_path));
  g_ptr_array_add (specs, NULL);

  group = execnet_group_new_with_specs ((const char * const *) specs->pdata, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (execnet_group_get_size (group), ==, N_CONCURRENT);

  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      ExecnetGateway *gateway = execnet_group_get_gateway (group, i);
      g_autoptr(ExecnetChannel) channel = NULL;
      g_autoptr(GVariant) item = NULL;

      channel = execnet_gateway_remote_exec (gateway, "channel.send(channel.receive() * 2)", &error);
      g_assert_no_error (error);
      execnet_channel_send (channel, g_variant_new_int64 (i), &error);
      g_assert_no_error (error);
      item = execnet_channel_receive (channel, DEADLINE_SECONDS, &error);
      g_assert_no_error (error);
      g_assert_cmpint (g_variant_get_int64 (item), ==, 2 * i);

      g_hash_table_add (pids, GINT_TO_POINTER (remote_pid (gateway)));
    }
  /* Sixteen distinct interpreters, all the server's children. */
  g_assert_cmpuint (g_hash_table_size (pids), ==, N_CONCURRENT);
  g_assert_cmpuint (count_children (fixture->server->pid), ==, N_CONCURRENT);
  server_wait_for_log (fixture->server, "authenticated; started Python", N_CONCURRENT);

  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
  wait_no_children (fixture->server->pid);
}

static void
test_wrong_token (Fixture       *fixture,
                  gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;

  start_token_server (fixture);
  spec = token_spec (fixture, fixture->wrong_token_path);
  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION);
  g_assert_nonnull (strstr (error->message, fixture->server->address));
  g_assert_nonnull (strstr (error->message, "rejected the token"));

  server_wait_for_log (fixture->server, "wrong token; refused it", 1);
  g_assert_cmpuint (count_children (fixture->server->pid), ==, 0);
  g_assert_cmpuint (server_count_log (fixture->server, "started Python"), ==, 0);
}

/* A master without a token writes its bootstrap line at once and reads the
 * challenge where it expects the bootstrap's answer. The server refuses
 * the bootstrap line as an answer, so no process starts; the socket
 * transport recognises the challenge (a first line starting
 * "execnet-auth-") in the answer the core quotes, and says that the spec
 * needs token_file=. */
static void
test_no_token (Fixture       *fixture,
               gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;

  start_token_server (fixture);
  spec = g_strdup_printf ("socket=%s", fixture->server->address);
  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION);
  g_assert_nonnull (strstr (error->message, "token_file="));
  g_assert_nonnull (strstr (error->message, fixture->server->address));

  server_wait_for_log (fixture->server, "refused it, no process started", 1);
  g_assert_cmpuint (count_children (fixture->server->pid), ==, 0);
  g_assert_cmpuint (server_count_log (fixture->server, "started Python"), ==, 0);
}

/* A client with a token does not talk to a server that cannot prove it
 * holds the token, such as one running with --insecure. */
static void
test_token_against_insecure (Fixture       *fixture,
                             gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;

  start_insecure_server (fixture);
  spec = g_strdup_printf ("socket=%s//token_file=%s//connect_timeout=1",
                          fixture->server->address, fixture->token_path);
  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION);
  g_assert_nonnull (strstr (error->message, "did not ask for a token"));

  /* The interpreter the server started for us ends with our connection. */
  server_wait_for_log (fixture->server, "disconnected without sending anything", 1);
  wait_no_children (fixture->server->pid);
}

static gboolean
have_python_execnet (void)
{
  g_autoptr(GSubprocess) python = NULL;
  g_autoptr(GError) error = NULL;

  python = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                             &error, PYTHON, "-c", "import execnet", NULL);
  if (python == NULL)
    return FALSE;
  g_subprocess_wait (python, NULL, &error);
  g_assert_no_error (error);
  return g_subprocess_get_successful (python);
}

static void
test_python_master (Fixture       *fixture,
                    gconstpointer  user_data)
{
  g_autoptr(GSubprocess) python = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *code = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;

  if (!have_python_execnet ())
    {
      g_autofree char *why = g_strdup_printf ("Python execnet is not installed for %s", PYTHON);

      g_test_skip (why);
      return;
    }

  start_insecure_server (fixture);
  code = g_strdup_printf ("import execnet\n"
                          "gw = execnet.makegateway('socket=%s')\n"
                          "ch = gw.remote_exec('channel.send(41 + 1)')\n"
                          "print(ch.receive())\n"
                          "gw.exit()\n",
                          fixture->server->address);
  python = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                             &error, PYTHON, "-c", code, NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (python, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (python))
    g_error ("Python execnet failed against our server: %s", err);
  g_assert_cmpstr (out, ==, "42\n");

  wait_no_children (fixture->server->pid);
  server_wait_for_log (fixture->server, "its Python exited with status 0", 1);
}

/* Our transport against Python execnet's own socket server (which serves
 * one connection at a time, in its own process), without a token. */
static void
test_execnet_server (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GSubprocess) python = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *spec = NULL;
  const char *close_paren;
  const char *port;
  ExecnetGateway *gateway;

  if (!have_python_execnet ())
    {
      g_autofree char *why = g_strdup_printf ("Python execnet is not installed for %s", PYTHON);

      g_test_skip (why);
      return;
    }

  /* It prints the address it is bound to, port included, when it waits
   * for a connection. */
  python = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                             PYTHON, "-u", "-m", "execnet.script.socketserver", "127.0.0.1:0", NULL);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (python));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  close_paren = strrchr (line, ')');
  g_assert_nonnull (close_paren);
  port = close_paren;
  while (port > line && g_ascii_isdigit (port[-1]))
    port--;
  spec = g_strdup_printf ("socket=127.0.0.1:%.*s", (int) (close_paren - port), port);

  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  assert_round_trips (gateway);
  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);

  g_subprocess_force_exit (python);
  g_subprocess_wait (python, NULL, &error);
  g_assert_no_error (error);
}

/* Raw clients that misbehave. */
typedef enum {
  BAD_GARBAGE,      /* a line that is not what the server expects */
  BAD_HALF_LINE,    /* part of a line, then it disconnects */
  BAD_ENDLESS,      /* a line that never ends */
  BAD_SILENT,       /* connects and says nothing while the good client works */
  N_BAD
} Bad;

static GSocketConnection *
raw_connect (Server *server)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GError) error = NULL;
  GSocketConnection *connection;

  connection = g_socket_client_connect_to_host (client, server->address, 0, NULL, &error);
  g_assert_no_error (error);
  return connection;
}

/* Writes until the server gives up on us (or a cap far above its limits
 * is reached, which fails the test). */
static gpointer
endless_line_main (gpointer data)
{
  GSocketConnection *connection = data;
  GOutputStream *output = g_io_stream_get_output_stream (G_IO_STREAM (connection));
  g_autofree char *chunk = g_malloc (1 << 16);
  gsize written = 0;
  gboolean cut_off = FALSE;

  memset (chunk, 'x', 1 << 16);
  while (written < 128 * 1024 * 1024)
    {
      gssize n = g_output_stream_write (output, chunk, 1 << 16, NULL, NULL);

      if (n < 0)
        {
          cut_off = TRUE;
          break;
        }
      written += n;
    }

  return GINT_TO_POINTER (cut_off);
}

static void
test_misbehaving_clients (Fixture       *fixture,
                          gconstpointer  user_data)
{
  gboolean with_token = GPOINTER_TO_INT (user_data);
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  GSocketConnection *bad[N_BAD];
  GThread *endless;
  ExecnetGateway *gateway;

  if (with_token)
    start_token_server (fixture);
  else
    start_insecure_server (fixture);
  spec = with_token ? token_spec (fixture, fixture->token_path)
                    : g_strdup_printf ("socket=%s", fixture->server->address);

  for (guint i = 0; i < N_BAD; i++)
    bad[i] = raw_connect (fixture->server);

  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (bad[BAD_GARBAGE])),
                             "\x01\x02 garbage ( \xff\n", 15, NULL, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (bad[BAD_HALF_LINE])),
                             "'import os", 10, NULL, NULL, &error);
  g_assert_no_error (error);
  endless = g_thread_new ("endless-line", endless_line_main, bad[BAD_ENDLESS]);

  /* A good client does its work meanwhile. */
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  assert_round_trips (gateway);

  g_io_stream_close (G_IO_STREAM (bad[BAD_HALF_LINE]), NULL, NULL);
  g_assert_true (GPOINTER_TO_INT (g_thread_join (endless)));
  assert_round_trips (gateway);

  for (guint i = 0; i < N_BAD; i++)
    {
      g_io_stream_close (G_IO_STREAM (bad[i]), NULL, NULL);
      g_object_unref (bad[i]);
    }

  assert_round_trips (gateway);
  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
  wait_no_children (fixture->server->pid);

  if (with_token)
    {
      /* Not one of them got a process. */
      server_wait_for_log (fixture->server, "no process started", N_BAD);
      g_assert_cmpuint (server_count_log (fixture->server, "started Python"), ==, 1);
    }
  else
    {
      server_wait_for_log (fixture->server, "its first line is not a Python string literal", 1);
      server_wait_for_log (fixture->server, "disconnected in the middle of its first line", 1);
      server_wait_for_log (fixture->server, "longer than 64 MiB", 1);
      server_wait_for_log (fixture->server, "disconnected without sending anything", 1);
    }
}

/* The server is at its --max-connections limit: a further client is
 * turned away at once, the others carry on. */
static void
test_max_connections (Fixture       *fixture,
                      gconstpointer  user_data)
{
  const char *options[] = { "--token-file", fixture->token_path, "--max-connections", "2", NULL };
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  ExecnetGateway *first, *second;

  fixture->server = server_start (options);
  spec = token_spec (fixture, fixture->token_path);

  first = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  second = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);

  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED);
  g_assert_nonnull (strstr (error->message, "--max-connections"));
  g_clear_error (&error);
  server_wait_for_log (fixture->server, "(--max-connections)", 1);

  assert_round_trips (first);
  assert_round_trips (second);

  /* Room again once one ends. */
  execnet_gateway_exit (first);
  server_wait_for_log (fixture->server, "its Python exited", 1);
  g_assert_nonnull (execnet_group_make_gateway (group, spec, &error));
  g_assert_no_error (error);

  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
  wait_no_children (fixture->server->pid);
}

/* CPU seconds that process @pid has used, from /proc/PID/stat. */
static gdouble
cpu_seconds (GPid pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *stat = NULL;
  unsigned long utime, stime;
  const char *after_comm;

  g_assert_true (g_file_get_contents (path, &stat, NULL, NULL));
  after_comm = strrchr (stat, ')');
  g_assert_nonnull (after_comm);
  g_assert_cmpint (sscanf (after_comm + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
                           &utime, &stime), ==, 2);
  return (utime + stime) / (gdouble) sysconf (_SC_CLK_TCK);
}

#define N_IDLE_PEERS 120

/* A server limited to 64 open files, held by 120 idle peers from one
 * address that never answer the challenge, neither spins nor floods its
 * log, and still serves a real client from another address: it clamps
 * its connection limit to what 64 files allow, lets one address hold only
 * --max-per-peer unauthenticated connections, and drops those after the
 * handshake deadline. */
static void
test_fd_limit_idle_peers (Fixture       *fixture,
                          gconstpointer  user_data)
{
  const char *options[] = { "--token-file", fixture->token_path, "--max-connections", "0",
                            "--max-per-peer", "8", NULL };
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GPtrArray) idle = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr(GInetAddress) loopback2 = g_inet_address_new_from_string ("127.0.0.2");
  g_autoptr(GSocketAddress) from = g_inet_socket_address_new (loopback2, 0);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) to = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  ExecnetGateway *gateway;
  gdouble cpu_before, cpu_used;
  gint64 start;
  gsize log_size;

  fixture->server = server_start_limited (options, 64);
  to = g_inet_socket_address_new (loopback, fixture->server->port);

  cpu_before = cpu_seconds (fixture->server->pid);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < N_IDLE_PEERS; i++)
    {
      GSocket *socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                      G_SOCKET_PROTOCOL_TCP, &error);

      g_assert_no_error (error);
      g_socket_bind (socket, from, FALSE, &error);
      g_assert_no_error (error);
      g_socket_connect (socket, to, NULL, &error);
      g_assert_no_error (error);
      g_ptr_array_add (idle, socket);
    }
  server_wait_for_log (fixture->server, "(--max-per-peer)", 1);

  /* A real client, from 127.0.0.1, is served while they wait. */
  spec = token_spec (fixture, fixture->token_path);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  assert_round_trips (gateway);

  /* The idle peers' handshakes time out (5 s); meanwhile the server is
   * mostly idle. Spinning would use about a CPU second per second. */
  server_wait_for_log (fixture->server, "no answer to the challenge", 8);
  cpu_used = cpu_seconds (fixture->server->pid) - cpu_before;
  g_test_message ("server CPU: %.2f s in %.2f s", cpu_used,
                  (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpfloat (cpu_used, <, 0.5 * (g_get_monotonic_time () - start) / 1e6);

  g_mutex_lock (&fixture->server->lock);
  log_size = fixture->server->log->len;
  g_mutex_unlock (&fixture->server->lock);
  g_test_message ("server log: %" G_GSIZE_FORMAT " bytes", log_size);
  g_assert_cmpuint (log_size, <, 64 * 1024);

  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
  wait_no_children (fixture->server->pid);
}

/* SIGTERM stops a server that still serves gateways: it ends their
 * interpreters, reaps them and exits 0; the gateways learn that their
 * connection is gone. */
static void
test_sigterm_with_live_gateways (Fixture       *fixture,
                                 gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  GPid pids[3];

  start_token_server (fixture);
  spec = token_spec (fixture, fixture->token_path);
  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    {
      ExecnetGateway *gateway = execnet_group_make_gateway (group, spec, &error);

      g_assert_no_error (error);
      pids[i] = remote_pid (gateway);
    }
  g_assert_cmpuint (count_children (fixture->server->pid), ==, G_N_ELEMENTS (pids));

  server_stop (g_steal_pointer (&fixture->server));
  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    g_assert_false (process_exists (pids[i]));

  execnet_group_terminate (group, DEADLINE_SECONDS, &error);
  g_assert_no_error (error);
}

/* Runs @argv (NULL-terminated) and returns whether it exited 0; its
 * output is kept out of the test's. */
static gboolean
run_quietly (const char * const *argv)
{
  int status = -1;

  return g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH |
                       G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                       NULL, NULL, NULL, NULL, &status, NULL) &&
         g_spawn_check_wait_status (status, NULL);
}

/* A network that dies without a word: packets to and from the server's
 * port are dropped (iptables, in a network namespace of the test's own,
 * which needs root). Neither end hears anything again; with keepalive=
 * and --keepalive, each gives up after a few seconds instead of waiting
 * forever: the master's receive() fails, and the server's interpreter
 * ends, so no process is left behind on either side. */
static void
test_dead_network (Fixture       *fixture,
                   gconstpointer  user_data)
{
  const char *namespace_probe[] = { "unshare", "--net", "iptables", "-L", "INPUT", "-n", NULL };
  const char *options[] = { "--insecure", "--keepalive", "2", NULL };
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *port = NULL;
  ExecnetGateway *gateway;
  GPid remote;
  gint64 start;

  if (!g_test_subprocess ())
    {
      if (geteuid () != 0 || !run_quietly (namespace_probe))
        {
          g_test_skip ("needs root, unshare and iptables to cut a network in a namespace");
          return;
        }
      /* The namespace is the child's alone: this process keeps its network. */
      g_test_trap_subprocess (NULL, 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
      g_test_trap_assert_passed ();
      return;
    }

  /* Before any thread exists: a namespace is a thread's, inherited by the
   * threads and processes it starts. */
  g_assert_cmpint (unshare (CLONE_NEWNET), ==, 0);
  g_assert_true (run_quietly ((const char *[]) { "ip", "link", "set", "lo", "up", NULL }));

  fixture->server = server_start (options);
  group = execnet_group_new ();
  spec = g_strdup_printf ("socket=%s//keepalive=2", fixture->server->address);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  remote = remote_pid (gateway);
  channel = execnet_gateway_remote_exec (gateway, "channel.receive()", &error);
  g_assert_no_error (error);

  port = g_strdup_printf ("%u", fixture->server->port);
  g_assert_true (run_quietly ((const char *[]) { "iptables", "-A", "INPUT", "-p", "tcp",
                                                 "--dport", port, "-j", "DROP", NULL }));
  g_assert_true (run_quietly ((const char *[]) { "iptables", "-A", "INPUT", "-p", "tcp",
                                                 "--sport", port, "-j", "DROP", NULL }));

  start = g_get_monotonic_time ();
  item = execnet_channel_receive (channel, 2 * DEADLINE_SECONDS, &error);
  g_test_message ("after %.1f s: %s",
                  (g_get_monotonic_time () - start) / (gdouble) G_TIME_SPAN_SECOND,
                  error != NULL ? error->message : "(no error)");
  g_assert_null (item);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
  g_assert_nonnull (strstr (error->message, "stopped answering"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, DEADLINE_SECONDS * G_TIME_SPAN_SECOND);
  g_clear_error (&error);

  /* The server's side gave up too, and ended the interpreter. */
  assert_dead (remote);
  wait_no_children (fixture->server->pid);

  g_assert_true (run_quietly ((const char *[]) { "iptables", "-F", "INPUT", NULL }));
  execnet_group_terminate (group, 1.0, NULL);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
}

static void
test_connection_refused (void)
{
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  guint16 port;

  /* A port that was free a moment ago and has nobody listening now. */
  port = g_socket_listener_add_any_inet_port (listener, NULL, &error);
  g_assert_no_error (error);
  g_socket_listener_close (listener);

  spec = g_strdup_printf ("socket=127.0.0.1:%u", port);
  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED);
  g_assert_nonnull (strstr (error->message, "127.0.0.1"));
}

static void
test_host_not_found (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;

  /* .invalid never resolves (RFC 2606). */
  g_assert_null (execnet_group_make_gateway (group, "socket=no-such-host.invalid:8888", &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no-such-host.invalid:8888"));
}

static void
test_bad_specs (void)
{
  const char *specs[] = {
    "socket",
    "socket=127.0.0.1",
    "socket=127.0.0.1:http-alt",
    "socket=127.0.0.1:70000",
    "socket=127.0.0.1:8888//connect_timeout=soon",
    "socket=127.0.0.1:8888//token_file=",
    "socket=127.0.0.1:8888//python=python3",
    "socket//installvia=gw0",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (specs); i++)
    {
      g_autoptr(ExecnetGroup) group = execnet_group_new ();
      g_autoptr(GError) error = NULL;

      g_assert_null (execnet_group_make_gateway (group, specs[i], &error));
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
    }
}

/* installvia=: a gateway of the group starts a one-shot server and the new
 * gateway connects to it; its interpreter is a process of its own, gone
 * after terminate. */
static void
test_installvia (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = test_spec (NULL);
  g_autofree char *text = NULL;
  ExecnetGateway *via, *gateway;
  gint64 via_pid, pid;

  via = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  gateway = execnet_group_make_gateway (group, "socket//installvia=gw0//id=viaed//env:VIA=yes", &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);

  text = execnet_gateway_to_string (gateway);
  g_assert_cmpstr (text, ==, "<SocketGateway id='viaed' receive-live, 0 active channels>");
  g_clear_pointer (&text, g_free);
  text = execnet_group_to_string (group);
  g_assert_cmpstr (text, ==, "<Group ['gw0', 'viaed']>");

  via_pid = test_gateway_pid (via);
  pid = test_gateway_pid (gateway);
  g_assert_cmpint (pid, !=, via_pid);

  {
    g_autoptr(ExecnetChannel) channel = test_remote_exec (gateway, "import os; channel.send(os.environ['VIA'])");
    g_autoptr(GVariant) value = test_receive (channel);

    g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "yes");
  }

  g_assert_true (execnet_group_terminate (group, 5.0, &error));
  g_assert_no_error (error);
  test_assert_pid_gone (pid, 5.0);
  test_assert_pid_gone (via_pid, 5.0);
}

static void
test_installvia_errors (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = test_spec (NULL);

  g_assert_nonnull (execnet_group_make_gateway (group, spec, &error));
  g_assert_no_error (error);

  g_assert_null (execnet_group_make_gateway (group, "socket//installvia=gw7", &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_assert_nonnull (strstr (error->message, "gw7"));
  g_clear_error (&error);

  g_assert_null (execnet_group_make_gateway (group, "popen//installvia=gw0", &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_assert_nonnull (strstr (error->message, "socket"));
  g_clear_error (&error);

  /* Failed attempts leave the group as it was. */
  g_assert_cmpuint (execnet_group_get_size (group), ==, 1);
  g_assert_true (execnet_group_terminate (group, 5.0, NULL));
}

static void
test_unreadable_token_file (Fixture       *fixture,
                            gconstpointer  user_data)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = g_build_filename (fixture->dir, "missing", NULL);
  g_autofree char *spec = NULL;

  start_token_server (fixture);
  spec = token_spec (fixture, missing);
  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION);
  g_assert_nonnull (strstr (error->message, missing));
}

/* Runs the server with @args and returns its exit status; its stderr goes
 * to @err. */
static int
run_tool (const char * const *args,
          char              **err)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) tool = NULL;
  g_autoptr(GError) error = NULL;

  g_ptr_array_add (argv, (char *) tool_path ());
  g_ptr_array_add (argv, (char *) "socketserver");
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (char *) args[i]);
  g_ptr_array_add (argv, NULL);

  tool = g_subprocess_newv ((const char * const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (tool, NULL, NULL, NULL, err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (tool));
  return g_subprocess_get_exit_status (tool);
}

/* Nobody can run code by connecting unless the user said so. */
static void
test_server_refuses_unsafe_options (Fixture       *fixture,
                                    gconstpointer  user_data)
{
  g_autofree char *readable_token = write_token (fixture->dir, "readable", "some token");
  const char *no_auth[] = { "--listen", "127.0.0.1:0", NULL };
  const char *remote_insecure[] = { "--listen", "0.0.0.0:0", "--insecure", NULL };
  const char *both[] = { "--listen", "127.0.0.1:0", "--insecure", "--token-file", fixture->token_path, NULL };
  const char *readable[] = { "--listen", "127.0.0.1:0", "--token-file", readable_token, NULL };
  const char *bad_listen[] = { "--listen", "localhost", "--insecure", NULL };
  g_autofree char *fifo = g_build_filename (fixture->dir, "fifo", NULL);
  const char *fifo_token[] = { "--listen", "127.0.0.1:0", "--token-file", fifo, NULL };
  const char *dir_token[] = { "--listen", "127.0.0.1:0", "--token-file", fixture->dir, NULL };
  /* Owned by root, not by us (unless the tests run as root). */
  const char *foreign_token[] = { "--listen", "127.0.0.1:0", "--token-file", "/etc/passwd", NULL };
  const char *bad_python[] = { "--listen", "127.0.0.1:0", "--insecure", "--python", "'python3", NULL };
  const char *bad_keepalive[] = { "--listen", "127.0.0.1:0", "--insecure", "--keepalive", "-5", NULL };
  struct {
    const char * const *args;
    const char *says;
  } cases[] = {
    { no_auth, "--insecure" },
    { remote_insecure, "--allow-remote-insecure" },
    { both, "contradict" },
    { readable, "chmod 600" },
    { bad_listen, "ADDRESS:PORT" },
    /* A FIFO used to hang the server before it listened. */
    { fifo_token, "not a regular file" },
    { dir_token, "not a regular file" },
    { foreign_token, "belongs to user" },
    { bad_python, "--python" },
    { bad_keepalive, "--keepalive -5" },
  };

  g_assert_no_errno (chmod (readable_token, 0644));
  g_assert_no_errno (mkfifo (fifo, 0600));
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *err = NULL;

      if (cases[i].args == foreign_token && geteuid () == 0)
        continue;
      g_assert_cmpint (run_tool (cases[i].args, &err), ==, 2);
      g_assert_nonnull (strstr (err, cases[i].says));
    }
  g_unlink (readable_token);
  g_unlink (fifo);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/socket/token/round-trip", Fixture, NULL,
              fixture_set_up, test_token_round_trip, fixture_tear_down);
  g_test_add ("/socket/terminate/ends-grandchild", Fixture, NULL,
              fixture_set_up, test_terminate_ends_grandchild, fixture_tear_down);
  g_test_add ("/socket/terminate/stuck-with-grandchild", Fixture, NULL,
              fixture_set_up, test_terminate_stuck_with_grandchild, fixture_tear_down);
  g_test_add ("/socket/terminate/unconfirmed", Fixture, GINT_TO_POINTER (FALSE),
              fixture_set_up, test_terminate_unconfirmed, fixture_tear_down);
  g_test_add ("/socket/terminate/unconfirmed-async", Fixture, GINT_TO_POINTER (TRUE),
              fixture_set_up, test_terminate_unconfirmed, fixture_tear_down);
  g_test_add ("/socket/lost/killed-mid-frame", Fixture, NULL,
              fixture_set_up, test_killed_mid_frame, fixture_tear_down);
  g_test_add ("/socket/token/concurrent", Fixture, NULL,
              fixture_set_up, test_token_concurrent, fixture_tear_down);
  g_test_add ("/socket/auth/wrong-token", Fixture, NULL,
              fixture_set_up, test_wrong_token, fixture_tear_down);
  g_test_add ("/socket/auth/no-token", Fixture, NULL,
              fixture_set_up, test_no_token, fixture_tear_down);
  g_test_add ("/socket/auth/token-against-insecure", Fixture, NULL,
              fixture_set_up, test_token_against_insecure, fixture_tear_down);
  g_test_add ("/socket/auth/unreadable-token-file", Fixture, NULL,
              fixture_set_up, test_unreadable_token_file, fixture_tear_down);
  g_test_add ("/socket/interop/python-master", Fixture, NULL,
              fixture_set_up, test_python_master, fixture_tear_down);
  g_test_add ("/socket/robustness/misbehaving-clients/token", Fixture, GINT_TO_POINTER (TRUE),
              fixture_set_up, test_misbehaving_clients, fixture_tear_down);
  g_test_add ("/socket/robustness/misbehaving-clients/insecure", Fixture, GINT_TO_POINTER (FALSE),
              fixture_set_up, test_misbehaving_clients, fixture_tear_down);
  g_test_add ("/socket/server/max-connections", Fixture, NULL,
              fixture_set_up, test_max_connections, fixture_tear_down);
  g_test_add ("/socket/server/fd-limit-idle-peers", Fixture, NULL,
              fixture_set_up, test_fd_limit_idle_peers, fixture_tear_down);
  g_test_add ("/socket/server/sigterm-with-live-gateways", Fixture, NULL,
              fixture_set_up, test_sigterm_with_live_gateways, fixture_tear_down);
  g_test_add ("/socket/server/refuses-unsafe-options", Fixture, NULL,
              fixture_set_up, test_server_refuses_unsafe_options, fixture_tear_down);
  g_test_add_func ("/socket/interop/execnet-server", test_execnet_server);
  g_test_add ("/socket/lost/dead-network", Fixture, NULL,
              fixture_set_up, test_dead_network, fixture_tear_down);
  g_test_add_func ("/socket/errors/connection-refused", test_connection_refused);
  g_test_add_func ("/socket/errors/host-not-found", test_host_not_found);
  g_test_add_func ("/socket/errors/bad-specs", test_bad_specs);
  g_test_add_func ("/socket/installvia/round-trip", test_installvia);
  g_test_add_func ("/socket/installvia/errors", test_installvia_errors);

  return g_test_run ();
}
