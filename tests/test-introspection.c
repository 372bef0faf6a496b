/* test-introspection.c: the library from Python, through GObject Introspection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>

#include "test-helpers.h"

/* Runs tests/introspection.py, which makes a gateway, runs code, gets a
 * remote error and terminates, all through the Execnet-1.0 typelib. */
static void
test_python_gi (void)
{
  g_autoptr(GSubprocess) python = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "introspection.py", NULL);

  python = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error,
                             "/usr/bin/python3", script, test_python (), NULL);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (python, NULL, NULL, &out, &err, &error);
  g_assert_no_error (error);
  if (!g_subprocess_get_if_exited (python) || g_subprocess_get_exit_status (python) != 0)
    g_test_message ("stderr: %s", err);
  g_assert_true (g_subprocess_get_if_exited (python));
  g_assert_cmpint (g_subprocess_get_exit_status (python), ==, 0);
  g_assert_cmpstr (out, ==, "introspection: ok\n");
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/introspection/python", test_python_gi);

  return g_test_run ();
}
