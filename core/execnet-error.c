/* execnet-error.c: the error domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <gio/gio.h>

#include <execnet/execnet-error.h>

#include "execnet-error-private.h"

/**
 * execnet_error_quark:
 *
 * The quark of the %EXECNET_ERROR domain.
 *
 * Returns: the quark
 *
 * Since: 1.0
 */
G_DEFINE_QUARK (execnet-error-quark, execnet_error)

/* Appends @c as an escape that shows what it was: \n and \t stay as they
 * are (messages span lines), other controls and bytes that are not UTF-8
 * become \xNN or \u{NNNN}, so nothing reaches a terminal as a command and
 * every message is valid UTF-8 (PyGObject, GJS and JSON insist). */
static void
append_escaped_char (GString  *out,
                     gunichar  c)
{
  if (c == '\n' || c == '\t')
    g_string_append_c (out, (char) c);
  else if (c < 0x20 || c == 0x7f)
    g_string_append_printf (out, "\\x%02x", c);
  else if ((c >= 0x80 && c < 0xa0) || c == 0x2028 || c == 0x2029 ||
           (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
    /* C1 controls, line separators and bidirectional overrides. */
    g_string_append_printf (out, "\\u{%04x}", c);
  else
    g_string_append_unichar (out, c);
}

/* Escapes @length bytes at @text onto @out. */
static void
append_escaped (GString    *out,
                const char *text,
                gsize       length)
{
  const char *p = text;
  const char *end = text + length;

  while (p < end)
    {
      gunichar c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          g_string_append_printf (out, "\\x%02x", (guchar) *p);
          p++;
          continue;
        }
      append_escaped_char (out, c);
      p = g_utf8_next_char (p);
    }
}

/* The start of the UTF-8 character at or before @p, at most 3 bytes back,
 * so that a cut does not split one. */
static gsize
cut_back (const char *text,
          gsize       at)
{
  for (guint i = 0; i < 4 && at > 0; i++)
    {
      if (((guchar) text[at] & 0xc0) != 0x80)
        return at;
      at--;
    }
  return at;
}

/**
 * execnet_error_escape_text:
 * @text: (array length=length) (element-type guint8): bytes from outside
 *   the program: a remote's output, spec text, a server's reply
 * @length: the length of @text in bytes, or -1 if it is nul-terminated
 * @max_length: the most bytes of @text to show, or 0 for
 *   %EXECNET_ERROR_TEXT_MAX
 *
 * Makes foreign text safe to put in an error message: the result is valid
 * UTF-8, with newlines and tabs kept but other control characters (terminal
 * escape sequences among them) and bytes that are not UTF-8 shown as
 * `\xNN` or `\u{NNNN}`. Text longer than @max_length bytes keeps its
 * start and its end, with the number of bytes left out in between.
 *
 * Every error message of the library that quotes foreign text passes it
 * through this function; transports should do the same.
 *
 * Returns: (transfer full): the text to show
 *
 * Since: 1.0
 */
char *
execnet_error_escape_text (const char *text,
                           gssize      length,
                           gsize       max_length)
{
  GString *out;
  gsize size;

  g_return_val_if_fail (text != NULL || length == 0, NULL);

  if (text == NULL)
    return g_strdup ("");
  size = length < 0 ? strlen (text) : (gsize) length;
  if (max_length == 0)
    max_length = EXECNET_ERROR_TEXT_MAX;

  out = g_string_sized_new (MIN (size, max_length) + 16);
  if (size <= max_length)
    append_escaped (out, text, size);
  else
    {
      gsize head = cut_back (text, max_length / 2);
      gsize tail = cut_back (text, size - (max_length - max_length / 2));

      if (tail < head)
        tail = head;
      append_escaped (out, text, head);
      g_string_append_printf (out, " […%" G_GSIZE_FORMAT " bytes left out…] ", tail - head);
      append_escaped (out, text + tail, size - tail);
    }

  return g_string_free (out, FALSE);
}

/* See execnet-error-private.h. */
void
_execnet_error_escape_message (GError *error,
                               gsize   max_length)
{
  char *escaped;

  if (error == NULL)
    return;

  escaped = execnet_error_escape_text (error->message, -1, max_length);
  g_free (error->message);
  error->message = escaped;
}
