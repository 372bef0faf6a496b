/* test-transport.c: what transports declare, checked specs, the launcher
 * kit (execnet_transport_spawn) and process groups
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <gio/gunixinputstream.h>
#include <execnet/execnet.h>

#include "test-helpers.h"

static gboolean
have_plugin (const char *scheme)
{
  g_autofree char *path = execnet_transport_find_module (scheme);

  return path != NULL;
}

/* Keys */

static void
test_general_keys (void)
{
  const char * const *keys = execnet_xspec_get_general_keys ();

  for (const char * const *k = (const char * const[]) { "id", "python", "chdir", "nice",
                                                        "dont_write_bytecode", "execmodel",
                                                        "connect_timeout", "via", "agent", NULL };
       *k != NULL; k++)
    {
      g_assert_true (g_strv_contains (keys, *k));
      g_assert_true (execnet_xspec_is_general_key (*k));
    }
  /* Transport knowledge is not the core's. */
  g_assert_false (g_strv_contains (keys, "ssh_config"));
  g_assert_false (g_strv_contains (keys, "token_file"));
  g_assert_false (g_strv_contains (keys, "installvia"));
  g_assert_true (execnet_xspec_is_general_key ("env:LANG"));
  g_assert_false (execnet_xspec_is_general_key ("popen"));
}

typedef struct
{
  const char *scheme;
  const char *keys[4];
} DeclaredKeys;

static const DeclaredKeys declared_keys[] = {
  { "popen", { NULL } },
  { "socket", { "token_file", "installvia", "keepalive", NULL } },
  { "ssh", { "ssh_config", "ssh_share", "ssh_spawner", NULL } },
  { "wrap", { "wrap_shell", NULL } },
};

static void
test_declared_keys (gconstpointer data)
{
  const DeclaredKeys *expected = data;
  g_autoptr(ExecnetTransport) transport = NULL;
  g_autoptr(GError) error = NULL;
  const char * const *keys;

  if (g_str_equal (expected->scheme, "ssh") && !have_plugin ("ssh"))
    {
      g_test_skip ("the ssh plugin is not built (no libssh)");
      return;
    }

  transport = execnet_transport_new_for_scheme (expected->scheme, &error);
  g_assert_no_error (error);
  keys = execnet_transport_get_keys (transport);
  g_assert_nonnull (keys);
  g_assert_cmpstrv (keys, expected->keys);
}

/* What a transport says it would open: popen its command; a transport
 * without a description (wrap, the worked example) an empty dictionary. */
static void
test_describe (void)
{
  g_autoptr(ExecnetTransport) popen = NULL;
  g_autoptr(ExecnetTransport) wrap = NULL;
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(ExecnetXSpec) wrap_xspec = NULL;
  g_autoptr(GVariant) description = NULL;
  g_autoptr(GVariant) empty = NULL;
  g_autoptr(GVariant) bad = NULL;
  g_autoptr(ExecnetXSpec) bad_xspec = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree const char **command = NULL;

  popen = execnet_transport_new_for_scheme ("popen", &error);
  g_assert_no_error (error);
  xspec = execnet_xspec_new ("popen//python=/usr/bin/python3 -X dev//dont_write_bytecode", &error);
  g_assert_no_error (error);
  description = execnet_transport_describe (popen, xspec, &error);
  g_assert_no_error (error);
  g_assert_false (g_variant_is_floating (description));
  g_assert_true (g_variant_lookup (description, "command", "^a&s", &command));
  g_assert_cmpstr (command[0], ==, "/usr/bin/python3");
  g_assert_cmpstr (command[1], ==, "-X");
  g_assert_cmpstr (command[2], ==, "dev");
  g_assert_cmpstr (command[3], ==, "-B");

  bad_xspec = execnet_xspec_new ("popen//python=python3 \"-X", &error);
  g_assert_no_error (error);
  bad = execnet_transport_describe (popen, bad_xspec, &error);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_assert_null (bad);
  g_clear_error (&error);

  if (!have_plugin ("wrap"))
    return;
  wrap = execnet_transport_new_for_scheme ("wrap", &error);
  g_assert_no_error (error);
  wrap_xspec = execnet_xspec_new ("wrap=nice", &error);
  g_assert_no_error (error);
  empty = execnet_transport_describe (wrap, wrap_xspec, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_of_type (empty, G_VARIANT_TYPE_VARDICT));
  g_assert_cmpuint (g_variant_n_children (empty), ==, 0);
}

/* Checked specs */

typedef struct
{
  const char *spec;
  const char *message;  /* NULL: accepted */
} SpecCheck;

static const SpecCheck spec_checks[] = {
  { "popen//chdir=x//env:A=1//id=w//nice=3//python=python3//dont_write_bytecode"
    "//execmodel=thread//connect_timeout=5//agent=execnet//via=gw0", NULL },
  { "popen//chdri=x", "did you mean chdir?" },
  { "popen//pyhton=python3", "did you mean python?" },
  { "popen//exec_model=thread", "did you mean execmodel?" },
  { "popen//ssh_config=x", "the popen transport does not know the key “ssh_config”" },
  { "popen//frobnicate", "it accepts popen, id, python, chdir" },
  { "popen=python3", "popen takes no value" },
  { "socket=h:1//token_file=t//installvia=gw0", NULL },
  { "socket=h:1//tokenfile=t", "did you mean token_file?" },
  { "socket=h:1//instalvia=gw0", "did you mean installvia?" },
  { "socket=h:1//ssh_config=c", "the socket transport does not know the key “ssh_config”" },
  { "popen//installvia=gw0", "it is a key of the socket transport" },
  { "ssh=host//ssh_config=c", NULL },
  { "ssh=host//ssh_confg=c", "did you mean ssh_config?" },
  { "ssh=host//token_file=t", "the ssh transport does not know the key “token_file”" },
  { "wrap=nice//wrap_shell", NULL },
  { "wrap=nice//wrapshell", "did you mean wrap_shell?" },
  { "wrap", "give the command to start Python through" },
};

static void
test_check_xspec (gconstpointer data)
{
  const SpecCheck *check = data;
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(ExecnetTransport) transport = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok;

  xspec = execnet_xspec_new (check->spec, &error);
  g_assert_no_error (error);
  if (g_str_equal (execnet_xspec_get_scheme (xspec), "ssh") && !have_plugin ("ssh"))
    {
      g_test_skip ("the ssh plugin is not built (no libssh)");
      return;
    }
  transport = execnet_transport_new_for_scheme (execnet_xspec_get_scheme (xspec), &error);
  g_assert_no_error (error);

  ok = execnet_transport_check_xspec (transport, xspec, &error);
  if (check->message == NULL)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
    }
  else
    {
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
      g_assert_false (ok);
      g_test_message ("%s: %s", check->spec, error->message);
      g_assert_nonnull (strstr (error->message, check->message));
    }
}

/* Making a gateway checks the spec before anything starts. */
static void
test_make_gateway_checks (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;

  g_assert_null (execnet_group_make_gateway (group, "popen//chdri=somewhere", &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_assert_nonnull (strstr (error->message, "did you mean chdir?"));
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  test_assert_no_children (5.0);
}

/* The launcher kit */

/* Reads one line from a connection's stream, blocking. */
static char *
read_line (ExecnetConnection *connection)
{
  GInputStream *input = g_io_stream_get_input_stream (execnet_connection_get_stream (connection));
  g_autoptr(GDataInputStream) data = g_data_input_stream_new (input);
  g_autoptr(GError) error = NULL;
  char *line;

  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (data), FALSE);
  g_buffered_input_stream_set_buffer_size (G_BUFFERED_INPUT_STREAM (data), 1);
  line = g_data_input_stream_read_line (data, NULL, NULL, &error);
  g_assert_no_error (error);

  return line;
}

static ExecnetConnection *
spawn (const char         *spec,
       const char * const *launcher)
{
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetConnection *connection;

  xspec = execnet_xspec_new (spec, &error);
  g_assert_no_error (error);
  connection = execnet_transport_spawn (xspec, launcher, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (connection);

  return connection;
}

static void
on_waited (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (execnet_connection_wait_finish (EXECNET_CONNECTION (source), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

static gboolean
is_true (gpointer data)
{
  return *(gboolean *) data;
}

static void
wait_for_end (ExecnetConnection *connection)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  gboolean done = FALSE;

  g_main_context_push_thread_default (context);
  execnet_connection_wait_async (connection, NULL, on_waited, &done);
  test_iterate_until (context, is_true, &done, TEST_TIMEOUT);
  g_main_context_pop_thread_default (context);
}

/* The interpreter reads its one line from the stream and writes to it. */
static void
test_spawn_stream (void)
{
  g_autoptr(ExecnetConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = g_strdup_printf ("x//python=%s", test_python ());
  g_autofree char *line = NULL;
  GOutputStream *output;
  const char *program = "\"import sys; sys.stdout.write('hello %d\\\\n' % len(sys.argv)); sys.stdout.flush()\"\n";

  connection = spawn (spec, NULL);
  g_assert_cmpint (execnet_connection_get_bootstrap_mode (connection), ==, EXECNET_BOOTSTRAP_STDIO);
  output = g_io_stream_get_output_stream (execnet_connection_get_stream (connection));
  g_assert_true (g_output_stream_write_all (output, program, strlen (program), NULL, NULL, &error));
  g_assert_no_error (error);

  line = read_line (connection);
  g_assert_cmpstr (line, ==, "hello 1");

  g_assert_true (execnet_connection_close_write (connection, &error));
  g_assert_no_error (error);
  wait_for_end (connection);
  g_assert_cmpint (execnet_connection_get_exit_status (connection), ==, 0);
  test_assert_no_children (5.0);
}

/* A launcher that forks leaves a child in the group; terminate ends both. */
static void
test_spawn_forking_launcher (gconstpointer data)
{
  gboolean force = GPOINTER_TO_INT (data);
  const char * const launcher[] = { "sh", "-c", "sleep 600 & echo $!; exec \"$@\"", "sh", NULL };
  g_autoptr(ExecnetConnection) connection = NULL;
  g_autofree char *spec = g_strdup_printf ("x//python=%s", test_python ());
  g_autofree char *line = NULL;
  gint64 sleeper;

  connection = spawn (spec, launcher);
  line = read_line (connection);
  sleeper = g_ascii_strtoll (line, NULL, 10);
  g_assert_cmpint (sleeper, >, 1);
  g_assert_cmpint (test_process_state (sleeper), !=, 0);

  execnet_connection_terminate (connection, force);
  wait_for_end (connection);
  test_assert_pid_gone (sleeper, 10.0);
  test_assert_no_children (5.0);
}

/* A launcher that exits leaving a child behind: the child is ended too. */
static void
test_spawn_launcher_leaves_child (void)
{
  const char * const launcher[] = { "sh", "-c", "sleep 600 & echo $!", "sh", NULL };
  g_autoptr(ExecnetConnection) connection = NULL;
  g_autofree char *line = NULL;
  gint64 sleeper;

  connection = spawn ("x", launcher);
  line = read_line (connection);
  sleeper = g_ascii_strtoll (line, NULL, 10);
  g_assert_cmpint (sleeper, >, 1);

  wait_for_end (connection);
  g_assert_cmpint (execnet_connection_get_exit_status (connection), ==, 0);
  test_assert_pid_gone (sleeper, 10.0);
  test_assert_no_children (5.0);
}

/* The launcher's exit status is the connection's. */
static void
test_spawn_exit_status (void)
{
  const char * const launcher[] = { "sh", "-c", "echo went wrong >&2; exit 3", "sh", NULL };
  g_autoptr(ExecnetConnection) connection = NULL;
  g_autofree char *output = NULL;
  int status;

  connection = spawn ("x", launcher);
  wait_for_end (connection);
  status = execnet_connection_get_exit_status (connection);
  g_assert_true (WIFEXITED (status));
  g_assert_cmpint (WEXITSTATUS (status), ==, 3);
  output = execnet_connection_dup_error_output (connection);
  g_assert_cmpstr (output, ==, "went wrong\n");
}

static void
test_spawn_missing_launcher (void)
{
  const char * const launcher[] = { "/nonexistent/launcher", "-x", NULL };
  g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new ("x", NULL);
  g_autoptr(GError) error = NULL;

  g_assert_null (execnet_transport_spawn (xspec, launcher, NULL, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "/nonexistent/launcher"));
  test_assert_no_children (5.0);
}

/* What the launcher says on stderr is in the error of the failed gateway. */
static void
test_spawn_stderr_quoted (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;

  g_assert_null (execnet_group_make_gateway (group,
                                             "wrap=echo 'sudo: a password is required' >&2; exit 1"
                                             "//wrap_shell", &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "sudo: a password is required"));
  test_assert_no_children (5.0);
}

/* What transports pass on from the remote's stderr reaches ours whole;
 * with our stderr a pipe nobody reads, the write fails quietly instead of
 * killing the process with SIGPIPE. */
static void
test_write_stderr (void)
{
  if (g_test_subprocess ())
    {
      int fds[2];

      execnet_transport_write_stderr ("from the remote\n", strlen ("from the remote\n"));
      g_assert_cmpint (pipe (fds), ==, 0);
      close (fds[0]);
      g_assert_cmpint (dup2 (fds[1], STDERR_FILENO), ==, STDERR_FILENO);
      execnet_transport_write_stderr ("lost", 4);
      execnet_transport_write_stderr ("lost again", 10);
      g_print ("survived\n");
      return;
    }

  g_test_trap_subprocess (NULL, 10 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("from the remote\n");
  g_test_trap_assert_stdout ("survived\n");
}

/* A whole gateway through a launcher plugin: the worked example of
 * doc/transports.md, registered with EXECNET_DEFINE_TRANSPORT_MODULE and
 * using the default open_finish. */
static void
test_wrap_gateway (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("execnet-wrap-XXXXXX", &error);
  g_autofree char *spec = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *expected = NULL;
  ExecnetGateway *gateway;

  g_assert_no_error (error);
  spec = g_strdup_printf ("wrap=env EXECNET_WRAPPED=yes//python=%s//chdir=%s//env:B=2", test_python (), dir);
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);

  channel = test_remote_exec (gateway, "import os\n"
                                       "channel.send('%s %s %s' % (os.environ['EXECNET_WRAPPED'], "
                                       "os.environ['B'], os.getcwd()))\n");
  value = test_receive (channel);
  expected = g_strdup_printf ("yes 2 %s", dir);
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, expected);

  test_terminate (group);
  test_assert_no_children (5.0);
  g_rmdir (dir);
}

/* popen in its own process group */

static const char start_sleeper[] =
  "import os, subprocess\n"
  "p = subprocess.Popen(['sleep', '600'])\n"
  "channel.send((p.pid, os.getpgrp()))\n";

static void
test_popen_group_terminate (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) value = NULL;
  gint64 sleeper, group_id;
  ExecnetGateway *gateway;

  gateway = test_make_gateway (group, NULL);
  channel = test_remote_exec (gateway, start_sleeper);
  value = test_receive (channel);
  g_variant_get (value, "(xx)", &sleeper, &group_id);
  g_assert_cmpint (test_process_state (sleeper), !=, 0);
  g_assert_cmpint (group_id, !=, getpgrp ());

  test_terminate (group);
  test_assert_pid_gone (sleeper, 10.0);
  test_assert_no_children (5.0);
}

/* Child mode of the test below: makes a gateway whose remote starts a
 * sleeper, reports its pid, then waits to be killed. */
static int
run_killed_master (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) value = NULL;
  gint64 sleeper, group_id;
  ExecnetGateway *gateway;
  char byte;

  gateway = test_make_gateway (group, NULL);
  channel = test_remote_exec (gateway, start_sleeper);
  value = test_receive (channel);
  g_variant_get (value, "(xx)", &sleeper, &group_id);
  g_print ("%" G_GINT64_FORMAT "\n", sleeper);
  fflush (stdout);

  while (read (STDIN_FILENO, &byte, 1) > 0)
    ;
  return 0;
}

static void
test_popen_group_master_killed (void)
{
  const char *argv[] = { g_test_get_filename (G_TEST_BUILT, "test-transport", NULL), NULL };
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) master = NULL;
  g_autoptr(GDataInputStream) output = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  gint64 sleeper;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_subprocess_launcher_setenv (launcher, "TEST_TRANSPORT_KILLED_MASTER", "1", TRUE);
  master = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);

  output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (master));
  line = g_data_input_stream_read_line (output, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  sleeper = g_ascii_strtoll (line, NULL, 10);
  g_assert_cmpint (sleeper, >, 1);
  g_assert_cmpint (test_process_state (sleeper), !=, 0);

  g_subprocess_force_exit (master);
  g_subprocess_wait (master, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_signaled (master));

  test_assert_pid_gone (sleeper, 10.0);
}

int
main (int   argc,
      char *argv[])
{
  if (g_getenv ("TEST_TRANSPORT_KILLED_MASTER") != NULL)
    return run_killed_master ();

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/transport/keys/general", test_general_keys);
  for (gsize i = 0; i < G_N_ELEMENTS (declared_keys); i++)
    {
      g_autofree char *path = g_strdup_printf ("/transport/keys/declared/%s", declared_keys[i].scheme);
      g_test_add_data_func (path, &declared_keys[i], test_declared_keys);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (spec_checks); i++)
    {
      g_autofree char *path = g_strdup_printf ("/transport/check/%" G_GSIZE_FORMAT, i);
      g_test_add_data_func (path, &spec_checks[i], test_check_xspec);
    }
  g_test_add_func ("/transport/check/make-gateway", test_make_gateway_checks);
  g_test_add_func ("/transport/describe", test_describe);

  g_test_add_func ("/transport/spawn/stream", test_spawn_stream);
  g_test_add_data_func ("/transport/spawn/forking-launcher/terminate",
                        GINT_TO_POINTER (FALSE), test_spawn_forking_launcher);
  g_test_add_data_func ("/transport/spawn/forking-launcher/kill",
                        GINT_TO_POINTER (TRUE), test_spawn_forking_launcher);
  g_test_add_func ("/transport/spawn/launcher-leaves-child", test_spawn_launcher_leaves_child);
  g_test_add_func ("/transport/spawn/exit-status", test_spawn_exit_status);
  g_test_add_func ("/transport/spawn/missing-launcher", test_spawn_missing_launcher);
  g_test_add_func ("/transport/spawn/stderr-quoted", test_spawn_stderr_quoted);
  g_test_add_func ("/transport/write-stderr", test_write_stderr);
  g_test_add_func ("/transport/spawn/wrap-gateway", test_wrap_gateway);

  g_test_add_func ("/transport/popen/group/terminate", test_popen_group_terminate);
  g_test_add_func ("/transport/popen/group/master-killed", test_popen_group_master_killed);

  return g_test_run ();
}
