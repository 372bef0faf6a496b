/* execnet-source.c: Python source text as remote_exec sends it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include "execnet-source-private.h"

/* Removes the indentation that all non-blank lines of @source share, as
 * execnet does with textwrap.dedent() before sending a source: code in an
 * indented triple-quoted string runs as written. Lines of blanks only become
 * empty, and a margin of mixed tabs and spaces counts only as far as all
 * lines agree on it. */
char *
_execnet_dedent (const char *source)
{
  g_auto(GStrv) lines = g_strsplit (source, "\n", -1);
  g_autoptr(GString) out = g_string_sized_new (strlen (source));
  const char *margin = NULL;
  gsize margin_len = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];
      gsize indent = strspn (line, " \t");

      if (line[indent] == '\0')
        continue;
      if (margin == NULL)
        {
          margin = line;
          margin_len = indent;
        }
      else
        {
          gsize common = 0;

          while (common < margin_len && common < indent && line[common] == margin[common])
            common++;
          margin_len = common;
        }
    }

  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *line = lines[i];

      if (i > 0)
        g_string_append_c (out, '\n');
      if (line[strspn (line, " \t")] != '\0')
        g_string_append (out, line + margin_len);
    }

  return g_string_free (g_steal_pointer (&out), FALSE);
}
