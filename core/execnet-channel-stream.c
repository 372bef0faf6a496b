/* execnet-channel-stream.c: a channel as a byte stream (execnet's makefile)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <execnet/execnet-error.h>

#include "execnet-channel-private.h"

/* Reading pops items and hands out their bytes (byte strings as they are,
 * strings as UTF-8); the channel's end is end-of-file. Writing sends each
 * write as one byte string item; closing the output closes the channel, as
 * execnet's channel files do. Reads block like execnet_channel_receive(). */

#define EXECNET_TYPE_CHANNEL_INPUT_STREAM (execnet_channel_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetChannelInputStream, execnet_channel_input_stream,
                      EXECNET, CHANNEL_INPUT_STREAM, GInputStream)

struct _ExecnetChannelInputStream
{
  GInputStream parent_instance;

  ExecnetChannel *channel;  /* (owned) */
  GBytes *pending;          /* (owned) (nullable) the rest of the current item */
  gsize offset;
};

G_DEFINE_FINAL_TYPE (ExecnetChannelInputStream, execnet_channel_input_stream, G_TYPE_INPUT_STREAM)

#define EXECNET_TYPE_CHANNEL_OUTPUT_STREAM (execnet_channel_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetChannelOutputStream, execnet_channel_output_stream,
                      EXECNET, CHANNEL_OUTPUT_STREAM, GOutputStream)

struct _ExecnetChannelOutputStream
{
  GOutputStream parent_instance;

  ExecnetChannel *channel;  /* (owned) */
};

G_DEFINE_FINAL_TYPE (ExecnetChannelOutputStream, execnet_channel_output_stream, G_TYPE_OUTPUT_STREAM)

static gssize
execnet_channel_input_stream_read (GInputStream  *stream,
                                   void          *buffer,
                                   gsize          count,
                                   GCancellable  *cancellable,
                                   GError       **error)
{
  ExecnetChannelInputStream *self = EXECNET_CHANNEL_INPUT_STREAM (stream);
  gsize size, n;
  const guint8 *data;

  while (self->pending == NULL)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GVariant) item = NULL;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return -1;

      item = execnet_channel_receive (self->channel, -1, &local_error);
      if (item == NULL)
        {
          if (g_error_matches (local_error, EXECNET_ERROR, EXECNET_ERROR_CHANNEL_CLOSED))
            return 0;
          g_propagate_error (error, g_steal_pointer (&local_error));
          return -1;
        }

      if (g_variant_is_of_type (item, G_VARIANT_TYPE_BYTESTRING))
        self->pending = g_variant_get_data_as_bytes (item);
      else if (g_variant_is_of_type (item, G_VARIANT_TYPE_STRING))
        {
          gsize length;
          const char *text = g_variant_get_string (item, &length);

          self->pending = g_bytes_new (text, length);
        }
      else
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       "channel %d sent a %s item where bytes or text were expected",
                       execnet_channel_get_id (self->channel),
                       g_variant_get_type_string (item));
          return -1;
        }
      self->offset = 0;
      if (g_bytes_get_size (self->pending) == 0)
        g_clear_pointer (&self->pending, g_bytes_unref);
    }

  data = g_bytes_get_data (self->pending, &size);
  n = MIN (count, size - self->offset);
  memcpy (buffer, data + self->offset, n);
  self->offset += n;
  if (self->offset == size)
    g_clear_pointer (&self->pending, g_bytes_unref);

  return n;
}

static void
execnet_channel_input_stream_finalize (GObject *object)
{
  ExecnetChannelInputStream *self = EXECNET_CHANNEL_INPUT_STREAM (object);

  g_clear_pointer (&self->pending, g_bytes_unref);
  g_clear_object (&self->channel);

  G_OBJECT_CLASS (execnet_channel_input_stream_parent_class)->finalize (object);
}

static void
execnet_channel_input_stream_class_init (ExecnetChannelInputStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = execnet_channel_input_stream_finalize;
  G_INPUT_STREAM_CLASS (klass)->read_fn = execnet_channel_input_stream_read;
}

static void
execnet_channel_input_stream_init (ExecnetChannelInputStream *self)
{
}

static gssize
execnet_channel_output_stream_write (GOutputStream  *stream,
                                     const void     *buffer,
                                     gsize           count,
                                     GCancellable   *cancellable,
                                     GError        **error)
{
  ExecnetChannelOutputStream *self = EXECNET_CHANNEL_OUTPUT_STREAM (stream);
  g_autoptr(GBytes) bytes = g_bytes_new (buffer, count);

  if (!execnet_channel_send (self->channel,
                             g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE),
                             error))
    return -1;

  return count;
}

static gboolean
execnet_channel_output_stream_close (GOutputStream  *stream,
                                     GCancellable   *cancellable,
                                     GError        **error)
{
  ExecnetChannelOutputStream *self = EXECNET_CHANNEL_OUTPUT_STREAM (stream);

  return execnet_channel_close (self->channel, NULL, error);
}

static void
execnet_channel_output_stream_finalize (GObject *object)
{
  ExecnetChannelOutputStream *self = EXECNET_CHANNEL_OUTPUT_STREAM (object);

  g_clear_object (&self->channel);

  G_OBJECT_CLASS (execnet_channel_output_stream_parent_class)->finalize (object);
}

static void
execnet_channel_output_stream_class_init (ExecnetChannelOutputStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = execnet_channel_output_stream_finalize;
  G_OUTPUT_STREAM_CLASS (klass)->write_fn = execnet_channel_output_stream_write;
  G_OUTPUT_STREAM_CLASS (klass)->close_fn = execnet_channel_output_stream_close;
}

static void
execnet_channel_output_stream_init (ExecnetChannelOutputStream *self)
{
}

/**
 * execnet_channel_get_stream:
 * @self: a channel
 *
 * The channel as a byte stream, like execnet's `channel.makefile()`: the
 * input yields the bytes of the items that arrive (byte strings, or text as
 * UTF-8) until the channel ends; each write to the output sends one byte
 * string item, and closing the output closes the channel. Reads block.
 *
 * Returns: (transfer full): a new stream over the channel
 *
 * Since: 1.0
 */
GIOStream *
execnet_channel_get_stream (ExecnetChannel *self)
{
  g_autoptr(ExecnetChannelInputStream) input = NULL;
  g_autoptr(ExecnetChannelOutputStream) output = NULL;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), NULL);

  input = g_object_new (EXECNET_TYPE_CHANNEL_INPUT_STREAM, NULL);
  input->channel = g_object_ref (self);
  output = g_object_new (EXECNET_TYPE_CHANNEL_OUTPUT_STREAM, NULL);
  output->channel = g_object_ref (self);

  return g_simple_io_stream_new (G_INPUT_STREAM (input), G_OUTPUT_STREAM (output));
}
