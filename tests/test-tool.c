/* test-tool.c: execnet-tool, run as a user runs it
 *
 * Each test runs the built tool (EXECNET_TOOL) as a subprocess and checks
 * its exit status, standard output and standard error. The plugins come
 * from EXECNET_TRANSPORT_PATH, which the tool inherits.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "test-helpers.h"

/* The exit statuses of tools/execnet-tool.h, as a user sees them. */
enum {
  TOOL_EXIT_OK = 0,
  TOOL_EXIT_REMOTE_ERROR = 1,
  TOOL_EXIT_USAGE = 2,
  TOOL_EXIT_UNKNOWN_TRANSPORT = 3,
  TOOL_EXIT_CONNECT = 4,
  TOOL_EXIT_TIMEOUT = 5,
  TOOL_EXIT_FAILURE = 7,
};

typedef struct {
  int     status;     /* the exit status */
  GBytes *output;     /* (owned) standard output, as bytes */
  char   *out;        /* (owned) standard output, as text */
  char   *err;        /* (owned) standard error */
} Run;

static void
run_free (Run *run)
{
  g_clear_pointer (&run->output, g_bytes_unref);
  g_free (run->out);
  g_free (run->err);
  g_free (run);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Run, run_free)

static const char *
tool_path (void)
{
  return g_getenv ("EXECNET_TOOL");
}

/* Skips the test (and returns TRUE) when the tool is not known. */
static gboolean
skip_without_tool (void)
{
  if (tool_path () != NULL && *tool_path () != '\0')
    return FALSE;
  g_test_skip ("EXECNET_TOOL is not set to the built execnet-tool");
  return TRUE;
}

static void
on_communicated (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GAsyncResult **result_out = user_data;

  *result_out = g_object_ref (result);
}

static gboolean
on_run_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs the tool with @args, feeding it @input (nullable) on stdin. A tool
 * that hangs fails the test after TEST_TIMEOUT, killed. */
static Run *
run_tool_with_input (GBytes             *input,
                     const char * const *args)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GBytes) errors = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSource) timer = NULL;
  gboolean timed_out = FALSE;
  gboolean killed = FALSE;
  GSubprocessFlags flags = G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE;
  Run *run = g_new0 (Run, 1);
  gsize size;
  const char *data;

  g_ptr_array_add (argv, (gpointer) tool_path ());
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  flags |= input != NULL ? G_SUBPROCESS_FLAGS_STDIN_PIPE : G_SUBPROCESS_FLAGS_STDIN_INHERIT;
  process = g_subprocess_newv ((const char * const *) argv->pdata, flags, &error);
  g_assert_no_error (error);

  g_main_context_push_thread_default (context);
  timer = g_timeout_source_new ((guint) (TEST_TIMEOUT * 1000));
  g_source_set_callback (timer, on_run_timeout, &timed_out, NULL);
  g_source_attach (timer, context);
  g_subprocess_communicate_async (process, input, NULL, on_communicated, &result);
  while (result == NULL)
    {
      g_main_context_iteration (context, TRUE);
      /* Killed, it closes its pipes, and communicating ends. */
      if (timed_out && !killed)
        {
          g_subprocess_force_exit (process);
          killed = TRUE;
        }
    }
  g_source_destroy (timer);
  g_main_context_pop_thread_default (context);
  if (timed_out)
    g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,
                         "execnet-tool did not end within TEST_TIMEOUT; killed it");

  g_subprocess_communicate_finish (process, result, &run->output, &errors, &error);
  g_assert_no_error (error);
  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);

  g_assert_true (g_subprocess_get_if_exited (process));
  run->status = g_subprocess_get_exit_status (process);
  /* Empty output has no data at all, not even a NUL. */
  data = g_bytes_get_data (run->output, &size);
  run->out = size > 0 ? g_strndup (data, size) : g_strdup ("");
  data = g_bytes_get_data (errors, &size);
  run->err = size > 0 ? g_strndup (data, size) : g_strdup ("");

  if (g_test_verbose ())
    g_test_message ("status %d\nstdout: %s\nstderr: %s", run->status, run->out, run->err);

  return run;
}

#define run_tool(...) \
  run_tool_with_input (NULL, (const char * const []) { __VA_ARGS__, NULL })

/* Runs the tool with @args and its standard output on a pseudo-terminal,
 * as a user at a terminal runs it; returns what it wrote there, and its
 * exit status in *@status. Standard error is discarded. */
static char *
run_tool_on_terminal (int                *status,
                      const char * const *args)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GString) output = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  gint64 deadline = g_get_monotonic_time () + (gint64) (TEST_TIMEOUT * G_USEC_PER_SEC);
  int master;
  int slave;

  master = posix_openpt (O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (master, >=, 0);
  g_assert_cmpint (grantpt (master), ==, 0);
  g_assert_cmpint (unlockpt (master), ==, 0);
  slave = open (ptsname (master), O_RDWR | O_NOCTTY | O_CLOEXEC);
  g_assert_cmpint (slave, >=, 0);

  g_ptr_array_add (argv, (gpointer) tool_path ());
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, (gpointer) args[i]);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_subprocess_launcher_take_stdout_fd (launcher, slave);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  /* The launcher holds the only other copy of the terminal's slave side:
   * once it and the tool are gone, reading the master ends with EIO. */
  g_clear_object (&launcher);

  for (;;)
    {
      GPollFD fd = { master, G_IO_IN, 0 };
      char buffer[4096];
      gssize n;
      gint64 left = deadline - g_get_monotonic_time ();

      if (left <= 0)
        {
          g_subprocess_force_exit (process);
          g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,
                               "execnet-tool did not end within TEST_TIMEOUT; killed it");
        }
      if (g_poll (&fd, 1, (int) (left / 1000)) <= 0)
        continue;
      n = read (master, buffer, sizeof buffer);
      if (n > 0)
        g_string_append_len (output, buffer, n);
      else if (n == 0 || errno != EINTR)
        break;
    }
  close (master);
  g_subprocess_wait (process, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (process));
  *status = g_subprocess_get_exit_status (process);

  return g_string_free (g_steal_pointer (&output), FALSE);
}

/* Asserts that @haystack contains @needle, showing both if not. */
#define assert_contains(haystack, needle)                                     \
  G_STMT_START {                                                              \
    if (strstr ((haystack), (needle)) == NULL)                                \
      {                                                                       \
        g_autofree char *m__ = g_strdup_printf ("“%s” does not contain “%s”", \
                                                (haystack), (needle));        \
        g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, m__); \
      }                                                                       \
  } G_STMT_END

/* Asserts that a line of @text matches @pattern. */
#define assert_matches(text, pattern)                                         \
  G_STMT_START {                                                              \
    if (!g_regex_match_simple ((pattern), (text), G_REGEX_MULTILINE, 0))      \
      {                                                                       \
        g_autofree char *m__ = g_strdup_printf ("no line of “%s” matches “%s”", \
                                                (text), (pattern));           \
        g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, m__); \
      }                                                                       \
  } G_STMT_END

/* Parses one JSON value, failing the test if it is not JSON. */
static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (json_parser_get_root (parser));

  return json_node_copy (json_parser_get_root (parser));
}

/* The non-empty lines of @text. */
static GStrv
split_lines (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; lines[i] != NULL; i++)
    if (*lines[i] != '\0')
      g_strv_builder_add (builder, lines[i]);

  return g_strv_builder_end (builder);
}

static const char * const command_names[] = {
  "exec", "spec", "transports", "status", "info", "probe", "trace", "dumps", "loads",
  "socketserver", "rsync",
};

static void
test_help (void)
{
  g_autoptr(Run) help = NULL;
  g_autoptr(Run) dash_help = NULL;
  g_autoptr(Run) none = NULL;
  g_autoptr(Run) unknown = NULL;
  g_autoptr(Run) version = NULL;

  if (skip_without_tool ())
    return;

  help = run_tool ("help");
  g_assert_cmpint (help->status, ==, TOOL_EXIT_OK);
  for (gsize i = 0; i < G_N_ELEMENTS (command_names); i++)
    assert_contains (help->out, command_names[i]);
  assert_contains (help->out, "Exit status");
  assert_contains (help->out, "5  a timeout expired");

  dash_help = run_tool ("--help");
  g_assert_cmpint (dash_help->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (dash_help->out, ==, help->out);

  /* Without a command: the same list, on stderr, as a usage error. */
  none = run_tool_with_input (NULL, (const char * const []) { NULL });
  g_assert_cmpint (none->status, ==, TOOL_EXIT_USAGE);
  assert_contains (none->err, "Commands:");

  unknown = run_tool ("frobnicate");
  g_assert_cmpint (unknown->status, ==, TOOL_EXIT_USAGE);
  assert_contains (unknown->err, "frobnicate");

  version = run_tool ("--version");
  g_assert_cmpint (version->status, ==, TOOL_EXIT_OK);
  assert_contains (version->out, EXECNET_VERSION_S);
}

/* `help CMD` is `CMD --help`, for every command. */
static void
test_help_command (void)
{
  if (skip_without_tool ())
    return;

  for (gsize i = 0; i < G_N_ELEMENTS (command_names); i++)
    {
      g_autoptr(Run) help = run_tool ("help", command_names[i]);
      g_autoptr(Run) dash_help = run_tool (command_names[i], "--help");
      g_autofree char *usage = g_strdup_printf ("execnet-tool %s", command_names[i]);

      g_assert_cmpint (help->status, ==, TOOL_EXIT_OK);
      g_assert_cmpint (dash_help->status, ==, TOOL_EXIT_OK);
      g_assert_cmpstr (help->out, ==, dash_help->out);
      assert_contains (help->out, usage);
    }
}

static void
test_exec_round_trip (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) run = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("exec", spec, "-c",
                  "channel.send(channel.receive() + 1)\n"
                  "channel.send(channel.receive())\n"
                  "channel.send([None, 'a', 2.5])",
                  "--send", "41", "--send", "('a', [1, 2])");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (run->out, ==,
                   "int64 42\n"
                   "('a', [<int64 1>, <int64 2>])\n"
                   "[<@mv nothing>, <'a'>, <2.5>]\n");
  g_assert_cmpstr (run->err, ==, "");
}

static void
test_exec_json (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) run = NULL;
  g_auto(GStrv) lines = NULL;
  g_autoptr(JsonNode) first = NULL;
  g_autoptr(JsonNode) second = NULL;
  JsonArray *array;
  JsonObject *object;

  if (skip_without_tool ())
    return;

  run = run_tool ("exec", spec, "--json", "-c",
                  "channel.send(channel.receive())\n"
                  "channel.send({'k': [1, None], 'b': b'xy'})",
                  "--send", "('a', [1, 2])");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_OK);

  lines = split_lines (run->out);
  g_assert_cmpuint (g_strv_length (lines), ==, 2);

  first = parse_json (lines[0]);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (first));
  array = json_node_get_array (first);
  g_assert_cmpuint (json_array_get_length (array), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (array, 0), ==, "a");
  g_assert_cmpint (json_array_get_int_element (json_array_get_array_element (array, 1), 1), ==, 2);

  second = parse_json (lines[1]);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (second));
  object = json_node_get_object (second);
  array = json_object_get_array_member (object, "k");
  g_assert_cmpint (json_array_get_int_element (array, 0), ==, 1);
  g_assert_true (json_array_get_null_element (array, 1));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (object, "b"), "$bytes"),
                   ==, "eHk=");
}

/* --json is exact: integers beyond int64, floats that read back the same,
 * NaN and infinities and bytes in their documented forms; errors are JSON
 * on stderr; --json=pretty indents. */
static void
test_exec_json_exact (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) run = NULL;
  g_autoptr(Run) pretty = NULL;
  g_autoptr(Run) failed = NULL;
  g_autoptr(Run) bad = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(JsonNode) error_root = NULL;
  JsonObject *error_object;

  if (skip_without_tool ())
    return;

  run = run_tool ("exec", spec, "--json", "-c",
                  "channel.send([2**63, 2**64 - 1, -2**63, 0.1, 3.0, 1e300,\n"
                  "              float('nan'), float('inf'), -float('inf'),\n"
                  "              b'\\x00\\xff', 'a\"\\n\\x01', {1: 2}, (True, None)])");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (run->out, ==,
                   "[9223372036854775808,18446744073709551615,-9223372036854775808,"
                   "0.10000000000000001,3.0,1.0000000000000001e+300,"
                   "{\"$float\":\"nan\"},{\"$float\":\"inf\"},{\"$float\":\"-inf\"},"
                   "{\"$bytes\":\"AP8=\"},\"a\\\"\\n\\u0001\",[[1,2]],[true,null]]\n");
  root = parse_json (run->out);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));

  pretty = run_tool ("exec", spec, "--json=pretty", "-c", "channel.send({'a': [1]})");
  g_assert_cmpint (pretty->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (pretty->out, ==, "{\n  \"a\": [\n    1\n  ]\n}\n");

  failed = run_tool ("exec", spec, "--json", "-c", "raise ValueError('no')");
  g_assert_cmpint (failed->status, ==, TOOL_EXIT_REMOTE_ERROR);
  g_assert_cmpstr (failed->out, ==, "");
  error_root = parse_json (failed->err);
  error_object = json_object_get_object_member (json_node_get_object (error_root), "error");
  g_assert_nonnull (error_object);
  g_assert_cmpint (json_object_get_int_member (error_object, "exit_status"), ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (json_object_get_string_member (error_object, "message"), "ValueError: no");
  g_assert_cmpstr (json_object_get_string_member (error_object, "command"), ==, "exec");

  bad = run_tool ("exec", spec, "--json=ugly", "-c", "pass");
  g_assert_cmpint (bad->status, ==, TOOL_EXIT_USAGE);
}

static void
test_exec_file (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) input = NULL;
  g_autoptr(Run) from_file = NULL;
  g_autoptr(Run) from_stdin = NULL;
  int fd;

  if (skip_without_tool ())
    return;

  fd = g_file_open_tmp ("test-tool-XXXXXX.py", &path, &error);
  g_assert_no_error (error);
  close (fd);
  g_file_set_contents (path, "import sys\nchannel.send(sys.version_info[0])\n", -1, &error);
  g_assert_no_error (error);

  from_file = run_tool ("exec", spec, path);
  g_assert_cmpint (from_file->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (from_file->out, ==, "int64 3\n");
  g_unlink (path);

  input = g_bytes_new_static ("channel.send('from stdin')\n", strlen ("channel.send('from stdin')\n"));
  from_stdin = run_tool_with_input (input, (const char * const []) { "exec", spec, "-", NULL });
  g_assert_cmpint (from_stdin->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (from_stdin->out, ==, "'from stdin'\n");
}

static void
test_exec_remote_error (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) run = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("exec", spec, "-c", "channel.send(1)\n1/0");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_REMOTE_ERROR);
  /* What came before the error is still shown. */
  g_assert_cmpstr (run->out, ==, "int64 1\n");
  assert_contains (run->err, "Traceback");
  assert_contains (run->err, "ZeroDivisionError");
}

/* The remote code runs for much longer than the timeout: the tool gives up
 * at the timeout and leaves no remote process behind. */
static void
test_exec_timeout (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) run = NULL;
  gint64 start, pid;

  if (skip_without_tool ())
    return;

  start = g_get_monotonic_time ();
  run = run_tool ("exec", spec, "--timeout", "1", "-c",
                  "import os, time\nchannel.send(os.getpid())\ntime.sleep(60)");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 20 * G_USEC_PER_SEC);
  assert_contains (run->err, "timed out");

  g_assert_true (g_str_has_prefix (run->out, "int64 "));
  pid = g_ascii_strtoll (run->out + strlen ("int64 "), NULL, 10);
  g_assert_cmpint (pid, >, 1);
  test_assert_pid_gone (pid, 5.0);
}

static void
test_exec_bad_spec (void)
{
  g_autoptr(Run) no_key = NULL;
  g_autoptr(Run) space = NULL;

  if (skip_without_tool ())
    return;

  no_key = run_tool ("exec", "popen//=x", "-c", "pass");
  g_assert_cmpint (no_key->status, ==, TOOL_EXIT_USAGE);
  /* Messages are in the locale's charset: the quotes may be lost. */
  assert_contains (no_key->err, "=x");
  g_assert_cmpstr (no_key->out, ==, "");

  space = run_tool ("exec", "popen// id=w1", "-c", "pass");
  g_assert_cmpint (space->status, ==, TOOL_EXIT_USAGE);
  assert_contains (space->err, " id");
  assert_contains (space->err, "whitespace");
}

static void
test_exec_unknown_scheme (void)
{
  g_autoptr(Run) run = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("exec", "nosuchtransport//id=x", "-c", "pass");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_UNKNOWN_TRANSPORT);
  assert_contains (run->err, "nosuchtransport");
  assert_contains (run->err, "popen");
}

static void
test_exec_connect_error (void)
{
  g_autoptr(Run) run = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("exec", "popen//python=/nonexistent/python3", "-c", "pass");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_CONNECT);
  assert_contains (run->err, "/nonexistent/python3");
}

static void
test_exec_usage (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) no_code = NULL;
  g_autoptr(Run) two_codes = NULL;
  g_autoptr(Run) bad_value = NULL;
  g_autoptr(Run) no_file = NULL;
  g_autoptr(Run) endless = NULL;
  g_autoptr(Run) bad_option = NULL;

  if (skip_without_tool ())
    return;

  no_code = run_tool ("exec", spec);
  g_assert_cmpint (no_code->status, ==, TOOL_EXIT_USAGE);

  two_codes = run_tool ("exec", spec, "-c", "pass", "file.py");
  g_assert_cmpint (two_codes->status, ==, TOOL_EXIT_USAGE);

  bad_value = run_tool ("exec", spec, "-c", "pass", "--send", "(1,");
  g_assert_cmpint (bad_value->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad_value->err, "(1,");

  no_file = run_tool ("exec", spec, "/nonexistent/code.py");
  g_assert_cmpint (no_file->status, ==, TOOL_EXIT_USAGE);
  assert_contains (no_file->err, "/nonexistent/code.py");

  bad_option = run_tool ("exec", spec, "--frobnicate");
  g_assert_cmpint (bad_option->status, ==, TOOL_EXIT_USAGE);
}

static void
test_spec_text (void)
{
  g_autoptr(Run) run = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("spec", "popen//id=w1//python=python3 -X dev//env:LANG=C.UTF-8//dont_write_bytecode");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_OK);
  assert_contains (run->out, "scheme: popen\n");
  assert_contains (run->out, "id: w1\n");
  assert_contains (run->out, "  python = python3 -X dev\n");
  assert_contains (run->out, "  dont_write_bytecode\n");
  assert_contains (run->out, "  LANG=C.UTF-8\n");
  assert_contains (run->out, "'-B'");
  assert_contains (run->out, "libexecnet-popen.so\n");
  assert_contains (run->out, "search path:\n");
}

static void
test_spec_json (void)
{
  g_autoptr(Run) run = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;
  JsonObject *options;

  if (skip_without_tool ())
    return;

  run = run_tool ("spec", "--json", "popen//chdir=work//env:A=1");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_OK);

  root = parse_json (run->out);
  object = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (object, "scheme"), ==, "popen");
  g_assert_true (json_object_get_null_member (object, "id"));
  options = json_object_get_object_member (object, "options");
  g_assert_cmpstr (json_object_get_string_member (options, "popen"), ==, "");
  g_assert_cmpstr (json_object_get_string_member (options, "chdir"), ==, "work");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (object, "env"), "A"),
                   ==, "1");
  g_assert_true (g_str_has_suffix (json_object_get_string_member (object, "module"),
                                   "libexecnet-popen.so"));
  g_assert_cmpuint (json_array_get_length (json_object_get_array_member (object, "search_path")), >=, 1);
}

static void
test_spec_errors (void)
{
  g_autoptr(Run) bad_key = NULL;
  g_autoptr(Run) no_scheme = NULL;
  g_autoptr(Run) unknown = NULL;
  g_autoptr(Run) bad_python = NULL;

  if (skip_without_tool ())
    return;

  bad_key = run_tool ("spec", "popen//ch$dir=x");
  g_assert_cmpint (bad_key->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad_key->err, "ch$dir");

  no_scheme = run_tool ("spec", "python=python3");
  g_assert_cmpint (no_scheme->status, ==, TOOL_EXIT_USAGE);
  assert_contains (no_scheme->err, "names no transport");

  unknown = run_tool ("spec", "nosuchtransport=host");
  g_assert_cmpint (unknown->status, ==, TOOL_EXIT_UNKNOWN_TRANSPORT);
  assert_contains (unknown->err, "nosuchtransport");
  assert_contains (unknown->err, "popen");

  bad_python = run_tool ("spec", "popen//python=python3 \"-X");
  g_assert_cmpint (bad_python->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad_python->err, "python=");
}

/* A key no transport knows is refused as making a gateway refuses it,
 * with the key meant. */
static void
test_spec_did_you_mean (void)
{
  g_autoptr(Run) popen = NULL;
  g_autoptr(Run) listed = NULL;

  if (skip_without_tool ())
    return;

  popen = run_tool ("spec", "popen//chdri=work");
  g_assert_cmpint (popen->status, ==, TOOL_EXIT_USAGE);
  assert_contains (popen->err, "does not know the key “chdri”; did you mean chdir?");

  listed = run_tool ("spec", "--list-keys", "popen");
  g_assert_cmpint (listed->status, ==, TOOL_EXIT_OK);
  assert_matches (listed->out, "^popen$");
  assert_matches (listed->out, "^chdir$");
  assert_matches (listed->out, "^env:$");
}

/* A socket spec: the server it would connect to, the token file it reads. */
static void
test_spec_socket (void)
{
  g_autoptr(Run) run = NULL;
  g_autoptr(Run) bad = NULL;
  g_autofree char *token_line = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("spec", "socket=[::1]:8888//token_file=~/tok//connect_timeout=4//keepalive=20");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_OK);
  assert_contains (run->out, "socket resolves to:\n  hostname ::1\n  port 8888\n");
  token_line = g_strdup_printf ("  tokenfile %s/tok\n", g_get_home_dir ());
  assert_contains (run->out, token_line);
  assert_contains (run->out, "  connecttimeout 4.0\n  keepalive 20\n");

  bad = run_tool ("spec", "socket=localhost:http");
  g_assert_cmpint (bad->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad->err, "is not HOST:PORT");

  g_clear_pointer (&bad, run_free);
  bad = run_tool ("spec", "socket=localhost:8888//keepalive=-1");
  g_assert_cmpint (bad->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad->err, "keepalive=-1 is not a whole number of seconds");
}

/* An ssh spec resolved through the ssh_config= file, as the ssh plugin
 * resolves it when it connects: ssh -G's view of the destination. */
static void
test_spec_ssh (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("execnet-tool-spec-XXXXXX", &error);
  g_autofree char *config = NULL;
  g_autofree char *key = NULL;
  g_autofree char *config_text = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *jump_spec = NULL;
  g_autofree char *typo_spec = NULL;
  g_autofree char *bad_spec = NULL;
  g_autofree char *key_line = NULL;
  g_autoptr(Run) text = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(Run) jump = NULL;
  g_autoptr(Run) typo = NULL;
  g_autoptr(Run) bad = NULL;
  g_autoptr(Run) keys = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *resolved;
  JsonArray *array;

  if (skip_without_tool ())
    return;
  keys = run_tool ("spec", "--list-keys", "ssh");
  if (keys->status == TOOL_EXIT_UNKNOWN_TRANSPORT)
    {
      g_test_skip ("the ssh transport was not built (no libssh)");
      g_rmdir (dir);
      return;
    }
  g_assert_cmpint (keys->status, ==, TOOL_EXIT_OK);
  assert_matches (keys->out, "^ssh_config$");

  g_assert_no_error (error);
  config = g_build_filename (dir, "ssh_config", NULL);
  key = g_build_filename (dir, "extra_key", NULL);
  config_text = g_strdup_printf ("Host alias\n"
                                 "  HostName real.example.org\n"
                                 "  User bob\n"
                                 "  Port 2222\n"
                                 "  IdentityFile %s/alias_key\n"
                                 "  ProxyJump jumper@hop1:2200,hop2\n",
                                 dir);
  g_file_set_contents (config, config_text, -1, &error);
  g_assert_no_error (error);
  g_file_set_contents (key, "not a key, never read\n", -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (key, 0600), ==, 0);

  spec = g_strdup_printf ("ssh=-i %s alias//ssh_config=%s//chdir=work", key, config);
  text = run_tool ("spec", spec);
  g_assert_cmpint (text->status, ==, TOOL_EXIT_OK);
  assert_contains (text->out, "ssh resolves to:\n");
  assert_contains (text->out, "  destination alias\n");
  assert_contains (text->out, "  hostname real.example.org\n");
  assert_contains (text->out, "  user bob\n");
  assert_contains (text->out, "  port 2222\n");
  key_line = g_strdup_printf ("  identityfile %s/alias_key\n  identityfile %s\n", dir, key);
  assert_contains (text->out, key_line);
  assert_contains (text->out, "  proxyjump jumper@hop1:2200\n  proxyjump hop2\n");

  json = run_tool ("spec", "--json", spec);
  g_assert_cmpint (json->status, ==, TOOL_EXIT_OK);
  root = parse_json (json->out);
  resolved = json_object_get_object_member (json_node_get_object (root), "resolved");
  g_assert_cmpstr (json_object_get_string_member (resolved, "hostname"), ==, "real.example.org");
  g_assert_cmpstr (json_object_get_string_member (resolved, "user"), ==, "bob");
  g_assert_cmpint (json_object_get_int_member (resolved, "port"), ==, 2222);
  array = json_object_get_array_member (resolved, "identityfile");
  g_assert_cmpuint (json_array_get_length (array), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (array, 1), ==, key);
  array = json_object_get_array_member (resolved, "proxyjump");
  g_assert_cmpuint (json_array_get_length (array), ==, 2);
  g_assert_cmpstr (json_array_get_string_element (array, 0), ==, "jumper@hop1:2200");

  /* The spec's own words win over the config, as on ssh's command line. */
  jump_spec = g_strdup_printf ("ssh=-J me@front -p 22 -l carol alias//ssh_config=%s", config);
  jump = run_tool ("spec", jump_spec);
  g_assert_cmpint (jump->status, ==, TOOL_EXIT_OK);
  assert_contains (jump->out, "  user carol\n");
  assert_contains (jump->out, "  port 22\n");
  assert_contains (jump->out, "  proxyjump me@front\n");
  g_assert_null (strstr (jump->out, "hop2"));

  typo_spec = g_strdup_printf ("ssh=alias//ssh_confg=%s", config);
  typo = run_tool ("spec", typo_spec);
  g_assert_cmpint (typo->status, ==, TOOL_EXIT_USAGE);
  assert_contains (typo->err, "did you mean ssh_config?");

  bad_spec = g_strdup_printf ("ssh=alias//ssh_config=%s/missing", dir);
  bad = run_tool ("spec", bad_spec);
  g_assert_cmpint (bad->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad->err, "does not exist");

  g_unlink (key);
  g_unlink (config);
  g_rmdir (dir);
}

static void
test_transports (void)
{
  g_autoptr(Run) text = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *transports;
  gboolean found = FALSE;

  if (skip_without_tool ())
    return;

  text = run_tool ("transports");
  g_assert_cmpint (text->status, ==, TOOL_EXIT_OK);
  g_assert_true (g_str_has_prefix (text->out, "popen ") || strstr (text->out, "\npopen ") != NULL);
  assert_contains (text->out, "libexecnet-popen.so");
  assert_contains (text->out, "search path:");

  json = run_tool ("transports", "--json");
  g_assert_cmpint (json->status, ==, TOOL_EXIT_OK);
  root = parse_json (json->out);
  transports = json_object_get_array_member (json_node_get_object (root), "transports");
  for (guint i = 0; i < json_array_get_length (transports); i++)
    {
      JsonObject *transport = json_array_get_object_element (transports, i);

      if (g_strcmp0 (json_object_get_string_member (transport, "scheme"), "popen") == 0)
        {
          found = TRUE;
          g_assert_true (g_str_has_suffix (json_object_get_string_member (transport, "module"),
                                           "libexecnet-popen.so"));
        }
    }
  g_assert_true (found);
}

/* The plugins of tests/loader that fail in chosen ways, in front of the
 * real ones: --check names each failure and why. */
static void
test_transports_check (void)
{
  const char *broken_dir = g_getenv ("EXECNET_TEST_LOADER_FIRST");
  g_autofree char *saved_path = g_strdup (g_getenv ("EXECNET_TRANSPORT_PATH"));
  g_autofree char *path = NULL;
  g_autoptr(Run) good = NULL;
  g_autoptr(Run) text = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *transports;
  guint n_failed = 0;

  if (skip_without_tool ())
    return;
  if (broken_dir == NULL)
    {
      g_test_skip ("EXECNET_TEST_LOADER_FIRST is not set to the broken test plugins");
      return;
    }

  good = run_tool ("transports", "--check");
  g_assert_cmpint (good->status, ==, TOOL_EXIT_OK);
  assert_matches (good->out, "^popen +ok +.*libexecnet-popen\\.so$");

  path = g_strjoin (G_SEARCHPATH_SEPARATOR_S, broken_dir, saved_path, NULL);
  g_setenv ("EXECNET_TRANSPORT_PATH", path, TRUE);
  text = run_tool ("transports", "--check");
  json = run_tool ("transports", "--check", "--json");
  if (saved_path != NULL)
    g_setenv ("EXECNET_TRANSPORT_PATH", saved_path, TRUE);
  else
    g_unsetenv ("EXECNET_TRANSPORT_PATH");

  g_assert_cmpint (text->status, ==, TOOL_EXIT_UNKNOWN_TRANSPORT);
  assert_matches (text->out, "^popen +ok ");
  assert_matches (text->out, "^twice +ok ");
  assert_matches (text->out, "^noentry +FAILED +.*libexecnet-noentry\\.so$");
  assert_contains (text->out, "has no g_io_execnet_noentry_load() function");
  assert_matches (text->out, "^unresolved +FAILED ");
  assert_contains (text->out, "cannot be loaded: ");
  assert_matches (text->out, "^nothing +FAILED ");
  assert_contains (text->out, "registered no transport for “nothing”");
  assert_contains (text->err, "3 of ");

  g_assert_cmpint (json->status, ==, TOOL_EXIT_UNKNOWN_TRANSPORT);
  root = parse_json (json->out);
  transports = json_object_get_array_member (json_node_get_object (root), "transports");
  for (guint i = 0; i < json_array_get_length (transports); i++)
    {
      JsonObject *transport = json_array_get_object_element (transports, i);
      const char *scheme = json_object_get_string_member (transport, "scheme");
      gboolean broken = g_strv_contains ((const char * const []) { "noentry", "unresolved", "nothing", NULL },
                                         scheme);

      g_assert_cmpint (json_object_get_boolean_member (transport, "loads"), ==, !broken);
      if (broken)
        {
          g_assert_cmpstr (json_object_get_string_member (transport, "error"), !=, NULL);
          n_failed++;
        }
      else
        g_assert_true (json_object_get_null_member (transport, "error"));
    }
  g_assert_cmpuint (n_failed, ==, 3);
}

static void
test_status (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) text = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;

  if (skip_without_tool ())
    return;

  text = run_tool ("status", spec);
  g_assert_cmpint (text->status, ==, TOOL_EXIT_OK);
  assert_contains (text->out, "numchannels: ");
  assert_contains (text->out, "numexecuting: 0\n");
  assert_contains (text->out, "execmodel: thread\n");

  json = run_tool ("status", "--json", spec);
  g_assert_cmpint (json->status, ==, TOOL_EXIT_OK);
  root = parse_json (json->out);
  object = json_node_get_object (root);
  g_assert_cmpint (json_object_get_int_member (object, "numexecuting"), ==, 0);
  g_assert_cmpstr (json_object_get_string_member (object, "execmodel"), ==, "thread");
}

static void
test_info (void)
{
  g_autofree char *spec = test_spec ("chdir=.");
  g_autoptr(Run) text = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;

  if (skip_without_tool ())
    return;

  text = run_tool ("info", spec);
  g_assert_cmpint (text->status, ==, TOOL_EXIT_OK);
  assert_contains (text->out, "executable: ");
  assert_contains (text->out, "version_info: (3, ");
  assert_contains (text->out, "pid: ");

  json = run_tool ("info", "--json", spec);
  g_assert_cmpint (json->status, ==, TOOL_EXIT_OK);
  root = parse_json (json->out);
  object = json_node_get_object (root);
  g_assert_cmpint (json_object_get_int_member (object, "pid"), >, 1);
  g_assert_cmpint (json_array_get_int_element (json_object_get_array_member (object, "version_info"), 0),
                   ==, 3);
  g_assert_nonnull (json_object_get_string_member (object, "executable"));
}

static void
test_status_errors (void)
{
  g_autoptr(Run) unknown = NULL;
  g_autoptr(Run) bad = NULL;
  g_autoptr(Run) no_python = NULL;

  if (skip_without_tool ())
    return;

  unknown = run_tool ("status", "nosuchtransport");
  g_assert_cmpint (unknown->status, ==, TOOL_EXIT_UNKNOWN_TRANSPORT);
  bad = run_tool ("info", "popen////id=x");
  g_assert_cmpint (bad->status, ==, TOOL_EXIT_USAGE);
  no_python = run_tool ("info", "popen//python=/nonexistent/python3");
  g_assert_cmpint (no_python->status, ==, TOOL_EXIT_CONNECT);
}

/* rsync SRC SPEC:DEST SPEC:DEST: both copies made, files listed; a second
 * run sends nothing; a missing source and a bad target are errors. */
static void
test_rsync (void)
{
  static const char * const removals[] = {
    "src/sub/f.txt", "src/sub", "src", "d0/sub/f.txt", "d0/sub", "d0",
    "d1/sub/f.txt", "d1/sub", "d1", NULL
  };
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *base = NULL;
  g_autofree char *src = NULL, *sub = NULL, *file = NULL, *target0 = NULL, *target1 = NULL, *copy = NULL;
  g_autofree char *missing = NULL, *blocked = NULL, *contents = NULL;
  g_autoptr(Run) first = NULL;
  g_autoptr(Run) again = NULL;
  g_autoptr(Run) no_source = NULL;
  g_autoptr(Run) bad_target = NULL;
  g_autoptr(Run) no_dest = NULL;

  if (skip_without_tool ())
    return;

  base = g_dir_make_tmp ("execnet-tool-rsync-XXXXXX", &error);
  g_assert_no_error (error);
  src = g_build_filename (base, "src", NULL);
  file = g_build_filename (src, "sub", "f.txt", NULL);
  sub = g_build_filename (src, "sub", NULL);
  g_assert_cmpint (g_mkdir_with_parents (sub, 0755), ==, 0);
  g_assert_true (g_file_set_contents (file, "tool\n", -1, NULL));
  target0 = g_strdup_printf ("%s:%s/d0", spec, base);
  target1 = g_strdup_printf ("%s:%s/d1", spec, base);

  first = run_tool ("rsync", src, target0, target1);
  g_assert_cmpint (first->status, ==, TOOL_EXIT_OK);
  assert_contains (first->out, "gw0: sub/f.txt (5 bytes)\n");
  assert_contains (first->out, "gw1: sub/f.txt (5 bytes)\n");
  copy = g_build_filename (base, "d1", "sub", "f.txt", NULL);
  g_assert_true (g_file_get_contents (copy, &contents, NULL, NULL));
  g_assert_cmpstr (contents, ==, "tool\n");

  again = run_tool ("rsync", "--delete", src, target0);
  g_assert_cmpint (again->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (again->out, ==, "");

  missing = g_build_filename (base, "missing", NULL);
  no_source = run_tool ("rsync", missing, target0);
  g_assert_cmpint (no_source->status, ==, TOOL_EXIT_USAGE);
  assert_contains (no_source->err, "give an existing local directory");

  blocked = g_strdup_printf ("%s:%s/x", spec, file);
  bad_target = run_tool ("rsync", src, blocked);
  g_assert_cmpint (bad_target->status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (bad_target->err, "cannot create the destination directory");

  no_dest = run_tool ("rsync", src, "popen");
  g_assert_cmpint (no_dest->status, ==, TOOL_EXIT_USAGE);
  assert_contains (no_dest->err, "is not SPEC:DEST");

  for (const char *const *d = removals; *d != NULL; d++)
    {
      g_autofree char *path = g_build_filename (base, *d, NULL);

      g_remove (path);
    }
  g_rmdir (base);
}

static void
test_probe (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) text = NULL;
  g_autoptr(Run) json = NULL;
  g_autoptr(Run) bad_count = NULL;
  g_autoptr(JsonNode) summary = NULL;
  g_auto(GStrv) lines = NULL;
  JsonObject *phases;

  if (skip_without_tool ())
    return;

  text = run_tool ("probe", "-n", "2", spec);
  g_assert_cmpint (text->status, ==, TOOL_EXIT_OK);
  assert_contains (text->out, "run 1:");
  assert_contains (text->out, "run 2:");
  assert_contains (text->out, "\nstart ");
  assert_contains (text->out, "\n  transport ");
  assert_contains (text->out, "\n  bootstrap ");
  assert_contains (text->out, "\nround trip ");
  assert_contains (text->out, "\nterminate ");

  json = run_tool ("probe", "--count=3", "--json", spec);
  g_assert_cmpint (json->status, ==, TOOL_EXIT_OK);
  lines = split_lines (json->out);
  g_assert_cmpuint (g_strv_length (lines), ==, 4);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(JsonNode) run = parse_json (lines[i]);
      JsonObject *object = json_node_get_object (run);

      g_assert_cmpint (json_object_get_int_member (object, "run"), ==, i + 1);
      g_assert_cmpint (json_object_get_int_member (object, "start_us"), >, 0);
      /* The two parts of the start are within it. */
      g_assert_cmpint (json_object_get_int_member (object, "transport_us"), >, 0);
      g_assert_cmpint (json_object_get_int_member (object, "bootstrap_us"), >, 0);
      g_assert_cmpint (json_object_get_int_member (object, "transport_us") +
                       json_object_get_int_member (object, "bootstrap_us"), <=,
                       json_object_get_int_member (object, "start_us"));
      g_assert_cmpint (json_object_get_int_member (object, "round_trip_us"), >, 0);
      g_assert_true (json_object_has_member (object, "terminate_us"));
    }
  summary = parse_json (lines[3]);
  phases = json_object_get_object_member (json_node_get_object (summary), "summary");
  for (guint i = 0; i < 5; i++)
    {
      const char *name = (const char *[]) { "start", "transport", "bootstrap", "round_trip", "terminate" }[i];
      JsonObject *phase = json_object_get_object_member (phases, name);

      g_assert_nonnull (phase);
      g_assert_cmpint (json_object_get_int_member (phase, "min_us"), <=,
                       json_object_get_int_member (phase, "median_us"));
      g_assert_cmpint (json_object_get_int_member (phase, "median_us"), <=,
                       json_object_get_int_member (phase, "max_us"));
    }

  bad_count = run_tool ("probe", "-n", "0", spec);
  g_assert_cmpint (bad_count->status, ==, TOOL_EXIT_USAGE);
}

static void
test_trace_text (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) run = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("trace", spec, "-c", "channel.send(channel.receive() * 2)", "--send", "int64 21");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_OK);
  assert_contains (run->out, "-> CHANNEL_EXEC channel=1 ");
  assert_contains (run->out, "'channel.send(channel.receive() * 2)'");
  assert_matches (run->out, "-> CHANNEL_DATA channel=1 length=[0-9]+ int64 21$");
  assert_matches (run->out, "<- CHANNEL_DATA channel=1 length=[0-9]+ int64 42$");
  assert_contains (run->out, "<- CHANNEL_CLOSE channel=1 ");
  assert_contains (run->out, "-> GATEWAY_TERMINATE ");
  /* The wire lines of the library do not leak to stderr. */
  g_assert_null (strstr (run->err, "CHANNEL_DATA"));
}

/* Finds the first frame record with @direction and @message. */
static JsonObject *
find_frame (GPtrArray  *records,
            const char *direction,
            const char *message)
{
  for (guint i = 0; i < records->len; i++)
    {
      JsonObject *record = json_node_get_object (g_ptr_array_index (records, i));

      if (json_object_has_member (record, "message") &&
          g_strcmp0 (json_object_get_string_member (record, "direction"), direction) == 0 &&
          g_strcmp0 (json_object_get_string_member (record, "message"), message) == 0)
        return record;
    }
  return NULL;
}

static void
test_trace_values (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(Run) run = NULL;
  g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func ((GDestroyNotify) json_node_unref);
  g_auto(GStrv) lines = NULL;
  JsonObject *record;
  gint64 last_time = -1;
  guint n_in = 0;

  if (skip_without_tool ())
    return;

  run = run_tool ("trace", "--json", spec, "-c",
                  "x = channel.receive()\n"
                  "for i in range(200):\n"
                  "    channel.send(x + i)\n"
                  "1/0",
                  "--send", "1000");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (run->err, "ZeroDivisionError");

  lines = split_lines (run->out);
  for (guint i = 0; lines[i] != NULL; i++)
    g_ptr_array_add (records, parse_json (lines[i]));

  for (guint i = 0; i < records->len; i++)
    {
      gint64 time;

      record = json_node_get_object (g_ptr_array_index (records, i));
      time = json_object_get_int_member (record, "time_us");
      g_assert_cmpint (time, >=, last_time);
      last_time = time;

      /* Every item received is matched to its frame, in order. */
      if (g_strcmp0 (json_object_get_string_member_with_default (record, "direction", ""), "in") == 0 &&
          g_strcmp0 (json_object_get_string_member (record, "message"), "CHANNEL_DATA") == 0)
        {
          g_assert_cmpint (json_object_get_int_member (record, "channel"), ==, 1);
          g_assert_cmpint (json_object_get_int_member (record, "value"), ==, 1000 + n_in);
          n_in++;
        }
    }
  g_assert_cmpuint (n_in, ==, 200);

  record = find_frame (records, "out", "CHANNEL_EXEC");
  g_assert_nonnull (record);
  assert_contains (json_object_get_string_member (record, "value"), "channel.receive()");
  g_assert_cmpstr (json_object_get_string_member (record, "gateway"), !=, "");

  record = find_frame (records, "out", "CHANNEL_DATA");
  g_assert_nonnull (record);
  g_assert_cmpint (json_object_get_int_member (record, "value"), ==, 1000);

  record = find_frame (records, "in", "CHANNEL_CLOSE_ERROR");
  g_assert_nonnull (record);
  assert_contains (json_object_get_string_member (record, "value"), "ZeroDivisionError");
}

/* Colours: on a terminal by default, never with NO_COLOR or --color=never,
 * always with --color=always even into a pipe or with NO_COLOR. */
static void
test_trace_color (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *code = "channel.send(channel.receive() * 2)\nchannel.close('failed on purpose')";
  g_autofree char *terminal = NULL;
  g_autofree char *no_color = NULL;
  g_autofree char *never = NULL;
  g_autoptr(Run) always = NULL;
  g_autoptr(Run) always_no_color = NULL;
  g_autoptr(Run) piped = NULL;
  g_autoptr(Run) bad = NULL;
  g_autofree char *saved_no_color = g_strdup (g_getenv ("NO_COLOR"));
  g_autofree char *saved_term = g_strdup (g_getenv ("TERM"));
  int status;

  if (skip_without_tool ())
    return;

  g_unsetenv ("NO_COLOR");
  g_setenv ("TERM", "xterm", TRUE);
  terminal = run_tool_on_terminal (&status, (const char * const []) { "trace", spec, "-c", code, "--send", "21", NULL });
  g_assert_cmpint (status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (terminal, "\033[36m-> CHANNEL_EXEC\033[0m");
  assert_contains (terminal, "\033[32m<- CHANNEL_DATA\033[0m");
  assert_contains (terminal, "\033[1;31m<- CHANNEL_CLOSE_ERROR\033[0m");
  assert_contains (terminal, "\033[1;31m'failed on purpose'\033[0m");

  never = run_tool_on_terminal (&status, (const char * const []) { "trace", "--color=never", spec, "-c", code, "--send", "21", NULL });
  g_assert_cmpint (status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (never, "<- CHANNEL_CLOSE_ERROR");
  g_assert_null (strchr (never, '\033'));

  g_setenv ("NO_COLOR", "1", TRUE);
  no_color = run_tool_on_terminal (&status, (const char * const []) { "trace", spec, "-c", code, "--send", "21", NULL });
  g_assert_cmpint (status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (no_color, "<- CHANNEL_CLOSE_ERROR");
  g_assert_null (strchr (no_color, '\033'));

  always_no_color = run_tool ("trace", "--color=always", spec, "-c", code, "--send", "21");
  g_assert_cmpint (always_no_color->status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (always_no_color->out, "\033[36m-> CHANNEL_DATA\033[0m");
  g_unsetenv ("NO_COLOR");

  always = run_tool ("trace", "--color=always", spec, "-c", code, "--send", "21");
  g_assert_cmpint (always->status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (always->out, "\033[32m<- CHANNEL_DATA\033[0m");

  piped = run_tool ("trace", spec, "-c", code, "--send", "21");
  g_assert_cmpint (piped->status, ==, TOOL_EXIT_REMOTE_ERROR);
  assert_contains (piped->out, "<- CHANNEL_CLOSE_ERROR");
  g_assert_null (strchr (piped->out, '\033'));

  bad = run_tool ("trace", "--color=sometimes", spec, "-c", code);
  g_assert_cmpint (bad->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad->err, "--color=sometimes");

  if (saved_no_color != NULL)
    g_setenv ("NO_COLOR", saved_no_color, TRUE);
  if (saved_term != NULL)
    g_setenv ("TERM", saved_term, TRUE);
  else
    g_unsetenv ("TERM");
}

static void
test_trace_errors (void)
{
  g_autoptr(Run) unknown = NULL;
  g_autoptr(Run) no_code = NULL;

  if (skip_without_tool ())
    return;

  unknown = run_tool ("trace", "nosuchtransport", "-c", "pass");
  g_assert_cmpint (unknown->status, ==, TOOL_EXIT_UNKNOWN_TRANSPORT);
  assert_contains (unknown->err, "nosuchtransport");

  no_code = run_tool ("trace", "popen");
  g_assert_cmpint (no_code->status, ==, TOOL_EXIT_USAGE);
}

/* GVariant text in, execnet's format out, and back. */
static const char * const round_trip_values[] = {
  "int64 42",
  "'text with “quotes”'",
  "@mv nothing",
  "true",
  "2.5",
  "[byte 0x00, 0xff]",
  "('a', int64 1, [<int64 1>, <'b'>])",
  "{'k': <int64 1>, 'l': <[<true>]>}",
};

static void
test_serialize_round_trip (gconstpointer data)
{
  const char *text = data;
  g_autoptr(GVariant) value = g_variant_ref_sink (g_variant_new_parsed (text));
  g_autoptr(GVariant) loaded = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(Run) dumps = NULL;
  g_autoptr(Run) loads = NULL;

  if (skip_without_tool ())
    return;

  dumps = run_tool ("dumps", text);
  g_assert_cmpint (dumps->status, ==, TOOL_EXIT_OK);
  g_assert_cmpuint (g_bytes_get_size (dumps->output), >, 1);
  /* The version byte of execnet 2.x, then the value, then STOP. */
  g_assert_cmpint (((const guint8 *) g_bytes_get_data (dumps->output, NULL))[0], ==, 2);

  loads = run_tool_with_input (dumps->output, (const char * const []) { "loads", NULL });
  g_assert_cmpint (loads->status, ==, TOOL_EXIT_OK);
  /* Printed with types, so parsing the text gives the value back, and the
   * text is UTF-8 whatever the locale. */
  loaded = g_variant_parse (NULL, loads->out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpvariant (loaded, value);
}

static void
test_serialize_file_json (void)
{
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(Run) dumps = NULL;
  g_autoptr(Run) loads = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *array;

  if (skip_without_tool ())
    return;

  dir = g_dir_make_tmp ("test-tool-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (dir, "value.bin", NULL);

  dumps = run_tool ("dumps", "(int64 1, 'a', @mv nothing)", "-o", path);
  g_assert_cmpint (dumps->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (dumps->out, ==, "");

  loads = run_tool ("loads", "--json", path);
  g_assert_cmpint (loads->status, ==, TOOL_EXIT_OK);
  root = parse_json (loads->out);
  array = json_node_get_array (root);
  g_assert_cmpint (json_array_get_int_element (array, 0), ==, 1);
  g_assert_cmpstr (json_array_get_string_element (array, 1), ==, "a");
  g_assert_true (json_array_get_null_element (array, 2));

  g_unlink (path);
  g_rmdir (dir);
}

static void
test_serialize_errors (void)
{
  g_autoptr(GBytes) garbage = g_bytes_new_static ("garbage", 7);
  g_autoptr(Run) bad_text = NULL;
  g_autoptr(Run) bad_data = NULL;
  g_autoptr(Run) no_file = NULL;
  g_autoptr(Run) endless = NULL;

  if (skip_without_tool ())
    return;

  bad_text = run_tool ("dumps", "(1,");
  g_assert_cmpint (bad_text->status, ==, TOOL_EXIT_USAGE);
  assert_contains (bad_text->err, "(1,");

  bad_data = run_tool_with_input (garbage, (const char * const []) { "loads", "-", NULL });
  g_assert_cmpint (bad_data->status, ==, TOOL_EXIT_FAILURE);
  g_assert_cmpstr (bad_data->out, ==, "");
  g_assert_cmpstr (bad_data->err, !=, "");

  no_file = run_tool ("loads", "/nonexistent/value.bin");
  g_assert_cmpint (no_file->status, ==, TOOL_EXIT_USAGE);

  /* An endless input is refused after a bounded amount, not collected. */
  endless = run_tool ("loads", "/dev/zero");
  g_assert_cmpint (endless->status, ==, TOOL_EXIT_USAGE);
  assert_contains (endless->err, "larger than 64 MiB");
}

/* A --python that is not a shell command line is a usage error (2). */
static void
test_socketserver_bad_python (void)
{
  g_autoptr(Run) run = NULL;

  if (skip_without_tool ())
    return;

  run = run_tool ("socketserver", "--insecure", "--listen", "127.0.0.1:0", "--python", "'python3");
  g_assert_cmpint (run->status, ==, TOOL_EXIT_USAGE);
  assert_contains (run->err, "--python");
}

/* Data written by Python's execnet, when it is installed, loads. */
static void
test_serialize_python (void)
{
  const char *argv[] = {
    test_python (), "-c",
    "import sys, execnet\n"
    "sys.stdout.buffer.write(execnet.dumps([1, 'a', None, (2.5, b'xy')]))",
    NULL
  };
  g_autoptr(GSubprocess) python = NULL;
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(Run) loads = NULL;

  if (skip_without_tool ())
    return;

  python = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                              &error);
  g_assert_no_error (error);
  g_subprocess_communicate (python, NULL, NULL, &data, NULL, &error);
  g_assert_no_error (error);
  g_subprocess_wait (python, NULL, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_successful (python))
    {
      g_test_skip ("Python's execnet is not installed");
      return;
    }

  loads = run_tool_with_input (data, (const char * const []) { "loads", NULL });
  g_assert_cmpint (loads->status, ==, TOOL_EXIT_OK);
  g_assert_cmpstr (loads->out, ==,
                   "[<int64 1>, <'a'>, <@mv nothing>, <(2.5, [byte 0x78, 0x79])>]\n");
}

/* EXECNET_DEBUG keys do what the manual page says. */
static void
test_debug_keys (void)
{
  g_autoptr(Run) help = NULL;
  g_autoptr(Run) transport = NULL;

  if (skip_without_tool ())
    return;

  g_setenv ("EXECNET_DEBUG", "help", TRUE);
  help = run_tool ("exec", "popen", "-c", "channel.send(1)");
  g_unsetenv ("EXECNET_DEBUG");
  g_assert_cmpint (help->status, ==, 0);
  for (const char * const *key = (const char * const []) { "wire", "payload", "gateway",
                                                          "transport", "ssh", "phase", NULL };
       *key != NULL; key++)
    {
      g_autofree char *pattern = g_strdup_printf ("^Supported debug values:.* %s( |$)", *key);

      assert_matches (help->err, pattern);
    }

  /* transport: which plugin file, found through which search path entry. */
  g_setenv ("EXECNET_DEBUG", "transport", TRUE);
  transport = run_tool ("exec", "popen", "-c", "channel.send(1)");
  g_unsetenv ("EXECNET_DEBUG");
  g_assert_cmpint (transport->status, ==, 0);
  assert_matches (transport->err, "transport: popen: loading .*/libexecnet-popen\\.so, "
                                  "found through entry [0-9]+ of EXECNET_TRANSPORT_PATH, ");
  g_assert_null (strstr (transport->err, "gateway gw0"));
}

/* -v shows one line per phase of the start, with its time, for every
 * command that starts gateways; -vv every debug message of the library. */
static void
test_verbose (void)
{
  const char *phases[] = { "starting-python", "bootstrap", "ready", NULL };
  g_autoptr(Run) quiet = NULL;
  g_autoptr(Run) exec_run = NULL;
  g_autoptr(Run) status_run = NULL;
  g_autoptr(Run) very = NULL;
  const char *at;

  if (skip_without_tool ())
    return;

  quiet = run_tool ("exec", "popen", "-c", "channel.send(1)");
  g_assert_cmpint (quiet->status, ==, 0);
  g_assert_cmpstr (quiet->err, ==, "");

  exec_run = run_tool ("-v", "exec", "popen", "-c", "channel.send(1)");
  g_assert_cmpint (exec_run->status, ==, 0);
  g_assert_cmpstr (exec_run->out, ==, "int64 1\n");
  at = exec_run->err;
  for (guint i = 0; phases[i] != NULL; i++)
    {
      g_autofree char *line = g_strdup_printf (" s  gw0: %s: ", phases[i]);

      assert_contains (at, line);
      at = strstr (at, line);
    }
  assert_matches (exec_run->err, "^execnet-tool: +[0-9]+\\.[0-9]{3} s  gw0: ready: ");
  assert_contains (exec_run->err, "gw0: waiting for the code on channel 1 to send or end (no timeout");
  g_assert_null (strstr (exec_run->err, "transport: "));

  status_run = run_tool ("status", "-v", "popen");
  g_assert_cmpint (status_run->status, ==, 0);
  assert_contains (status_run->err, "gw0: bootstrap: ");

  very = run_tool ("exec", "-vv", "popen", "-c", "channel.send(1)");
  g_assert_cmpint (very->status, ==, 0);
  assert_contains (very->err, "transport: popen: loading ");
  assert_contains (very->err, "gateway: gateway gw0 ");
}

/* EXECNET_TOOL_TIMEOUT gives a waiting exec a default timeout. */
static void
test_exec_default_timeout (void)
{
  g_autoptr(Run) waiting = NULL;
  g_autoptr(Run) bad = NULL;

  if (skip_without_tool ())
    return;

  g_setenv ("EXECNET_TOOL_TIMEOUT", "1.5", TRUE);
  waiting = run_tool ("exec", "-v", "popen", "-c", "channel.receive()");
  g_setenv ("EXECNET_TOOL_TIMEOUT", "soon", TRUE);
  bad = run_tool ("exec", "popen", "-c", "channel.receive()");
  g_unsetenv ("EXECNET_TOOL_TIMEOUT");

  g_assert_cmpint (waiting->status, ==, 5);
  assert_contains (waiting->err, "waiting for the code on channel 1 to send or end (timeout 1.5 s in all)");
  assert_contains (waiting->err, "timed out after 1.5 seconds");
  g_assert_cmpint (bad->status, ==, 2);
  assert_contains (bad->err, "EXECNET_TOOL_TIMEOUT=soon is not a number of seconds");
}

/* A mistyped command gets a suggestion. */
static void
test_did_you_mean (void)
{
  g_autoptr(Run) typo = NULL;
  g_autoptr(Run) swapped = NULL;
  g_autoptr(Run) far = NULL;

  if (skip_without_tool ())
    return;

  typo = run_tool ("exce", "popen");
  swapped = run_tool ("tarce", "popen");
  far = run_tool ("frobnicate");
  g_assert_cmpint (typo->status, ==, TOOL_EXIT_USAGE);
  assert_contains (typo->err, "unknown command “exce”; did you mean “exec”?");
  assert_contains (swapped->err, "did you mean “trace”?");
  g_assert_cmpint (far->status, ==, TOOL_EXIT_USAGE);
  g_assert_null (strstr (far->err, "did you mean"));
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/tool/help/list", test_help);
  g_test_add_func ("/tool/help/command", test_help_command);
  g_test_add_func ("/tool/help/did-you-mean", test_did_you_mean);
  g_test_add_func ("/tool/debug/keys", test_debug_keys);
  g_test_add_func ("/tool/verbose", test_verbose);
  g_test_add_func ("/tool/exec/default-timeout", test_exec_default_timeout);
  g_test_add_func ("/tool/exec/round-trip", test_exec_round_trip);
  g_test_add_func ("/tool/exec/json", test_exec_json);
  g_test_add_func ("/tool/exec/json-exact", test_exec_json_exact);
  g_test_add_func ("/tool/exec/file", test_exec_file);
  g_test_add_func ("/tool/exec/remote-error", test_exec_remote_error);
  g_test_add_func ("/tool/exec/timeout", test_exec_timeout);
  g_test_add_func ("/tool/exec/bad-spec", test_exec_bad_spec);
  g_test_add_func ("/tool/exec/unknown-scheme", test_exec_unknown_scheme);
  g_test_add_func ("/tool/exec/connect-error", test_exec_connect_error);
  g_test_add_func ("/tool/exec/usage", test_exec_usage);
  g_test_add_func ("/tool/spec/text", test_spec_text);
  g_test_add_func ("/tool/spec/json", test_spec_json);
  g_test_add_func ("/tool/spec/errors", test_spec_errors);
  g_test_add_func ("/tool/spec/did-you-mean", test_spec_did_you_mean);
  g_test_add_func ("/tool/spec/ssh", test_spec_ssh);
  g_test_add_func ("/tool/spec/socket", test_spec_socket);
  g_test_add_func ("/tool/transports", test_transports);
  g_test_add_func ("/tool/transports/check", test_transports_check);
  g_test_add_func ("/tool/status/text-json", test_status);
  g_test_add_func ("/tool/status/errors", test_status_errors);
  g_test_add_func ("/tool/info/text-json", test_info);
  g_test_add_func ("/tool/probe", test_probe);
  g_test_add_func ("/tool/trace/text", test_trace_text);
  g_test_add_func ("/tool/trace/json", test_trace_values);
  g_test_add_func ("/tool/trace/errors", test_trace_errors);
  g_test_add_func ("/tool/trace/color", test_trace_color);
  for (gsize i = 0; i < G_N_ELEMENTS (round_trip_values); i++)
    {
      g_autofree char *path = g_strdup_printf ("/tool/serialize/round-trip/%" G_GSIZE_FORMAT, i);

      g_test_add_data_func (path, round_trip_values[i], test_serialize_round_trip);
    }
  g_test_add_func ("/tool/serialize/file-json", test_serialize_file_json);
  g_test_add_func ("/tool/serialize/errors", test_serialize_errors);
  g_test_add_func ("/tool/serialize/python", test_serialize_python);
  g_test_add_func ("/tool/socketserver/bad-python", test_socketserver_bad_python);
  g_test_add_func ("/tool/rsync", test_rsync);

  return g_test_run ();
}
