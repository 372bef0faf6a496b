/* fuzz-value.c: libFuzzer target for the value decoder
 *
 * Decodes arbitrary bytes. Whatever decodes must encode again, decode to an
 * equal value, and encode to the same bytes the second time (the encoder's
 * output is canonical for the values the decoder makes). The decoder
 * writes serialized GVariant data itself: a copy that GLib does not trust
 * must be in normal form.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdint.h>

#include <glib.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-serialize.h>

#include "execnet-value-private.h"

#define CHANNEL_ERROR (g_quark_from_static_string ("fuzz-value-channel-error"))

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

/* Refuses some channel ids, so that the owner's errors are exercised too. */
static gboolean
check_channel (gint32    channel_id,
               gpointer  user_data,
               GError  **error)
{
  if (channel_id % 1000 == 999)
    {
      g_set_error (error, CHANNEL_ERROR, 0, "channel %d refused", channel_id);
      return FALSE;
    }
  return TRUE;
}

static GBytes *
encode_or_abort (GVariant *value)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) chunks = NULL;
  GBytes *flat;

  chunks = _execnet_value_encode (value, &error);
  g_assert_no_error (error);
  g_assert_true (chunks != NULL);

  flat = _execnet_chunks_flatten (chunks, -1);
  g_assert_true (g_bytes_get_size (flat) == _execnet_chunks_get_size (chunks));
  return flat;
}

/* Whether @value holds an `a(vv)` anywhere, even inside a variant. */
static gboolean
has_pairs (GVariant *value)
{
  gsize n;

  if (g_variant_is_of_type (value, G_VARIANT_TYPE ("a(vv)")))
    return TRUE;
  if (!g_variant_is_container (value))
    return FALSE;

  n = g_variant_n_children (value);
  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

      if (has_pairs (child))
        return TRUE;
    }
  return FALSE;
}

/* Serialized data nested 128 levels deep or more is never normal (GLib
 * reads default values there); the decoder leaves such values as trees. */
static void
assert_normal_form (GVariant *value)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) untrusted = NULL;

  if (_execnet_variant_levels (value, EXECNET_VALUE_SERIALIZED_MAX_LEVELS) >
      EXECNET_VALUE_SERIALIZED_MAX_LEVELS)
    return;

  bytes = g_variant_get_data_as_bytes (value);
  untrusted = g_variant_ref_sink (g_variant_new_from_bytes (g_variant_get_type (value),
                                                            bytes, FALSE));
  g_assert_true (g_variant_is_normal_form (untrusted));
  g_assert_true (g_variant_equal (untrusted, value));
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) loaded = NULL;
  g_autoptr(GBytes) encoded = NULL;
  g_autoptr(GBytes) encoded_again = NULL;
  g_autoptr(GVariant) again = NULL;

  /* A critical from GLib means the codec built something invalid. */
  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);

  bytes = g_bytes_new (data, size);

  /* The public entry point, which reads a version byte first. */
  loaded = execnet_loads (bytes, &error);
  g_assert_true ((loaded == NULL) == (error != NULL));
  if (error != NULL)
    g_assert_true (error->domain == EXECNET_ERROR);
  g_clear_error (&error);

  value = _execnet_value_decode (bytes, check_channel, NULL, &error);
  if (value == NULL)
    {
      g_assert_true (error != NULL);
      g_assert_true (error->domain == EXECNET_ERROR || error->domain == CHANNEL_ERROR);
      return 0;
    }
  g_assert_no_error (error);
  g_assert_true (!g_variant_is_floating (value));
  g_assert_true (g_variant_type_string_is_valid (g_variant_get_type_string (value)));
  assert_normal_form (value);

  encoded = encode_or_abort (value);
  again = _execnet_value_decode (encoded, check_channel, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (again != NULL);

  encoded_again = encode_or_abort (again);
  g_assert_true (g_bytes_equal (encoded, encoded_again));

  /* Last: comparing serializes both values in place. A dict whose keys
   * have no common basic type decodes to `a(vv)` pairs, which encode as a
   * list of pairs: that one comes back as an `av`. */
  if (!has_pairs (value))
    g_assert_true (g_variant_equal (value, again));

  return 0;
}
