/* execnet-value.c: GVariant <-> execnet's serialization
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-serialize.h>

#include "execnet-value-private.h"

/* The format is a postfix program for a small stack machine: every opcode is
 * one ASCII letter, some followed by a big-endian signed 32-bit argument
 * ("int4") and raw bytes. Scalars push a value; tuples and sets pop the items
 * pushed before them; lists and dicts are pushed empty and filled by SETITEM,
 * which stores a key and a value into the container below them. STOP ends
 * the program and must leave exactly one value.
 *
 * Encoding walks the GVariant depth first and writes small opcodes into one
 * growing buffer. Byte strings and strings of REF_THRESHOLD bytes or more
 * are not copied: the buffer so far becomes a chunk, and the next chunk is a
 * GBytes that references the GVariant's own storage. The writer sends the
 * chunk list as it is, so a large value goes from the caller's memory to the
 * socket without a copy.
 *
 * Decoding cannot build GVariants bottom-up in one step, because a list is
 * created before its items arrive. But a container can only be changed while
 * it sits on the stack: once BUILDTUPLE, SET or SETITEM pops it, nothing can
 * reach it any more. So the stack holds finished values plus lists and dicts
 * under construction, and a container is finished at the moment it is
 * popped. The decoder first writes serialized GVariant data directly, its
 * stack kept as serialized data (decode_direct()); what that does not take
 * on, it decodes again as a tree of GVariant instances, the stack holding
 * GVariants (the tree decoder). Nothing here recurses on the input, so
 * hostile nesting cannot exhaust the C stack; depth is still capped so that
 * the GVariants built stay reasonable for the code that walks them
 * afterwards.
 *
 * The reader trusts no count or length: each is checked against the bytes
 * that remain, so memory stays proportional to the input. A list's claimed
 * size is the one number that could break that (its items default to None),
 * hence the rules on NEWLIST below.
 */

typedef enum {
  OP_BUILDTUPLE = '@',
  OP_BYTES = 'A',
  OP_CHANNEL = 'B',
  OP_FALSE = 'C',
  OP_FLOAT = 'D',
  OP_FROZENSET = 'E',
  OP_INT = 'F',
  OP_LONG = 'G',
  OP_LONGINT = 'H',
  OP_LONGLONG = 'I',
  OP_NEWDICT = 'J',
  OP_NEWLIST = 'K',
  OP_NONE = 'L',
  OP_PY2STRING = 'M',
  OP_PY3STRING = 'N',
  OP_SET = 'O',
  OP_SETITEM = 'P',
  OP_STOP = 'Q',
  OP_TRUE = 'R',
  OP_UNICODE = 'S',
  OP_COMPLEX = 'T',
} Opcode;

/* Byte strings and strings at least this long are referenced, not copied,
 * by the encoder and the decoder. Below it, a copy is cheaper than a GBytes
 * and, when decoding, does not pin a whole frame for a few bytes. */
#define REF_THRESHOLD 1024

/* GLib refuses type strings nested deeper than this. Only tuples make decoded
 * types nest (lists, sets and dict values are boxed in `v`). */
#define MAX_TYPE_DEPTH 128

/* Every list item costs at least this many bytes of later input (a key, a
 * value and SETITEM), which bounds the size a NEWLIST may claim. */
#define MIN_LIST_ITEM_SIZE 3

/* ---------------------------------------------------------------------- */
/* Channel object paths                                                    */

char *
_execnet_channel_path_new (gint32 channel_id)
{
  g_return_val_if_fail (channel_id >= 0, NULL);

  return g_strdup_printf (EXECNET_CHANNEL_PATH_PREFIX "%" G_GINT32_FORMAT,
                          channel_id);
}

gboolean
_execnet_channel_path_parse (const char *path,
                             gint32     *channel_id)
{
  const char *digits;
  gint64 id = 0;

  g_return_val_if_fail (path != NULL, FALSE);

  if (!g_str_has_prefix (path, EXECNET_CHANNEL_PATH_PREFIX))
    return FALSE;

  digits = path + strlen (EXECNET_CHANNEL_PATH_PREFIX);
  if (*digits == '\0')
    return FALSE;
  /* Only the canonical spelling names a channel: no leading zeros. */
  if (digits[0] == '0' && digits[1] != '\0')
    return FALSE;

  for (const char *p = digits; *p != '\0'; p++)
    {
      if (!g_ascii_isdigit (*p))
        return FALSE;
      id = id * 10 + (*p - '0');
      if (id > G_MAXINT32)
        return FALSE;
    }

  if (channel_id != NULL)
    *channel_id = (gint32) id;
  return TRUE;
}

/* ---------------------------------------------------------------------- */
/* Chunks                                                                  */

gsize
_execnet_chunks_get_size (GPtrArray *chunks)
{
  gsize size = 0;

  g_return_val_if_fail (chunks != NULL, 0);

  for (guint i = 0; i < chunks->len; i++)
    size += g_bytes_get_size (g_ptr_array_index (chunks, i));

  return size;
}

GBytes *
_execnet_chunks_flatten (GPtrArray *chunks,
                         gint       version_byte)
{
  gsize size;
  guint8 *data;
  gsize pos = 0;

  g_return_val_if_fail (chunks != NULL, NULL);
  g_return_val_if_fail (version_byte < 256, NULL);

  if (version_byte < 0 && chunks->len == 1)
    return g_bytes_ref (g_ptr_array_index (chunks, 0));

  size = _execnet_chunks_get_size (chunks) + (version_byte >= 0 ? 1 : 0);
  data = g_malloc (size);

  if (version_byte >= 0)
    data[pos++] = (guint8) version_byte;

  for (guint i = 0; i < chunks->len; i++)
    {
      gsize chunk_size;
      const guint8 *chunk_data;

      chunk_data = g_bytes_get_data (g_ptr_array_index (chunks, i), &chunk_size);
      if (chunk_size > 0)
        memcpy (data + pos, chunk_data, chunk_size);
      pos += chunk_size;
    }

  g_assert (pos == size);
  return g_bytes_new_take (data, size);
}

/* ---------------------------------------------------------------------- */
/* Encoder                                                                 */

typedef struct {
  GPtrArray  *chunks;  /* (owned) (element-type GBytes): finished output */
  GByteArray *buf;     /* (owned): output not yet moved into @chunks */
} Encoder;

static void
encoder_flush (Encoder *enc)
{
  if (enc->buf->len == 0)
    return;

  g_ptr_array_add (enc->chunks,
                   g_byte_array_free_to_bytes (g_steal_pointer (&enc->buf)));
  enc->buf = g_byte_array_sized_new (256);
}

static void
encoder_put_opcode (Encoder *enc,
                    Opcode   op)
{
  guint8 byte = op;

  g_byte_array_append (enc->buf, &byte, 1);
}

static void
encoder_put_int4 (Encoder *enc,
                  Opcode   op,
                  gint32   value)
{
  guint8 bytes[5];
  guint32 be = GUINT32_TO_BE ((guint32) value);

  bytes[0] = op;
  memcpy (bytes + 1, &be, 4);
  g_byte_array_append (enc->buf, bytes, sizeof bytes);
}

static gboolean
encoder_check_size (gsize        size,
                    const char  *what,
                    GError     **error)
{
  if (size <= G_MAXINT32)
    return TRUE;

  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE,
               "cannot serialize a %s of %" G_GSIZE_FORMAT " %s: the format "
               "allows at most %d",
               what, size,
               g_str_equal (what, "byte string") ? "bytes" : "items",
               G_MAXINT32);
  return FALSE;
}

/* Writes @op, the length and @size bytes at @data, which lie at the start of
 * @holder's serialized data: long ones are referenced from there. */
static gboolean
encoder_put_blob (Encoder       *enc,
                  Opcode         op,
                  const guint8  *data,
                  gsize          size,
                  GVariant      *holder,
                  GError       **error)
{
  if (!encoder_check_size (size, op == OP_BYTES ? "byte string" : "string",
                           error))
    return FALSE;

  encoder_put_int4 (enc, op, (gint32) size);

  if (size < REF_THRESHOLD)
    {
      g_byte_array_append (enc->buf, data, size);
    }
  else
    {
      g_autoptr(GBytes) storage = g_variant_get_data_as_bytes (holder);

      if (g_bytes_get_data (storage, NULL) == (gconstpointer) data)
        {
          encoder_flush (enc);
          g_ptr_array_add (enc->chunks, g_bytes_new_from_bytes (storage, 0, size));
        }
      else
        {
          g_byte_array_append (enc->buf, data, size);
        }
    }

  return TRUE;
}

static void
encoder_put_decimal (Encoder    *enc,
                     const char *text)
{
  gsize len = strlen (text);

  encoder_put_int4 (enc, OP_LONGINT, (gint32) len);
  g_byte_array_append (enc->buf, (const guint8 *) text, len);
}

static void
encoder_put_signed (Encoder *enc,
                    gint64   value)
{
  char text[G_ASCII_DTOSTR_BUF_SIZE];

  if (value >= G_MININT32 && value <= G_MAXINT32)
    {
      encoder_put_int4 (enc, OP_INT, (gint32) value);
      return;
    }

  /* Python execnet cannot write ints below -2**31 (it crashes); its reader
   * takes them as LONGINT like any other big int, so that is what we send. */
  g_snprintf (text, sizeof text, "%" G_GINT64_FORMAT, value);
  encoder_put_decimal (enc, text);
}

static void
encoder_put_unsigned (Encoder *enc,
                      guint64  value)
{
  char text[G_ASCII_DTOSTR_BUF_SIZE];

  if (value <= G_MAXINT32)
    {
      encoder_put_int4 (enc, OP_INT, (gint32) value);
      return;
    }

  g_snprintf (text, sizeof text, "%" G_GUINT64_FORMAT, value);
  encoder_put_decimal (enc, text);
}

static void
encoder_put_double (Encoder *enc,
                    gdouble  value)
{
  guint64 bits;

  memcpy (&bits, &value, sizeof bits);
  bits = GUINT64_TO_BE (bits);
  encoder_put_opcode (enc, OP_FLOAT);
  g_byte_array_append (enc->buf, (const guint8 *) &bits, sizeof bits);
}

static gboolean encoder_put_value (Encoder   *enc,
                                   GVariant  *value,
                                   guint      depth,
                                   GError   **error);

/* Lists, dicts and tuples count towards the depth; byte strings do not, as
 * they are scalars on the wire. The decoder counts the same way. */
static gboolean
encoder_check_depth (guint    depth,
                     GError **error)
{
  if (depth < EXECNET_VALUE_MAX_DEPTH)
    return TRUE;

  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE,
               "cannot serialize a value whose containers nest more than %d "
               "deep", EXECNET_VALUE_MAX_DEPTH);
  return FALSE;
}

static gboolean
encoder_put_dict (Encoder   *enc,
                  GVariant  *dict,
                  guint      depth,
                  GError   **error)
{
  gsize n = g_variant_n_children (dict);

  if (!encoder_check_depth (depth, error))
    return FALSE;

  encoder_put_opcode (enc, OP_NEWDICT);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) entry = g_variant_get_child_value (dict, i);
      g_autoptr(GVariant) key = g_variant_get_child_value (entry, 0);
      g_autoptr(GVariant) item = g_variant_get_child_value (entry, 1);

      if (!encoder_put_value (enc, key, depth + 1, error) ||
          !encoder_put_value (enc, item, depth + 1, error))
        return FALSE;
      encoder_put_opcode (enc, OP_SETITEM);
    }

  return TRUE;
}

static gboolean
encoder_put_list (Encoder   *enc,
                  GVariant  *array,
                  guint      depth,
                  GError   **error)
{
  gsize n = g_variant_n_children (array);

  if (!encoder_check_depth (depth, error) ||
      !encoder_check_size (n, "list", error))
    return FALSE;

  encoder_put_int4 (enc, OP_NEWLIST, (gint32) n);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (array, i);

      encoder_put_int4 (enc, OP_INT, (gint32) i);
      if (!encoder_put_value (enc, item, depth + 1, error))
        return FALSE;
      encoder_put_opcode (enc, OP_SETITEM);
    }

  return TRUE;
}

static gboolean
encoder_put_tuple (Encoder   *enc,
                   GVariant  *tuple,
                   guint      depth,
                   GError   **error)
{
  gsize n = g_variant_n_children (tuple);

  if (!encoder_check_depth (depth, error) ||
      !encoder_check_size (n, "tuple", error))
    return FALSE;

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) item = g_variant_get_child_value (tuple, i);

      if (!encoder_put_value (enc, item, depth + 1, error))
        return FALSE;
    }

  encoder_put_int4 (enc, OP_BUILDTUPLE, (gint32) n);
  return TRUE;
}

/* @depth counts the containers around @value. */
static gboolean
encoder_put_value (Encoder   *enc,
                   GVariant  *value,
                   guint      depth,
                   GError   **error)
{
  g_autoptr(GVariant) unwrapped = NULL;
  const GVariantType *type;

  /* Variants and maybes have no counterpart on the wire: look through them
   * (in a loop, as they nest without a bound). */
  for (;;)
    {
      GVariant *inner;

      type = g_variant_get_type (value);
      if (g_variant_type_equal (type, G_VARIANT_TYPE_VARIANT))
        {
          inner = g_variant_get_variant (value);
        }
      else if (g_variant_type_is_maybe (type))
        {
          inner = g_variant_get_maybe (value);
          if (inner == NULL)
            {
              encoder_put_opcode (enc, OP_NONE);
              return TRUE;
            }
        }
      else
        {
          break;
        }

      g_clear_pointer (&unwrapped, g_variant_unref);
      unwrapped = inner;
      value = inner;
    }

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      encoder_put_opcode (enc, g_variant_get_boolean (value) ? OP_TRUE : OP_FALSE);
      return TRUE;

    case G_VARIANT_CLASS_BYTE:
      encoder_put_unsigned (enc, g_variant_get_byte (value));
      return TRUE;

    case G_VARIANT_CLASS_INT16:
      encoder_put_signed (enc, g_variant_get_int16 (value));
      return TRUE;

    case G_VARIANT_CLASS_UINT16:
      encoder_put_unsigned (enc, g_variant_get_uint16 (value));
      return TRUE;

    case G_VARIANT_CLASS_INT32:
      encoder_put_signed (enc, g_variant_get_int32 (value));
      return TRUE;

    case G_VARIANT_CLASS_UINT32:
      encoder_put_unsigned (enc, g_variant_get_uint32 (value));
      return TRUE;

    case G_VARIANT_CLASS_INT64:
      encoder_put_signed (enc, g_variant_get_int64 (value));
      return TRUE;

    case G_VARIANT_CLASS_UINT64:
      encoder_put_unsigned (enc, g_variant_get_uint64 (value));
      return TRUE;

    case G_VARIANT_CLASS_DOUBLE:
      encoder_put_double (enc, g_variant_get_double (value));
      return TRUE;

    case G_VARIANT_CLASS_OBJECT_PATH:
      {
        gint32 channel_id;

        if (_execnet_channel_path_parse (g_variant_get_string (value, NULL),
                                         &channel_id))
          {
            encoder_put_int4 (enc, OP_CHANNEL, channel_id);
            return TRUE;
          }
      }
      G_GNUC_FALLTHROUGH;
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_SIGNATURE:
      {
        gsize len;
        const char *text = g_variant_get_string (value, &len);

        return encoder_put_blob (enc, OP_PY3STRING, (const guint8 *) text,
                                 len, value, error);
      }

    case G_VARIANT_CLASS_ARRAY:
      if (g_variant_type_equal (type, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize len;
          const guint8 *data = g_variant_get_fixed_array (value, &len, 1);

          return encoder_put_blob (enc, OP_BYTES, data, len, value, error);
        }
      if (g_variant_type_is_dict_entry (g_variant_type_element (type)))
        return encoder_put_dict (enc, value, depth, error);
      return encoder_put_list (enc, value, depth, error);

    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
      return encoder_put_tuple (enc, value, depth, error);

    case G_VARIANT_CLASS_HANDLE:
    case G_VARIANT_CLASS_VARIANT:
    case G_VARIANT_CLASS_MAYBE:
    default:
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE,
                   "cannot serialize a GVariant of type “%s”: it has no "
                   "counterpart in execnet's format",
                   g_variant_get_type_string (value));
      return FALSE;
    }
}

GPtrArray *
_execnet_value_encode (GVariant  *value,
                       GError   **error)
{
  g_autoptr(GVariant) owned = NULL;
  g_autoptr(GPtrArray) chunks = NULL;
  Encoder enc;
  gboolean ok;

  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  owned = g_variant_ref_sink (value);
  chunks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);

  enc.chunks = chunks;
  enc.buf = g_byte_array_sized_new (256);

  ok = encoder_put_value (&enc, owned, 0, error);
  if (!ok)
    {
      g_byte_array_unref (enc.buf);
      return NULL;
    }

  /* The buffer always holds at least the STOP opcode. */
  encoder_put_opcode (&enc, OP_STOP);
  g_ptr_array_add (chunks, g_byte_array_free_to_bytes (enc.buf));

  return g_steal_pointer (&chunks);
}

/* ---------------------------------------------------------------------- */
/* Decoder                                                                 */

typedef struct {
  gint32    index;
  GVariant *item;   /* (owned): boxed in `v` */
} ListSlot;

typedef enum {
  CONTAINER_LIST,
  CONTAINER_DICT,
} ContainerKind;

/* A list or dict that is still on the stack, so SETITEM may still fill it. */
typedef struct {
  ContainerKind kind;

  /* CONTAINER_LIST: the claimed size and the SETITEMs in arrival order. */
  gint32  n_items;
  GArray *slots;           /* (owned) (element-type ListSlot) */

  /* CONTAINER_DICT: keys in first-insertion order, values boxed in `v`.
   * A dict whose keys are not all of one basic type (tuples, None, mixed
   * types) has no `a{?v}` form and becomes an `a(vv)` of pairs instead. */
  GPtrArray  *keys;        /* (owned) (element-type GVariant) */
  GPtrArray  *values;      /* (owned) (element-type GVariant) */
  GHashTable *positions;   /* (owned): key -> GUINT_TO_POINTER (index + 1) */
  gboolean    pairs;
} Container;

typedef struct {
  GVariant  *value;        /* (owned) (nullable): set unless @container is */
  Container *container;    /* (owned) (nullable) */
  guint      depth;        /* containers nested in this item, itself included */
  guint      type_depth;   /* nesting of its GVariant type string */
} StackItem;

typedef struct {
  GBytes       *bytes;     /* (unowned) */
  const guint8 *data;
  gsize         size;
  gsize         pos;
  gsize         base;      /* added to offsets in messages */

  Opcode        op;        /* the opcode being executed, for messages */
  gsize         op_offset;

  GArray       *stack;     /* (owned) (element-type StackItem) */
  guint64       unset_items;

  GVariant     *none;      /* (owned): `mv` Nothing */
  GVariant     *boxed_none;
  GVariant     *true_value;
  GVariant     *false_value;

  ExecnetValueChannelFunc channel_func;
  gpointer                user_data;

  gsize         budget;    /* the most memory the result may take */
  gsize         cost;      /* tree: what it took so far, estimated from above */

  guint         n_channels;     /* references passed to channel_func */
  guint         skip_channels;  /* tree: references a direct pass reported */

  /* Direct decoding (see decode_direct()): the stack as serialized data. */
  guint8             *buf;          /* (owned): the entries' data, one after another */
  gsize               buf_len;      /* where the top entry ends */
  gsize               buf_alloc;
  struct _Entry      *entries;      /* (owned) (array length=n_entries) */
  guint               n_entries;
  guint               entries_alloc;
  struct _OpenContainer *open;      /* (owned) (array length=n_open) lists and dicts on the stack */
  guint               n_open;
  guint               open_alloc;
  gsize               open_bytes;   /* what the open containers' arrays take */
  gsize               estimate;     /* what the result will take besides the data */
  gboolean            hard_error;   /* the error stands: no tree decoding follows */
} Decoder;

/* What decoding costs, estimated from above, so that an item whose decoded
 * form would be far larger than its wire form (a tuple of a million Nones:
 * every member is a GVariant type of its own) fails before it is built,
 * instead of exhausting the process. Measured on x86_64 with glibc. */
#define COST_STACK_ITEM 48       /* a StackItem, with the array's slack */
#define COST_VARIANT 112         /* a GVariant, its GBytes and its data */
#define COST_CHILD 8             /* a child pointer in a container */
#define COST_TUPLE_MEMBER 64     /* a tuple type's member info and type string */
#define COST_DICT_ENTRY 112      /* entry variant, hash node, key/value arrays */
#define COST_CHANNEL 512         /* the channel object the owner makes for a reference */

static void
container_free (Container *container)
{
  if (container == NULL)
    return;

  if (container->slots != NULL)
    {
      for (guint i = 0; i < container->slots->len; i++)
        g_variant_unref (g_array_index (container->slots, ListSlot, i).item);
      g_array_unref (container->slots);
    }
  g_clear_pointer (&container->keys, g_ptr_array_unref);
  g_clear_pointer (&container->values, g_ptr_array_unref);
  g_clear_pointer (&container->positions, g_hash_table_unref);
  g_free (container);
}

static void
stack_item_clear (gpointer data)
{
  StackItem *item = data;

  g_clear_pointer (&item->value, g_variant_unref);
  g_clear_pointer (&item->container, container_free);
}

static gboolean decoder_fail (Decoder     *dec,
                              GError     **error,
                              ExecnetError code,
                              const char  *format,
                              ...) G_GNUC_PRINTF (4, 5);

static gboolean
decoder_fail (Decoder     *dec,
              GError     **error,
              ExecnetError code,
              const char  *format,
              ...)
{
  g_autofree char *detail = NULL;
  va_list args;

  va_start (args, format);
  detail = g_strdup_vprintf (format, args);
  va_end (args);

  g_set_error (error, EXECNET_ERROR, code,
               "serialized value: opcode '%c' at offset %" G_GSIZE_FORMAT ": %s",
               (char) dec->op, dec->op_offset + dec->base, detail);
  return FALSE;
}

/* The item needs more than the budget: it fails for good. */
static gboolean
decoder_fail_budget (Decoder  *dec,
                     GError  **error)
{
  dec->hard_error = TRUE;
  return decoder_fail (dec, error, EXECNET_ERROR_UNSUPPORTED_VALUE,
                       "the value of %" G_GSIZE_FORMAT " bytes would need more than "
                       "%" G_GSIZE_FORMAT " MiB once decoded, the most one item may "
                       "take; send it in smaller pieces",
                       dec->size, dec->budget >> 20);
}

/* Fails once the estimated cost passed the budget. */
static gboolean
decoder_check_budget (Decoder  *dec,
                      GError  **error)
{
  if (dec->cost <= dec->budget)
    return TRUE;

  return decoder_fail_budget (dec, error);
}

static gboolean
decoder_need (Decoder  *dec,
              gsize     n,
              GError  **error)
{
  if (dec->size - dec->pos >= n)
    return TRUE;

  return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                       "truncated: needs %" G_GSIZE_FORMAT " more bytes, "
                       "only %" G_GSIZE_FORMAT " remain",
                       n, dec->size - dec->pos);
}

static gboolean
decoder_read_int4 (Decoder  *dec,
                   gint32   *value,
                   GError  **error)
{
  guint32 be;

  if (!decoder_need (dec, 4, error))
    return FALSE;

  memcpy (&be, dec->data + dec->pos, 4);
  dec->pos += 4;
  *value = (gint32) GUINT32_FROM_BE (be);
  return TRUE;
}

/* Reads an int4 that must be a length or count >= 0. */
static gboolean
decoder_read_count (Decoder     *dec,
                    const char  *what,
                    gsize       *count,
                    GError     **error)
{
  gint32 value;

  if (!decoder_read_int4 (dec, &value, error))
    return FALSE;

  if (value < 0)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "negative %s %" G_GINT32_FORMAT, what, value);

  *count = (gsize) value;
  return TRUE;
}

/* Reads a length and that many bytes. */
static gboolean
decoder_read_sized (Decoder       *dec,
                    const guint8 **data,
                    gsize         *len,
                    GError       **error)
{
  if (!decoder_read_count (dec, "length", len, error) ||
      !decoder_need (dec, *len, error))
    return FALSE;

  *data = dec->data + dec->pos;
  dec->pos += *len;
  return TRUE;
}

static gdouble
decoder_take_double (Decoder *dec)
{
  guint64 bits;
  gdouble value;

  memcpy (&bits, dec->data + dec->pos, 8);
  dec->pos += 8;
  bits = GUINT64_FROM_BE (bits);
  memcpy (&value, &bits, sizeof value);
  return value;
}

/* Takes ownership of @value, which must not be floating. */
static void
decoder_push_value (Decoder  *dec,
                    GVariant *value,
                    guint     depth,
                    guint     type_depth)
{
  StackItem item = { value, NULL, depth, type_depth };

  dec->cost += COST_STACK_ITEM;
  /* None, True and False are shared; containers were counted when made. */
  if (value != dec->none && value != dec->true_value && value != dec->false_value &&
      g_variant_is_container (value) == FALSE)
    dec->cost += COST_VARIANT + g_variant_get_size (value);

  g_array_append_val (dec->stack, item);
}

static void
decoder_push_container (Decoder       *dec,
                        ContainerKind  kind,
                        gint32         n_items)
{
  Container *container = g_new0 (Container, 1);
  StackItem item = { NULL, container, 1, 0 };

  dec->cost += COST_STACK_ITEM + sizeof (Container);
  container->kind = kind;
  container->n_items = n_items;
  /* A list is an `av`, a dict an `a{?v}`. */
  item.type_depth = kind == CONTAINER_LIST ? 1 : 2;
  g_array_append_val (dec->stack, item);
}

static GVariant *
decoder_finish_list (Decoder    *dec,
                     Container  *list,
                     GError    **error)
{
  g_autofree GVariant **children = NULL;
  GArray *slots = list->slots;
  gsize n = (gsize) list->n_items;
  gsize n_unset = 0;
  gboolean in_order;

  in_order = slots != NULL && slots->len == n;
  for (gsize i = 0; in_order && i < n; i++)
    in_order = g_array_index (slots, ListSlot, i).index == (gint32) i;

  dec->cost += COST_VARIANT + n * COST_CHILD;
  if (!decoder_check_budget (dec, error))
    return NULL;
  children = g_new (GVariant *, MAX (n, 1));

  if (in_order)
    {
      for (gsize i = 0; i < n; i++)
        children[i] = g_array_index (slots, ListSlot, i).item;
    }
  else
    {
      /* Slots were set out of order, twice, or not at all: Python leaves
       * None in unset slots and keeps the last value stored. */
      memset (children, 0, n * sizeof (GVariant *));
      for (guint i = 0; slots != NULL && i < slots->len; i++)
        {
          ListSlot *slot = &g_array_index (slots, ListSlot, i);
          children[slot->index] = slot->item;
        }
      for (gsize i = 0; i < n; i++)
        if (children[i] == NULL)
          {
            children[i] = dec->boxed_none;
            n_unset++;
          }
    }

  /* Each list is at most a third of the remaining input long, but a list
   * that is popped at once is not filled, so many of them could still claim
   * memory quadratic in the input. Unset items are allowed up to the size of
   * the input in total, which no well-formed writer gets near. */
  dec->unset_items += n_unset;
  if (dec->unset_items > dec->size)
    {
      decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                    "a list of %" G_GSIZE_FORMAT " items has %" G_GSIZE_FORMAT
                    " that were never set; lists leave more items unset than "
                    "the data has bytes",
                    n, n_unset);
      return NULL;
    }

  return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARIANT,
                                                  children, n));
}

static GVariant *
decoder_finish_dict (Container *dict)
{
  g_autofree GVariant **entries = NULL;
  guint n = dict->keys != NULL ? dict->keys->len : 0;

  if (n == 0)
    return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"),
                                                    NULL, 0));

  entries = g_new (GVariant *, n);
  for (guint i = 0; i < n; i++)
    {
      GVariant *key = g_ptr_array_index (dict->keys, i);
      GVariant *value = g_ptr_array_index (dict->values, i);

      if (dict->pairs)
        {
          GVariant *pair[2] = { g_variant_new_variant (key), value };

          entries[i] = g_variant_new_tuple (pair, 2);
        }
      else
        entries[i] = g_variant_new_dict_entry (key, value);
    }

  return g_variant_ref_sink (g_variant_new_array (NULL, entries, n));
}

/* Pops the top of the stack as a finished value (transfer full). */
static GVariant *
decoder_pop (Decoder    *dec,
             guint      *depth,
             guint      *type_depth,
             GError    **error)
{
  StackItem *top;
  GVariant *value;

  g_assert (dec->stack->len > 0);
  top = &g_array_index (dec->stack, StackItem, dec->stack->len - 1);

  if (depth != NULL)
    *depth = top->depth;
  if (type_depth != NULL)
    *type_depth = top->type_depth;

  if (top->container == NULL)
    value = g_steal_pointer (&top->value);
  else if (top->container->kind == CONTAINER_LIST)
    value = decoder_finish_list (dec, top->container, error);
  else
    value = decoder_finish_dict (top->container);

  g_array_set_size (dec->stack, dec->stack->len - 1);
  dec->cost -= MIN (dec->cost, COST_STACK_ITEM);
  return value;
}

/* Wraps @value (transfer full) in a `v`. */
static GVariant *
decoder_box (Decoder  *dec,
             GVariant *value)
{
  GVariant *boxed;

  if (value == dec->none)
    boxed = g_variant_ref (dec->boxed_none);
  else
    {
      dec->cost += COST_VARIANT;
      boxed = g_variant_ref_sink (g_variant_new_variant (value));
    }

  /* The box holds a reference of its own: @value is not floating. */
  g_variant_unref (value);
  return boxed;
}

static void
variant_unref0 (gpointer variant)
{
  if (variant != NULL)
    g_variant_unref (variant);
}

static gboolean
decoder_check_depth (Decoder  *dec,
                     guint     depth,
                     GError  **error)
{
  if (depth <= EXECNET_VALUE_MAX_DEPTH)
    return TRUE;

  return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                       "containers nest more than %d deep",
                       EXECNET_VALUE_MAX_DEPTH);
}

/* BUILDTUPLE, SET and FROZENSET: pop @n items into a new value. */
static gboolean
decoder_collect (Decoder  *dec,
                 GError  **error)
{
  g_autoptr(GPtrArray) items = NULL;
  gsize n;
  guint depth = 0;
  guint type_depth = 0;
  gboolean is_tuple = dec->op == OP_BUILDTUPLE;
  GVariant *result;

  if (!decoder_read_count (dec, "item count", &n, error))
    return FALSE;

  if (n > dec->stack->len)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "needs %" G_GSIZE_FORMAT " items but the stack holds %u",
                         n, dec->stack->len);

  /* Counted before anything is built: a tuple's type grows with it. */
  dec->cost += COST_VARIANT + n * (COST_CHILD + (is_tuple ? COST_TUPLE_MEMBER : 0));
  if (!decoder_check_budget (dec, error))
    return FALSE;

  items = g_ptr_array_new_full (n, variant_unref0);
  g_ptr_array_set_size (items, n);

  /* The items were pushed in order, so the last one is on top. */
  for (gsize i = n; i > 0; i--)
    {
      guint item_depth, item_type_depth;
      GVariant *item = decoder_pop (dec, &item_depth, &item_type_depth, error);

      if (item == NULL)
        return FALSE;
      depth = MAX (depth, item_depth);
      type_depth = MAX (type_depth, item_type_depth);
      g_ptr_array_index (items, i - 1) = is_tuple ? item : decoder_box (dec, item);
    }

  depth++;
  if (!decoder_check_depth (dec, depth, error))
    return FALSE;

  if (is_tuple)
    {
      type_depth++;
      if (type_depth > MAX_TYPE_DEPTH)
        return decoder_fail (dec, error, EXECNET_ERROR_UNSUPPORTED_VALUE,
                             "tuples nest more than %d deep, which a GVariant "
                             "type cannot express",
                             MAX_TYPE_DEPTH);
      result = g_variant_new_tuple ((GVariant **) items->pdata, n);
    }
  else
    {
      /* Sets and frozensets arrive as lists (`av`). */
      type_depth = 1;
      result = g_variant_new_array (G_VARIANT_TYPE_VARIANT,
                                    (GVariant **) items->pdata, n);
    }

  decoder_push_value (dec, g_variant_ref_sink (result), depth, type_depth);
  return TRUE;
}

/* The type of @value for a message, cut short: tuple types can be long. */
static char *
describe_type (GVariant *value)
{
  const char *type = g_variant_get_type_string (value);

  if (strlen (type) <= 32)
    return g_strdup (type);
  return g_strdup_printf ("%.32s…", type);
}

/* Hashes a key of any type: g_variant_hash() takes basic types only. */
static guint
variant_any_hash (gconstpointer data)
{
  GVariant *value = (GVariant *) data;
  const guint8 *bytes;
  gsize size;
  guint hash;

  if (g_variant_type_is_basic (g_variant_get_type (value)))
    return g_variant_hash (value);

  hash = g_str_hash (g_variant_get_type_string (value));
  bytes = g_variant_get_data (value);
  size = g_variant_get_size (value);
  for (gsize i = 0; i < size; i++)
    hash = hash * 31 + bytes[i];
  return hash;
}

static gboolean
decoder_setitem (Decoder  *dec,
                 GError  **error)
{
  g_autoptr(GVariant) key = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autofree char *type = NULL;
  StackItem *target;
  Container *container;
  guint item_depth;
  guint key_depth;

  if (dec->stack->len < 3)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "needs a container, a key and a value but the stack "
                         "holds %u items",
                         dec->stack->len);

  target = &g_array_index (dec->stack, StackItem, dec->stack->len - 3);
  if (target->container == NULL)
    {
      type = describe_type (target->value);
      return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                           "the target is a finished “%s”, not a list or dict",
                           type);
    }

  item = decoder_pop (dec, &item_depth, NULL, error);
  if (item == NULL)
    return FALSE;
  key = decoder_pop (dec, &key_depth, NULL, error);
  if (key == NULL)
    return FALSE;

  /* Popping may have moved the array; the target is now on top. */
  target = &g_array_index (dec->stack, StackItem, dec->stack->len - 1);
  container = target->container;

  target->depth = MAX (target->depth, MAX (item_depth, key_depth) + 1);
  if (!decoder_check_depth (dec, target->depth, error))
    return FALSE;

  if (container->kind == CONTAINER_LIST)
    {
      ListSlot slot;
      gint64 index;

      if (!g_variant_is_of_type (key, G_VARIANT_TYPE_INT64))
        {
          type = describe_type (key);
          return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                               "a list index must be an integer, not a value "
                               "of type “%s”",
                               type);
        }

      index = g_variant_get_int64 (key);
      if (index < 0 || index >= container->n_items)
        return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                             "list index %" G_GINT64_FORMAT " is out of range "
                             "for a list of %" G_GINT32_FORMAT " items",
                             index, container->n_items);

      if (container->slots == NULL)
        container->slots = g_array_sized_new (FALSE, FALSE, sizeof (ListSlot),
                                              MIN (container->n_items, 64));
      /* The index is freed below; the slot stays until the list is done. */
      dec->cost -= MIN (dec->cost, COST_VARIANT + g_variant_get_size (key));
      dec->cost += sizeof (ListSlot);
      slot.index = (gint32) index;
      slot.item = decoder_box (dec, g_steal_pointer (&item));
      g_array_append_val (container->slots, slot);
    }
  else
    {
      const GVariantType *key_type = g_variant_get_type (key);
      gpointer position;

      if (container->keys == NULL)
        {
          container->keys = g_ptr_array_new_with_free_func (variant_unref0);
          container->values = g_ptr_array_new_with_free_func (variant_unref0);
          container->positions = g_hash_table_new (variant_any_hash, g_variant_equal);
        }

      /* Keys GVariant cannot use in a dict entry turn the dict into pairs;
       * the channel goes on, unlike with a value that has no form at all. */
      if (!g_variant_type_is_basic (key_type))
        container->pairs = TRUE;
      else if (container->keys->len > 0)
        {
          GVariant *first = g_ptr_array_index (container->keys, 0);

          if (!g_variant_type_equal (g_variant_get_type (first), key_type))
            container->pairs = TRUE;
        }

      dec->cost += COST_DICT_ENTRY;
      item = decoder_box (dec, g_steal_pointer (&item));
      position = g_hash_table_lookup (container->positions, key);
      if (position != NULL)
        {
          /* As in Python: the key keeps its place, the value is replaced. */
          guint index = GPOINTER_TO_UINT (position) - 1;
          GVariant **slot = (GVariant **) &g_ptr_array_index (container->values, index);

          g_variant_unref (*slot);
          *slot = g_steal_pointer (&item);
        }
      else
        {
          g_ptr_array_add (container->keys, g_variant_ref (key));
          g_ptr_array_add (container->values, g_steal_pointer (&item));
          g_hash_table_insert (container->positions, key,
                               GUINT_TO_POINTER (container->keys->len));
        }
    }

  return TRUE;
}

/* LONGINT and LONGLONG: an ASCII decimal of any length. Sets @value to
 * its bits, and @is_unsigned when it only fits a uint64. */
static gboolean
decoder_read_longint (Decoder  *dec,
                      guint64  *value,
                      gboolean *is_unsigned,
                      GError  **error)
{
  const guint8 *text;
  gsize len;
  gsize start = 0;
  gboolean negative = FALSE;
  gboolean overflow = FALSE;
  guint64 magnitude = 0;

  if (!decoder_read_sized (dec, &text, &len, error))
    return FALSE;

  if (len > 0 && text[0] == '-')
    {
      negative = TRUE;
      start = 1;
    }
  if (start == len)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "an integer needs at least one digit");

  for (gsize i = start; i < len; i++)
    {
      guint digit;

      if (!g_ascii_isdigit (text[i]))
        return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                             "byte 0x%02x at position %" G_GSIZE_FORMAT
                             " of an integer is not a decimal digit",
                             text[i], i);
      digit = text[i] - '0';
      if (magnitude > (G_MAXUINT64 - digit) / 10)
        overflow = TRUE;
      else
        magnitude = magnitude * 10 + digit;
    }

  *is_unsigned = FALSE;
  if (!overflow && !negative && magnitude <= G_MAXINT64)
    *value = magnitude;
  else if (!overflow && !negative)
    {
      *value = magnitude;
      *is_unsigned = TRUE;
    }
  else if (!overflow && magnitude <= (guint64) G_MAXINT64 + 1)
    *value = 0 - magnitude;
  else
    {
      g_autofree char *shown = NULL;

      /* The number is attacker-sized: show its start only. */
      if (len > 40)
        shown = g_strdup_printf ("%.*s… (%" G_GSIZE_FORMAT " digits)",
                                 24, (const char *) text, len - start);
      else
        shown = g_strndup ((const char *) text, len);

      return decoder_fail (dec, error, EXECNET_ERROR_UNSUPPORTED_VALUE,
                           "integer %s does not fit in 64 bits", shown);
    }

  return TRUE;
}

static gboolean
decoder_longint (Decoder  *dec,
                 GError  **error)
{
  guint64 value;
  gboolean is_unsigned;

  if (!decoder_read_longint (dec, &value, &is_unsigned, error))
    return FALSE;

  decoder_push_value (dec, g_variant_ref_sink (is_unsigned
                                               ? g_variant_new_uint64 (value)
                                               : g_variant_new_int64 ((gint64) value)),
                      0, 0);
  return TRUE;
}

/* Makes an `s` of @len bytes at @data, which must be valid UTF-8 without
 * nul characters. */
static GVariant *
decoder_new_string (const guint8 *data,
                    gsize         len)
{
  g_autoptr(GBytes) storage = NULL;
  guint8 *copy = g_malloc (len + 1);

  /* A serialized `s` ends with a nul that the input does not have, so the
   * text is copied whatever its size. */
  memcpy (copy, data, len);
  copy[len] = '\0';
  storage = g_bytes_new_take (copy, len + 1);

  return g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_STRING,
                                                       storage, TRUE));
}

/* Makes an `ay` of @len bytes at @data. A long one shares the input's
 * memory. */
static GVariant *
decoder_new_bytes (Decoder      *dec,
                   const guint8 *data,
                   gsize         len)
{
  g_autoptr(GBytes) storage = NULL;

  if (len >= REF_THRESHOLD)
    storage = g_bytes_new_from_bytes (dec->bytes, data - dec->data, len);
  else
    storage = g_bytes_new (data, len);

  return g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING,
                                                       storage, TRUE));
}

/* Checks that @len bytes at @data are UTF-8, where g_utf8_validate_len()
 * would also stop at a nul: Python strings may hold nul characters, GVariant
 * strings cannot, and the two failures are reported differently. */
static gboolean
utf8_check (const guint8 *data,
            gsize         len,
            gsize        *invalid_at,
            gssize       *first_nul)
{
  gsize pos = 0;

  *first_nul = -1;

  for (;;)
    {
      const char *end;

      if (g_utf8_validate_len ((const char *) data + pos, len - pos, &end))
        return TRUE;

      pos = (const guint8 *) end - data;
      if (data[pos] != '\0')
        {
          *invalid_at = pos;
          return FALSE;
        }
      if (*first_nul < 0)
        *first_nul = (gssize) pos;
      pos++;
    }
}

/* Reads the bytes of a text opcode: an `s` when @is_text comes back TRUE,
 * an `ay` otherwise (Python 2 str that is not valid text). */
static gboolean
decoder_read_text (Decoder       *dec,
                   const guint8 **data,
                   gsize         *len,
                   gboolean      *is_text,
                   GError       **error)
{
  gsize invalid_at = 0;
  gssize first_nul;
  gboolean valid;

  if (!decoder_read_sized (dec, data, len, error))
    return FALSE;

  valid = utf8_check (*data, *len, &invalid_at, &first_nul);

  if (dec->op == OP_PY2STRING)
    {
      /* Python 2 str is bytes; keep it a string when it reads as one. */
      *is_text = valid && first_nul < 0;
      return TRUE;
    }

  if (!valid)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "a string of %" G_GSIZE_FORMAT " bytes is not "
                         "valid UTF-8 at position %" G_GSIZE_FORMAT,
                         *len, invalid_at);
  if (first_nul >= 0)
    return decoder_fail (dec, error, EXECNET_ERROR_UNSUPPORTED_VALUE,
                         "a string with a nul character (at position %"
                         G_GSSIZE_FORMAT ") has no GVariant form",
                         first_nul);

  *is_text = TRUE;
  return TRUE;
}

static gboolean
decoder_text (Decoder  *dec,
              GError  **error)
{
  const guint8 *data;
  gsize len;
  gboolean is_text;

  if (!decoder_read_text (dec, &data, &len, &is_text, error))
    return FALSE;

  if (is_text)
    decoder_push_value (dec, decoder_new_string (data, len), 0, 0);
  else
    decoder_push_value (dec, decoder_new_bytes (dec, data, len), 0, 1);
  return TRUE;
}

/* Reads a channel reference. */
static gboolean
decoder_read_channel (Decoder  *dec,
                      gint32   *channel_id,
                      GError  **error)
{
  if (!decoder_read_int4 (dec, channel_id, error))
    return FALSE;

  if (*channel_id < 0)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "negative channel id %" G_GINT32_FORMAT, *channel_id);
  return TRUE;
}

/* Tells the owner about a channel reference (channel_func is set). */
static gboolean
decoder_report_channel (Decoder  *dec,
                        gint32    channel_id,
                        GError  **error)
{
  /* A tree decoding that follows a direct one (see decode_internal())
   * meets the references the direct one reported first. */
  if (dec->skip_channels > 0)
    {
      dec->skip_channels--;
      return TRUE;
    }

  dec->n_channels++;
  return dec->channel_func (channel_id, dec->user_data, error);
}

static gboolean
decoder_channel (Decoder  *dec,
                 GError  **error)
{
  g_autofree char *path = NULL;
  gint32 channel_id;

  if (!decoder_read_channel (dec, &channel_id, error))
    return FALSE;

  if (dec->channel_func != NULL)
    {
      dec->cost += COST_CHANNEL;
      if (!decoder_check_budget (dec, error) ||
          !decoder_report_channel (dec, channel_id, error))
        return FALSE;
    }

  path = _execnet_channel_path_new (channel_id);
  decoder_push_value (dec, g_variant_ref_sink (g_variant_new_object_path (path)),
                      0, 0);
  return TRUE;
}

/* NEWLIST's size, which later input must be able to fill. */
static gboolean
decoder_read_list_size (Decoder  *dec,
                        gsize    *n,
                        GError  **error)
{
  if (!decoder_read_count (dec, "list size", n, error))
    return FALSE;
  if (*n > (dec->size - dec->pos) / MIN_LIST_ITEM_SIZE)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "a list of %" G_GSIZE_FORMAT " items cannot "
                         "be filled by the %" G_GSIZE_FORMAT " bytes "
                         "that remain",
                         *n, dec->size - dec->pos);
  return TRUE;
}

static gboolean
decoder_step (Decoder  *dec,
              GError  **error)
{
  switch (dec->op)
    {
    case OP_NONE:
      decoder_push_value (dec, g_variant_ref (dec->none), 0, 1);
      return TRUE;

    case OP_TRUE:
      decoder_push_value (dec, g_variant_ref (dec->true_value), 0, 0);
      return TRUE;

    case OP_FALSE:
      decoder_push_value (dec, g_variant_ref (dec->false_value), 0, 0);
      return TRUE;

    case OP_INT:
    case OP_LONG:
      {
        gint32 value;

        if (!decoder_read_int4 (dec, &value, error))
          return FALSE;
        decoder_push_value (dec, g_variant_ref_sink (g_variant_new_int64 (value)),
                            0, 0);
        return TRUE;
      }

    case OP_LONGINT:
    case OP_LONGLONG:
      return decoder_longint (dec, error);

    case OP_FLOAT:
      {
        GVariant *value;

        if (!decoder_need (dec, 8, error))
          return FALSE;
        value = g_variant_new_double (decoder_take_double (dec));
        decoder_push_value (dec, g_variant_ref_sink (value), 0, 0);
        return TRUE;
      }

    case OP_COMPLEX:
      {
        gdouble real, imag;

        if (!decoder_need (dec, 16, error))
          return FALSE;
        real = decoder_take_double (dec);
        imag = decoder_take_double (dec);
        /* A `(dd)` is a tuple, and is counted as the container it becomes. */
        decoder_push_value (dec, g_variant_ref_sink (g_variant_new ("(dd)", real, imag)),
                            1, 1);
        return TRUE;
      }

    case OP_BYTES:
      {
        const guint8 *data;
        gsize len;

        if (!decoder_read_sized (dec, &data, &len, error))
          return FALSE;
        decoder_push_value (dec, decoder_new_bytes (dec, data, len), 0, 1);
        return TRUE;
      }

    case OP_PY2STRING:
    case OP_PY3STRING:
    case OP_UNICODE:
      return decoder_text (dec, error);

    case OP_CHANNEL:
      return decoder_channel (dec, error);

    case OP_NEWDICT:
      decoder_push_container (dec, CONTAINER_DICT, 0);
      return TRUE;

    case OP_NEWLIST:
      {
        gsize n;

        if (!decoder_read_list_size (dec, &n, error))
          return FALSE;
        decoder_push_container (dec, CONTAINER_LIST, (gint32) n);
        return TRUE;
      }

    case OP_BUILDTUPLE:
    case OP_SET:
    case OP_FROZENSET:
      return decoder_collect (dec, error);

    case OP_SETITEM:
      return decoder_setitem (dec, error);

    case OP_STOP:
    default:
      g_assert_not_reached ();
    }
}

/* What the result may cost as a tree of GVariant instances, per byte of
 * its serialized form, before decoder_flatten() serializes it. */
#define FLATTEN_RATIO 2
/* Any value is one level, a list adds two (the array and the variant in
 * it), a dict three (the array, the entry and the variant), a tuple one.
 * So lists nest at most 63 deep in a serialized result, dicts 42 deep. */
#define SERIALIZED_MAX_LEVELS EXECNET_VALUE_SERIALIZED_MAX_LEVELS

guint
_execnet_variant_levels (GVariant *value,
                         guint     limit)
{
  guint deepest = 0;
  gsize n;

  if (!g_variant_is_container (value))
    return 1;
  if (limit <= 1)
    return 2;

  n = g_variant_n_children (value);
  for (gsize i = 0; i < n && deepest < limit; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
      guint levels = _execnet_variant_levels (child, limit - 1);

      deepest = MAX (deepest, levels);
    }
  return deepest + 1;
}

/* A container decoded into a tree of GVariant instances (what the direct
 * decoder leaves to the tree) costs one instance (about COST_VARIANT) per
 * member: 20-60 times the wire size for many small members. Serializing
 * the finished value into one buffer frees the tree (GVariant drops the
 * children of a value once it is serialized), and what the item then holds
 * is its serialized form, as a directly decoded one. A value made mostly of
 * large byte strings costs little more than its serialized size, and keeps
 * sharing the input's memory; a value nested too deep for serialized
 * GVariant data stays a tree. */
static void
decoder_flatten (Decoder  *dec,
                 GVariant *result)
{
  if (g_variant_is_container (result) &&
      dec->cost / FLATTEN_RATIO > g_variant_get_size (result) &&
      _execnet_variant_levels (result, SERIALIZED_MAX_LEVELS) <= SERIALIZED_MAX_LEVELS)
    g_variant_get_data (result);
}

static gboolean
is_opcode (guint8 byte)
{
  return byte >= OP_BUILDTUPLE && byte <= OP_COMPLEX;
}

/* ---------------------------------------------------------------------- */
/* Direct decoding                                                         */

/* A tree of GVariant instances costs one instance (over 100 bytes) per
 * member, 20-60 times the wire size of many small members. So the decoder
 * first tries to write GVariant's serialized form directly, with the stack
 * kept as serialized data: entry after entry in one buffer, each at an
 * offset divisible by 8, as its data, a nul and its type string (the form
 * of a `v`, so that boxing an entry in a list costs nothing). A tuple, set
 * or list member is moved into place within the buffer, which only ever
 * moves data towards the start, and the container's framing offsets follow.
 * A list or dict on the stack (open) keeps its members so far at its
 * place, and their ends in an array.
 *
 * The facts of GVariant's serialized form used here: a value starts at an
 * offset divisible by its alignment (8 for `x`, `t`, `d`, `v` and anything
 * that holds one, the largest member's for a tuple, 1 for strings, byte
 * strings and `b`), padding is zero; a `v` is its child's data, a nul and
 * the child's type string; an `mv` Nothing is empty; an array of values
 * that differ in size is followed by the end offset of each member, a tuple
 * by those of its members that differ in size, the last excepted, in
 * reverse order, and a dict entry is a tuple of two; offsets are little
 * endian, of the fewest bytes (1, 2, 4 or 8) that can express the
 * container's whole size; a tuple whose members all have a fixed size has
 * one too, a multiple of its alignment and at least 1.
 *
 * Anything this does not take on (lists set out of order or twice, or with
 * items unset, dict keys of different or non-basic types or repeated,
 * nesting deeper than serialized data may hold, any malformed input) makes
 * it give up, and decode_internal() decodes the item again as a tree, which
 * has the rules and messages for all of it. */

typedef enum {
  ENTRY_VALUE,
  ENTRY_LIST,
  ENTRY_DICT,
} EntryKind;

typedef struct _Entry {
  guint32 data_end;    /* VALUE: where its data ends; LIST, DICT: its members */
  guint32 end;         /* VALUE: where its type string ends; LIST, DICT: index in open[] */
  guint8  kind;        /* EntryKind */
  guint8  levels;      /* levels of values nested in it, itself included
                        * (SERIALIZED_MAX_LEVELS) */
  guint8  alignment;   /* VALUE: 1, 2, 4 or 8 */
  guint8  fixed;       /* VALUE: whether its type has a fixed size */
} Entry;

typedef struct _OpenContainer {
  guint32 *ends;       /* (owned) (array length=n_ends): member ends, from its start */
  gsize    n_ends;
  gsize    ends_alloc;
  gsize    n_items;    /* LIST: the size NEWLIST claimed */
  char     key_type;   /* DICT: the type of its keys, 0 while it has none */
} OpenContainer;

/* GLib's type information for one tuple member, about 40 bytes. Counted
 * for tuples of more than a few members, whose types seldom repeat (GLib
 * keeps one copy of the information per type). */
#define COST_TUPLE_INFO 48
#define TUPLE_INFO_MIN_MEMBERS 8

#define ALIGN_UP(n, alignment) (((n) + (alignment) - 1) & ~((gsize) (alignment) - 1))

/* What decoding directly has allocated, and the estimate of what GLib
 * and the owner will add. */
static gsize
direct_memory (Decoder *dec)
{
  return dec->buf_alloc + dec->entries_alloc * sizeof (Entry) +
         dec->open_alloc * sizeof (OpenContainer) + dec->open_bytes + dec->estimate;
}

static gboolean
direct_check_budget (Decoder  *dec,
                     gsize     more,
                     GError  **error)
{
  if (direct_memory (dec) + more <= dec->budget)
    return TRUE;
  return decoder_fail_budget (dec, error);
}

/* How much larger than @used an array grows: an eighth of it for large
 * ones, where realloc() remaps pages instead of copying them, so that
 * little room stays unused. */
static gsize
grown_size (gsize used,
            gsize needed,
            gsize minimum,
            gsize element_size)
{
  gsize size = used * element_size < ((gsize) 1 << 20) ? used * 2 : used + used / 8;

  return MAX (MAX (size, needed), minimum);
}

/* Makes room for @size bytes in the buffer, with room to grow unless
 * @exact (for a container just finished, which seldom grows). */
static gboolean
direct_reserve_full (Decoder  *dec,
                     gsize     size,
                     gboolean  exact,
                     GError  **error)
{
  gsize alloc, others;

  if (size <= dec->buf_alloc)
    return TRUE;
  /* Entries hold 32-bit offsets: a larger item is the tree's. */
  if (size > G_MAXUINT32)
    return FALSE;

  others = direct_memory (dec) - dec->buf_alloc;
  if (others + size > dec->budget)
    return decoder_fail_budget (dec, error);
  /* Near the budget, all that is left at once, not a little each time. */
  alloc = exact ? size : MIN (grown_size (dec->buf_alloc, size, 256, 1), G_MAXUINT32);
  alloc = MIN (alloc, dec->budget - others);

  dec->buf = g_realloc (dec->buf, alloc);
  dec->buf_alloc = alloc;
  return TRUE;
}

static gboolean
direct_reserve (Decoder  *dec,
                gsize     size,
                GError  **error)
{
  return direct_reserve_full (dec, size, FALSE, error);
}

static gboolean
direct_reserve_entry (Decoder  *dec,
                      GError  **error)
{
  gsize alloc;

  if (dec->n_entries < dec->entries_alloc)
    return TRUE;

  if (!direct_check_budget (dec, sizeof (Entry), error))
    return FALSE;
  alloc = grown_size (dec->entries_alloc, dec->n_entries + 1, 16, sizeof (Entry));
  /* Near the budget, all that is left at once. */
  alloc = MIN (alloc, dec->entries_alloc +
                      (dec->budget - direct_memory (dec)) / sizeof (Entry));
  dec->entries = g_renew (Entry, dec->entries, alloc);
  dec->entries_alloc = alloc;
  return TRUE;
}

/* Where @entry ends: its type string, or an open container's members. */
static gsize
entry_top (const Entry *entry)
{
  return entry->kind == ENTRY_VALUE ? entry->end : entry->data_end;
}

/* Where entry @i starts. */
static gsize
entry_start (Decoder *dec,
             guint    i)
{
  return i == 0 ? 0 : ALIGN_UP (entry_top (&dec->entries[i - 1]), 8);
}

static guint
offset_size (gsize body,
             gsize n_offsets)
{
  if (body + n_offsets <= G_MAXUINT8)
    return 1;
  if (body + 2 * n_offsets <= G_MAXUINT16)
    return 2;
  if (body + 4 * n_offsets <= G_MAXUINT32)
    return 4;
  return 8;
}

static void
write_offset (guint8 *dest,
              gsize   offset,
              guint   size)
{
  for (guint i = 0; i < size; i++)
    dest[i] = (guint8) (offset >> (8 * i));
}

/* Pushes a value of @size bytes and type @type; returns where its data
 * goes, or NULL past the budget. */
static guint8 *
direct_push (Decoder    *dec,
             gsize       size,
             const char *type,
             guint       alignment,
             gboolean    fixed,
             guint       levels,
             GError    **error)
{
  gsize type_len = strlen (type);
  gsize start = ALIGN_UP (dec->buf_len, 8);
  gsize end = start + size + 1 + type_len;
  Entry *entry;

  if (!direct_reserve (dec, end, error) || !direct_reserve_entry (dec, error))
    return NULL;

  dec->buf[start + size] = '\0';
  memcpy (dec->buf + start + size + 1, type, type_len);
  entry = &dec->entries[dec->n_entries++];
  entry->data_end = start + size;
  entry->end = end;
  entry->kind = ENTRY_VALUE;
  entry->levels = levels;
  entry->alignment = alignment;
  entry->fixed = fixed;
  dec->buf_len = end;
  return dec->buf + start;
}

static gboolean
direct_push_fixed (Decoder       *dec,
                   gconstpointer  data,
                   gsize          size,
                   const char    *type,
                   guint          levels,
                   GError       **error)
{
  guint8 *dest = direct_push (dec, size, type, size == 1 ? 1 : 8, TRUE, levels, error);

  if (dest == NULL)
    return FALSE;
  memcpy (dest, data, size);
  return TRUE;
}

/* Pushes a string (@type "s" or "o") or a byte string ("ay"). */
static gboolean
direct_push_text (Decoder      *dec,
                  const guint8 *data,
                  gsize         len,
                  const char   *type,
                  GError      **error)
{
  gboolean is_text = type[0] != 'a';
  guint8 *dest = direct_push (dec, len + (is_text ? 1 : 0), type, 1, FALSE, is_text ? 1 : 2, error);

  if (dest == NULL)
    return FALSE;
  if (len > 0)
    memcpy (dest, data, len);
  if (is_text)
    dest[len] = '\0';
  return TRUE;
}

static gboolean
direct_push_open (Decoder   *dec,
                  EntryKind  kind,
                  gsize      n_items,
                  GError   **error)
{
  OpenContainer *open;
  Entry *entry;

  if (!direct_reserve_entry (dec, error))
    return FALSE;
  if (dec->n_open == dec->open_alloc)
    {
      gsize alloc = grown_size (dec->open_alloc, dec->n_open + 1, 4, sizeof (OpenContainer));

      if (!direct_check_budget (dec, (alloc - dec->open_alloc) * sizeof (OpenContainer), error))
        return FALSE;
      dec->open = g_renew (OpenContainer, dec->open, alloc);
      dec->open_alloc = alloc;
    }

  open = &dec->open[dec->n_open];
  memset (open, 0, sizeof *open);
  open->n_items = n_items;

  entry = &dec->entries[dec->n_entries++];
  entry->data_end = ALIGN_UP (dec->buf_len, 8);
  entry->end = dec->n_open++;
  entry->kind = kind;
  /* The array, the variant or dict entry in it (and its variant). */
  entry->levels = kind == ENTRY_LIST ? 2 : 3;
  entry->alignment = 8;
  entry->fixed = FALSE;
  dec->buf_len = entry->data_end;
  return TRUE;
}

static gboolean
open_add_end (Decoder       *dec,
              OpenContainer *open,
              gsize          end,
              GError       **error)
{
  if (open->n_ends == open->ends_alloc)
    {
      gsize alloc = grown_size (open->ends_alloc, open->n_ends + 1, 4, sizeof (guint32));

      if (!direct_check_budget (dec, (alloc - open->ends_alloc) * sizeof (guint32), error))
        return FALSE;
      dec->open_bytes += (alloc - open->ends_alloc) * sizeof (guint32);
      open->ends = g_renew (guint32, open->ends, alloc);
      open->ends_alloc = alloc;
    }
  open->ends[open->n_ends++] = end;
  return TRUE;
}

static void
open_clear (Decoder       *dec,
            OpenContainer *open)
{
  dec->open_bytes -= open->ends_alloc * sizeof (guint32);
  g_clear_pointer (&open->ends, g_free);
}

/* The size of a dict key at @key, of type @key_type. */
static gsize
key_size (const guint8 *key,
          char          key_type)
{
  switch (key_type)
    {
    case 'b':
      return 1;
    case 's':
    case 'o':
      return strlen ((const char *) key);
    default:
      return 8;
    }
}

/* Whether the dict whose members start at @data has a key twice. */
static gboolean
dict_has_repeated_keys (Decoder       *dec,
                        const guint8  *data,
                        OpenContainer *open,
                        gboolean      *repeated,
                        GError       **error)
{
  g_autofree guint32 *table = NULL;
  gsize mask = 15;

  *repeated = FALSE;
  if (open->n_ends < 2)
    return TRUE;
  while (mask < 2 * open->n_ends)
    mask = mask * 2 + 1;
  if (!direct_check_budget (dec, (mask + 1) * sizeof (guint32), error))
    return FALSE;
  table = g_new0 (guint32, mask + 1);

  for (gsize i = 0; i < open->n_ends && !*repeated; i++)
    {
      const guint8 *key = data + (i == 0 ? 0 : ALIGN_UP (open->ends[i - 1], 8));
      gsize size = key_size (key, open->key_type);
      guint32 hash = 2166136261u;
      gsize slot;

      for (gsize j = 0; j < size; j++)
        hash = (hash ^ key[j]) * 16777619u;

      for (slot = hash & mask; table[slot] != 0; slot = (slot + 1) & mask)
        {
          gsize other_index = table[slot] - 1;
          const guint8 *other = data + (other_index == 0 ? 0 : ALIGN_UP (open->ends[other_index - 1], 8));

          if (key_size (other, open->key_type) == size && memcmp (other, key, size) == 0)
            {
              *repeated = TRUE;
              break;
            }
        }
      table[slot] = i + 1;
    }

  return TRUE;
}

/* What an open container becomes once finished. */
typedef struct {
  gsize body;          /* its members */
  guint offset_size;
  gsize size;          /* its data: members and offsets */
  char  type[6];
} OpenShape;

static void
open_shape (Decoder     *dec,
            guint        i,
            OpenShape   *shape)
{
  const Entry *entry = &dec->entries[i];
  OpenContainer *open = &dec->open[entry->end];

  shape->body = entry->data_end - entry_start (dec, i);
  shape->offset_size = open->n_ends > 0 ? offset_size (shape->body, open->n_ends) : 0;
  shape->size = shape->body + open->n_ends * shape->offset_size;
  if (entry->kind == ENTRY_LIST)
    strcpy (shape->type, "av");
  else
    {
      /* An empty dict is an `a{sv}`, as in the tree. */
      strcpy (shape->type, "a{sv}");
      if (open->key_type != 0)
        shape->type[2] = open->key_type;
    }
}

/* Whether open container @i can be finished here: a list with every item
 * set, a dict without a repeated key. */
static gboolean
open_check (Decoder  *dec,
            guint     i,
            gboolean *ok,
            GError  **error)
{
  const Entry *entry = &dec->entries[i];
  OpenContainer *open = &dec->open[entry->end];

  if (entry->kind == ENTRY_LIST)
    {
      *ok = open->n_ends == open->n_items;
      return TRUE;
    }

  if (!dict_has_repeated_keys (dec, dec->buf + entry_start (dec, i), open, ok, error))
    return FALSE;
  *ok = !*ok;
  return TRUE;
}

/* Writes open container @i's offsets at @dest, then with @boxed a nul and
 * its type. */
static void
open_write_tail (Decoder         *dec,
                 guint            i,
                 const OpenShape *shape,
                 guint8          *dest,
                 gboolean         boxed)
{
  OpenContainer *open = &dec->open[dec->entries[i].end];

  for (gsize j = 0; j < open->n_ends; j++)
    write_offset (dest + j * shape->offset_size, open->ends[j], shape->offset_size);
  if (boxed)
    {
      dest += open->n_ends * shape->offset_size;
      *dest = '\0';
      memcpy (dest + 1, shape->type, strlen (shape->type));
    }
}

/* Finishes the open container on top of the stack where it is. */
static gboolean
direct_finish_top (Decoder  *dec,
                   GError  **error)
{
  guint i = dec->n_entries - 1;
  Entry *entry;
  OpenShape shape;
  gboolean ok;
  gsize start = entry_start (dec, i);
  gsize end;

  if (!open_check (dec, i, &ok, error) || !ok)
    return FALSE;

  open_shape (dec, i, &shape);
  end = start + shape.size + 1 + strlen (shape.type);
  if (!direct_reserve_full (dec, end, TRUE, error))
    return FALSE;
  open_write_tail (dec, i, &shape, dec->buf + start + shape.body, TRUE);

  entry = &dec->entries[i];
  g_assert (entry->end == dec->n_open - 1);
  open_clear (dec, &dec->open[--dec->n_open]);
  entry->kind = ENTRY_VALUE;
  entry->data_end = start + shape.size;
  entry->end = end;
  dec->buf_len = end;
  return TRUE;
}

static gboolean
direct_setitem (Decoder  *dec,
                GError  **error)
{
  guint n = dec->n_entries;
  Entry *target, *key, *item;
  OpenContainer *open;
  const char *key_type;
  gsize start, key_start, item_start, item_len, body, end;
  guint levels;

  if (n < 3 || dec->entries[n - 3].kind == ENTRY_VALUE ||
      dec->entries[n - 2].kind != ENTRY_VALUE)
    return FALSE;
  if (dec->entries[n - 1].kind != ENTRY_VALUE && !direct_finish_top (dec, error))
    return FALSE;

  target = &dec->entries[n - 3];
  key = &dec->entries[n - 2];
  item = &dec->entries[n - 1];
  levels = MAX (target->levels,
                (target->kind == ENTRY_LIST ? 2u : 3u) + MAX (key->levels, item->levels));
  if (levels > SERIALIZED_MAX_LEVELS)
    return FALSE;

  open = &dec->open[target->end];
  start = entry_start (dec, n - 3);
  key_start = entry_start (dec, n - 2);
  item_start = entry_start (dec, n - 1);
  item_len = item->end - item_start;
  body = target->data_end - start;
  key_type = (const char *) dec->buf + key->data_end + 1;
  if (key->end - key->data_end != 2)
    return FALSE;

  if (target->kind == ENTRY_LIST)
    {
      gint64 index;

      /* In order, as Python writes lists; anything else is the tree's. */
      if (key_type[0] != 'x')
        return FALSE;
      memcpy (&index, dec->buf + key_start, sizeof index);
      if (index < 0 || (guint64) index != open->n_ends || open->n_ends >= open->n_items)
        return FALSE;

      end = ALIGN_UP (body, 8);
      memset (dec->buf + start + body, 0, end - body);
      memmove (dec->buf + start + end, dec->buf + item_start, item_len);
      end += item_len;
    }
  else
    {
      gsize key_len = key->data_end - key_start;
      gsize entry, value_at;
      guint key_offset_size = 0;

      if (strchr ("bxtdso", key_type[0]) == NULL ||
          (open->key_type != 0 && open->key_type != key_type[0]))
        return FALSE;
      open->key_type = key_type[0];

      /* A dict entry: the key, the value at a multiple of 8 and, for a
       * key of variable size, where it ends. */
      entry = ALIGN_UP (body, 8);
      value_at = ALIGN_UP (entry + key_len, 8);
      end = value_at + item_len;
      if (key_type[0] == 's' || key_type[0] == 'o')
        key_offset_size = offset_size (end - entry, 1);
      if (!direct_reserve (dec, start + end + key_offset_size, error))
        return FALSE;

      memset (dec->buf + start + body, 0, entry - body);
      memmove (dec->buf + start + entry, dec->buf + key_start, key_len);
      memset (dec->buf + start + entry + key_len, 0, value_at - entry - key_len);
      memmove (dec->buf + start + value_at, dec->buf + item_start, item_len);
      write_offset (dec->buf + start + end, key_len, key_offset_size);
      end += key_offset_size;
    }

  if (!open_add_end (dec, open, end, error))
    return FALSE;

  dec->n_entries -= 2;
  target = &dec->entries[n - 3];
  target->data_end = start + end;
  target->levels = levels;
  dec->buf_len = start + end;
  return TRUE;
}

/* One member of a tuple or set being built. */
typedef struct {
  gsize     src;        /* where it is */
  gsize     src_len;    /* what of it moves */
  gsize     size;       /* what it takes in the container */
  guint     alignment;
  gboolean  fixed;
  gboolean  open;
  OpenShape shape;      /* if @open */
} Member;

static void
member_get (Decoder  *dec,
            guint     i,
            gboolean  boxed,
            Member   *member)
{
  const Entry *entry = &dec->entries[i];

  member->src = entry_start (dec, i);
  member->open = entry->kind != ENTRY_VALUE;
  if (!member->open)
    {
      member->src_len = (boxed ? entry->end : entry->data_end) - member->src;
      member->size = member->src_len;
      member->alignment = boxed ? 8 : entry->alignment;
      member->fixed = !boxed && entry->fixed;
    }
  else
    {
      open_shape (dec, i, &member->shape);
      member->src_len = member->shape.body;
      member->size = member->shape.size + (boxed ? 1 + strlen (member->shape.type) : 0);
      member->alignment = 8;
      member->fixed = FALSE;
    }
}

/* Moves member @i (described by @member) to @dest. */
static void
member_move (Decoder      *dec,
             guint         i,
             const Member *member,
             gsize         dest,
             gboolean      boxed)
{
  memmove (dec->buf + dest, dec->buf + member->src, member->src_len);
  if (member->open)
    open_write_tail (dec, i, &member->shape, dec->buf + dest + member->shape.body, boxed);
}

/* BUILDTUPLE, SET and FROZENSET. */
static gboolean
direct_collect (Decoder  *dec,
                GError  **error)
{
  gboolean is_tuple = dec->op == OP_BUILDTUPLE;
  g_autofree char *type = NULL;
  g_autofree guint32 *dests = NULL;
  gsize n, first, start, body = 0, size, type_len, n_open = 0, n_offsets = 0;
  guint osize = 0;
  guint alignment = 1;
  gboolean fixed = TRUE;
  guint levels = 0;
  Entry *entry;

  if (!decoder_read_count (dec, "item count", &n, error) || n > dec->n_entries)
    return FALSE;
  /* An empty tuple or set adds an entry. */
  if (n == 0 && !direct_reserve_entry (dec, error))
    return FALSE;
  first = dec->n_entries - n;
  start = entry_start (dec, first);

  for (gsize i = first; i < dec->n_entries; i++)
    {
      Member member;
      gboolean ok = TRUE;

      levels = MAX (levels, dec->entries[i].levels);
      if (dec->entries[i].kind != ENTRY_VALUE)
        {
          if (!open_check (dec, i, &ok, error))
            return FALSE;
          n_open++;
        }
      if (!ok)
        return FALSE;
      member_get (dec, i, !is_tuple, &member);
      body = ALIGN_UP (body, member.alignment) + member.size;
      alignment = MAX (alignment, member.alignment);
      fixed = fixed && member.fixed;
    }
  /* A tuple, or an array and the variants in it. */
  levels += is_tuple ? 1 : 2;
  if (levels > SERIALIZED_MAX_LEVELS)
    return FALSE;

  /* The type, from the members' before they move. */
  if (is_tuple)
    {
      gsize pos = 1;

      type_len = 2;
      for (gsize i = first; i < dec->n_entries; i++)
        type_len += dec->entries[i].kind == ENTRY_VALUE
                    ? dec->entries[i].end - dec->entries[i].data_end - 1
                    : (dec->entries[i].kind == ENTRY_LIST ? 2 : 5);
      if (!direct_check_budget (dec, type_len, error))
        return FALSE;
      type = g_malloc (type_len + 1);
      type[0] = '(';
      for (gsize i = first; i < dec->n_entries; i++)
        {
          const Entry *member = &dec->entries[i];

          if (member->kind == ENTRY_VALUE)
            {
              memcpy (type + pos, dec->buf + member->data_end + 1, member->end - member->data_end - 1);
              pos += member->end - member->data_end - 1;
            }
          else
            {
              OpenShape shape;

              open_shape (dec, i, &shape);
              memcpy (type + pos, shape.type, strlen (shape.type));
              pos += strlen (shape.type);
            }
        }
      type[pos++] = ')';
      type[pos] = '\0';
      g_assert (pos == type_len);

      if (n >= TUPLE_INFO_MIN_MEMBERS)
        dec->estimate += n * COST_TUPLE_INFO;
    }
  else
    {
      type = g_strdup ("av");
      type_len = 2;
      alignment = 8;
      fixed = FALSE;
    }

  if (fixed)
    size = MAX (ALIGN_UP (body, alignment), 1);
  else
    {
      if (is_tuple)
        {
          for (gsize i = first; i + 1 < dec->n_entries; i++)
            if (!dec->entries[i].fixed || dec->entries[i].kind != ENTRY_VALUE)
              n_offsets++;
        }
      else
        n_offsets = n;
      osize = n_offsets > 0 ? offset_size (body, n_offsets) : 0;
      size = body + n_offsets * osize;
    }
  if (!direct_reserve_full (dec, start + size + 1 + type_len, TRUE, error))
    return FALSE;

  if (n_open == 0)
    {
      /* Every member moves towards the start, or stays: one pass, and
       * each entry keeps where its member ends. */
      gsize pos = 0;
      gsize next = start;

      for (gsize i = first; i < dec->n_entries; i++)
        {
          Member member;
          gsize dest;

          member_get (dec, i, !is_tuple, &member);
          g_assert (member.src == next);
          next = ALIGN_UP (entry_top (&dec->entries[i]), 8);
          dest = ALIGN_UP (pos, member.alignment);
          memset (dec->buf + start + pos, 0, dest - pos);
          member_move (dec, i, &member, start + dest, !is_tuple);
          pos = dest + member.size;
          dec->entries[i].data_end = pos;
        }
      g_assert (pos == body);
    }
  else
    {
      /* Finished lists and dicts grow, so a member may have to move
       * towards the end: those move first, last one first, then the
       * others, first one first; no move overwrites a member that has
       * yet to move. */
      gsize pos = 0;

      if (!direct_check_budget (dec, n * sizeof (guint32), error))
        return FALSE;
      dests = g_new (guint32, MAX (n, 1));
      for (gsize i = first; i < dec->n_entries; i++)
        {
          Member member;

          member_get (dec, i, !is_tuple, &member);
          dests[i - first] = ALIGN_UP (pos, member.alignment);
          pos = dests[i - first] + member.size;
        }
      for (gsize i = dec->n_entries; i > first; i--)
        {
          Member member;

          member_get (dec, i - 1, !is_tuple, &member);
          if (start + dests[i - 1 - first] > member.src)
            member_move (dec, i - 1, &member, start + dests[i - 1 - first], !is_tuple);
        }
      for (gsize i = first; i < dec->n_entries; i++)
        {
          Member member;

          member_get (dec, i, !is_tuple, &member);
          if (start + dests[i - first] <= member.src)
            member_move (dec, i, &member, start + dests[i - first], !is_tuple);
        }
      pos = 0;
      for (gsize i = first; i < dec->n_entries; i++)
        {
          Member member;

          member_get (dec, i, !is_tuple, &member);
          memset (dec->buf + start + pos, 0, dests[i - first] - pos);
          pos = dests[i - first] + member.size;
          dests[i - first] = pos;
        }
      for (gsize i = first; i < dec->n_entries; i++)
        dec->entries[i].data_end = dests[i - first];
      for (gsize i = 0; i < n_open; i++)
        open_clear (dec, &dec->open[--dec->n_open]);
    }

  /* The framing offsets. */
  if (fixed)
    memset (dec->buf + start + body, 0, size - body);
  else if (is_tuple)
    {
      guint8 *dest = dec->buf + start + body;

      for (gsize i = dec->n_entries - 1; i > first; i--)
        if (!dec->entries[i - 1].fixed || dec->entries[i - 1].kind != ENTRY_VALUE)
          {
            write_offset (dest, dec->entries[i - 1].data_end, osize);
            dest += osize;
          }
    }
  else
    {
      guint8 *dest = dec->buf + start + body;

      for (gsize i = first; i < dec->n_entries; i++)
        {
          write_offset (dest, dec->entries[i].data_end, osize);
          dest += osize;
        }
    }

  dec->buf[start + size] = '\0';
  memcpy (dec->buf + start + size + 1, type, type_len);

  dec->n_entries = first;
  entry = &dec->entries[dec->n_entries++];
  entry->data_end = start + size;
  entry->end = start + size + 1 + type_len;
  entry->kind = ENTRY_VALUE;
  entry->levels = levels;
  entry->alignment = alignment;
  entry->fixed = fixed;
  dec->buf_len = entry->end;
  return TRUE;
}

static gboolean
direct_step (Decoder  *dec,
             GError  **error)
{
  switch (dec->op)
    {
    case OP_NONE:
      return direct_push (dec, 0, "mv", 8, FALSE, 1, error) != NULL;

    case OP_TRUE:
    case OP_FALSE:
      {
        guint8 value = dec->op == OP_TRUE;

        return direct_push_fixed (dec, &value, 1, "b", 1, error);
      }

    case OP_INT:
    case OP_LONG:
      {
        gint32 value;
        gint64 wide;

        if (!decoder_read_int4 (dec, &value, error))
          return FALSE;
        wide = value;
        return direct_push_fixed (dec, &wide, 8, "x", 1, error);
      }

    case OP_LONGINT:
    case OP_LONGLONG:
      {
        guint64 value;
        gboolean is_unsigned;

        if (!decoder_read_longint (dec, &value, &is_unsigned, error))
          return FALSE;
        return direct_push_fixed (dec, &value, 8, is_unsigned ? "t" : "x", 1, error);
      }

    case OP_FLOAT:
      {
        gdouble value;

        if (!decoder_need (dec, 8, error))
          return FALSE;
        value = decoder_take_double (dec);
        return direct_push_fixed (dec, &value, 8, "d", 1, error);
      }

    case OP_COMPLEX:
      {
        gdouble value[2];

        if (!decoder_need (dec, 16, error))
          return FALSE;
        value[0] = decoder_take_double (dec);
        value[1] = decoder_take_double (dec);
        return direct_push_fixed (dec, value, 16, "(dd)", 2, error);
      }

    case OP_BYTES:
      {
        const guint8 *data;
        gsize len;

        if (!decoder_read_sized (dec, &data, &len, error))
          return FALSE;
        return direct_push_text (dec, data, len, "ay", error);
      }

    case OP_PY2STRING:
    case OP_PY3STRING:
    case OP_UNICODE:
      {
        const guint8 *data;
        gsize len;
        gboolean is_text;

        if (!decoder_read_text (dec, &data, &len, &is_text, error))
          return FALSE;
        return direct_push_text (dec, data, len, is_text ? "s" : "ay", error);
      }

    case OP_CHANNEL:
      {
        char path[64];
        gint32 channel_id;

        if (!decoder_read_channel (dec, &channel_id, error))
          return FALSE;
        if (dec->channel_func != NULL)
          {
            dec->estimate += COST_CHANNEL;
            if (!direct_check_budget (dec, 0, error))
              return FALSE;
            if (!decoder_report_channel (dec, channel_id, error))
              {
                dec->hard_error = TRUE;
                return FALSE;
              }
          }
        g_snprintf (path, sizeof path, EXECNET_CHANNEL_PATH_PREFIX "%" G_GINT32_FORMAT,
                    channel_id);
        return direct_push_text (dec, (const guint8 *) path, strlen (path), "o", error);
      }

    case OP_NEWDICT:
      return direct_push_open (dec, ENTRY_DICT, 0, error);

    case OP_NEWLIST:
      {
        gsize n;

        if (!decoder_read_list_size (dec, &n, error))
          return FALSE;
        return direct_push_open (dec, ENTRY_LIST, n, error);
      }

    case OP_BUILDTUPLE:
    case OP_SET:
    case OP_FROZENSET:
      return direct_collect (dec, error);

    case OP_SETITEM:
      return direct_setitem (dec, error);

    case OP_STOP:
    default:
      g_assert_not_reached ();
    }
}

/* Decodes @dec's input into serialized data. Returns NULL when it gave up
 * (error unset) or failed for good (@error set, hard_error). */
static GVariant *
decode_direct (Decoder  *dec,
               GError  **error)
{
  g_autoptr(GBytes) bytes = NULL;
  g_autofree char *type = NULL;
  const Entry *entry;
  GVariant *result;

  /* Never NULL, even for an item of no data. */
  if (!direct_reserve (dec, 64, error))
    return NULL;

  for (;;)
    {
      guint8 byte;

      if (dec->pos == dec->size)
        return NULL;
      byte = dec->data[dec->pos];
      if (!is_opcode (byte))
        return NULL;
      dec->op_offset = dec->pos++;
      dec->op = byte;
      if (dec->op == OP_STOP)
        break;
      if (!direct_step (dec, error) || !direct_check_budget (dec, 0, error))
        return NULL;
    }

  if (dec->n_entries != 1 || dec->pos != dec->size)
    return NULL;
  if (dec->entries[0].kind != ENTRY_VALUE && !direct_finish_top (dec, error))
    return NULL;

  entry = &dec->entries[0];
  if (entry->levels > SERIALIZED_MAX_LEVELS)
    return NULL;
  type = g_strndup ((const char *) dec->buf + entry->data_end + 1,
                    entry->end - entry->data_end - 1);
  bytes = g_bytes_new_take (g_realloc (g_steal_pointer (&dec->buf), entry->data_end),
                            entry->data_end);
  dec->buf_alloc = 0;
  result = g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, TRUE);
  return g_variant_ref_sink (result);
}

static void
decoder_clear_direct (Decoder *dec)
{
  while (dec->n_open > 0)
    open_clear (dec, &dec->open[--dec->n_open]);
  g_clear_pointer (&dec->open, g_free);
  g_clear_pointer (&dec->entries, g_free);
  g_clear_pointer (&dec->buf, g_free);
}

/* Whether @data is one byte string and STOP. */
static gboolean
is_lone_bytes (const guint8 *data,
               gsize         size)
{
  guint32 len;

  if (size < 6 || (data[0] != OP_BYTES && data[0] != OP_PY2STRING))
    return FALSE;
  memcpy (&len, data + 1, 4);
  return GUINT32_FROM_BE (len) == size - 6;
}

static GVariant *
decode_internal (GBytes                  *data,
                 gsize                    base,
                 ExecnetValueChannelFunc  channel_func,
                 gpointer                 user_data,
                 gsize                    budget,
                 GError                 **error)
{
  Decoder dec = { 0 };
  GVariant *result = NULL;

  dec.bytes = data;
  dec.data = g_bytes_get_data (data, &dec.size);
  dec.base = base;
  dec.channel_func = channel_func;
  dec.user_data = user_data;
  dec.budget = budget;

  /* A lone byte string is the tree's, which shares the input's memory. */
  if (!is_lone_bytes (dec.data, dec.size))
    {
      g_autoptr(GError) local_error = NULL;

      result = decode_direct (&dec, &local_error);
      decoder_clear_direct (&dec);
      if (result != NULL)
        return result;
      if (dec.hard_error)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
      /* Start again as a tree, without reporting channels twice. */
      dec.pos = 0;
      dec.skip_channels = dec.n_channels;
    }

  dec.stack = g_array_new (FALSE, FALSE, sizeof (StackItem));
  g_array_set_clear_func (dec.stack, stack_item_clear);
  dec.none = g_variant_ref_sink (g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL));
  dec.boxed_none = g_variant_ref_sink (g_variant_new_variant (dec.none));
  dec.true_value = g_variant_ref_sink (g_variant_new_boolean (TRUE));
  dec.false_value = g_variant_ref_sink (g_variant_new_boolean (FALSE));

  while (result == NULL)
    {
      guint8 byte;

      if (dec.pos == dec.size)
        {
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                       "serialized value: data ends at offset %" G_GSIZE_FORMAT
                       " without a STOP opcode",
                       dec.pos + dec.base);
          break;
        }

      byte = dec.data[dec.pos];
      dec.op_offset = dec.pos++;

      if (!is_opcode (byte))
        {
          if (g_ascii_isprint (byte))
            g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                         "serialized value: unknown opcode '%c' (0x%02x) at "
                         "offset %" G_GSIZE_FORMAT,
                         byte, byte, dec.op_offset + dec.base);
          else
            g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                         "serialized value: unknown opcode 0x%02x at offset %"
                         G_GSIZE_FORMAT,
                         byte, dec.op_offset + dec.base);
          break;
        }
      dec.op = byte;

      if (dec.op == OP_STOP)
        {
          if (dec.stack->len != 1)
            {
              decoder_fail (&dec, error, EXECNET_ERROR_PROTOCOL,
                            "the stack holds %u values, not exactly one",
                            dec.stack->len);
              break;
            }
          if (dec.pos != dec.size)
            {
              decoder_fail (&dec, error, EXECNET_ERROR_PROTOCOL,
                            "%" G_GSIZE_FORMAT " bytes of trailing data "
                            "follow the end of the value",
                            dec.size - dec.pos);
              break;
            }
          result = decoder_pop (&dec, NULL, NULL, error);
          if (result != NULL)
            decoder_flatten (&dec, result);
          break;
        }

      if (!decoder_step (&dec, error) || !decoder_check_budget (&dec, error))
        break;
    }

  g_array_unref (dec.stack);
  g_variant_unref (dec.none);
  g_variant_unref (dec.boxed_none);
  g_variant_unref (dec.true_value);
  g_variant_unref (dec.false_value);

  return result;
}

GVariant *
_execnet_value_decode (GBytes                  *data,
                       ExecnetValueChannelFunc  channel_func,
                       gpointer                 user_data,
                       GError                 **error)
{
  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return decode_internal (data, 0, channel_func, user_data, EXECNET_VALUE_DECODE_BUDGET, error);
}

GVariant *
_execnet_value_decode_with_budget (GBytes                  *data,
                                   gsize                    budget,
                                   GError                 **error)
{
  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return decode_internal (data, 0, NULL, NULL, budget, error);
}

/* ---------------------------------------------------------------------- */
/* Public API                                                              */

/**
 * execnet_dumps:
 * @value: the value to serialize; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Serializes @value in the format of execnet's `dumps()`: the version byte
 * %EXECNET_DUMPS_VERSION, then the value. Python's `execnet.loads()` reads
 * the result.
 *
 * Values are mapped as on a channel: booleans, integers (`y`, `n`, `q`, `i`,
 * `u`, `x`, `t`), doubles, strings, byte strings (`ay`), arrays (as lists),
 * dictionaries (`a{..}`), tuples, maybe types (Nothing is `None`) and
 * variants (by their contents). A handle (`h`) cannot be serialized.
 *
 * Returns: (transfer full): the serialized bytes, or %NULL with @error set
 *   to %EXECNET_ERROR_UNSUPPORTED_VALUE
 *
 * Since: 1.0
 */
GBytes *
execnet_dumps (GVariant  *value,
               GError   **error)
{
  g_autoptr(GPtrArray) chunks = NULL;

  g_return_val_if_fail (value != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  chunks = _execnet_value_encode (value, error);
  if (chunks == NULL)
    return NULL;

  return _execnet_chunks_flatten (chunks, EXECNET_DUMPS_VERSION);
}

/**
 * execnet_loads:
 * @data: bytes written by execnet's `dumps()` or by execnet_dumps()
 * @error: return location for a #GError
 *
 * Deserializes a value written by execnet's `dumps()` (format versions 1
 * and 2). Python values map to GVariant as on a channel: `None` is an `mv`
 * Nothing, `int` an `x` (or a `t` above the int64 range), `str` an `s`,
 * `bytes` an `ay`, lists, sets and frozensets `av`, a tuple the tuple of its
 * items' types, a dict an `a{?v}` when its keys share one basic type and an
 * `a(vv)` of key/value pairs otherwise (tuple or mixed keys), `complex`
 * a `(dd)` and a channel an object path `/org/execnet/channel/<id>`.
 * Integers beyond 64 bits have no GVariant form.
 *
 * Returns: (transfer full): the value, or %NULL with @error set to
 *   %EXECNET_ERROR_PROTOCOL if @data is not well formed, or to
 *   %EXECNET_ERROR_UNSUPPORTED_VALUE if the value has no GVariant form
 *
 * Since: 1.0
 */
GVariant *
execnet_loads (GBytes  *data,
               GError **error)
{
  g_autoptr(GBytes) body = NULL;
  const guint8 *bytes;
  gsize size;

  g_return_val_if_fail (data != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  bytes = g_bytes_get_data (data, &size);
  if (size == 0)
    {
      g_set_error_literal (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                           "serialized value: the data is empty; it should "
                           "start with a version byte");
      return NULL;
    }

  if (bytes[0] != 1 && bytes[0] != 2)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                   "serialized value: unsupported format version %u "
                   "(versions 1 and 2 are understood)",
                   bytes[0]);
      return NULL;
    }

  body = g_bytes_new_from_bytes (data, 1, size - 1);
  return decode_internal (body, 1, NULL, NULL, EXECNET_VALUE_DECODE_BUDGET, error);
}
