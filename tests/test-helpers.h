/* test-helpers.h: shared helpers of the gateway and group tests
 *
 * Header-only so that each test program compiles it on its own.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <execnet/execnet.h>

/* Seconds to wait for anything a working gateway does quickly: generous,
 * since the suite also runs under sanitizers on loaded machines. A test
 * that hits it has failed; it does not decide the result otherwise. */
#define TEST_TIMEOUT 30.0

/* The interpreter the gateways run. `python3` on PATH may be a slow
 * wrapper script (pyenv and the like), so a system interpreter is
 * preferred; EXECNET_TEST_PYTHON overrides both. */
static inline const char *
test_python (void)
{
  static const char *python = NULL;
  static gsize once = 0;

  if (g_once_init_enter (&once))
    {
      python = g_getenv ("EXECNET_TEST_PYTHON");
      if (python == NULL || *python == '\0')
        python = g_file_test ("/usr/bin/python3", G_FILE_TEST_IS_EXECUTABLE)
                   ? "/usr/bin/python3" : "python3";
      g_once_init_leave (&once, 1);
    }

  return python;
}

/* The remote agent the suite runs against: ours by default, or, with
 * EXECNET_TEST_AGENT=execnet, the remote host's own Python execnet, so that
 * the same tests check both sides of the protocol. */
static inline const char *
test_agent (void)
{
  const char *agent = g_getenv ("EXECNET_TEST_AGENT");

  return agent != NULL && *agent != '\0' ? agent : NULL;
}

/* Skips the current test when it checks something only our agent does
 * (its bootstrap errors, execmodels, fd protection); returns TRUE then. */
static inline gboolean
test_skip_unless_our_agent (const char *why)
{
  if (test_agent () == NULL)
    return FALSE;
  g_test_skip (why);
  return TRUE;
}

/* The remote side calls its gateway "ID-worker", as execnet's worker does. */
static inline void
test_assert_remote_id (const char     *remote_id,
                       ExecnetGateway *gateway)
{
  g_autofree char *expected = g_strconcat (execnet_gateway_get_id (gateway), "-worker", NULL);

  g_assert_cmpstr (remote_id, ==, expected);
}

/* A popen spec for test_python() with @extra options (`id=x//nice=5`)
 * appended, if not %NULL. */
static inline char *
test_spec (const char *extra)
{
  g_autofree char *agent = test_agent () != NULL ? g_strconcat ("//agent=", test_agent (), NULL)
                                                 : g_strdup ("");

  if (extra == NULL || *extra == '\0')
    return g_strdup_printf ("popen//python=%s%s", test_python (), agent);
  return g_strdup_printf ("popen//python=%s%s//%s", test_python (), agent, extra);
}

/* Makes a gateway in @group from test_spec (@extra), failing the test if
 * that fails. Returns: (transfer none). */
static inline ExecnetGateway *
test_make_gateway (ExecnetGroup *group,
                   const char   *extra)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = test_spec (extra);
  ExecnetGateway *gateway;

  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  g_assert_true (EXECNET_IS_GATEWAY (gateway));

  return gateway;
}

/* Receives one item, failing the test on an error or after TEST_TIMEOUT. */
static inline GVariant *
test_receive (ExecnetChannel *channel)
{
  g_autoptr(GError) error = NULL;
  GVariant *item;

  item = execnet_channel_receive (channel, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  g_assert_nonnull (item);

  return item;
}

/* Runs @source remotely, failing the test if the gateway refuses. */
static inline ExecnetChannel *
test_remote_exec (ExecnetGateway *gateway,
                  const char     *source)
{
  g_autoptr(GError) error = NULL;
  ExecnetChannel *channel;

  channel = execnet_gateway_remote_exec (gateway, source, &error);
  g_assert_no_error (error);
  g_assert_nonnull (channel);

  return channel;
}

/* Sends @item (a floating reference is sunk), failing the test on error. */
static inline void
test_send (ExecnetChannel *channel,
           GVariant       *item)
{
  g_autoptr(GError) error = NULL;

  execnet_channel_send (channel, item, &error);
  g_assert_no_error (error);
}

/* Waits until the remote code behind @channel finished cleanly. */
static inline void
test_wait_close (ExecnetChannel *channel)
{
  g_autoptr(GError) error = NULL;

  execnet_channel_wait_close (channel, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
}

/* The process id of the remote interpreter, from remote_info. */
static inline gint64
test_gateway_pid (ExecnetGateway *gateway)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) info = NULL;
  gint64 pid = 0;

  info = execnet_gateway_remote_info (gateway, &error);
  g_assert_no_error (error);
  g_assert_nonnull (info);
  g_assert_true (g_variant_lookup (info, "pid", "x", &pid));
  g_assert_cmpint (pid, >, 1);
  g_assert_cmpint (pid, !=, getpid ());

  return pid;
}

/* The state letter of process @pid from /proc (`Z` for a zombie), or 0
 * when there is no such process. */
static inline char
test_process_state (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/stat", pid);
  g_autofree char *contents = NULL;
  const char *paren;

  if (kill ((pid_t) pid, 0) == -1 && errno == ESRCH)
    return 0;
  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  /* "pid (comm) S ...": comm may hold spaces and parentheses. */
  paren = strrchr (contents, ')');
  if (paren == NULL || paren[1] == '\0' || paren[2] == '\0')
    return '?';
  return paren[2];
}

/* Asserts that process @pid is gone, neither running nor a zombie,
 * within @timeout seconds. Polls: the kernel offers no way to wait for a
 * process that is not our own child to be reaped by someone else. */
static inline void
test_assert_pid_gone (gint64  pid,
                      gdouble timeout)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);
  char state;

  while ((state = test_process_state (pid)) != 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);

  if (state != 0)
    {
      g_autofree char *message =
        g_strdup_printf ("remote process %" G_GINT64_FORMAT " is still there "
                         "(state %c) %g s later", pid, state, timeout);
      g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, message);
    }
}

/* The ids of our own child processes, zombies included. */
static inline GArray *
test_list_children (void)
{
  GArray *children = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *contents = NULL;
      const char *paren;
      gint64 pid, ppid;
      char state;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_strdup_printf ("/proc/%s/stat", name);
      if (!g_file_get_contents (path, &contents, NULL, NULL))
        continue;
      paren = strrchr (contents, ')');
      if (paren == NULL || sscanf (paren + 1, " %c %" G_GINT64_FORMAT, &state, &ppid) != 2)
        continue;
      pid = g_ascii_strtoll (name, NULL, 10);
      if (ppid == getpid ())
        g_array_append_val (children, pid);
    }

  return children;
}

/* Asserts that this process has no child left (running or zombie) within
 * @timeout seconds. */
static inline void
test_assert_no_children (gdouble timeout)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);

  for (;;)
    {
      g_autoptr(GArray) children = test_list_children ();
      g_autoptr(GString) text = NULL;

      if (children->len == 0)
        return;
      if (g_get_monotonic_time () < deadline)
        {
          g_usleep (10 * 1000);
          continue;
        }

      text = g_string_new ("child processes left behind:");
      for (guint i = 0; i < children->len; i++)
        {
          gint64 pid = g_array_index (children, gint64, i);

          g_string_append_printf (text, " %" G_GINT64_FORMAT " (state %c)",
                                  pid, test_process_state (pid));
        }
      g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC, text->str);
      return;
    }
}

/* Terminates @group, which must then be empty. */
static inline void
test_terminate (ExecnetGroup *group)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  g_assert_true (execnet_group_terminate (group, 10.0, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  text = execnet_group_to_string (group);
  g_assert_cmpstr (text, ==, "<Group []>");
}

static inline gboolean
test_on_timeout (gpointer data)
{
  gboolean *timed_out = data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

typedef gboolean (*TestCondition) (gpointer data);

/* A GSourceFunc that cancels the #GCancellable it is given, once. */
static inline gboolean
test_cancel_soon (gpointer cancellable)
{
  g_cancellable_cancel (cancellable);
  return G_SOURCE_REMOVE;
}

/* Iterates @context (which the caller owns; usually its thread-default
 * one) until @condition holds; fails the test after @timeout seconds. */
static inline void
test_iterate_until (GMainContext  *context,
                    TestCondition  condition,
                    gpointer       data,
                    gdouble        timeout)
{
  g_autoptr(GSource) guard = g_timeout_source_new ((guint) (timeout * 1000));
  gboolean timed_out = FALSE;

  g_source_set_callback (guard, test_on_timeout, &timed_out, NULL);
  g_source_attach (guard, context);

  while (!condition (data) && !timed_out)
    g_main_context_iteration (context, TRUE);

  g_source_destroy (guard);
  if (!condition (data))
    g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,
                         "condition not reached before the timeout");
}

/* The remote writes half a frame on its protocol stream and kills itself
 * with SIGKILL: every transport must report the same lost connection. */
#define TEST_KILLED_MID_FRAME_SOURCE                                          \
  "import os, signal, struct\n"                                              \
  "channel.send(1)\n"                                                        \
  "channel.gateway._write([struct.pack('!bii', 4, channel.id, 100) + b'N'])\n" \
  "os.kill(os.getpid(), signal.SIGKILL)\n"

static inline void
test_assert_killed_mid_frame (ExecnetGateway *gateway)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GError) error = NULL;

  channel = test_remote_exec (gateway, TEST_KILLED_MID_FRAME_SOURCE);
  first = test_receive (channel);
  item = execnet_channel_receive (channel, TEST_TIMEOUT, &error);
  g_assert_null (item);
  g_test_message ("%s", error->message);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
  g_assert_nonnull (strstr (error->message, "lost its connection in the middle of a message"));
  g_assert_false (execnet_gateway_is_alive (gateway));
}

/* Asserts that @error is set, in EXECNET_ERROR with @code, and that its
 * message contains @needle (unless %NULL). */
#define test_assert_error_contains(error, code, needle)                     \
  G_STMT_START {                                                            \
    g_assert_error ((error), EXECNET_ERROR, (gint) (code));                 \
    if ((needle) != NULL && strstr ((error)->message, (needle)) == NULL)    \
      {                                                                     \
        g_autofree char *m__ = g_strdup_printf ("error message “%s” does "  \
                                                "not contain “%s”",         \
                                                (error)->message, (needle)); \
        g_assertion_message (G_LOG_DOMAIN, __FILE__, __LINE__, G_STRFUNC,   \
                             m__);                                          \
      }                                                                     \
  } G_STMT_END

/* Remote code that writes to stdout and stderr every way there is. */
#define TEST_OUTPUT_SOURCE \
  "import os, subprocess, sys\n" \
  "print('print to stdout')\n" \
  "sys.stdout.flush()\n" \
  "sys.stderr.write('sys.stderr text\\n')\n" \
  "sys.stderr.flush()\n" \
  "os.write(1, b'fd 1 bytes\\n')\n" \
  "os.write(2, b'fd 2 bytes\\n')\n" \
  "subprocess.run(['sh', '-c', 'echo child stdout; echo child stderr >&2'])\n"

typedef struct {
  GString *stdout_text;
  GString *stderr_text;
} TestOutput;

static inline void
test_on_remote_output (ExecnetGateway *gateway,
                       const char     *stream,
                       GBytes         *data,
                       gpointer        user_data)
{
  TestOutput *output = user_data;
  gsize size;
  const char *bytes = g_bytes_get_data (data, &size);

  g_assert_true (g_str_equal (stream, "stdout") || g_str_equal (stream, "stderr"));
  g_string_append_len (g_str_equal (stream, "stdout") ? output->stdout_text : output->stderr_text,
                       bytes, size);
}

/* Runs TEST_OUTPUT_SOURCE on @gateway, which must have been made in this
 * thread's default context, and asserts that all of its output arrives as
 * ::remote-output, each stream on its own, and that the gateway still works. */
static inline void
test_assert_remote_output (ExecnetGateway *gateway)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) value = NULL;
  TestOutput output = { g_string_new (""), g_string_new ("") };
  gint64 deadline;

  g_signal_connect (gateway, "remote-output", G_CALLBACK (test_on_remote_output), &output);
  channel = test_remote_exec (gateway, TEST_OUTPUT_SOURCE);
  test_wait_close (channel);

  deadline = g_get_monotonic_time () + TEST_TIMEOUT * G_USEC_PER_SEC;
  while (!(strstr (output.stdout_text->str, "child stdout") &&
           strstr (output.stderr_text->str, "child stderr")) &&
         g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);

  g_test_message ("stdout: %s\nstderr: %s", output.stdout_text->str, output.stderr_text->str);
  g_assert_nonnull (strstr (output.stdout_text->str, "print to stdout\n"));
  g_assert_nonnull (strstr (output.stdout_text->str, "fd 1 bytes\n"));
  g_assert_nonnull (strstr (output.stdout_text->str, "child stdout\n"));
  g_assert_nonnull (strstr (output.stderr_text->str, "sys.stderr text\n"));
  g_assert_nonnull (strstr (output.stderr_text->str, "fd 2 bytes\n"));
  g_assert_nonnull (strstr (output.stderr_text->str, "child stderr\n"));
  g_assert_null (strstr (output.stderr_text->str, "stdout"));

  /* The protocol never saw any of it. */
  g_clear_object (&channel);
  channel = test_remote_exec (gateway, "channel.send(1)");
  value = test_receive (channel);
  g_assert_cmpint (g_variant_get_int64 (value), ==, 1);

  g_signal_handlers_disconnect_by_data (gateway, &output);
  g_string_free (output.stdout_text, TRUE);
  g_string_free (output.stderr_text, TRUE);
}

/* Removes @path and everything under it; symlinks are removed, never
 * followed, and directories made unreadable by a test are opened again. */
static inline void
test_remove_tree (const char *path)
{
  struct stat st;

  if (lstat (path, &st) < 0)
    return;
  if (S_ISDIR (st.st_mode))
    {
      GDir *dir;
      const char *name;

      chmod (path, 0700);
      dir = g_dir_open (path, 0, NULL);
      while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
        {
          char *child = g_build_filename (path, name, NULL);

          test_remove_tree (child);
          g_free (child);
        }
      if (dir != NULL)
        g_dir_close (dir);
      g_rmdir (path);
    }
  else
    g_unlink (path);
}
