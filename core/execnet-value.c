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
 * reach it any more. So the stack holds finished GVariants plus lists and
 * dicts under construction, and a container becomes a GVariant at the moment
 * it is popped. Nothing here recurses on the input, so hostile nesting cannot
 * exhaust the C stack; depth is still capped so that the GVariants built stay
 * reasonable for the code that walks them afterwards.
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
  gsize         cost;      /* what it took so far, estimated from above */
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

/* Fails once the estimated cost passed the budget. */
static gboolean
decoder_check_budget (Decoder  *dec,
                      GError  **error)
{
  if (dec->cost <= dec->budget)
    return TRUE;

  return decoder_fail (dec, error, EXECNET_ERROR_UNSUPPORTED_VALUE,
                       "the value of %" G_GSIZE_FORMAT " bytes would need more than "
                       "%" G_GSIZE_FORMAT " MiB once decoded, the most one item may "
                       "take; send it in smaller pieces",
                       dec->size, dec->budget >> 20);
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

/* LONGINT and LONGLONG: an ASCII decimal of any length. */
static gboolean
decoder_longint (Decoder  *dec,
                 GError  **error)
{
  const guint8 *text;
  gsize len;
  gsize start = 0;
  gboolean negative = FALSE;
  gboolean overflow = FALSE;
  guint64 magnitude = 0;
  GVariant *value;

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

  if (!overflow && !negative && magnitude <= G_MAXINT64)
    value = g_variant_new_int64 ((gint64) magnitude);
  else if (!overflow && !negative)
    value = g_variant_new_uint64 (magnitude);
  else if (!overflow && magnitude <= (guint64) G_MAXINT64 + 1)
    value = g_variant_new_int64 ((gint64) (0 - magnitude));
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

  decoder_push_value (dec, g_variant_ref_sink (value), 0, 0);
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

static gboolean
decoder_text (Decoder  *dec,
              GError  **error)
{
  const guint8 *data;
  gsize len;
  gsize invalid_at = 0;
  gssize first_nul;
  gboolean valid;

  if (!decoder_read_sized (dec, &data, &len, error))
    return FALSE;

  valid = utf8_check (data, len, &invalid_at, &first_nul);

  if (dec->op == OP_PY2STRING)
    {
      /* Python 2 str is bytes; keep it a string when it reads as one. */
      if (valid && first_nul < 0)
        decoder_push_value (dec, decoder_new_string (data, len), 0, 0);
      else
        decoder_push_value (dec, decoder_new_bytes (dec, data, len), 0, 1);
      return TRUE;
    }

  if (!valid)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "a string of %" G_GSIZE_FORMAT " bytes is not "
                         "valid UTF-8 at position %" G_GSIZE_FORMAT,
                         len, invalid_at);
  if (first_nul >= 0)
    return decoder_fail (dec, error, EXECNET_ERROR_UNSUPPORTED_VALUE,
                         "a string with a nul character (at position %"
                         G_GSSIZE_FORMAT ") has no GVariant form",
                         first_nul);

  decoder_push_value (dec, decoder_new_string (data, len), 0, 0);
  return TRUE;
}

static gboolean
decoder_channel (Decoder  *dec,
                 GError  **error)
{
  g_autofree char *path = NULL;
  gint32 channel_id;

  if (!decoder_read_int4 (dec, &channel_id, error))
    return FALSE;

  if (channel_id < 0)
    return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                         "negative channel id %" G_GINT32_FORMAT, channel_id);

  if (dec->channel_func != NULL)
    {
      dec->cost += COST_CHANNEL;
      if (!decoder_check_budget (dec, error) ||
          !dec->channel_func (channel_id, dec->user_data, error))
        return FALSE;
    }

  path = _execnet_channel_path_new (channel_id);
  decoder_push_value (dec, g_variant_ref_sink (g_variant_new_object_path (path)),
                      0, 0);
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

        if (!decoder_read_count (dec, "list size", &n, error))
          return FALSE;
        if (n > (dec->size - dec->pos) / MIN_LIST_ITEM_SIZE)
          return decoder_fail (dec, error, EXECNET_ERROR_PROTOCOL,
                               "a list of %" G_GSIZE_FORMAT " items cannot "
                               "be filled by the %" G_GSIZE_FORMAT " bytes "
                               "that remain",
                               n, dec->size - dec->pos);
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
/* How deep the containers of a result that decoder_flatten() serializes
 * may nest: GVariant reads variants nested deeper than 128
 * (G_VARIANT_MAX_RECURSION_DEPTH) in serialized data as default values,
 * and every list member is a variant. */
#define FLATTEN_MAX_DEPTH 64

/* A container decoded into a tree of GVariant instances costs one instance
 * (about COST_VARIANT) per member: 20-60 times the wire size for many small
 * members. Serializing the finished value into one buffer frees the tree
 * (GVariant drops the children of a value once it is serialized), and what
 * the item then holds is its serialized form: up to 4 times the wire size
 * (doc/design.md). A value made mostly of large byte strings costs little
 * more than its serialized size, and keeps sharing the input's memory; a
 * value nested too deep for serialized GVariant data stays a tree. */
static void
decoder_flatten (Decoder  *dec,
                 GVariant *result,
                 guint     depth)
{
  if (g_variant_is_container (result) && depth <= FLATTEN_MAX_DEPTH &&
      dec->cost / FLATTEN_RATIO > g_variant_get_size (result))
    g_variant_get_data (result);
}

static gboolean
is_opcode (guint8 byte)
{
  return byte >= OP_BUILDTUPLE && byte <= OP_COMPLEX;
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
          guint depth;

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
          result = decoder_pop (&dec, &depth, NULL, error);
          if (result != NULL)
            decoder_flatten (&dec, result, depth);
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
