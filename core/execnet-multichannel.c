/* execnet-multichannel.c: one operation over many channels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <execnet/execnet-error.h>
#include <execnet/execnet-multichannel.h>

#include "execnet-gateway-private.h"
#include "execnet-receive-queue-private.h"
#include "execnet-util-private.h"

/**
 * ExecnetMultiChannel:
 *
 * A fixed list of channels, usually one per gateway of a group as returned
 * by [method@Execnet.Group.remote_exec], with operations over all of them.
 *
 * Since: 1.0
 */

struct _ExecnetMultiChannel
{
  GObject parent_instance;

  GPtrArray *channels;  /* (element-type ExecnetChannel) (owned) */
};

G_DEFINE_FINAL_TYPE (ExecnetMultiChannel, execnet_multi_channel, G_TYPE_OBJECT)

static void
execnet_multi_channel_finalize (GObject *object)
{
  ExecnetMultiChannel *self = EXECNET_MULTI_CHANNEL (object);

  g_ptr_array_unref (self->channels);

  G_OBJECT_CLASS (execnet_multi_channel_parent_class)->finalize (object);
}

static void
execnet_multi_channel_class_init (ExecnetMultiChannelClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = execnet_multi_channel_finalize;
}

static void
execnet_multi_channel_init (ExecnetMultiChannel *self)
{
  self->channels = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * execnet_multi_channel_new:
 * @channels: (array length=n_channels): the channels
 * @n_channels: how many
 *
 * Makes a multi-channel over @channels, to send to and receive from all of them at once.
 *
 * Returns: (transfer full): a multi-channel over @channels
 *
 * Since: 1.0
 */
ExecnetMultiChannel *
execnet_multi_channel_new (ExecnetChannel * const *channels,
                           guint                   n_channels)
{
  ExecnetMultiChannel *self = g_object_new (EXECNET_TYPE_MULTI_CHANNEL, NULL);

  for (guint i = 0; i < n_channels; i++)
    g_ptr_array_add (self->channels, g_object_ref (channels[i]));

  return self;
}

/**
 * execnet_multi_channel_get_size:
 * @self: a multi-channel
 *
 * Counts the channels.
 *
 * Returns: the number of channels
 *
 * Since: 1.0
 */
guint
execnet_multi_channel_get_size (ExecnetMultiChannel *self)
{
  g_return_val_if_fail (EXECNET_IS_MULTI_CHANNEL (self), 0);

  return self->channels->len;
}

/**
 * execnet_multi_channel_get_channel:
 * @self: a multi-channel
 * @index: a position
 *
 * Gets one of the channels by position.
 *
 * Returns: (transfer none) (nullable): the channel at @index
 *
 * Since: 1.0
 */
ExecnetChannel *
execnet_multi_channel_get_channel (ExecnetMultiChannel *self,
                                   guint                index)
{
  g_return_val_if_fail (EXECNET_IS_MULTI_CHANNEL (self), NULL);

  return index < self->channels->len ? g_ptr_array_index (self->channels, index) : NULL;
}

/**
 * execnet_multi_channel_send_each:
 * @self: a multi-channel
 * @item: (nullable): the item; a floating reference is sunk
 * @error: return location for a #GError
 *
 * Sends @item on every channel.
 *
 * Returns: %TRUE if it was sent on all of them
 *
 * Since: 1.0
 */
gboolean
execnet_multi_channel_send_each (ExecnetMultiChannel  *self,
                                 GVariant             *item,
                                 GError              **error)
{
  g_autoptr(GVariant) owned = NULL;

  g_return_val_if_fail (EXECNET_IS_MULTI_CHANNEL (self), FALSE);

  if (item != NULL)
    owned = g_variant_ref_sink (item);

  for (guint i = 0; i < self->channels->len; i++)
    if (!execnet_channel_send (g_ptr_array_index (self->channels, i), owned, error))
      return FALSE;

  return TRUE;
}

/**
 * execnet_multi_channel_receive_each:
 * @self: a multi-channel
 * @timeout: seconds to wait at most for all of them; negative waits for
 *   ever; NaN fails with %G_IO_ERROR_INVALID_ARGUMENT
 * @error: return location for a #GError
 *
 * Receives one item from every channel, in channel order.
 *
 * The items come as one `av` array, each boxed in a variant, so that the
 * caller owns exactly one value (in Python, `.unpack()` gives a list):
 *
 * ```c
 * g_autoptr(GVariant) items = execnet_multi_channel_receive_each (multi, 10.0, &error);
 *
 * for (gsize i = 0; items != NULL && i < g_variant_n_children (items); i++)
 *   {
 *     g_autoptr(GVariant) item = g_variant_get_child_value (items, i);
 *     g_autoptr(GVariant) value = g_variant_get_variant (item);
 *     ...
 *   }
 * ```
 *
 * Returns: (transfer full): an `av` with the items, or %NULL on the first
 *   error
 *
 * Since: 1.0
 */
GVariant *
execnet_multi_channel_receive_each (ExecnetMultiChannel  *self,
                                    gdouble               timeout,
                                    GError              **error)
{
  g_auto(GVariantBuilder) items = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("av"));
  gint64 deadline = _execnet_deadline_from_timeout (timeout);

  g_return_val_if_fail (EXECNET_IS_MULTI_CHANNEL (self), NULL);

  if (!_execnet_check_timeout (timeout, error))
    return NULL;

  for (guint i = 0; i < self->channels->len; i++)
    {
      gdouble left = deadline < 0 ? -1.0 : MAX (0, deadline - g_get_monotonic_time ()) / (gdouble) G_USEC_PER_SEC;
      g_autoptr(GVariant) item = execnet_channel_receive (g_ptr_array_index (self->channels, i), left, error);

      if (item == NULL)
        return NULL;
      g_variant_builder_add (&items, "v", item);
    }

  return g_variant_ref_sink (g_variant_builder_end (&items));
}

/**
 * execnet_multi_channel_make_receive_queue:
 * @self: a multi-channel
 * @endmarker: (nullable): popped once for each channel after its last
 *   item; %NULL for none. A floating reference is sunk.
 *
 * Makes one queue of the items of all the channels, in arrival order, as
 * execnet's `make_receive_queue()`: [method@Execnet.ReceiveQueue.pop]
 * returns each item with the channel it came on. The channels' items go
 * to the queue from now on (through a channel callback each), so they can
 * no longer be received from directly, and a channel takes one queue.
 *
 * Returns: (transfer full): the queue
 *
 * Since: 1.0
 */
ExecnetReceiveQueue *
execnet_multi_channel_make_receive_queue (ExecnetMultiChannel *self,
                                          GVariant            *endmarker)
{
  g_autoptr(GVariant) owned = NULL;

  g_return_val_if_fail (EXECNET_IS_MULTI_CHANNEL (self), NULL);

  if (endmarker != NULL)
    owned = g_variant_ref_sink (endmarker);

  return _execnet_receive_queue_new (self->channels, owned);
}

/**
 * execnet_multi_channel_wait_close:
 * @self: a multi-channel
 * @timeout: seconds to wait at most for all of them; negative waits for
 *   ever; NaN fails with %G_IO_ERROR_INVALID_ARGUMENT
 * @error: return location for a #GError
 *
 * Waits until every channel is closed. Every channel is waited for; the
 * first error is reported.
 *
 * Returns: %TRUE if all closed cleanly
 *
 * Since: 1.0
 */
gboolean
execnet_multi_channel_wait_close (ExecnetMultiChannel  *self,
                                  gdouble               timeout,
                                  GError              **error)
{
  gint64 deadline = _execnet_deadline_from_timeout (timeout);
  GError *first = NULL;

  g_return_val_if_fail (EXECNET_IS_MULTI_CHANNEL (self), FALSE);

  if (!_execnet_check_timeout (timeout, error))
    return FALSE;

  for (guint i = 0; i < self->channels->len; i++)
    {
      gdouble left = deadline < 0 ? -1.0 : MAX (0, deadline - g_get_monotonic_time ()) / (gdouble) G_USEC_PER_SEC;
      GError *local_error = NULL;

      if (!execnet_channel_wait_close (g_ptr_array_index (self->channels, i), left, &local_error))
        {
          if (first == NULL)
            first = local_error;
          else
            g_error_free (local_error);
        }
    }

  if (first != NULL)
    {
      g_propagate_error (error, first);
      return FALSE;
    }
  return TRUE;
}
