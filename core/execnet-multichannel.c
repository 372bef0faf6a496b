/* execnet-multichannel.c: one operation over many channels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <execnet/execnet-error.h>
#include <execnet/execnet-multichannel.h>

#include "execnet-async-private.h"
#include "execnet-gateway-private.h"
#include "execnet-inbox-private.h"
#include "execnet-receive-queue-private.h"
#include "execnet-util-private.h"

/**
 * ExecnetMultiChannel:
 *
 * A fixed list of channels, usually one per gateway of a group as returned
 * by [method@Execnet.Group.remote_exec], with operations over all of them.
 *
 * Every gateway of a group reports its host name:
 *
 * ```c
 * g_autoptr(ExecnetMultiChannel) multi =
 *   execnet_group_remote_exec (group, "import socket; channel.send(socket.gethostname())", &error);
 * g_autoptr(GVariant) names = NULL;
 *
 * if (multi != NULL)
 *   names = execnet_multi_channel_receive_each (multi, 30.0, &error);  // an `av`, in gateway order
 * ```
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

/* receive_each_async: one receive_async per channel, all at once; the
 * items are kept by position. */
typedef struct
{
  GPtrArray *items;            /* (element-type GVariant) (owned) (nullable items) by channel */
  guint pending;
  GError *error;               /* (owned) (nullable) the first failure */
  GCancellable *cancellable;   /* (owned) cancelled at the first failure or the timeout */
  ExecnetDeadline *deadline;   /* (owned) */
} Each;

static void
variant_unref_nullable (gpointer data)
{
  if (data != NULL)
    g_variant_unref (data);
}

static void
each_free (gpointer data)
{
  Each *each = data;

  g_ptr_array_unref (each->items);
  g_clear_error (&each->error);
  _execnet_deadline_free (each->deadline);
  g_free (each);
}

/* The items as receive_each gives them: one `av`. */
static GVariant *
items_to_variant (GPtrArray *items)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("av"));

  for (guint i = 0; i < items->len; i++)
    g_variant_builder_add (&builder, "v", g_ptr_array_index (items, i));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static void
on_each_item (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetMultiChannel *self = g_task_get_source_object (task);
  Each *each = g_task_get_task_data (task);
  GError *error = NULL;
  GVariant *item;

  item = execnet_channel_receive_finish (EXECNET_CHANNEL (source), result, &error);
  if (item != NULL)
    {
      guint index;

      if (g_ptr_array_find (self->channels, source, &index))
        g_ptr_array_index (each->items, index) = item;
    }
  else if (each->error == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
          _execnet_deadline_timed_out (each->deadline) &&
          !g_cancellable_is_cancelled (g_task_get_cancellable (task)))
        {
          g_clear_error (&error);
          error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                               "not every channel delivered an item in time");
        }
      each->error = error;
      g_cancellable_cancel (_execnet_deadline_get_cancellable (each->deadline));
    }
  else
    g_error_free (error);

  if (--each->pending > 0)
    return;
  if (each->error != NULL)
    _execnet_task_return_error (task, g_steal_pointer (&each->error));
  else
    _execnet_task_return_pointer (task, items_to_variant (each->items), (GDestroyNotify) g_variant_unref);
}

/**
 * execnet_multi_channel_receive_each_async:
 * @self: a multi-channel
 * @timeout: seconds to wait at most for all items; negative waits for ever
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when every channel delivered an item,
 *   or one failed
 * @user_data: data for @callback
 *
 * Receives one item from every channel, as
 * [method@Execnet.MultiChannel.receive_each] does, without blocking: all
 * channels are waited for at once. @callback runs in the thread-default
 * main context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_multi_channel_receive_each_async (ExecnetMultiChannel *self,
                                          gdouble              timeout,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  Each *each;

  g_return_if_fail (EXECNET_IS_MULTI_CHANNEL (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_multi_channel_receive_each_async);
  if (!_execnet_check_timeout (timeout, &error))
    {
      _execnet_task_return_error (task, error);
      return;
    }

  each = g_new0 (Each, 1);
  each->items = g_ptr_array_new_with_free_func (variant_unref_nullable);
  g_ptr_array_set_size (each->items, self->channels->len);
  each->deadline = _execnet_deadline_new (timeout, cancellable);
  each->pending = self->channels->len;
  g_task_set_task_data (task, each, each_free);

  if (self->channels->len == 0)
    {
      _execnet_task_return_pointer (task, items_to_variant (each->items), (GDestroyNotify) g_variant_unref);
      return;
    }
  for (guint i = 0; i < self->channels->len; i++)
    execnet_channel_receive_async (g_ptr_array_index (self->channels, i),
                                   _execnet_deadline_get_cancellable (each->deadline),
                                   on_each_item, g_object_ref (task));
}

/**
 * execnet_multi_channel_receive_each_finish:
 * @self: a multi-channel
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_multi_channel_receive_each_async().
 *
 * Returns: (transfer full): an `av` with the items, one per channel in
 *   order, as [method@Execnet.MultiChannel.receive_each] gives them, or
 *   %NULL on error
 *
 * Since: 1.0
 */
GVariant *
execnet_multi_channel_receive_each_finish (ExecnetMultiChannel  *self,
                                           GAsyncResult         *result,
                                           GError              **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
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
