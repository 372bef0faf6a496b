/* test-source.c: remote_exec's handling of source text
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib.h>

#include "execnet-source-private.h"

typedef struct
{
  const char *name;
  const char *source;
  const char *expected;
} DedentCase;

static const DedentCase dedent_cases[] = {
  { "flat", "a\n  b\n", "a\n  b\n" },
  { "common-spaces", "    a\n      b\n    c", "a\n  b\nc" },
  { "leading-newline", "\n    a\n    b\n", "\na\nb\n" },
  { "blank-lines-ignored", "    a\n\n  \n    b", "a\n\n\nb" },
  { "blank-lines-emptied", "a\n   \nb", "a\n\nb" },
  { "tabs", "\ta\n\t\tb", "a\n\tb" },
  { "mixed-margin", "  \ta\n  b", "\ta\nb" },
  { "tab-vs-spaces", "\ta\n  b", "\ta\n  b" },
  { "empty", "", "" },
  { "blank-only", "   \n  ", "\n" },
};

static void
test_dedent (gconstpointer data)
{
  const DedentCase *c = data;
  g_autofree char *result = _execnet_dedent (c->source);

  g_assert_cmpstr (result, ==, c->expected);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (dedent_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/source/dedent/%s", dedent_cases[i].name);
      g_test_add_data_func (path, &dedent_cases[i], test_dedent);
    }

  return g_test_run ();
}
