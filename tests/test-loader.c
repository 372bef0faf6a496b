/* test-loader.c: the transport plugin loader's error paths
 *
 * Each case loads plugins into the process's one registry, so each runs in
 * a subprocess of its own (g_test_subprocess), with a search path of the
 * test modules built by tests/loader/meson.build.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include <gio/gio.h>
#include <execnet/execnet.h>

static const char *
loader_dir (const char *which)
{
  const char *dir = g_getenv (which);

  g_assert_nonnull (dir);
  return dir;
}

/* In the subprocess: the transport for @scheme fails to load; the error
 * names the plugin and says why. */
static void
expect_failure (const char *scheme,
                const char *because)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetTransport) transport = NULL;
  g_autofree char *file = g_strdup_printf ("libexecnet-%s.%s", scheme, G_MODULE_SUFFIX);

  g_setenv ("EXECNET_TRANSPORT_PATH", loader_dir ("EXECNET_TEST_LOADER_FIRST"), TRUE);
  transport = execnet_transport_new_for_scheme (scheme, &error);
  g_assert_null (transport);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT);
  g_assert_nonnull (strstr (error->message, file));
  g_assert_nonnull (strstr (error->message, because));

  /* Asked again, it fails again the same way instead of half-loading. */
  g_clear_error (&error);
  g_assert_null (execnet_transport_new_for_scheme (scheme, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT);
}

static void
run_in_subprocess (const char *path)
{
  g_test_trap_subprocess (path, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
}

static void
test_missing_entry (void)
{
  if (g_test_subprocess ())
    {
      expect_failure ("noentry", "g_io_execnet_noentry_load");
      return;
    }
  run_in_subprocess ("/loader/missing-entry/subprocess");
}

static void
test_unresolved_symbol (void)
{
  if (g_test_subprocess ())
    {
      expect_failure ("unresolved", "execnet_test_symbol_nobody_defines");
      return;
    }
  run_in_subprocess ("/loader/unresolved-symbol/subprocess");
}

static void
test_registers_nothing (void)
{
  if (g_test_subprocess ())
    {
      expect_failure ("nothing", "registered no transport for “nothing”");
      return;
    }
  run_in_subprocess ("/loader/registers-nothing/subprocess");
}

/* Two plugins for one scheme: the first in the search path serves it,
 * the other is never loaded. */
static void
test_two_modules_one_scheme (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(ExecnetTransport) transport = NULL;
      g_autofree char *path = g_strjoin (G_SEARCHPATH_SEPARATOR_S,
                                         loader_dir ("EXECNET_TEST_LOADER_SECOND"),
                                         loader_dir ("EXECNET_TEST_LOADER_FIRST"), NULL);

      g_setenv ("EXECNET_TRANSPORT_PATH", path, TRUE);
      transport = execnet_transport_new_for_scheme ("twice", &error);
      g_assert_no_error (error);
      g_assert_cmpstr (G_OBJECT_TYPE_NAME (transport), ==, "ExecnetTestTwiceSecond");
      g_assert_true (g_type_from_name ("ExecnetTestTwiceFirst") == G_TYPE_INVALID);

      g_clear_object (&transport);
      transport = execnet_transport_new_for_scheme ("twice", &error);
      g_assert_no_error (error);
      g_assert_cmpstr (G_OBJECT_TYPE_NAME (transport), ==, "ExecnetTestTwiceSecond");
      return;
    }
  run_in_subprocess ("/loader/two-modules-one-scheme/subprocess");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/loader/missing-entry", test_missing_entry);
  g_test_add_func ("/loader/missing-entry/subprocess", test_missing_entry);
  g_test_add_func ("/loader/unresolved-symbol", test_unresolved_symbol);
  g_test_add_func ("/loader/unresolved-symbol/subprocess", test_unresolved_symbol);
  g_test_add_func ("/loader/registers-nothing", test_registers_nothing);
  g_test_add_func ("/loader/registers-nothing/subprocess", test_registers_nothing);
  g_test_add_func ("/loader/two-modules-one-scheme", test_two_modules_one_scheme);
  g_test_add_func ("/loader/two-modules-one-scheme/subprocess", test_two_modules_one_scheme);

  return g_test_run ();
}
