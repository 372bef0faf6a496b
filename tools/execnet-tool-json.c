/* execnet-tool-json.c: --json, exact
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "execnet-tool.h"

/* json-glib goes through gint64 and doubles, which turns 2**63 into
 * -9223372036854775808 and NaN into "nan.0", neither of them right. The
 * tool writes JSON for values itself, exactly (doc/execnet-tool.1 lists
 * the mapping):
 *
 *   every integer type      a JSON number with the exact decimal digits
 *   finite double           enough digits to read back the same double
 *   NaN, Infinity           {"$float": "nan"}, {"$float": "inf"}, {"$float": "-inf"}
 *   bytes (ay)              {"$bytes": "BASE64"}
 *   string, object path     a string
 *   Nothing / Just x        null / x
 *   arrays, tuples          arrays
 *   dictionaries            an object when the keys are strings, else an
 *                           array of [key, value] pairs
 *
 * --json prints each value on one line, --json=pretty indented. */

static int json_mode = 0;  /* 0: off, 1: one line, 2: pretty */

gboolean
execnet_tool_on_json_option (const char  *option_name,
                             const char  *value,
                             gpointer     data,
                             GError     **error)
{
  json_mode = MAX (json_mode, 1);
  return TRUE;
}

/* --json=pretty, wherever it is, becomes --json with pretty output: a
 * GOption callback with an optional value would take the next argument
 * (the spec) as its value. */
gboolean
execnet_tool_take_json_pretty (int      argc,
                               char   **argv,
                               GError **error)
{
  for (int i = 1; i < argc && strcmp (argv[i], "--") != 0; i++)
    if (strcmp (argv[i], "--json=pretty") == 0)
      {
        json_mode = 2;
        argv[i] = (char *) "--json";
      }
    else if (g_str_has_prefix (argv[i], "--json="))
      {
        g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                     "%s: the only form with a value is --json=pretty", argv[i]);
        return FALSE;
      }
  return TRUE;
}

gboolean
execnet_tool_json (void)
{
  return json_mode != 0;
}

static void
append_string (GString    *out,
               const char *text)
{
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      switch (c)
        {
        case '"': g_string_append (out, "\\\""); break;
        case '\\': g_string_append (out, "\\\\"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (c < 0x20 || c == 0x7f)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
}

/* ": " indented, ":" on one line. */
static const char *
colon (void)
{
  return json_mode == 2 ? ": " : ":";
}

static void
newline (GString *out,
         int      depth)
{
  if (json_mode != 2)
    return;
  g_string_append_c (out, '\n');
  for (int i = 0; i < depth; i++)
    g_string_append (out, "  ");
}

static void
append_double (GString *out,
               double   value)
{
  char buffer[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (value))
    {
      g_string_append_printf (out, "{\"$float\"%s\"nan\"}", colon ());
      return;
    }
  if (isinf (value))
    {
      g_string_append_printf (out, "{\"$float\"%s\"%s\"}", colon (), value > 0 ? "inf" : "-inf");
      return;
    }
  g_ascii_dtostr (buffer, sizeof buffer, value);
  g_string_append (out, buffer);
  /* A float stays a float when read back. */
  if (strpbrk (buffer, ".eE") == NULL)
    g_string_append (out, ".0");
}

static void append_value (GString *out, GVariant *value, int depth);

/* Arrays and tuples: the children in order. */
static void
append_list (GString  *out,
             GVariant *value,
             int       depth)
{
  gsize n = g_variant_n_children (value);

  g_string_append_c (out, '[');
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

      if (i > 0)
        g_string_append_c (out, ',');
      newline (out, depth + 1);
      append_value (out, child, depth + 1);
    }
  if (n > 0)
    newline (out, depth);
  g_string_append_c (out, ']');
}

static void
append_dictionary (GString  *out,
                   GVariant *value,
                   int       depth)
{
  const GVariantType *key_type = g_variant_type_key (g_variant_type_element (g_variant_get_type (value)));
  gboolean string_keys = g_variant_type_equal (key_type, G_VARIANT_TYPE_STRING);
  gsize n = g_variant_n_children (value);

  if (!string_keys)
    {
      append_list (out, value, depth);
      return;
    }

  g_string_append_c (out, '{');
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (value, i);
      g_autoptr(GVariant) key = g_variant_get_child_value (entry, 0);
      g_autoptr(GVariant) item = g_variant_get_child_value (entry, 1);

      if (i > 0)
        g_string_append_c (out, ',');
      newline (out, depth + 1);
      append_string (out, g_variant_get_string (key, NULL));
      g_string_append (out, colon ());
      append_value (out, item, depth + 1);
    }
  if (n > 0)
    newline (out, depth);
  g_string_append_c (out, '}');
}

static void
append_value (GString  *out,
              GVariant *value,
              int       depth)
{
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      g_string_append (out, g_variant_get_boolean (value) ? "true" : "false");
      break;
    case G_VARIANT_CLASS_BYTE:
      g_string_append_printf (out, "%u", g_variant_get_byte (value));
      break;
    case G_VARIANT_CLASS_INT16:
      g_string_append_printf (out, "%d", g_variant_get_int16 (value));
      break;
    case G_VARIANT_CLASS_UINT16:
      g_string_append_printf (out, "%u", g_variant_get_uint16 (value));
      break;
    case G_VARIANT_CLASS_INT32:
      g_string_append_printf (out, "%d", g_variant_get_int32 (value));
      break;
    case G_VARIANT_CLASS_UINT32:
      g_string_append_printf (out, "%u", g_variant_get_uint32 (value));
      break;
    case G_VARIANT_CLASS_INT64:
      g_string_append_printf (out, "%" G_GINT64_FORMAT, g_variant_get_int64 (value));
      break;
    case G_VARIANT_CLASS_UINT64:
      g_string_append_printf (out, "%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
      break;
    case G_VARIANT_CLASS_HANDLE:
      g_string_append_printf (out, "%d", g_variant_get_handle (value));
      break;
    case G_VARIANT_CLASS_DOUBLE:
      append_double (out, g_variant_get_double (value));
      break;
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_OBJECT_PATH:
    case G_VARIANT_CLASS_SIGNATURE:
      append_string (out, g_variant_get_string (value, NULL));
      break;
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) inner = g_variant_get_variant (value);

        append_value (out, inner, depth);
      }
      break;
    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) inner = g_variant_get_maybe (value);

        if (inner == NULL)
          g_string_append (out, "null");
        else
          append_value (out, inner, depth);
      }
      break;
    case G_VARIANT_CLASS_ARRAY:
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize size;
          const guchar *data = g_variant_get_fixed_array (value, &size, 1);
          g_autofree char *encoded = g_base64_encode (data, size);

          g_string_append_printf (out, "{\"$bytes\"%s", colon ());
          append_string (out, encoded);
          g_string_append_c (out, '}');
        }
      else if (g_variant_type_is_dict_entry (g_variant_type_element (g_variant_get_type (value))))
        append_dictionary (out, value, depth);
      else
        append_list (out, value, depth);
      break;
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
      append_list (out, value, depth);
      break;
    }
}

/* @value as JSON, one line or pretty as --json asked. */
char *
execnet_tool_value_to_json (GVariant *value)
{
  GString *out = g_string_new (NULL);

  append_value (out, value, 0);
  return g_string_free (out, FALSE);
}

/* A json-glib tree (for reports with no GVariant values), likewise. */
char *
execnet_tool_json_node_to_string (JsonNode *node)
{
  return json_to_string (node, json_mode == 2);
}
