/* fuzz-xspec.c: libFuzzer target for the XSpec parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib-object.h>

#include <execnet/execnet-xspec.h>
#include <execnet/execnet-error.h>

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

/* Reads everything a parsed spec offers and checks that the answers agree
 * with one another. */
static void
exercise (ExecnetXSpec *spec,
          const char   *text)
{
  const char * const *keys;
  const char *scheme;
  GHashTable *env;
  GHashTableIter iter;
  gpointer name, value;
  ExecnetXSpec *copy;
  guint n_env_keys = 0;

  g_assert_cmpstr (execnet_xspec_to_string (spec), ==, text);

  keys = execnet_xspec_get_keys (spec);
  g_assert_true (keys != NULL && keys[0] != NULL);
  for (gsize i = 0; keys[i] != NULL; i++)
    {
      const char *v = execnet_xspec_get (spec, keys[i]);

      g_assert_nonnull (v);
      g_assert_true (execnet_xspec_has (spec, keys[i]));
      g_assert_true (keys[i][0] != '\0' && keys[i][0] != '_');
      if (g_str_has_prefix (keys[i], "env:"))
        n_env_keys++;
    }

  scheme = execnet_xspec_get_scheme (spec);
  if (scheme != NULL)
    g_assert_true (execnet_xspec_has (spec, scheme));

  env = execnet_xspec_get_env (spec);
  g_assert_true (g_hash_table_size (env) == n_env_keys);
  g_hash_table_iter_init (&iter, env);
  while (g_hash_table_iter_next (&iter, &name, &value))
    {
      g_autofree char *key = g_strconcat ("env:", (const char *) name, NULL);

      g_assert_true (*(const char *) name != '\0');
      g_assert_cmpstr (execnet_xspec_get (spec, key), ==, value);
    }

  if (execnet_xspec_get_id (spec) != NULL)
    g_assert_true (*execnet_xspec_get_id (spec) != '\0');

  copy = execnet_xspec_copy (spec);
  g_assert_cmpstr (execnet_xspec_get_scheme (copy), ==, scheme);
  g_assert_cmpstr (execnet_xspec_get_id (copy), ==, execnet_xspec_get_id (spec));
  execnet_xspec_set_id (copy, "fuzz");
  g_assert_cmpstr (execnet_xspec_get_id (copy), ==, "fuzz");
  g_assert_cmpstr (execnet_xspec_get (copy, "id"), ==, "fuzz");
  execnet_xspec_set_id (copy, NULL);
  g_assert_true (!execnet_xspec_has (copy, "id"));
  execnet_xspec_unref (copy);

  execnet_xspec_unref (execnet_xspec_ref (spec));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;

  /* A spec is a C string: the input up to its first NUL byte. */
  text = g_strndup ((const char *) data, size);

  spec = execnet_xspec_new (text, &error);
  if (spec == NULL)
    {
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
      g_assert_true (g_utf8_validate (error->message, -1, NULL));
      return 0;
    }

  g_assert_no_error (error);
  exercise (spec, text);

  return 0;
}
