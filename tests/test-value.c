/* test-value.c: the value codec (GVariant <-> execnet's serialization)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <malloc.h>
#include <string.h>
#include <sys/resource.h>

#include <glib.h>
#include <gio/gio.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-serialize.h>

#include "execnet-value-private.h"

/* Under AddressSanitizer, malloc is its own: ask it what is allocated. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
size_t __sanitizer_get_current_allocated_bytes (void);
#endif

/* GVariant text for expected values: note that its b'..' byte string
 * literals end with a nul byte, so exact bytes are written [byte ...].
 *
 * Byte tables are C string literals; BYTES() gives the pointer and the length
 * without the terminating nul. A literal is split ("\12" "34") wherever an
 * octal escape is followed by a digit. */
#define BYTES(literal) literal, sizeof (literal) - 1

static GVariant *
parse_text (const char *text)
{
  g_autoptr(GError) error = NULL;
  GVariant *value;

  /* g_variant_parse() returns a full, non-floating reference. */
  value = g_variant_parse (NULL, text, NULL, NULL, &error);
  g_assert_no_error (error);
  return value;
}

static void
assert_variant_equal (GVariant *actual,
                      GVariant *expected)
{
  if (!g_variant_equal (actual, expected))
    {
      g_autofree char *actual_text = g_variant_print (actual, TRUE);
      g_autofree char *expected_text = g_variant_print (expected, TRUE);

      g_error ("got %s (%s), expected %s (%s)",
               actual_text, g_variant_get_type_string (actual),
               expected_text, g_variant_get_type_string (expected));
    }
}

static void
assert_bytes_equal (GBytes     *actual,
                    const char *expected,
                    gsize       expected_len)
{
  g_assert_cmpmem (g_bytes_get_data (actual, NULL), g_bytes_get_size (actual),
                   expected, expected_len);
}

/* A decoded value's serialized data is in GVariant's normal form. The
 * decoder writes it and marks it trusted, so it is checked on a copy that
 * GLib does not trust. */
static void
assert_normal_form (GVariant *value)
{
  g_autoptr(GBytes) data = g_variant_get_data_as_bytes (value);
  g_autoptr(GVariant) untrusted = NULL;

  untrusted = g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (value),
                                                            data, FALSE));
  g_assert_true (g_variant_is_normal_form (untrusted));
}

static GVariant *
decode_data (const char  *data,
             gsize        len,
             GError     **error)
{
  g_autoptr(GBytes) bytes = g_bytes_new (data, len);

  return _execnet_value_decode (bytes, NULL, NULL, error);
}

static GBytes *
encode_flat (GVariant  *value,
             GError   **error)
{
  g_autoptr(GPtrArray) chunks = _execnet_value_encode (value, error);

  if (chunks == NULL)
    return NULL;
  return _execnet_chunks_flatten (chunks, -1);
}

/* ---------------------------------------------------------------------- */
/* Decoding valid input                                                    */

typedef struct {
  const char *name;
  const char *data;
  gsize       len;
  const char *expected;   /* GVariant text format */
} DecodeCase;

static const DecodeCase decode_cases[] = {
  { "none", BYTES ("LQ"), "@mv nothing" },
  { "true", BYTES ("RQ"), "true" },
  { "false", BYTES ("CQ"), "false" },
  { "int/one", BYTES ("F\0\0\0\1Q"), "int64 1" },
  { "int/minus-one", BYTES ("F\377\377\377\377Q"), "int64 -1" },
  { "int/min", BYTES ("F\200\0\0\0Q"), "int64 -2147483648" },
  { "int/max", BYTES ("F\177\377\377\377Q"), "int64 2147483647" },
  { "long", BYTES ("G\0\0\1\0Q"), "int64 256" },
  { "longint/above-int32", BYTES ("H\0\0\0\12" "2147483648" "Q"), "int64 2147483648" },
  { "longint/below-int32", BYTES ("H\0\0\0\13" "-2147483649" "Q"), "int64 -2147483649" },
  { "longint/int64-max", BYTES ("H\0\0\0\23" "9223372036854775807" "Q"), "int64 9223372036854775807" },
  { "longint/int64-min", BYTES ("H\0\0\0\24" "-9223372036854775808" "Q"), "int64 -9223372036854775808" },
  { "longint/above-int64", BYTES ("H\0\0\0\23" "9223372036854775808" "Q"), "uint64 9223372036854775808" },
  { "longint/uint64-max", BYTES ("H\0\0\0\24" "18446744073709551615" "Q"), "uint64 18446744073709551615" },
  { "longint/leading-zeros", BYTES ("H\0\0\0\3" "007Q"), "int64 7" },
  { "longint/minus-zero", BYTES ("H\0\0\0\2" "-0Q"), "int64 0" },
  { "longlong/negative", BYTES ("I\0\0\0\3" "-42Q"), "int64 -42" },
  { "longlong/big", BYTES ("I\0\0\0\24" "10000000000000000000" "Q"), "uint64 10000000000000000000" },
  { "float/one-and-a-half", BYTES ("D?\370\0\0\0\0\0\0Q"), "1.5" },
  { "float/negative", BYTES ("D\300\0\0\0\0\0\0\0Q"), "-2.0" },
  { "complex", BYTES ("T@\10\0\0\0\0\0\0@\20\0\0\0\0\0\0Q"), "(3.0, 4.0)" },
  { "bytes/short", BYTES ("A\0\0\0\2abQ"), "[byte 0x61, 0x62]" },
  { "bytes/empty", BYTES ("A\0\0\0\0Q"), "@ay []" },
  { "bytes/binary", BYTES ("A\0\0\0\3\0\377\nQ"), "[byte 0x00, 0xff, 0x0a]" },
  { "py3string/ascii", BYTES ("N\0\0\0\5helloQ"), "'hello'" },
  { "py3string/empty", BYTES ("N\0\0\0\0Q"), "''" },
  { "py3string/utf8", BYTES ("N\0\0\0\2\303\251Q"), "'\303\251'" },
  { "unicode", BYTES ("S\0\0\0\3\342\202\254Q"), "'\342\202\254'" },
  { "py2string/text", BYTES ("M\0\0\0\3abcQ"), "'abc'" },
  { "py2string/binary", BYTES ("M\0\0\0\2\377\376Q"), "[byte 0xff, 0xfe]" },
  { "py2string/nul", BYTES ("M\0\0\0\3a\0bQ"), "[byte 0x61, 0x00, 0x62]" },
  { "channel", BYTES ("B\0\0\0\3Q"), "objectpath '/org/execnet/channel/3'" },
  { "channel/zero", BYTES ("B\0\0\0\0Q"), "objectpath '/org/execnet/channel/0'" },
  { "tuple/empty", BYTES ("@\0\0\0\0Q"), "()" },
  { "tuple/one", BYTES ("F\0\0\0\1@\0\0\0\1Q"), "(int64 1,)" },
  { "tuple/mixed", BYTES ("LRA\0\0\0\1x@\0\0\0\3Q"), "(@mv nothing, true, [byte 0x78])" },
  { "tuple/nested",
    BYTES ("F\0\0\0\1N\0\0\0\1s@\0\0\0\1@\0\0\0\2@\0\0\0\1Q"),
    "((int64 1, ('s',)),)" },
  { "tuple/complex-inside", BYTES ("T?\360\0\0\0\0\0\0@\0\0\0\0\0\0\0L@\0\0\0\2Q"),
    "((1.0, 2.0), @mv nothing)" },
  { "list/empty", BYTES ("K\0\0\0\0Q"), "@av []" },
  { "list/ints",
    BYTES ("K\0\0\0\2F\0\0\0\0F\0\0\0\1PF\0\0\0\1F\0\0\0\2PQ"),
    "[<int64 1>, <int64 2>]" },
  { "list/filled-backwards",
    BYTES ("K\0\0\0\2F\0\0\0\1N\0\0\0\1bPF\0\0\0\0N\0\0\0\1aPQ"),
    "[<'a'>, <'b'>]" },
  { "list/unset-slot-is-none",
    BYTES ("K\0\0\0\2F\0\0\0\1N\0\0\0\1xPQ"),
    "[<@mv nothing>, <'x'>]" },
  { "list/later-setitem-wins",
    BYTES ("K\0\0\0\1F\0\0\0\0F\0\0\0\1PF\0\0\0\0F\0\0\0\2PQ"),
    "[<int64 2>]" },
  { "list/of-none", BYTES ("K\0\0\0\1F\0\0\0\0LPQ"), "[<@mv nothing>]" },
  { "list/nested",
    BYTES ("K\0\0\0\2"
           "F\0\0\0\0" "K\0\0\0\1F\0\0\0\0F\0\0\0\1P" "P"
           "F\0\0\0\1" "K\0\0\0\0" "P" "Q"),
    "[<[<int64 1>]>, <@av []>]" },
  { "list/in-tuple",
    BYTES ("K\0\0\0\1F\0\0\0\0RPN\0\0\0\1z@\0\0\0\2Q"),
    "([<true>], 'z')" },
  { "dict/empty", BYTES ("JQ"), "@a{sv} {}" },
  { "dict/string-keys",
    BYTES ("JN\0\0\0\1aF\0\0\0\1PN\0\0\0\1bLPQ"),
    "{'a': <int64 1>, 'b': <@mv nothing>}" },
  { "dict/int-keys",
    BYTES ("JF\0\0\0\1F\0\0\0\2PH\0\0\0\12" "4294967296" "N\0\0\0\0PQ"),
    "{int64 1: <int64 2>, 4294967296: <''>}" },
  { "dict/uint64-keys",
    BYTES ("JH\0\0\0\24" "18446744073709551615" "RPQ"),
    "{uint64 18446744073709551615: <true>}" },
  { "dict/bool-keys", BYTES ("JRLPCF\0\0\0\0PQ"), "{true: <@mv nothing>, false: <int64 0>}" },
  { "dict/float-keys", BYTES ("JD?\370\0\0\0\0\0\0N\0\0\0\1xPQ"), "{1.5: <'x'>}" },
  { "dict/channel-keys", BYTES ("JB\0\0\0\1F\0\0\0\1PQ"),
    "{objectpath '/org/execnet/channel/1': <int64 1>}" },
  { "dict/later-setitem-wins",
    BYTES ("JN\0\0\0\1aF\0\0\0\1PN\0\0\0\1bF\0\0\0\2PN\0\0\0\1aF\0\0\0\3PQ"),
    "{'a': <int64 3>, 'b': <int64 2>}" },
  { "dict/nested",
    BYTES ("JN\0\0\0\1k"
           "K\0\0\0\1F\0\0\0\0F\0\0\0\1P"
           "JN\0\0\0\1xLP"
           "@\0\0\0\2" "PQ"),
    "{'k': <([<int64 1>], {'x': <@mv nothing>})>}" },
  { "dict/in-list",
    BYTES ("K\0\0\0\1F\0\0\0\0JF\0\0\0\7N\0\0\0\1sPPQ"),
    "[<{int64 7: <'s'>}>]" },
  { "dict/pairs/mixed-keys", BYTES ("JN\0\0\0\1aLPF\0\0\0\1LPQ"),
    "[(<'a'>, <@mv nothing>), (<int64 1>, <@mv nothing>)]" },
  { "dict/pairs/int-and-uint64-keys",
    BYTES ("JF\0\0\0\1LPH\0\0\0\24" "18446744073709551615" "LPQ"),
    "[(<int64 1>, <@mv nothing>), (<uint64 18446744073709551615>, <@mv nothing>)]" },
  { "dict/pairs/bool-and-int-keys", BYTES ("JRLPF\0\0\0\1LPQ"),
    "[(<true>, <@mv nothing>), (<int64 1>, <@mv nothing>)]" },
  { "dict/pairs/tuple-key", BYTES ("JF\0\0\0\1F\0\0\0\2@\0\0\0\2N\0\0\0\1xPQ"),
    "[(<(int64 1, int64 2)>, <'x'>)]" },
  { "dict/pairs/empty-tuple-key", BYTES ("J@\0\0\0\0LPQ"), "[(<()>, <@mv nothing>)]" },
  { "dict/pairs/none-key", BYTES ("JLLPQ"), "[(<@mv nothing>, <@mv nothing>)]" },
  { "dict/pairs/bytes-key", BYTES ("JA\0\0\0\0LPQ"), "[(<@ay []>, <@mv nothing>)]" },
  { "dict/pairs/complex-key", BYTES ("JT\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0LPQ"),
    "[(<(0.0, 0.0)>, <@mv nothing>)]" },
  { "dict/pairs/list-key", BYTES ("JK\0\0\0\0LPQ"), "[(<@av []>, <@mv nothing>)]" },
  { "dict/pairs/later-setitem-wins",
    BYTES ("J@\0\0\0\0F\0\0\0\1PLF\0\0\0\2P@\0\0\0\0F\0\0\0\3PQ"),
    "[(<()>, <int64 3>), (<@mv nothing>, <int64 2>)]" },
  { "set", BYTES ("F\0\0\0\1F\0\0\0\2O\0\0\0\2Q"), "[<int64 1>, <int64 2>]" },
  { "set/empty", BYTES ("O\0\0\0\0Q"), "@av []" },
  { "frozenset", BYTES ("F\0\0\0\3E\0\0\0\1Q"), "[<int64 3>]" },
  { "frozenset/in-set", BYTES ("N\0\0\0\1aE\0\0\0\1O\0\0\0\1Q"), "[<[<'a'>]>]" },
};

static void
test_decode (gconstpointer data)
{
  const DecodeCase *tc = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) expected = parse_text (tc->expected);

  value = decode_data (tc->data, tc->len, &error);
  g_assert_no_error (error);
  g_assert_nonnull (value);
  g_assert_false (g_variant_is_floating (value));
  assert_normal_form (value);
  assert_variant_equal (value, expected);
}

/* ---------------------------------------------------------------------- */
/* Encoding                                                                */

typedef struct {
  const char *name;
  const char *value;      /* GVariant text format */
  const char *data;
  gsize       len;
} EncodeCase;

static const EncodeCase encode_cases[] = {
  { "none/maybe-int", "@mi nothing", BYTES ("LQ") },
  { "none/maybe-variant", "@mv nothing", BYTES ("LQ") },
  { "none/just-nothing", "@mmi just nothing", BYTES ("LQ") },
  { "maybe/just", "@mi just 3", BYTES ("F\0\0\0\3Q") },
  { "variant", "<int32 3>", BYTES ("F\0\0\0\3Q") },
  { "variant/nested", "<<<'x'>>>", BYTES ("N\0\0\0\1xQ") },
  { "boolean/true", "true", BYTES ("RQ") },
  { "boolean/false", "false", BYTES ("CQ") },
  { "int-boundaries/int32-one", "int32 1", BYTES ("F\0\0\0\1Q") },
  { "int-boundaries/int32-minus-one", "int32 -1", BYTES ("F\377\377\377\377Q") },
  { "int-boundaries/int32-max", "int32 2147483647", BYTES ("F\177\377\377\377Q") },
  { "int-boundaries/int32-min", "int32 -2147483648", BYTES ("F\200\0\0\0Q") },
  { "int-boundaries/int64-int32-min", "int64 -2147483648", BYTES ("F\200\0\0\0Q") },
  { "int-boundaries/int64-below-int32",
    "int64 -2147483649", BYTES ("H\0\0\0\13" "-2147483649" "Q") },
  { "int-boundaries/int64-above-int32",
    "int64 2147483648", BYTES ("H\0\0\0\12" "2147483648" "Q") },
  { "int-boundaries/int64-max",
    "int64 9223372036854775807", BYTES ("H\0\0\0\23" "9223372036854775807" "Q") },
  { "int-boundaries/int64-min",
    "int64 -9223372036854775808", BYTES ("H\0\0\0\24" "-9223372036854775808" "Q") },
  { "int-boundaries/uint64-max",
    "uint64 18446744073709551615", BYTES ("H\0\0\0\24" "18446744073709551615" "Q") },
  { "int-boundaries/uint64-small", "uint64 5", BYTES ("F\0\0\0\5Q") },
  { "int-boundaries/uint32-max", "uint32 4294967295", BYTES ("H\0\0\0\12" "4294967295" "Q") },
  { "int-boundaries/uint32-above-int32", "uint32 2147483648", BYTES ("H\0\0\0\12" "2147483648" "Q") },
  { "int-boundaries/uint32-int32-max", "uint32 2147483647", BYTES ("F\177\377\377\377Q") },
  { "int-boundaries/byte", "byte 0xff", BYTES ("F\0\0\0\377Q") },
  { "int-boundaries/int16", "int16 -5", BYTES ("F\377\377\377\373Q") },
  { "int-boundaries/uint16", "uint16 65535", BYTES ("F\0\0\377\377Q") },
  { "double", "1.5", BYTES ("D?\370\0\0\0\0\0\0Q") },
  { "double/negative", "-2.0", BYTES ("D\300\0\0\0\0\0\0\0Q") },
  { "string/empty", "''", BYTES ("N\0\0\0\0Q") },
  { "string/utf8", "'h\303\251'", BYTES ("N\0\0\0\3h\303\251Q") },
  { "object-path/channel", "objectpath '/org/execnet/channel/5'", BYTES ("B\0\0\0\5Q") },
  { "object-path/channel-max", "objectpath '/org/execnet/channel/2147483647'",
    BYTES ("B\177\377\377\377Q") },
  { "object-path/other", "objectpath '/a/b'", BYTES ("N\0\0\0\4/a/bQ") },
  { "object-path/not-canonical", "objectpath '/org/execnet/channel/05'",
    BYTES ("N\0\0\0\27/org/execnet/channel/05Q") },
  { "signature", "signature 'as'", BYTES ("N\0\0\0\2asQ") },
  { "bytes", "[byte 0x61, 0x62]", BYTES ("A\0\0\0\2abQ") },
  /* GVariant's b'' literal holds a trailing nul, which is sent. */
  { "bytes/literal", "b'ab'", BYTES ("A\0\0\0\3ab\0Q") },
  { "bytes/empty", "@ay []", BYTES ("A\0\0\0\0Q") },
  { "list/empty", "@ai []", BYTES ("K\0\0\0\0Q") },
  { "list/ints", "[1, 2]",
    BYTES ("K\0\0\0\2F\0\0\0\0F\0\0\0\1PF\0\0\0\1F\0\0\0\2PQ") },
  { "list/maybes", "[@mi nothing, 5]",
    BYTES ("K\0\0\0\2F\0\0\0\0LPF\0\0\0\1F\0\0\0\5PQ") },
  { "list/variants", "[<'a'>, <true>]",
    BYTES ("K\0\0\0\2F\0\0\0\0N\0\0\0\1aPF\0\0\0\1RPQ") },
  { "list/of-lists", "[[true], @ab []]",
    BYTES ("K\0\0\0\2F\0\0\0\0K\0\0\0\1F\0\0\0\0RPPF\0\0\0\1K\0\0\0\0PQ") },
  { "list/of-tuples", "[(1, 'a')]",
    BYTES ("K\0\0\0\1F\0\0\0\0F\0\0\0\1N\0\0\0\1a@\0\0\0\2PQ") },
  { "tuple/empty", "()", BYTES ("@\0\0\0\0Q") },
  { "tuple/nested", "(1, ('s',))",
    BYTES ("F\0\0\0\1N\0\0\0\1s@\0\0\0\1@\0\0\0\2Q") },
  { "tuple/doubles", "(1.0, 2.0)",
    BYTES ("D?\360\0\0\0\0\0\0D@\0\0\0\0\0\0\0@\0\0\0\2Q") },
  { "tuple/dict-entry", "@{ib} {1, true}", BYTES ("F\0\0\0\1R@\0\0\0\2Q") },
  { "dict/empty", "@a{sv} {}", BYTES ("JQ") },
  { "dict/string-variant", "{'a': <1>}", BYTES ("JN\0\0\0\1aF\0\0\0\1PQ") },
  { "dict/int-string", "{1: 'x', 2: 'y'}",
    BYTES ("JF\0\0\0\1N\0\0\0\1xPF\0\0\0\2N\0\0\0\1yPQ") },
  { "dict/of-lists", "{'k': [true]}",
    BYTES ("JN\0\0\0\1kK\0\0\0\1F\0\0\0\0RPPQ") },
};

static void
test_encode (gconstpointer data)
{
  const EncodeCase *tc = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = parse_text (tc->value);
  g_autoptr(GPtrArray) chunks = NULL;
  g_autoptr(GBytes) flat = NULL;

  chunks = _execnet_value_encode (value, &error);
  g_assert_no_error (error);
  g_assert_nonnull (chunks);
  g_assert_cmpuint (_execnet_chunks_get_size (chunks), ==, tc->len);

  flat = _execnet_chunks_flatten (chunks, -1);
  assert_bytes_equal (flat, tc->data, tc->len);
}

static void
test_encode_floating (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) flat = NULL;

  /* A floating reference is consumed: nothing leaks under LSan. */
  flat = encode_flat (g_variant_new ("(sx)", "a", (gint64) 1), &error);
  g_assert_no_error (error);
  assert_bytes_equal (flat, BYTES ("N\0\0\0\1aF\0\0\0\1@\0\0\0\2Q"));
}

static void
test_encode_handle (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) chunks = NULL;

  chunks = _execnet_value_encode (g_variant_new ("(sh)", "fd", 3), &error);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE);
  g_assert_null (chunks);
  g_assert_nonnull (strstr (error->message, "“h”"));
}

/* Builds @depth lists nested in each other around an int. */
static GVariant *
nested_lists (guint depth)
{
  GVariant *value = g_variant_new_int32 (7);

  for (guint i = 0; i < depth; i++)
    {
      GVariant *boxed = g_variant_new_variant (value);
      value = g_variant_new_array (G_VARIANT_TYPE_VARIANT, &boxed, 1);
    }

  return g_variant_ref_sink (value);
}

static void
test_encode_depth (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) deepest = nested_lists (EXECNET_VALUE_MAX_DEPTH);
  g_autoptr(GVariant) too_deep = nested_lists (EXECNET_VALUE_MAX_DEPTH + 1);
  g_autoptr(GPtrArray) chunks = NULL;
  g_autoptr(GBytes) flat = NULL;
  g_autoptr(GVariant) back = NULL;

  chunks = _execnet_value_encode (deepest, &error);
  g_assert_no_error (error);
  flat = _execnet_chunks_flatten (chunks, -1);
  g_clear_pointer (&chunks, g_ptr_array_unref);

  /* What the encoder accepts, the decoder accepts too. */
  back = _execnet_value_decode (flat, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (back);

  chunks = _execnet_value_encode (too_deep, &error);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE);
  g_assert_null (chunks);
}

static void
test_encode_depth_bytes (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GPtrArray) chunks = NULL;
  GVariant *inner = g_variant_new_bytestring ("x");

  /* A byte string is a scalar on the wire: it does not add a level. */
  for (guint i = 0; i < EXECNET_VALUE_MAX_DEPTH; i++)
    inner = g_variant_new_tuple (&inner, 1);
  value = g_variant_ref_sink (inner);

  chunks = _execnet_value_encode (value, &error);
  g_assert_no_error (error);
  g_assert_nonnull (chunks);
}

/* ---------------------------------------------------------------------- */
/* Round trips                                                             */

typedef struct {
  const char *name;
  const char *value;
  const char *expected;   /* how it comes back */
} RoundTripCase;

static const RoundTripCase round_trip_cases[] = {
  { "none", "@ms nothing", "@mv nothing" },
  { "maybe-just", "@mi just 3", "int64 3" },
  { "boolean", "true", "true" },
  { "byte", "byte 200", "int64 200" },
  { "int16", "int16 -300", "int64 -300" },
  { "uint16", "uint16 60000", "int64 60000" },
  { "int32", "int32 5", "int64 5" },
  { "uint32", "uint32 4294967295", "int64 4294967295" },
  { "int64-min", "int64 -9223372036854775808", "int64 -9223372036854775808" },
  { "int64-max", "int64 9223372036854775807", "int64 9223372036854775807" },
  { "uint64-max", "uint64 18446744073709551615", "uint64 18446744073709551615" },
  { "uint64-small", "uint64 9", "int64 9" },
  { "double", "-0.25", "-0.25" },
  { "string", "'text'", "'text'" },
  { "object-path-channel", "objectpath '/org/execnet/channel/9'",
    "objectpath '/org/execnet/channel/9'" },
  { "object-path-other", "objectpath '/x'", "'/x'" },
  { "signature", "signature 'a{sv}'", "'a{sv}'" },
  { "bytes", "b'bytes'", "b'bytes'" },
  { "variant", "<<<'deep'>>>", "'deep'" },
  { "list", "@ai [1, 2]", "[<int64 1>, <int64 2>]" },
  { "list-of-strings", "['a', 'b']", "[<'a'>, <'b'>]" },
  { "list-of-lists", "[[1, 2], [3]]", "[<[<int64 1>, <int64 2>]>, <[<int64 3>]>]" },
  { "list-of-bytes", "[@ay [], b'x']", "[<@ay []>, <b'x'>]" },
  { "list-of-maybes", "[@ms nothing, 'x']", "[<@mv nothing>, <'x'>]" },
  { "empty-list", "@as []", "@av []" },
  { "tuple", "(int32 1, 'a', [true])", "(int64 1, 'a', [<true>])" },
  { "empty-tuple", "()", "()" },
  { "doubles", "(1.5, 2.5)", "(1.5, 2.5)" },
  { "dict", "{'a': <1>}", "{'a': <int64 1>}" },
  { "dict-int-keys", "{1: 'x'}", "{int64 1: <'x'>}" },
  { "dict-bool-keys", "{true: <1>}", "{true: <int64 1>}" },
  { "dict-double-keys", "{0.5: 'h'}", "{0.5: <'h'>}" },
  { "dict-uint64-keys", "{uint64 18446744073709551615: 1}",
    "{uint64 18446744073709551615: <int64 1>}" },
  { "empty-dict", "@a{sv} {}", "@a{sv} {}" },
  { "empty-dict-int", "@a{is} {}", "@a{sv} {}" },
  { "nested", "{'k': <(@mv nothing, [{'x': <b'y'>}])>}",
    "{'k': <(@mv nothing, [<{'x': <b'y'>}>])>}" },
};

static void
test_round_trip (gconstpointer data)
{
  const RoundTripCase *tc = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = parse_text (tc->value);
  g_autoptr(GVariant) expected = parse_text (tc->expected);
  g_autoptr(GBytes) flat = NULL;
  g_autoptr(GVariant) back = NULL;

  flat = encode_flat (value, &error);
  g_assert_no_error (error);

  back = _execnet_value_decode (flat, NULL, NULL, &error);
  g_assert_no_error (error);
  assert_normal_form (back);
  assert_variant_equal (back, expected);
}

static void
test_round_trip_depth (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = nested_lists (EXECNET_VALUE_MAX_DEPTH);
  g_autoptr(GBytes) flat = NULL;
  g_autoptr(GVariant) back = NULL;
  g_autoptr(GBytes) again = NULL;

  flat = encode_flat (value, &error);
  g_assert_no_error (error);
  back = _execnet_value_decode (flat, NULL, NULL, &error);
  g_assert_no_error (error);

  /* The decoded value has the same shape, so it encodes to the same bytes. */
  again = encode_flat (back, &error);
  g_assert_no_error (error);
  g_assert_true (g_bytes_equal (flat, again));
}

/* ---------------------------------------------------------------------- */
/* Malformed input                                                         */

typedef struct {
  const char *name;
  const char *data;
  gsize       len;
  int         code;
  const char *message;    /* a part of the message, or NULL */
} MalformedCase;

#define PROTOCOL EXECNET_ERROR_PROTOCOL
#define UNSUPPORTED EXECNET_ERROR_UNSUPPORTED_VALUE

static const MalformedCase malformed_cases[] = {
  { "empty", BYTES (""), PROTOCOL, "without a STOP" },
  { "no-stop", BYTES ("L"), PROTOCOL, "offset 1 without a STOP" },
  { "unknown-opcode", BYTES ("LZQ"), PROTOCOL, "unknown opcode 'Z' (0x5a) at offset 1" },
  { "unknown-opcode-nul", BYTES ("\0Q"), PROTOCOL, "unknown opcode 0x00 at offset 0" },
  { "unknown-opcode-below", BYTES ("?Q"), PROTOCOL, "unknown opcode '?'" },
  { "unknown-opcode-above", BYTES ("UQ"), PROTOCOL, "unknown opcode 'U'" },
  { "unknown-opcode-high", BYTES ("\311Q"), PROTOCOL, "0xc9" },
  { "stop-empty-stack", BYTES ("Q"), PROTOCOL, "opcode 'Q' at offset 0: the stack holds 0 values" },
  { "stop-two-values", BYTES ("LLQ"), PROTOCOL, "holds 2 values" },
  { "trailing-data", BYTES ("LQL"), PROTOCOL, "1 bytes of trailing data" },
  { "trailing-stop", BYTES ("LQQ"), PROTOCOL, "trailing" },
  { "truncated-int", BYTES ("F\0\0"), PROTOCOL, "opcode 'F' at offset 0: truncated" },
  { "truncated-long", BYTES ("G"), PROTOCOL, "truncated" },
  { "truncated-bytes", BYTES ("A\0\0\0\5abc"), PROTOCOL, "needs 5 more bytes, only 3 remain" },
  { "truncated-bytes-length", BYTES ("A\0"), PROTOCOL, "truncated" },
  { "truncated-float", BYTES ("D\0\0\0Q"), PROTOCOL, "truncated" },
  { "truncated-complex", BYTES ("T\0\0\0\0\0\0\0\0\0Q"), PROTOCOL, "truncated" },
  { "truncated-string", BYTES ("N\0\0\0\10abcQ"), PROTOCOL, "truncated" },
  { "truncated-longint", BYTES ("H\0\0\0\11" "12Q"), PROTOCOL, "truncated" },
  { "truncated-channel", BYTES ("B\0"), PROTOCOL, "truncated" },
  { "truncated-list", BYTES ("K\0\0"), PROTOCOL, "truncated" },
  { "truncated-tuple", BYTES ("L@\0"), PROTOCOL, "truncated" },
  { "negative-bytes-length", BYTES ("A\377\377\377\377Q"), PROTOCOL, "negative length -1" },
  { "negative-string-length", BYTES ("N\200\0\0\0Q"), PROTOCOL, "negative length" },
  { "negative-py2string-length", BYTES ("M\377\377\377\376Q"), PROTOCOL, "negative length" },
  { "negative-longint-length", BYTES ("H\377\377\377\377Q"), PROTOCOL, "negative length" },
  { "invalid-utf8", BYTES ("N\0\0\0\1\377Q"), PROTOCOL, "not valid UTF-8 at position 0" },
  { "invalid-utf8-unicode", BYTES ("S\0\0\0\2\303(Q"), PROTOCOL, "not valid UTF-8" },
  { "invalid-utf8-after-nul", BYTES ("N\0\0\0\3\0a\377Q"), PROTOCOL, "position 2" },
  { "string-with-nul", BYTES ("N\0\0\0\3a\0bQ"), UNSUPPORTED, "nul character (at position 1)" },
  { "longint-empty", BYTES ("H\0\0\0\0Q"), PROTOCOL, "at least one digit" },
  { "longint-minus-only", BYTES ("H\0\0\0\1-Q"), PROTOCOL, "at least one digit" },
  { "longint-plus", BYTES ("H\0\0\0\2+1Q"), PROTOCOL, "not a decimal digit" },
  { "longint-space", BYTES ("H\0\0\0\2 1Q"), PROTOCOL, "not a decimal digit" },
  { "longint-letter", BYTES ("H\0\0\0\3" "1a2Q"), PROTOCOL, "byte 0x61 at position 1" },
  { "longint-double-minus", BYTES ("H\0\0\0\3--1Q"), PROTOCOL, "not a decimal digit" },
  { "longlong-nul", BYTES ("I\0\0\0\2" "1\0Q"), PROTOCOL, "not a decimal digit" },
  { "longint-above-uint64", BYTES ("H\0\0\0\24" "18446744073709551616" "Q"),
    UNSUPPORTED, "integer 18446744073709551616 does not fit in 64 bits" },
  { "longint-below-int64", BYTES ("H\0\0\0\24" "-9223372036854775809" "Q"),
    UNSUPPORTED, "integer -9223372036854775809 does not fit" },
  { "longint-huge",
    BYTES ("I\0\0\0\62" "12345678901234567890123456789012345678901234567890" "Q"),
    UNSUPPORTED, "(50 digits) does not fit in 64 bits" },
  { "longint-huge-with-letter",
    BYTES ("I\0\0\0\62" "1234567890123456789012345678901234567890123456789x" "Q"),
    PROTOCOL, "not a decimal digit" },
  { "list-negative-size", BYTES ("K\377\377\377\377Q"), PROTOCOL, "negative list size" },
  { "list-too-long", BYTES ("K\0\0\0\2Q"), PROTOCOL, "a list of 2 items cannot be filled by the 1 bytes" },
  { "list-index-out-of-range", BYTES ("K\0\0\0\1F\0\0\0\1LPQ"), PROTOCOL,
    "opcode 'P' at offset 11: list index 1 is out of range for a list of 1 items" },
  { "list-index-negative", BYTES ("K\0\0\0\1F\377\377\377\377LPQ"), PROTOCOL, "index -1" },
  { "list-index-huge", BYTES ("K\0\0\0\1H\0\0\0\24" "18446744073709551615" "LPQ"),
    PROTOCOL, "must be an integer" },
  { "list-index-string", BYTES ("K\0\0\0\1N\0\0\0\1aLPQ"), PROTOCOL, "not a value of type “s”" },
  { "list-index-bool", BYTES ("K\0\0\0\1RLPQ"), PROTOCOL, "must be an integer" },
  { "setitem-empty-stack", BYTES ("PQ"), PROTOCOL, "the stack holds 0 items" },
  { "setitem-two-items", BYTES ("LLPQ"), PROTOCOL, "the stack holds 2 items" },
  { "setitem-on-tuple", BYTES ("@\0\0\0\0F\0\0\0\0LPQ"), PROTOCOL, "finished “()”" },
  { "setitem-on-int", BYTES ("F\0\0\0\0F\0\0\0\0LPQ"), PROTOCOL, "not a list or dict" },
  { "setitem-on-finished-list", BYTES ("K\0\0\0\0@\0\0\0\1F\0\0\0\0LPQ"), PROTOCOL,
    "not a list or dict" },
  { "tuple-count-exceeds-stack", BYTES ("L@\0\0\0\2Q"), PROTOCOL, "needs 2 items but the stack holds 1" },
  { "tuple-negative-count", BYTES ("@\377\377\377\377Q"), PROTOCOL, "negative item count" },
  { "set-count-exceeds-stack", BYTES ("O\0\0\0\1Q"), PROTOCOL, "stack holds 0" },
  { "frozenset-negative-count", BYTES ("E\200\0\0\1Q"), PROTOCOL, "negative" },
  { "channel-negative", BYTES ("B\377\377\377\377Q"), PROTOCOL, "negative channel id -1" },
};

static void
test_malformed (gconstpointer data)
{
  const MalformedCase *tc = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = decode_data (tc->data, tc->len, &error);
  g_assert_null (value);
  g_assert_error (error, EXECNET_ERROR, tc->code);
  if (tc->message != NULL && strstr (error->message, tc->message) == NULL)
    g_error ("message “%s” does not contain “%s”", error->message, tc->message);
}

static void
test_malformed_newlist_huge (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GBytes) data = NULL;
  g_autofree guint8 *bytes = NULL;
  gsize len = 1024 * 1024;

  /* A list claiming 2**31-1 items, followed by a lot of input that could
   * not possibly fill it: rejected at once, before any slot is made. */
  bytes = g_malloc (len);
  memcpy (bytes, "K\177\377\377\377", 5);
  memset (bytes + 5, 'L', len - 6);
  bytes[len - 1] = 'Q';
  data = g_bytes_new_take (g_steal_pointer (&bytes), len);

  value = _execnet_value_decode (data, NULL, NULL, &error);
  g_assert_null (value);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "2147483647 items"));
}

static void
put_int4 (GByteArray *out,
          char        op,
          gint32      value)
{
  guint32 be = GUINT32_TO_BE ((guint32) value);

  g_byte_array_append (out, (const guint8 *) &op, 1);
  g_byte_array_append (out, (const guint8 *) &be, 4);
}

static void
test_malformed_unset_items (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  const guint n_lists = 8;
  const gsize filler = 30000;
  const gint32 n_items = filler / 3;

  /* Lists that are popped at once never get their items, yet each claims a
   * third of what follows. Python would make them lists of None; decoding
   * them all would take memory quadratic in the input. */
  for (guint i = 0; i < n_lists; i++)
    {
      put_int4 (out, 'K', n_items);
      put_int4 (out, '@', 1);
    }
  for (gsize i = 0; i < filler; i++)
    g_byte_array_append (out, (const guint8 *) "C", 1);
  g_byte_array_append (out, (const guint8 *) "Q", 1);

  data = g_byte_array_free_to_bytes (g_steal_pointer (&out));
  value = _execnet_value_decode (data, NULL, NULL, &error);
  g_assert_null (value);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "never set"));
}

static void
test_decode_unset_items_allowed (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) last = NULL;
  const gint32 n_items = 100;

  /* One sparse list of None is fine. */
  put_int4 (out, 'K', n_items);
  put_int4 (out, 'F', n_items - 1);
  g_byte_array_append (out, (const guint8 *) "RP", 2);
  for (gint32 i = 0; i < 3 * n_items; i++)
    g_byte_array_append (out, (const guint8 *) "R", 1);
  put_int4 (out, 'E', 3 * n_items);
  put_int4 (out, '@', 2);
  g_byte_array_append (out, (const guint8 *) "Q", 1);

  data = g_byte_array_free_to_bytes (g_steal_pointer (&out));
  value = _execnet_value_decode (data, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (value), ==, "(avav)");

  last = g_variant_get_child_value (value, 0);
  g_assert_cmpuint (g_variant_n_children (last), ==, n_items);
}

static void
test_decode_long_tuple_key (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) pair = NULL;
  g_autoptr(GVariant) key = NULL;

  /* A tuple key of 40 ints: no dict entry can hold it, the pairs can. */
  g_byte_array_append (out, (const guint8 *) "J", 1);
  for (guint i = 0; i < 40; i++)
    put_int4 (out, 'F', i);
  put_int4 (out, '@', 40);
  g_byte_array_append (out, (const guint8 *) "LPQ", 3);

  data = g_byte_array_free_to_bytes (g_steal_pointer (&out));
  value = _execnet_value_decode (data, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (value), ==, "a(vv)");
  g_assert_cmpuint (g_variant_n_children (value), ==, 1);
  pair = g_variant_get_child_value (value, 0);
  g_variant_get (pair, "(vv)", &key, NULL);
  g_assert_cmpuint (g_variant_n_children (key), ==, 40);
}

static GBytes *
nested_list_bytes (guint depth)
{
  GByteArray *out = g_byte_array_new ();

  for (guint i = 0; i < depth; i++)
    {
      put_int4 (out, 'K', 1);
      put_int4 (out, 'F', 0);
    }
  g_byte_array_append (out, (const guint8 *) "L", 1);
  for (guint i = 0; i < depth; i++)
    g_byte_array_append (out, (const guint8 *) "P", 1);
  g_byte_array_append (out, (const guint8 *) "Q", 1);

  return g_byte_array_free_to_bytes (out);
}

/* Lists nested 63 deep and tuples are written as serialized data, in
 * normal form (GLib reads serialized data nested less than 128 levels, and
 * a list is two: the array and the variant); deeper ones stay trees. */
static void
test_decode_depth_serialized (void)
{
  for (guint depth = 1; depth <= 66; depth++)
    {
      g_autoptr(GBytes) lists = nested_list_bytes (depth);
      g_autoptr(GByteArray) tuples = g_byte_array_new ();
      g_autoptr(GBytes) tuple_bytes = NULL;
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GVariant) tuple = NULL;
      g_autoptr(GError) error = NULL;

      value = _execnet_value_decode (lists, NULL, NULL, &error);
      g_assert_no_error (error);
      if (depth <= 63)
        assert_normal_form (value);

      put_int4 (tuples, 'F', 7);
      for (guint i = 0; i < depth; i++)
        {
          g_byte_array_append (tuples, (const guint8 *) "S\0\0\0\1x", 6);
          put_int4 (tuples, '@', 2);
        }
      g_byte_array_append (tuples, (const guint8 *) "Q", 1);
      tuple_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&tuples));
      tuple = _execnet_value_decode (tuple_bytes, NULL, NULL, &error);
      g_assert_no_error (error);
      assert_normal_form (tuple);
    }

  /* A dict is three levels (the array, the entry, the variant): 42 deep
   * around an int are 127, 43 are too many for serialized data, where
   * GLib would read the innermost values as defaults. */
  for (guint depth = 40; depth <= 44; depth++)
    {
      g_autoptr(GByteArray) dicts = g_byte_array_new ();
      g_autoptr(GBytes) bytes = NULL;
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GVariant) inner = NULL;
      g_autoptr(GError) error = NULL;

      for (guint i = 0; i < depth; i++)
        g_byte_array_append (dicts, (const guint8 *) "JS\0\0\0\1k", 7);
      put_int4 (dicts, 'F', 7);
      for (guint i = 0; i < depth; i++)
        g_byte_array_append (dicts, (const guint8 *) "P", 1);
      g_byte_array_append (dicts, (const guint8 *) "Q", 1);
      bytes = g_byte_array_free_to_bytes (g_steal_pointer (&dicts));
      value = _execnet_value_decode (bytes, NULL, NULL, &error);
      g_assert_no_error (error);
      if (depth <= 42)
        assert_normal_form (value);

      inner = g_variant_ref (value);
      for (guint i = 0; i < depth; i++)
        {
          g_autoptr(GVariant) entry = g_variant_get_child_value (inner, 0);
          g_autoptr(GVariant) boxed = g_variant_get_child_value (entry, 1);

          g_clear_pointer (&inner, g_variant_unref);
          inner = g_variant_get_variant (boxed);
        }
      g_assert_cmpint (g_variant_get_int64 (inner), ==, 7);
    }
}

static void
test_decode_depth_lists (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) deepest = nested_list_bytes (EXECNET_VALUE_MAX_DEPTH);
  g_autoptr(GBytes) too_deep = nested_list_bytes (EXECNET_VALUE_MAX_DEPTH + 1);
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) rejected = NULL;

  value = _execnet_value_decode (deepest, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (value);

  rejected = _execnet_value_decode (too_deep, NULL, NULL, &error);
  g_assert_null (rejected);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_nonnull (strstr (error->message, "nest more than"));
}

static GBytes *
nested_tuple_bytes (guint       depth,
                    const char *leaf,
                    gsize       leaf_len)
{
  GByteArray *out = g_byte_array_new ();

  g_byte_array_append (out, (const guint8 *) leaf, leaf_len);
  for (guint i = 0; i < depth; i++)
    put_int4 (out, '@', 1);
  g_byte_array_append (out, (const guint8 *) "Q", 1);

  return g_byte_array_free_to_bytes (out);
}

static void
test_decode_depth_tuples (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) fits = nested_tuple_bytes (128, BYTES ("F\0\0\0\1"));
  g_autoptr(GBytes) too_deep = nested_tuple_bytes (129, BYTES ("F\0\0\0\1"));
  g_autoptr(GBytes) too_deep_none = nested_tuple_bytes (128, BYTES ("L"));
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) rejected = NULL;

  /* Nested tuples nest the GVariant type, which GLib caps at 128 levels:
   * deeper ones have no GVariant form even within the wire's depth limit. */
  value = _execnet_value_decode (fits, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_type_string_is_valid (g_variant_get_type_string (value)));

  rejected = _execnet_value_decode (too_deep, NULL, NULL, &error);
  g_assert_null (rejected);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE);
  g_clear_error (&error);

  rejected = _execnet_value_decode (too_deep_none, NULL, NULL, &error);
  g_assert_null (rejected);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE);
}

/* ---------------------------------------------------------------------- */
/* Channels                                                                */

typedef struct {
  GArray *ids;
  gint32  refuse;
} ChannelRecorder;

static gboolean
record_channel (gint32    channel_id,
                gpointer  user_data,
                GError  **error)
{
  ChannelRecorder *recorder = user_data;

  if (channel_id == recorder->refuse)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "no channel %d", channel_id);
      return FALSE;
    }

  g_array_append_val (recorder->ids, channel_id);
  return TRUE;
}

static void
test_decode_channel_func (void)
{
  ChannelRecorder recorder = { g_array_new (FALSE, FALSE, sizeof (gint32)), -1 };
  g_autoptr(GBytes) data = g_bytes_new_static (BYTES ("B\0\0\0\1K\0\0\0\1F\0\0\0\0B\0\0\0\4P@\0\0\0\2Q"));
  g_autoptr(GVariant) expected = parse_text ("(objectpath '/org/execnet/channel/1', "
                                             "[<objectpath '/org/execnet/channel/4'>])");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = _execnet_value_decode (data, record_channel, &recorder, &error);
  g_assert_no_error (error);
  assert_variant_equal (value, expected);

  g_assert_cmpuint (recorder.ids->len, ==, 2);
  g_assert_cmpint (g_array_index (recorder.ids, gint32, 0), ==, 1);
  g_assert_cmpint (g_array_index (recorder.ids, gint32, 1), ==, 4);

  g_array_unref (recorder.ids);
}

static void
test_decode_channel_func_error (void)
{
  ChannelRecorder recorder = { g_array_new (FALSE, FALSE, sizeof (gint32)), 4 };
  g_autoptr(GBytes) data = g_bytes_new_static (BYTES ("B\0\0\0\1B\0\0\0\4@\0\0\0\2Q"));
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = _execnet_value_decode (data, record_channel, &recorder, &error);
  g_assert_null (value);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
  g_assert_cmpuint (recorder.ids->len, ==, 1);

  g_array_unref (recorder.ids);
}

typedef struct {
  const char *path;
  gboolean    valid;
  gint32      id;
} ChannelPathCase;

static const ChannelPathCase channel_path_cases[] = {
  { "/org/execnet/channel/1", TRUE, 1 },
  { "/org/execnet/channel/0", TRUE, 0 },
  { "/org/execnet/channel/42", TRUE, 42 },
  { "/org/execnet/channel/2147483647", TRUE, G_MAXINT32 },
  { "/org/execnet/channel/2147483648", FALSE, 0 },
  { "/org/execnet/channel/99999999999999999999", FALSE, 0 },
  { "/org/execnet/channel/01", FALSE, 0 },
  { "/org/execnet/channel/", FALSE, 0 },
  { "/org/execnet/channel/-1", FALSE, 0 },
  { "/org/execnet/channel/1a", FALSE, 0 },
  { "/org/execnet/channel/1/2", FALSE, 0 },
  { "/org/execnet/channel", FALSE, 0 },
  { "/org/execnet/channels/1", FALSE, 0 },
  { "/", FALSE, 0 },
};

static void
test_channel_path (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (channel_path_cases); i++)
    {
      const ChannelPathCase *tc = &channel_path_cases[i];
      gint32 id = -5;
      gboolean valid = _execnet_channel_path_parse (tc->path, &id);

      g_test_message ("%s", tc->path);
      g_assert_cmpint (valid, ==, tc->valid);
      if (tc->valid)
        {
          g_autofree char *path = _execnet_channel_path_new (id);

          g_assert_cmpint (id, ==, tc->id);
          g_assert_cmpstr (path, ==, tc->path);
          g_assert_true (g_variant_is_object_path (path));
        }
      else
        {
          g_assert_cmpint (id, ==, -5);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Large values are not copied                                             */

#define LARGE_SIZE (16 * 1024 * 1024)

static void
test_encode_zero_copy_bytes (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GPtrArray) chunks = NULL;
  g_autoptr(GBytes) flat = NULL;
  g_autoptr(GVariant) back = NULL;
  g_autoptr(GVariant) back_bytes = NULL;
  g_autoptr(GBytes) large = NULL;
  guint8 *data = g_malloc (LARGE_SIZE);
  gconstpointer large_data;
  const guint8 *flat_data;
  gsize flat_size;
  gboolean found = FALSE;

  for (gsize i = 0; i < LARGE_SIZE; i++)
    data[i] = (guint8) (i * 7);
  large = g_bytes_new_take (data, LARGE_SIZE);

  value = g_variant_ref_sink (g_variant_new ("(s@ayx)", "name",
                                             g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                                       large, TRUE),
                                             (gint64) 1));
  {
    g_autoptr(GVariant) child = g_variant_get_child_value (value, 1);
    large_data = g_variant_get_data (child);
  }

  chunks = _execnet_value_encode (value, &error);
  g_assert_no_error (error);

  /* The chunk that holds the payload is the GVariant's own memory. */
  for (guint i = 0; i < chunks->len; i++)
    {
      gsize size;
      gconstpointer chunk_data = g_bytes_get_data (g_ptr_array_index (chunks, i), &size);

      if (chunk_data == large_data)
        {
          g_assert_cmpuint (size, ==, LARGE_SIZE);
          found = TRUE;
        }
      else
        {
          g_assert_cmpuint (size, <, 64);
        }
    }
  g_assert_true (found);
  g_assert_cmpuint (_execnet_chunks_get_size (chunks), ==,
                    5 + 4 + 5 + LARGE_SIZE + 5 + 5 + 1);

  /* Decoding writes the tuple's serialized form, the byte string in it. */
  flat = _execnet_chunks_flatten (chunks, -1);
  back = _execnet_value_decode (flat, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_is_normal_form (back));
  g_assert_true (g_variant_equal (back, value));

  /* A byte string alone shares the input's memory. */
  g_clear_pointer (&chunks, g_ptr_array_unref);
  g_clear_pointer (&flat, g_bytes_unref);
  g_clear_pointer (&back, g_variant_unref);
  back_bytes = g_variant_get_child_value (value, 1);
  chunks = _execnet_value_encode (back_bytes, &error);
  g_assert_no_error (error);
  flat = _execnet_chunks_flatten (chunks, -1);
  flat_data = g_bytes_get_data (flat, &flat_size);
  back = _execnet_value_decode (flat, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true ((const guint8 *) g_variant_get_data (back) >= flat_data);
  g_assert_true ((const guint8 *) g_variant_get_data (back) + LARGE_SIZE <=
                 flat_data + flat_size);
  g_assert_true (g_variant_equal (back, back_bytes));
}

static void
test_encode_zero_copy_string (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GPtrArray) chunks = NULL;
  g_autoptr(GBytes) flat = NULL;
  g_autoptr(GVariant) back = NULL;
  g_autofree char *text = g_strnfill (4000, 'x');
  GBytes *chunk;

  value = g_variant_ref_sink (g_variant_new_string (text));
  chunks = _execnet_value_encode (value, &error);
  g_assert_no_error (error);

  /* "N" + length, the text itself, "Q" */
  g_assert_cmpuint (chunks->len, ==, 3);
  chunk = g_ptr_array_index (chunks, 1);
  g_assert_true (g_bytes_get_data (chunk, NULL) == (gconstpointer) g_variant_get_string (value, NULL));
  g_assert_cmpuint (g_bytes_get_size (chunk), ==, 4000);

  flat = _execnet_chunks_flatten (chunks, -1);
  back = _execnet_value_decode (flat, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_string (back, NULL), ==, text);
}

static void
test_encode_small_bytes_copied (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = parse_text ("[b'abc', b'de']");
  g_autoptr(GPtrArray) chunks = NULL;

  /* Small opcodes and short byte strings accumulate in one chunk. */
  chunks = _execnet_value_encode (value, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (chunks->len, ==, 1);
}

/* ---------------------------------------------------------------------- */
/* Chunks, dumps and loads                                                 */

static void
test_chunks (void)
{
  g_autoptr(GPtrArray) chunks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(GBytes) plain = NULL;
  g_autoptr(GBytes) versioned = NULL;
  g_autoptr(GBytes) empty = NULL;

  g_assert_cmpuint (_execnet_chunks_get_size (chunks), ==, 0);
  empty = _execnet_chunks_flatten (chunks, -1);
  g_assert_cmpuint (g_bytes_get_size (empty), ==, 0);

  g_ptr_array_add (chunks, g_bytes_new_static ("ab", 2));
  g_ptr_array_add (chunks, g_bytes_new_static ("", 0));
  g_ptr_array_add (chunks, g_bytes_new_static ("cde", 3));
  g_assert_cmpuint (_execnet_chunks_get_size (chunks), ==, 5);

  plain = _execnet_chunks_flatten (chunks, -1);
  g_assert_cmpmem (g_bytes_get_data (plain, NULL), g_bytes_get_size (plain), "abcde", 5);

  versioned = _execnet_chunks_flatten (chunks, 2);
  g_assert_cmpmem (g_bytes_get_data (versioned, NULL), g_bytes_get_size (versioned),
                   "\2abcde", 6);
}

static void
test_dumps (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) data = NULL;

  data = execnet_dumps (g_variant_new_int32 (1), &error);
  g_assert_no_error (error);
  assert_bytes_equal (data, BYTES ("\2F\0\0\0\1Q"));
  g_assert_cmpint (EXECNET_DUMPS_VERSION, ==, 2);
}

static void
test_dumps_unsupported (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) data = NULL;

  data = execnet_dumps (g_variant_new_handle (0), &error);
  g_assert_null (data);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE);
}

typedef struct {
  const char *name;
  const char *data;
  gsize       len;
  const char *expected;   /* NULL: must fail */
  const char *message;
} LoadsCase;

static const LoadsCase loads_cases[] = {
  { "version-2", BYTES ("\2F\0\0\0\1Q"), "int64 1", NULL },
  { "version-1", BYTES ("\1N\0\0\0\1xQ"), "'x'", NULL },
  { "version-1-from-execnet-1.9",
    BYTES ("\1K\0\0\0\2F\0\0\0\0F\0\0\0\1PF\0\0\0\1F\0\0\0\2PQ"),
    "[<int64 1>, <int64 2>]", NULL },
  { "channel", BYTES ("\2B\0\0\0\7Q"), "objectpath '/org/execnet/channel/7'", NULL },
  { "version-3", BYTES ("\3LQ"), NULL, "unsupported format version 3" },
  { "version-0", BYTES ("\0LQ"), NULL, "version 0" },
  { "empty", BYTES (""), NULL, "empty" },
  { "version-only", BYTES ("\2"), NULL, "offset 1 without a STOP" },
  { "offsets-count-the-version-byte", BYTES ("\2LZQ"), NULL, "at offset 2" },
};

static void
test_loads (gconstpointer data)
{
  const LoadsCase *tc = data;
  g_autoptr(GBytes) bytes = g_bytes_new (tc->data, tc->len);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;

  value = execnet_loads (bytes, &error);

  if (tc->expected != NULL)
    {
      g_autoptr(GVariant) expected = parse_text (tc->expected);

      g_assert_no_error (error);
      assert_variant_equal (value, expected);
    }
  else
    {
      g_assert_null (value);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
      if (strstr (error->message, tc->message) == NULL)
        g_error ("message “%s” does not contain “%s”", error->message, tc->message);
    }
}

static void
test_dumps_loads (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = parse_text ("('a', [1, 2], {'k': <@mi nothing>}, b'z', 2.5)");
  g_autoptr(GVariant) expected = parse_text ("('a', [<int64 1>, <int64 2>], "
                                             "{'k': <@mv nothing>}, b'z', 2.5)");
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GVariant) back = NULL;

  data = execnet_dumps (value, &error);
  g_assert_no_error (error);
  back = execnet_loads (data, &error);
  g_assert_no_error (error);
  assert_variant_equal (back, expected);
}

/* ---------------------------------------------------------------------- */

/* The wire form of (None,) * n, a list of n ints, or a set of n ints. */
static GBytes *
wire_of_many (char   kind,
              guint  n)
{
  GByteArray *data = g_byte_array_new ();
  guint8 count[4] = { n >> 24, n >> 16, n >> 8, n };

  if (kind == 'l')
    {
      g_byte_array_append (data, (const guint8 *) "K", 1);
      g_byte_array_append (data, count, 4);
    }
  for (guint i = 0; i < n; i++)
    {
      guint8 index[5] = { 'F', i >> 24, i >> 16, i >> 8, i };

      if (kind == 't')
        g_byte_array_append (data, (const guint8 *) "L", 1);
      else if (kind == 's')
        g_byte_array_append (data, index, 5);
      else
        {
          g_byte_array_append (data, index, 5);
          g_byte_array_append (data, index, 5);
          g_byte_array_append (data, (const guint8 *) "P", 1);
        }
    }
  if (kind == 't')
    g_byte_array_append (data, (const guint8 *) "@", 1);
  else if (kind == 's')
    g_byte_array_append (data, (const guint8 *) "O", 1);
  if (kind != 'l')
    g_byte_array_append (data, count, 4);
  g_byte_array_append (data, (const guint8 *) "Q", 1);

  return g_byte_array_free_to_bytes (data);
}

/* An item whose decoded form would pass the budget fails with
 * UNSUPPORTED_VALUE, before it is built; below it, it decodes. */
static void
test_decode_budget (void)
{
  static const char kinds[] = { 't', 's', 'l' };

  for (gsize i = 0; i < G_N_ELEMENTS (kinds); i++)
    {
      g_autoptr(GBytes) small = wire_of_many (kinds[i], 1000);
      g_autoptr(GBytes) large = wire_of_many (kinds[i], 100000);
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) error = NULL;

      value = _execnet_value_decode_with_budget (small, 1 << 20, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (value), ==, 1000);

      g_assert_null (_execnet_value_decode_with_budget (large, 1 << 20, &error));
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE);
      g_assert_nonnull (strstr (error->message, "smaller pieces"));
      g_clear_error (&error);

      /* The default budget takes it. */
      g_clear_pointer (&value, g_variant_unref);
      value = _execnet_value_decode (large, NULL, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (value), ==, 100000);
    }
}

/* Decodes what @expected (transfer full, may be floating) encodes to and
 * checks that the result's serialized data is the very bytes GLib
 * serializes @expected to. */
static void
assert_decodes_to_serialized (GVariant *expected)
{
  g_autoptr(GVariant) owned = g_variant_take_ref (expected);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) flat = NULL;
  g_autoptr(GVariant) back = NULL;

  flat = encode_flat (expected, &error);
  g_assert_no_error (error);
  back = _execnet_value_decode (flat, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (back), ==, g_variant_get_type_string (expected));
  assert_normal_form (back);
  g_assert_cmpmem (g_variant_get_data (back), g_variant_get_size (back),
                   g_variant_get_data (expected), g_variant_get_size (expected));
}

static GVariant *
string_of (gsize len)
{
  g_autofree char *text = g_strnfill (len, 'a' + len % 26);

  return g_variant_new_string (text);
}

/* The decoder writes GVariant's serialized form itself (alignment,
 * padding, framing offsets of 1, 2 and 4 bytes): byte for byte what GLib
 * writes, around every size where offsets grow. */
static void
test_decode_serialized_form (void)
{
  static const gsize lengths[] = { 0, 1, 5, 6, 7, 8, 9, 120, 250, 251, 252, 253,
                                   254, 255, 256, 65500, 65525, 65530, 65531,
                                   65532, 65533, 65534, 65535, 65536 };
  static const char * const texts[] = {
    "()", "((),)", "((), ())", "(int64 1, true)", "(true, int64 1)",
    "(true, false, true)", "('a', int64 1, 'bc')", "(@mv nothing,)",
    "(@mv nothing, @mv nothing, 'x')", "(1.5, 'x', true, int64 -1)",
    "((1.0, 2.0), true)", "([<int64 1>, <'a'>], 'b', @av [])",
    "(@av [], @a{sv} {}, @av [])", "[<(int64 1, true)>, <('a', @mv nothing)>]",
    "{'a': <int64 1>, 'bb': <@mv nothing>, 'ccc': <('x', true)>}",
    "{int64 1: <'a'>, int64 -2: <[<true>]>}", "{true: <int64 1>, false: <'x'>}",
    "{1.5: <'a'>, -0.0: <'b'>}", "[<{'k': <[<int64 1>, <{int64 2: <'v'>}>]>}>]",
    "([<int64 1>], [<(int64 2, [<'x'>])>], {'a': <int64 3>})",
    "(uint64 18446744073709551615, int64 -9223372036854775808)",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (texts); i++)
    assert_decodes_to_serialized (parse_text (texts[i]));

  for (gsize i = 0; i < G_N_ELEMENTS (lengths); i++)
    for (gsize n = 1; n <= (lengths[i] > 1000 ? 3 : 40); n++)
      {
        g_autoptr(GVariantBuilder) list = g_variant_builder_new (G_VARIANT_TYPE ("av"));
        g_autoptr(GVariantBuilder) dict = g_variant_builder_new (G_VARIANT_TYPE ("a{sv}"));
        g_autoptr(GVariantBuilder) tuple = g_variant_builder_new (G_VARIANT_TYPE_TUPLE);

        for (gsize j = 0; j < n; j++)
          {
            g_autofree char *fill = g_strnfill (lengths[i], 'k');
            g_autofree char *key = g_strdup_printf ("%" G_GSIZE_FORMAT "%s", j, fill);

            g_variant_builder_add (list, "v", string_of (lengths[i] + j % 3));
            g_variant_builder_add (dict, "{sv}", key, g_variant_new_int64 (j));
            g_variant_builder_add_value (tuple, string_of (lengths[i] + j % 2));
            g_variant_builder_add_value (tuple, g_variant_new_int64 (j));
          }
        assert_decodes_to_serialized (g_variant_builder_end (list));
        assert_decodes_to_serialized (g_variant_builder_end (dict));
        assert_decodes_to_serialized (g_variant_builder_end (tuple));
      }
}

/* Bytes allocated now, from whichever allocator is in use. */
static gsize
allocated_bytes (void)
{
#ifdef TEST_ASAN
  return __sanitizer_get_current_allocated_bytes ();
#else
  struct mallinfo2 info = mallinfo2 ();

  return info.uordblks + info.hblkhd;
#endif
}

/* What a decoded item holds is at most 8 times its wire size, for the
 * shapes that cost most as trees of GVariant instances: many small
 * numbers (a list, a set), a dict of small strings, small tuples in a
 * list. (A tuple of many members costs GVariant type information per
 * member, about 40 bytes each: doc/design.md.) */
#define N_MEMBERS 50000

static void
test_decode_memory_per_item (void)
{
  const char *shapes[] = { "av", "a{sv}", "a(xmv)" };

  if (g_strcmp0 (g_getenv ("G_SLICE"), "always-malloc") != 0)
    {
      g_test_skip ("needs G_SLICE=always-malloc, so that freed memory is counted as freed");
      return;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (shapes); i++)
    {
      g_autoptr(GVariantBuilder) builder = g_variant_builder_new (G_VARIANT_TYPE (shapes[i]));
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GVariant) back = NULL;
      g_autoptr(GPtrArray) chunks = NULL;
      g_autoptr(GBytes) wire = NULL;
      g_autoptr(GError) error = NULL;
      gsize before, after, wire_size;

      for (gint64 n = 0; n < N_MEMBERS; n++)
        {
          if (i == 0)
            g_variant_builder_add (builder, "v", g_variant_new_int64 (n));
          else if (i == 1)
            {
              g_autofree char *key = g_strdup_printf ("%" G_GINT64_FORMAT, n);

              g_variant_builder_add (builder, "{sv}", key, g_variant_new_int64 (n));
            }
          else
            g_variant_builder_add (builder, "(xmv)", n, NULL);
        }
      value = g_variant_ref_sink (g_variant_builder_end (builder));
      chunks = _execnet_value_encode (value, &error);
      g_assert_no_error (error);
      wire = _execnet_chunks_flatten (chunks, -1);
      wire_size = g_bytes_get_size (wire);

      before = allocated_bytes ();
      back = _execnet_value_decode (wire, NULL, NULL, &error);
      g_assert_no_error (error);
      after = allocated_bytes ();

      g_test_message ("%s: %" G_GSIZE_FORMAT " bytes on the wire, %" G_GSIZE_FORMAT
                      " held decoded (%.1fx)", shapes[i], wire_size, after - before,
                      (after - before) / (gdouble) wire_size);
      g_assert_cmpuint (after - before, <=, 8 * wire_size);
      g_assert_cmpuint (g_variant_n_children (back), ==, N_MEMBERS);
    }
}

/* ---------------------------------------------------------------------- */
/* Peak memory while decoding                                              */

/* Writes wire data, or with @data NULL only counts it. */
typedef struct {
  guint8 *data;
  gsize   len;
} Wire;

static void
wire_put (Wire       *wire,
          const void *bytes,
          gsize       len)
{
  if (wire->data != NULL)
    memcpy (wire->data + wire->len, bytes, len);
  wire->len += len;
}

static void
wire_put_op (Wire  *wire,
             char   op,
             gint32 value)
{
  guint8 bytes[5] = { op, value >> 24, value >> 16, value >> 8, value };

  wire_put (wire, bytes, 5);
}

static void
wire_put_text (Wire       *wire,
               const char *text)
{
  wire_put_op (wire, 'S', strlen (text));
  wire_put (wire, text, strlen (text));
}

/* What Python execnet writes for each shape of @n members. */
static void
wire_write_shape (Wire       *wire,
                  const char *shape,
                  gint32      n)
{
  char text[32];

  if (g_str_equal (shape, "dict"))
    wire_put (wire, "J", 1);
  else if (!g_str_equal (shape, "set") && !g_str_equal (shape, "nones"))
    wire_put_op (wire, 'K', n);

  for (gint32 i = 0; i < n; i++)
    {
      g_snprintf (text, sizeof text, "%d", i);
      if (g_str_equal (shape, "ints"))
        {
          wire_put_op (wire, 'F', i);
          wire_put_op (wire, 'F', i);
        }
      else if (g_str_equal (shape, "set"))
        wire_put_op (wire, 'F', i);
      else if (g_str_equal (shape, "nones"))
        wire_put (wire, "L", 1);
      else if (g_str_equal (shape, "dict"))
        {
          wire_put_text (wire, text);
          wire_put_op (wire, 'F', i);
        }
      else if (g_str_equal (shape, "channels"))
        {
          wire_put_op (wire, 'F', i);
          wire_put_op (wire, 'B', 1000000 + 2 * i);
        }
      else if (g_str_equal (shape, "strings"))
        {
          wire_put_op (wire, 'F', i);
          wire_put_text (wire, text);
        }
      else
        {
          /* nested: (i, [i, None]) */
          wire_put_op (wire, 'F', i);
          wire_put_op (wire, 'F', i);
          wire_put_op (wire, 'K', 2);
          wire_put_op (wire, 'F', 0);
          wire_put_op (wire, 'F', i);
          wire_put (wire, "P", 1);
          wire_put_op (wire, 'F', 1);
          wire_put (wire, "LP", 2);
          wire_put_op (wire, '@', 2);
        }
      if (!g_str_equal (shape, "set") && !g_str_equal (shape, "nones"))
        wire_put (wire, "P", 1);
    }

  if (g_str_equal (shape, "set"))
    wire_put_op (wire, 'O', n);
  else if (g_str_equal (shape, "nones"))
    wire_put_op (wire, '@', n);
  wire_put (wire, "Q", 1);
}

/* One allocation of the exact size, so that nothing freed before the
 * decoding is there for it to reuse. */
static GBytes *
wire_of_shape (const char *shape,
               gint32      n)
{
  Wire wire = { NULL, 0 };

  wire_write_shape (&wire, shape, n);
  wire.data = g_malloc (wire.len);
  wire.len = 0;
  wire_write_shape (&wire, shape, n);
  return g_bytes_new_take (wire.data, wire.len);
}

/* A field of /proc/self/status, in bytes. */
static gsize
status_bytes (const char *field)
{
  g_autofree char *status = NULL;
  const char *line;

  g_assert_true (g_file_get_contents ("/proc/self/status", &status, NULL, NULL));
  line = strstr (status, field);
  g_assert_nonnull (line);
  return (gsize) g_ascii_strtoull (line + strlen (field), NULL, 10) * 1024;
}

/* Address space the process may take beyond the decoding's own. */
#define PEAK_BASELINE (4 << 20)
#define PEAK_MEMBERS 1000000

/* The peak of memory while an item decodes is at most 8 times its wire
 * size (plus a small fixed baseline), for the shapes Python writes most:
 * a million small ints in a list and in a set, a dict of str -> int, a
 * list of short strings, a list of small tuples that hold lists and a list
 * of channel references (without the channels the gateway makes). Each
 * decodes in a subprocess whose address space is limited to what it has,
 * plus 8 times the wire size and the baseline; an allocation past that
 * fails, and g_malloc() aborts the subprocess. A tuple of many members is
 * measured too, with the higher limit of its documented cost. */
static void
test_decode_peak_memory (gconstpointer data)
{
  const char *shape = data;
  guint factor = g_str_equal (shape, "nones") ? 64 : 8;

#ifdef TEST_ASAN
  g_test_skip ("AddressSanitizer reserves terabytes of address space and keeps freed "
               "memory in quarantine, so an address-space limit cannot measure the decoder");
  return;
#endif

  if (g_test_subprocess ())
    {
      g_autoptr(GBytes) wire = NULL;
      g_autoptr(GVariant) value = NULL;
      g_autoptr(GError) error = NULL;
      struct rlimit limit;
      gsize before, peak, held, wire_size;

      /* A fixed threshold: glibc would otherwise raise it after the
       * first large free, and keep large blocks on its heap. */
      mallopt (M_MMAP_THRESHOLD, 128 * 1024);
      wire = wire_of_shape (shape, PEAK_MEMBERS);
      wire_size = g_bytes_get_size (wire);

      before = status_bytes ("VmSize:");
      limit.rlim_cur = limit.rlim_max = before + factor * wire_size + PEAK_BASELINE;
      g_assert_cmpint (setrlimit (RLIMIT_AS, &limit), ==, 0);

      value = _execnet_value_decode (wire, NULL, NULL, &error);
      g_assert_no_error (error);
      peak = status_bytes ("VmPeak:");
      held = status_bytes ("VmSize:");
      g_print ("%s: %" G_GSIZE_FORMAT " bytes on the wire, peak %.1fx while decoding, "
               "%.1fx held after\n", shape, wire_size,
               (peak - before) / (gdouble) wire_size, (held - before) / (gdouble) wire_size);
      g_assert_cmpuint (g_variant_n_children (value), ==, PEAK_MEMBERS);
      assert_normal_form (value);
      return;
    }

  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDOUT);
  g_test_trap_assert_passed ();
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (decode_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/value/decode/", decode_cases[i].name, NULL);
      g_test_add_data_func (path, &decode_cases[i], test_decode);
    }
  g_test_add_func ("/value/decode/depth/lists", test_decode_depth_lists);
  g_test_add_func ("/value/decode/depth/serialized", test_decode_depth_serialized);
  g_test_add_func ("/value/decode/budget", test_decode_budget);
  g_test_add_func ("/value/decode/serialized-form", test_decode_serialized_form);
  {
    static const char * const shapes[] = { "ints", "set", "dict", "strings", "nested",
                                           "channels", "nones" };

    for (gsize i = 0; i < G_N_ELEMENTS (shapes); i++)
      {
        g_autofree char *path = g_strconcat ("/value/decode/peak-memory/", shapes[i], NULL);
        g_test_add_data_func (path, shapes[i], test_decode_peak_memory);
      }
  }
  g_test_add_func ("/value/decode/memory-per-item", test_decode_memory_per_item);
  g_test_add_func ("/value/decode/depth/tuples", test_decode_depth_tuples);
  g_test_add_func ("/value/decode/unset-items-allowed", test_decode_unset_items_allowed);
  g_test_add_func ("/value/decode/channel-func/records", test_decode_channel_func);
  g_test_add_func ("/value/decode/channel-func/error", test_decode_channel_func_error);

  for (gsize i = 0; i < G_N_ELEMENTS (malformed_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/value/decode/malformed/", malformed_cases[i].name, NULL);
      g_test_add_data_func (path, &malformed_cases[i], test_malformed);
    }
  g_test_add_func ("/value/decode/malformed/newlist-huge", test_malformed_newlist_huge);
  g_test_add_func ("/value/decode/malformed/unset-items", test_malformed_unset_items);
  g_test_add_func ("/value/decode/long-tuple-key", test_decode_long_tuple_key);

  for (gsize i = 0; i < G_N_ELEMENTS (encode_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/value/encode/", encode_cases[i].name, NULL);
      g_test_add_data_func (path, &encode_cases[i], test_encode);
    }
  g_test_add_func ("/value/encode/floating", test_encode_floating);
  g_test_add_func ("/value/encode/unsupported/handle", test_encode_handle);
  g_test_add_func ("/value/encode/depth/lists", test_encode_depth);
  g_test_add_func ("/value/encode/depth/bytes-are-scalars", test_encode_depth_bytes);
  g_test_add_func ("/value/encode/zero-copy/bytes", test_encode_zero_copy_bytes);
  g_test_add_func ("/value/encode/zero-copy/string", test_encode_zero_copy_string);
  g_test_add_func ("/value/encode/zero-copy/small-bytes-copied", test_encode_small_bytes_copied);

  for (gsize i = 0; i < G_N_ELEMENTS (round_trip_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/value/round-trip/", round_trip_cases[i].name, NULL);
      g_test_add_data_func (path, &round_trip_cases[i], test_round_trip);
    }
  g_test_add_func ("/value/round-trip/depth", test_round_trip_depth);

  g_test_add_func ("/value/channel-path", test_channel_path);
  g_test_add_func ("/value/chunks", test_chunks);
  g_test_add_func ("/value/dumps/version-byte", test_dumps);
  g_test_add_func ("/value/dumps/unsupported", test_dumps_unsupported);
  g_test_add_func ("/value/dumps/round-trip", test_dumps_loads);
  for (gsize i = 0; i < G_N_ELEMENTS (loads_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/value/loads/", loads_cases[i].name, NULL);
      g_test_add_data_func (path, &loads_cases[i], test_loads);
    }

  return g_test_run ();
}
