/* execnet-value-private.h: GVariant <-> execnet's serialization (pure, GLib only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Deepest nesting of containers the decoder accepts. */
#define EXECNET_VALUE_MAX_DEPTH 200

/* The most memory one item may take while it is decoded, counted as the
 * decoder allocates it; an item that would need more fails with
 * EXECNET_ERROR_UNSUPPORTED_VALUE before it is built. Decoding takes at
 * most 8 times the wire size (1.2-2.3x for lists and dicts, 6.6x for a set
 * of small ints), except a tuple of many members, about 50 bytes per
 * member (doc/protocol.md §6). */
#define EXECNET_VALUE_DECODE_BUDGET ((gsize) 256 << 20)

/* How many levels of GVariant values may nest in serialized data that
 * GLib reads as written: from G_VARIANT_MAX_RECURSION_DEPTH (128) on, it
 * reads default values. Decoded items nested deeper stay trees of
 * GVariant instances. */
#define EXECNET_VALUE_SERIALIZED_MAX_LEVELS 127

/* The object path prefix of channel values: /org/execnet/channel/<id> */
#define EXECNET_CHANNEL_PATH_PREFIX "/org/execnet/channel/"

/* Called by the decoder for each channel reference (opcode 'B') it meets,
 * so the owner can create the channel before the value is delivered.
 * Returning FALSE with @error set aborts decoding. */
typedef gboolean (*ExecnetValueChannelFunc) (gint32     channel_id,
                                             gpointer   user_data,
                                             GError   **error);

/* Encodes @value (floating refs are sunk) into a list of chunks, ending with
 * STOP, with no version byte. Byte strings and long strings are referenced
 * from @value's own storage, not copied. Returns (element-type GBytes). */
GPtrArray *_execnet_value_encode        (GVariant                *value,
                                         GError                 **error);
gsize      _execnet_chunks_get_size     (GPtrArray               *chunks);
GBytes    *_execnet_chunks_flatten      (GPtrArray               *chunks,
                                         gint                     version_byte);

/* Decodes one value that must span exactly @data (no version byte).
 * Byte strings in the result share @data's memory. */
GVariant  *_execnet_value_decode        (GBytes                  *data,
                                         ExecnetValueChannelFunc  channel_func,
                                         gpointer                 user_data,
                                         GError                 **error);

/* As _execnet_value_decode() without channels, with another budget. */
GVariant  *_execnet_value_decode_with_budget (GBytes                 *data,
                                              gsize                   budget,
                                              GError                **error);

/* How many levels of values nest in @value (a value that is no container
 * is one), counted up to @limit + 1. */
guint      _execnet_variant_levels      (GVariant                *value,
                                         guint                    limit);

char      *_execnet_channel_path_new    (gint32                   channel_id);
gboolean   _execnet_channel_path_parse  (const char              *path,
                                         gint32                  *channel_id);

G_END_DECLS
