/* execnet-receive-queue.c: items from many channels, in arrival order
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <execnet/execnet-error.h>
#include <execnet/execnet-receive-queue.h>

#include "execnet-gateway-private.h"
#include "execnet-receive-queue-private.h"
#include "execnet-util-private.h"

/**
 * ExecnetReceiveQueue:
 *
 * One queue fed by many channels, as execnet's `make_receive_queue()`:
 * [method@Execnet.ReceiveQueue.pop] returns items in the order they
 * arrived, whichever channel they came on, together with that channel.
 * Made by [method@Execnet.MultiChannel.make_receive_queue].
 *
 * ```c
 * g_autoptr(ExecnetReceiveQueue) queue =
 *   execnet_multi_channel_make_receive_queue (multi, g_variant_new_string ("end"));
 *
 * for (guint ended = 0; ended < execnet_multi_channel_get_size (multi); )
 *   {
 *     g_autoptr(ExecnetChannel) from = NULL;
 *     g_autoptr(GVariant) item = execnet_receive_queue_pop (queue, 10.0, &from, &error);
 *
 *     if (item == NULL)
 *       break;
 *     if (g_variant_is_of_type (item, G_VARIANT_TYPE_STRING) &&
 *         g_str_equal (g_variant_get_string (item, NULL), "end"))
 *       ended++;
 *     else
 *       handle (execnet_channel_get_gateway (from), item);
 *   }
 * ```
 *
 * Each channel's items are delivered to the queue by a channel callback
 * (see [method@Execnet.Channel.set_callback]), so the channels cannot be
 * received from directly any more. The callbacks run in a main context
 * private to the queue, iterated by whoever pops: popping works in any
 * thread, without a main loop, from several threads at once.
 *
 * Since: 1.0
 */

/* Design: the queue owns a GMainContext that only pop() iterates. The
 * channels' callbacks were set with that context thread-default, so their
 * dispatches run there, each appending (channel, item) to @entries. One
 * popper at a time iterates (the one that finds @iterating unset); the
 * others wait on @cond, which every iteration broadcasts when it ends. */

typedef struct {
  ExecnetChannel *channel;  /* (owned) */
  GVariant       *item;     /* (owned) */
} Entry;

struct _ExecnetReceiveQueue
{
  GObject parent_instance;

  GMainContext *context;    /* (owned) where the channels' callbacks run */

  GMutex lock;              /* guards everything below */
  GCond cond;               /* an iteration ended */
  GQueue entries;           /* (element-type Entry) (owned) */
  gboolean iterating;       /* a popper iterates @context */
};

G_DEFINE_FINAL_TYPE (ExecnetReceiveQueue, execnet_receive_queue, G_TYPE_OBJECT)

static void
entry_free (gpointer data)
{
  Entry *entry = data;

  g_object_unref (entry->channel);
  g_variant_unref (entry->item);
  g_free (entry);
}

static void
execnet_receive_queue_finalize (GObject *object)
{
  ExecnetReceiveQueue *self = EXECNET_RECEIVE_QUEUE (object);

  g_queue_clear_full (&self->entries, entry_free);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (execnet_receive_queue_parent_class)->finalize (object);
}

static void
execnet_receive_queue_class_init (ExecnetReceiveQueueClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = execnet_receive_queue_finalize;
}

static void
execnet_receive_queue_init (ExecnetReceiveQueue *self)
{
  self->context = g_main_context_new ();
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->entries);
}

/* The queue's context, iterated by a popper: one item or endmarker. The
 * queue is referenced weakly: the channel's callback data is a GWeakRef,
 * so a dropped queue does not stay alive through its channels. */
static void
on_item (ExecnetChannel *channel,
         GVariant       *item,
         gpointer        user_data)
{
  g_autoptr(ExecnetReceiveQueue) self = g_weak_ref_get (user_data);
  Entry *entry;

  if (self == NULL)
    return;

  entry = g_new (Entry, 1);
  entry->channel = g_object_ref (channel);
  entry->item = g_variant_ref (item);
  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->entries, entry);
  g_mutex_unlock (&self->lock);
}

static void
weak_ref_free (gpointer data)
{
  g_weak_ref_clear (data);
  g_free (data);
}

/* Makes a queue fed by @channels; see execnet_multi_channel_make_receive_queue(). */
ExecnetReceiveQueue *
_execnet_receive_queue_new (GPtrArray *channels,
                            GVariant  *endmarker)
{
  ExecnetReceiveQueue *self = g_object_new (EXECNET_TYPE_RECEIVE_QUEUE, NULL);

  g_main_context_push_thread_default (self->context);
  for (guint i = 0; i < channels->len; i++)
    {
      GWeakRef *ref = g_new (GWeakRef, 1);

      g_weak_ref_init (ref, self);
      execnet_channel_set_callback (g_ptr_array_index (channels, i), on_item,
                                    ref, weak_ref_free, endmarker);
    }
  g_main_context_pop_thread_default (self->context);

  return self;
}

/* The queue's context: the deadline of a pop passed. Dispatching is all
 * it takes to end the iteration; the popper destroys the source. */
static gboolean
on_timer (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/**
 * execnet_receive_queue_pop:
 * @self: a receive queue
 * @timeout: seconds to wait at most; negative waits for ever; NaN fails
 *   with %G_IO_ERROR_INVALID_ARGUMENT
 * @out_channel: (out) (optional) (transfer full): the channel the item
 *   came from
 * @error: return location for a #GError
 *
 * Takes the next item that arrived on any of the queue's channels, waiting
 * for one if none is there. When a channel ends and the queue was made with
 * an endmarker, that endmarker is popped once for the channel, after its
 * last item; without one, an ended channel simply delivers nothing more.
 * Items that have no GVariant form (see [method@Execnet.Channel.receive])
 * are skipped.
 *
 * Returns: (transfer full): the item, or %NULL with @error set to
 *   %G_IO_ERROR_TIMED_OUT when nothing arrived in time
 *
 * Since: 1.0
 */
GVariant *
execnet_receive_queue_pop (ExecnetReceiveQueue  *self,
                           gdouble               timeout,
                           ExecnetChannel      **out_channel,
                           GError              **error)
{
  gint64 deadline;
  Entry *entry = NULL;
  GVariant *item;

  g_return_val_if_fail (EXECNET_IS_RECEIVE_QUEUE (self), NULL);
  g_return_val_if_fail (out_channel == NULL || *out_channel == NULL, NULL);

  if (!_execnet_check_timeout (timeout, error))
    return NULL;
  deadline = _execnet_deadline_from_timeout (timeout);

  g_mutex_lock (&self->lock);
  for (;;)
    {
      gint64 now;

      entry = g_queue_pop_head (&self->entries);
      if (entry != NULL)
        break;

      now = g_get_monotonic_time ();
      if (deadline >= 0 && now >= deadline)
        break;

      if (!self->iterating)
        {
          GSource *timer = NULL;

          self->iterating = TRUE;
          g_mutex_unlock (&self->lock);

          /* Wakes the iteration at the deadline if nothing arrives. */
          if (deadline >= 0)
            {
              timer = g_timeout_source_new ((guint) MIN ((deadline - now + 999) / 1000, G_MAXUINT));
              g_source_set_static_name (timer, "[execnet] receive queue timeout");
              g_source_set_callback (timer, on_timer, NULL, NULL);
              g_source_attach (timer, self->context);
            }
          g_main_context_iteration (self->context, TRUE);
          if (timer != NULL)
            {
              g_source_destroy (timer);
              g_source_unref (timer);
            }

          g_mutex_lock (&self->lock);
          self->iterating = FALSE;
          g_cond_broadcast (&self->cond);
        }
      else if (deadline < 0)
        g_cond_wait (&self->cond, &self->lock);
      else
        g_cond_wait_until (&self->cond, &self->lock, deadline);
    }
  g_mutex_unlock (&self->lock);

  if (entry == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                   "nothing arrived on the receive queue within %g seconds", timeout);
      return NULL;
    }

  item = g_steal_pointer (&entry->item);
  if (out_channel != NULL)
    *out_channel = g_steal_pointer (&entry->channel);
  else
    g_clear_object (&entry->channel);
  g_free (entry);

  return item;
}
