/* execnet-channel.c: typed two-way message channels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <execnet/execnet-error.h>
#include <execnet/execnet-gateway.h>

#include "execnet-async-private.h"
#include "execnet-channel-private.h"
#include "execnet-emitter-private.h"
#include "execnet-error-private.h"
#include "execnet-gateway-private.h"
#include "execnet-inbox-private.h"
#include "execnet-io-worker-private.h"
#include "execnet-util-private.h"
#include "execnet-value-private.h"

/**
 * ExecnetChannel:
 *
 * One end of a two-way conversation with code running in a remote
 * interpreter, which sees the other end as its global `channel`.
 *
 * Items are [struct@GLib.Variant] values, mapped to and from Python values
 * as [the wire protocol](protocol.html) describes.
 * [method@Execnet.Channel.send] is safe from any thread and keeps the order
 * of the calls; items from one thread arrive in the order they were sent.
 *
 * Items that arrive are queued; [method@Execnet.Channel.receive] pops them,
 * blocking up to a timeout, from any thread and without a main loop.
 * Alternatively [method@Execnet.Channel.set_callback] has them delivered
 * to a callback in the main context of the thread that set it.
 *
 * A channel is open until either side closes it. When the remote side
 * closes it, items already queued can still be received; after them
 * receiving fails with %EXECNET_ERROR_CHANNEL_CLOSED, or with
 * %EXECNET_ERROR_REMOTE carrying the remote traceback if the remote code
 * raised, or with %EXECNET_ERROR_GATEWAY_CLOSED if the connection was lost.
 * Dropping the last reference to an open channel closes it, as in execnet.
 *
 * Threads: every method is thread-safe. [signal@Execnet.Channel::closed]
 * is emitted in the main context that was thread-default when the channel
 * was made (a channel the remote side opened belongs to its gateway's
 * context), never in the I/O thread; callbacks set with
 * [method@Execnet.Channel.set_callback] run in the context of the thread
 * that set them.
 *
 * Remote code that doubles what it receives until it gets `None`:
 *
 * ```c
 * g_autoptr(ExecnetChannel) channel =
 *   execnet_gateway_remote_exec (gw, "for x in channel: channel.send(2 * x)", &error);
 * g_autoptr(GVariant) doubled = NULL;
 *
 * execnet_channel_send (channel, g_variant_new_int64 (21), &error);
 * doubled = execnet_channel_receive (channel, 10.0, &error);  // 42
 * execnet_channel_close (channel, NULL, &error);
 * ```
 *
 * Since: 1.0
 */

struct _ExecnetChannel
{
  GObject parent_instance;

  /* Written once in _execnet_channel_new(), cleared only in finalize:
   * read without the lock. */
  ExecnetGateway *gateway;          /* (owned) */
  gint32 id;
  ExecnetEmitter *emitter;          /* (owned) signals, in the context the channel was made in */

  GMutex lock;                      /* guards everything below, except where said */
  GCond cond;                       /* signalled when an item arrives or the channel ends */
  guint cond_waiters;               /* threads waiting on cond */
  GQueue items;                     /* (element-type Item) (owned) */
  GQueue waiters;                   /* (element-type Waiter) receive_async calls */
  GQueue close_waiters;             /* (element-type Waiter) wait_close_async calls */
  GQueue sends;                     /* (element-type GTask) send_async calls waiting their turn */
  gboolean sender_running;          /* a thread is sending what is in sends */
  gboolean closed;                  /* nothing more may be sent */
  gboolean receive_closed;          /* nothing more will arrive */
  char *remote_error;               /* (owned) (nullable) the remote traceback */
  GError *end_error;                /* (owned) (nullable) the connection was lost */

  /* Written once, under the lock, by set_callback (a second call is
   * refused). callback, its data and endmarker are then read without the
   * lock by dispatches, which are scheduled only after that write, under
   * the lock. */
  gboolean has_callback;
  ExecnetChannelCallback callback;
  gpointer callback_data;
  GDestroyNotify callback_notify;
  GVariant *endmarker;              /* (owned) (nullable) */
  GMainContext *callback_context;   /* (owned) (nullable) */
  gboolean dispatch_queued;         /* a dispatch is queued in callback_context's inbox */
  gboolean callback_finished;       /* the endmarker (if any) was delivered */
};

typedef struct
{
  GTask *task;                      /* (owned) */
  GCancellable *cancellable;        /* (unowned) the task's or the deadline's */
  GSource *cancel_source;           /* (owned) (nullable) */
  ExecnetDeadline *deadline;        /* (owned) (nullable) wait_close_async's timeout */
} Waiter;

/* One arrival: a value, or the error of a value that arrived intact but
 * has no GVariant form (it fails that one receive, not the channel). */
typedef struct
{
  GVariant *value;                  /* (owned) (nullable) */
  GError *error;                    /* (owned) (nullable) */
  gsize size;                       /* its bytes on the wire */
  ExecnetGateway *gateway;          /* (unowned) the channel's, which outlives its items */
} Item;

/* Frees @item; its bytes count as consumed, for the gateway's
 * backpressure. */
static void
item_free (gpointer data)
{
  Item *item = data;

  if (item->size > 0)
    _execnet_gateway_account (item->gateway, -(gssize) item->size);
  g_clear_pointer (&item->value, g_variant_unref);
  g_clear_error (&item->error);
  g_free (item);
}

/* Hands out @item's value, or sets @error from it; frees @item. */
static GVariant *
item_take (Item    *item,
           GError **error)
{
  GVariant *value = g_steal_pointer (&item->value);

  if (value == NULL)
    g_propagate_error (error, g_steal_pointer (&item->error));
  item_free (item);
  return value;
}

static void
return_item (GTask *task,
             Item  *item)
{
  GError *error = NULL;
  GVariant *value = item_take (item, &error);

  if (value != NULL)
    _execnet_task_return_pointer (task, value, (GDestroyNotify) g_variant_unref);
  else
    _execnet_task_return_error (task, error);
}

G_DEFINE_FINAL_TYPE (ExecnetChannel, execnet_channel, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_ID,
  PROP_GATEWAY,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* Any thread. A channel the remote side opened is made by the thread that
 * reads (the I/O thread or a leading receive) and belongs to the context
 * its gateway was made in. */
ExecnetChannel *
_execnet_channel_new (ExecnetGateway *gateway,
                      gint32          id)
{
  ExecnetChannel *self = g_object_new (EXECNET_TYPE_CHANNEL, NULL);

  self->gateway = g_object_ref (gateway);
  self->id = id;
  if (_execnet_io_worker_is_current () || _execnet_io_worker_is_stand_in ())
    self->emitter = _execnet_emitter_new_for_context (_execnet_gateway_get_context (gateway));
  else
    self->emitter = _execnet_emitter_new ();

  return self;
}

static void
execnet_channel_init (ExecnetChannel *self)
{
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_queue_init (&self->items);
  g_queue_init (&self->waiters);
  g_queue_init (&self->close_waiters);
  g_queue_init (&self->sends);
}

static void
execnet_channel_dispose (GObject *object)
{
  ExecnetChannel *self = EXECNET_CHANNEL (object);
  gboolean send_close;
  gboolean has_callback;

  /* The last reference to a channel that may still receive is gone: tell
   * the remote side, as execnet does when a channel is collected. */
  g_mutex_lock (&self->lock);
  send_close = self->gateway != NULL && !self->closed && !self->receive_closed;
  has_callback = self->has_callback;
  self->closed = TRUE;
  self->receive_closed = TRUE;
  g_mutex_unlock (&self->lock);

  if (self->gateway != NULL)
    {
      if (send_close)
        _execnet_gateway_send_value (self->gateway,
                                     has_callback ? EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE
                                                  : EXECNET_MESSAGE_CHANNEL_CLOSE,
                                     self->id, NULL, NULL);
      _execnet_gateway_forget_channel (self->gateway, self->id);
    }

  G_OBJECT_CLASS (execnet_channel_parent_class)->dispose (object);
}

static void
execnet_channel_finalize (GObject *object)
{
  ExecnetChannel *self = EXECNET_CHANNEL (object);

  g_assert (g_queue_is_empty (&self->waiters));
  g_assert (g_queue_is_empty (&self->close_waiters));
  g_assert (g_queue_is_empty (&self->sends));
  g_assert (!self->dispatch_queued);

  if (self->callback_notify != NULL)
    self->callback_notify (self->callback_data);
  g_clear_pointer (&self->endmarker, g_variant_unref);
  g_clear_pointer (&self->callback_context, g_main_context_unref);
  g_queue_clear_full (&self->items, item_free);
  g_clear_pointer (&self->remote_error, g_free);
  g_clear_error (&self->end_error);
  g_clear_pointer (&self->emitter, _execnet_emitter_free);
  g_clear_object (&self->gateway);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);

  G_OBJECT_CLASS (execnet_channel_parent_class)->finalize (object);
}

static void
execnet_channel_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  ExecnetChannel *self = EXECNET_CHANNEL (object);

  switch (prop_id)
    {
    case PROP_ID:
      g_value_set_int (value, self->id);
      break;
    case PROP_GATEWAY:
      g_value_set_object (value, self->gateway);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
execnet_channel_class_init (ExecnetChannelClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = execnet_channel_dispose;
  object_class->finalize = execnet_channel_finalize;
  object_class->get_property = execnet_channel_get_property;

  /**
   * ExecnetChannel:id:
   *
   * The channel's number on its gateway: odd when this side opened it,
   * even when the remote side did.
   *
   * Since: 1.0
   */
  properties[PROP_ID] =
    g_param_spec_int ("id", NULL, NULL, G_MININT32, G_MAXINT32, 0,
                      G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExecnetChannel:gateway:
   *
   * The gateway the channel belongs to.
   *
   * Since: 1.0
   */
  properties[PROP_GATEWAY] =
    g_param_spec_object ("gateway", NULL, NULL, EXECNET_TYPE_GATEWAY,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * ExecnetChannel::closed:
   * @channel: the channel
   * @reason: (nullable): why it ended: %EXECNET_ERROR_REMOTE with the
   *   remote traceback, or %EXECNET_ERROR_GATEWAY_CLOSED; %NULL when it
   *   was closed cleanly by either side
   *
   * Nothing more will arrive on the channel. Items that arrived before can
   * still be received. Emitted once, in the main context that was
   * thread-default when the channel was made (for a channel the remote
   * side opened, its gateway's), never in the I/O thread. When nothing is
   * connected at the moment the channel ends, nothing is emitted.
   *
   * Since: 1.0
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_ERROR);
}

/* The channel's context: emits ::closed. */
static void
emit_closed (GObject  *object,
             gpointer  data)
{
  g_signal_emit (object, signals[SIGNAL_CLOSED], 0, (GError *) data);
}

static void
error_free (gpointer data)
{
  if (data != NULL)
    g_error_free (data);
}

/* Called with the lock held, once the channel has ended: the error a
 * receiver gets. */
static GError *
end_error_unlocked (ExecnetChannel *self)
{
  if (self->remote_error != NULL)
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_REMOTE, "%s", self->remote_error);
  if (self->end_error != NULL)
    return g_error_copy (self->end_error);
  return g_error_new (EXECNET_ERROR, EXECNET_ERROR_CHANNEL_CLOSED,
                      "channel %d is closed: nothing more will arrive on it", self->id);
}

static void dispatch_callback (gpointer data);

/* Called with the lock held: have the callback context deliver what is
 * queued, and the endmarker once the channel has ended. */
static void
schedule_dispatch_unlocked (ExecnetChannel *self)
{
  if (!self->has_callback || self->dispatch_queued || self->callback_finished)
    return;
  if (g_queue_is_empty (&self->items) && !self->receive_closed)
    return;

  self->dispatch_queued = TRUE;
  _execnet_context_invoke (self->callback_context, dispatch_callback,
                           g_object_ref (self), g_object_unref);
}

/* Callback context: delivers queued items in order, then the endmarker. */
static void
dispatch_callback (gpointer data)
{
  ExecnetChannel *self = data;
  gboolean finished = FALSE;

  for (;;)
    {
      g_autoptr(GVariant) value = NULL;
      Item *item;

      g_mutex_lock (&self->lock);
      item = g_queue_pop_head (&self->items);
      if (item == NULL)
        {
          self->dispatch_queued = FALSE;
          if (self->receive_closed && !self->callback_finished)
            {
              self->callback_finished = TRUE;
              finished = TRUE;
              value = self->endmarker != NULL ? g_variant_ref (self->endmarker) : NULL;
            }
          g_mutex_unlock (&self->lock);

          if (value != NULL)
            self->callback (self, value, self->callback_data);
          break;
        }
      g_mutex_unlock (&self->lock);

      /* A callback has no way to take an error: an item without a GVariant
       * form is skipped. */
      value = item_take (item, NULL);
      if (value != NULL)
        self->callback (self, value, self->callback_data);
    }

  if (finished && self->gateway != NULL)
    _execnet_gateway_hold_channel (self->gateway, self, FALSE);
}

/* Called with the lock held; the caller completes the returned waiters'
 * tasks after dropping the lock. */
static GList *
take_waiters_unlocked (ExecnetChannel *self)
{
  GList *waiters = g_list_concat (self->waiters.head, self->close_waiters.head);

  g_queue_init (&self->waiters);
  g_queue_init (&self->close_waiters);
  return waiters;
}

static void
waiter_free (Waiter *waiter)
{
  g_clear_pointer (&waiter->cancel_source, _execnet_cancel_source_free);
  g_clear_pointer (&waiter->deadline, _execnet_deadline_free);
  g_object_unref (waiter->task);
  g_free (waiter);
}

static void
fail_waiters (ExecnetChannel *self,
              GList          *waiters)
{
  for (GList *l = waiters; l != NULL; l = l->next)
    {
      Waiter *waiter = l->data;
      GError *error = NULL;

      g_mutex_lock (&self->lock);
      /* A receive fails at the end; a wait for the close fails only if
       * the end was not clean. */
      if (waiter->deadline == NULL || self->remote_error != NULL || self->end_error != NULL)
        error = end_error_unlocked (self);
      g_mutex_unlock (&self->lock);
      if (error != NULL)
        _execnet_task_return_error (waiter->task, error);
      else
        _execnet_task_return_boolean (waiter->task, TRUE);
      waiter_free (waiter);
    }
  g_list_free (waiters);
}

/* The reading thread: one item arrived; exactly one of @value and @error
 * is set; @size is what it took on the wire. */
static void
deliver (ExecnetChannel *self,
         GVariant       *value,
         GError         *error,
         gsize           size)
{
  Item *item = g_new0 (Item, 1);
  Waiter *waiter = NULL;

  item->value = value;
  item->error = error;
  item->size = size;
  item->gateway = self->gateway;
  _execnet_gateway_account (self->gateway, size);

  g_mutex_lock (&self->lock);
  if (self->receive_closed)
    {
      g_mutex_unlock (&self->lock);
      item_free (item);
      return;
    }
  if (!self->has_callback)
    waiter = g_queue_pop_head (&self->waiters);
  if (waiter == NULL)
    {
      g_queue_push_tail (&self->items, item);
      /* A leading receive finds it without: a futex call saved. */
      if (self->cond_waiters > 0)
        g_cond_broadcast (&self->cond);
      schedule_dispatch_unlocked (self);
    }
  g_mutex_unlock (&self->lock);

  if (waiter != NULL)
    {
      return_item (waiter->task, item);
      waiter_free (waiter);
    }
}

/* The reading thread: one item arrived. @item (transfer full) */
void
_execnet_channel_deliver (ExecnetChannel *self,
                          GVariant       *item,
                          gsize           size)
{
  deliver (self, item, NULL, size);
}

/* The reading thread: an item arrived that cannot be represented. @error (transfer full) */
void
_execnet_channel_deliver_error (ExecnetChannel *self,
                                GError         *error)
{
  deliver (self, NULL, error, 0);
}

/* Called with the lock held: the channel ends for receiving; ::closed
 * follows in the channel's context. */
static GList *
end_unlocked (ExecnetChannel *self)
{
  if (g_signal_has_handler_pending (self, signals[SIGNAL_CLOSED], 0, TRUE))
    {
      GError *reason = NULL;

      if (self->remote_error != NULL || self->end_error != NULL)
        reason = end_error_unlocked (self);
      _execnet_emitter_queue (self->emitter, G_OBJECT (self), emit_closed, reason, error_free);
    }

  self->receive_closed = TRUE;
  g_cond_broadcast (&self->cond);
  schedule_dispatch_unlocked (self);
  return take_waiters_unlocked (self);
}

/* The reading thread: CHANNEL_CLOSE, CHANNEL_CLOSE_ERROR or CHANNEL_LAST_MESSAGE. */
void
_execnet_channel_remote_closed (ExecnetChannel *self,
                                const char     *error_text,
                                gboolean        send_only)
{
  GList *waiters = NULL;

  g_mutex_lock (&self->lock);
  if (!self->receive_closed)
    {
      if (!send_only)
        self->closed = TRUE;
      if (error_text != NULL && self->remote_error == NULL)
        self->remote_error = execnet_error_escape_text (error_text, -1, EXECNET_REMOTE_ERROR_MAX);
      waiters = end_unlocked (self);
    }
  g_mutex_unlock (&self->lock);

  fail_waiters (self, waiters);
}

/* I/O thread: the gateway's connection is gone. */
void
_execnet_channel_connection_lost (ExecnetChannel *self,
                                  const GError   *error)
{
  GList *waiters = NULL;

  g_mutex_lock (&self->lock);
  self->closed = TRUE;
  if (!self->receive_closed)
    {
      if (self->end_error == NULL)
        self->end_error = g_error_copy (error);
      waiters = end_unlocked (self);
    }
  g_mutex_unlock (&self->lock);

  fail_waiters (self, waiters);
}

/**
 * execnet_channel_send:
 * @self: a channel
 * @item: (nullable): the item; %NULL sends Python's `None`. A floating
 *   reference is sunk.
 * @error: return location for a #GError
 *
 * Sends @item to the remote side. Thread-safe; the order of calls is kept.
 * Blocks only while the gateway's write queue is full.
 *
 * Fails with %EXECNET_ERROR_CHANNEL_CLOSED when the channel is closed,
 * %EXECNET_ERROR_UNSUPPORTED_VALUE when @item has no Python form and
 * %EXECNET_ERROR_GATEWAY_CLOSED when the connection is gone.
 *
 * Returns: %TRUE if the item was queued for sending
 *
 * Since: 1.0
 */
gboolean
execnet_channel_send (ExecnetChannel  *self,
                      GVariant        *item,
                      GError         **error)
{
  g_autoptr(GVariant) value = NULL;
  gboolean closed;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  value = item != NULL ? g_variant_ref_sink (item)
                       : g_variant_ref_sink (g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL));

  g_mutex_lock (&self->lock);
  closed = self->closed;
  g_mutex_unlock (&self->lock);

  if (closed)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_CHANNEL_CLOSED,
                   "cannot send to channel %d: it is closed", self->id);
      return FALSE;
    }

  return _execnet_gateway_send_value (self->gateway, EXECNET_MESSAGE_CHANNEL_DATA,
                                      self->id, value, error);
}

static gboolean
check_no_callback_unlocked (ExecnetChannel  *self,
                            GError         **error)
{
  if (self->has_callback)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                   "cannot receive from channel %d: it delivers to a callback", self->id);
      return FALSE;
    }
  return TRUE;
}

/* A leading receive: whether its item is there, or none will come. */
static gboolean
has_arrived (gpointer data)
{
  ExecnetChannel *self = data;
  gboolean arrived;

  g_mutex_lock (&self->lock);
  arrived = !g_queue_is_empty (&self->items) || self->receive_closed;
  g_mutex_unlock (&self->lock);

  return arrived;
}

/**
 * execnet_channel_receive:
 * @self: a channel
 * @timeout: seconds to wait at most; negative waits for ever; NaN fails
 *   with %G_IO_ERROR_INVALID_ARGUMENT
 * @error: return location for a #GError
 *
 * Takes the next item that arrived, waiting for one if needed. Usable from
 * any thread, without a main loop.
 *
 * Fails with %G_IO_ERROR_TIMED_OUT when nothing arrived in time, and once
 * the channel has ended with %EXECNET_ERROR_CHANNEL_CLOSED,
 * %EXECNET_ERROR_REMOTE (the message is the remote traceback) or
 * %EXECNET_ERROR_GATEWAY_CLOSED.
 *
 * Returns: (transfer full): the item, or %NULL on error
 *
 * Since: 1.0
 */
GVariant *
execnet_channel_receive (ExecnetChannel  *self,
                         gdouble          timeout,
                         GError         **error)
{
  gint64 deadline = _execnet_deadline_from_timeout (timeout);
  GVariant *value = NULL;
  gboolean lead = TRUE;
  Item *item;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!_execnet_check_timeout (timeout, error))
    return NULL;

  g_mutex_lock (&self->lock);
  if (!check_no_callback_unlocked (self, error))
    {
      g_mutex_unlock (&self->lock);
      return NULL;
    }

  while (g_queue_is_empty (&self->items) && !self->receive_closed)
    {
      gboolean in_time;

      if (deadline >= 0 && g_get_monotonic_time () >= deadline)
        in_time = FALSE;
      else if (lead)
        {
          /* Read the stream here rather than wait for the I/O thread to
           * hand the item over: no thread hop in a round trip. */
          g_mutex_unlock (&self->lock);
          lead = _execnet_gateway_lead (self->gateway, has_arrived, self, deadline);
          g_mutex_lock (&self->lock);
          continue;
        }
      else
        {
          self->cond_waiters++;
          if (deadline < 0)
            {
              g_cond_wait (&self->cond, &self->lock);
              in_time = TRUE;
            }
          else
            in_time = g_cond_wait_until (&self->cond, &self->lock, deadline);
          self->cond_waiters--;
          /* Someone else led or the I/O thread delivered: try to lead next time. */
          lead = TRUE;
        }

      if (!in_time && g_queue_is_empty (&self->items) && !self->receive_closed)
        {
          g_mutex_unlock (&self->lock);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       "nothing arrived on channel %d within %g seconds", self->id, timeout);
          return NULL;
        }
    }

  item = g_queue_pop_head (&self->items);
  if (item == NULL)
    g_propagate_error (error, end_error_unlocked (self));
  g_mutex_unlock (&self->lock);

  if (item != NULL)
    value = item_take (item, error);

  return value;
}

static Waiter *waiter_new (GTask        *task,
                           GCancellable *cancellable,
                           gdouble      *timeout);

/* The waiter's context: its cancellable fired. */
static gboolean
on_receive_cancelled (GCancellable *cancellable,
                      gpointer      user_data)
{
  GTask *task = user_data;
  ExecnetChannel *self = g_task_get_source_object (task);
  Waiter *found = NULL;

  g_mutex_lock (&self->lock);
  for (GQueue *queue = &self->waiters; queue != NULL && found == NULL;
       queue = queue == &self->waiters ? &self->close_waiters : NULL)
    for (GList *l = queue->head; l != NULL; l = l->next)
      {
        Waiter *waiter = l->data;

        if (waiter->task == task)
          {
            found = waiter;
            g_queue_delete_link (queue, l);
            break;
          }
      }
  g_mutex_unlock (&self->lock);

  if (found != NULL)
    {
      if (found->deadline != NULL && _execnet_deadline_timed_out (found->deadline))
        _execnet_task_return_new_error (found->task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                        "channel %d did not close in time", self->id);
      else
        _execnet_task_return_new_error (found->task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                        "the operation was cancelled");
      waiter_free (found);
    }
  return G_SOURCE_REMOVE;
}

/**
 * execnet_channel_receive_async:
 * @self: a channel
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when an item arrived or the channel ended
 * @user_data: data for @callback
 *
 * Takes the next item asynchronously. @callback runs in the thread-default
 * main context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_channel_receive_async (ExecnetChannel      *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  Item *item = NULL;
  Waiter *waiter;

  g_return_if_fail (EXECNET_IS_CHANNEL (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_channel_receive_async);

  if (g_task_return_error_if_cancelled (task))
    return;

  waiter = waiter_new (task, cancellable, NULL);

  /* Looking and queueing under one hold of the lock: an item or the end
   * arriving in between would otherwise find no waiter and leave this
   * one waiting for ever. */
  g_mutex_lock (&self->lock);
  if (!check_no_callback_unlocked (self, &error))
    ;
  else if ((item = g_queue_pop_head (&self->items)) != NULL)
    ;
  else if (self->receive_closed)
    error = end_error_unlocked (self);
  else
    g_queue_push_tail (&self->waiters, g_steal_pointer (&waiter));
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&waiter, waiter_free);
  if (error != NULL)
    _execnet_task_return_error (task, error);
  else if (item != NULL)
    return_item (task, item);
}

/* Any thread: a waiter for @task, to be queued until the channel delivers
 * or ends, or its cancellable (or @timeout, when given) fires. */
static Waiter *
waiter_new (GTask        *task,
            GCancellable *cancellable,
            gdouble      *timeout)
{
  Waiter *waiter = g_new0 (Waiter, 1);

  waiter->task = g_object_ref (task);
  if (timeout != NULL)
    {
      waiter->deadline = _execnet_deadline_new (*timeout, cancellable);
      waiter->cancellable = _execnet_deadline_get_cancellable (waiter->deadline);
    }
  else
    waiter->cancellable = cancellable;
  /* The source runs in this thread's context, so not before we return;
   * it only looks the task up, so it needs no reference of its own. */
  waiter->cancel_source = _execnet_cancel_source_new (waiter->cancellable,
                                                      G_SOURCE_FUNC (on_receive_cancelled),
                                                      waiter->task, NULL);
  return waiter;
}

/**
 * execnet_channel_receive_finish:
 * @self: a channel
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_channel_receive_async().
 *
 * Returns: (transfer full): the item, or %NULL on error
 *
 * Since: 1.0
 */
GVariant *
execnet_channel_receive_finish (ExecnetChannel  *self,
                                GAsyncResult    *result,
                                GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * execnet_channel_next:
 * @self: a channel
 * @error: return location for a #GError
 *
 * The iteration helper, like Python's `for item in channel`: waits for the
 * next item; at a clean end returns %NULL *without* setting @error, so
 *
 * |[<!-- language="C" -->
 * while ((item = execnet_channel_next (channel, &error)) != NULL)
 *   handle (item);
 * if (error != NULL)
 *   ...
 * ]|
 *
 * visits every item and then tells a clean end from a remote error.
 *
 * Returns: (transfer full) (nullable): the next item, or %NULL at the end
 *
 * Since: 1.0
 */
GVariant *
execnet_channel_next (ExecnetChannel  *self,
                      GError         **error)
{
  g_autoptr(GError) local_error = NULL;
  GVariant *item;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), NULL);

  item = execnet_channel_receive (self, -1, &local_error);
  if (item == NULL &&
      !g_error_matches (local_error, EXECNET_ERROR, EXECNET_ERROR_CHANNEL_CLOSED))
    g_propagate_error (error, g_steal_pointer (&local_error));

  return item;
}

/**
 * execnet_channel_close:
 * @self: a channel
 * @error_text: (nullable): if given, the remote side sees the channel closed
 *   with this error (its `receive` raises `channel.RemoteError`)
 * @error: return location for a #GError
 *
 * Closes the channel: nothing more can be sent and nothing more arrives.
 * Items that arrived before can still be received, as in execnet; after
 * them, receiving fails with %EXECNET_ERROR_CHANNEL_CLOSED. Closing a closed
 * channel does nothing.
 *
 * Returns: %TRUE (the channel is closed even if the gateway is gone)
 *
 * Since: 1.0
 */
gboolean
execnet_channel_close (ExecnetChannel  *self,
                       const char      *error_text,
                       GError         **error)
{
  g_autoptr(GVariant) text = NULL;
  gboolean tell_remote;
  GList *waiters;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), FALSE);

  g_mutex_lock (&self->lock);
  if (self->closed)
    {
      g_mutex_unlock (&self->lock);
      return TRUE;
    }
  tell_remote = !self->receive_closed;
  self->closed = TRUE;
  waiters = end_unlocked (self);
  g_mutex_unlock (&self->lock);

  fail_waiters (self, waiters);
  /* A receive of this channel that reads the stream sees the end. */
  _execnet_gateway_wake_leader (self->gateway);
  _execnet_gateway_forget_channel (self->gateway, self->id);

  if (tell_remote)
    {
      if (error_text != NULL)
        text = g_variant_ref_sink (g_variant_new_string (error_text));
      /* If the connection is gone the channel is closed all the same. */
      _execnet_gateway_send_value (self->gateway,
                                   text != NULL ? EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR
                                                : EXECNET_MESSAGE_CHANNEL_CLOSE,
                                   self->id, text, NULL);
    }

  return TRUE;
}

/**
 * execnet_channel_wait_close:
 * @self: a channel
 * @timeout: seconds to wait at most; negative waits for ever; NaN fails
 *   with %G_IO_ERROR_INVALID_ARGUMENT
 * @error: return location for a #GError
 *
 * Waits until the channel is closed for receiving: by either side, or
 * because the connection ended.
 *
 * Fails with %G_IO_ERROR_TIMED_OUT, with %EXECNET_ERROR_REMOTE if the
 * remote side closed it with an error (the remote traceback), or with
 * %EXECNET_ERROR_GATEWAY_CLOSED if the connection was lost.
 *
 * Returns: %TRUE when the channel closed cleanly
 *
 * Since: 1.0
 */
gboolean
execnet_channel_wait_close (ExecnetChannel  *self,
                            gdouble          timeout,
                            GError         **error)
{
  gint64 deadline = _execnet_deadline_from_timeout (timeout);
  gboolean ok = TRUE;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), FALSE);

  if (!_execnet_check_timeout (timeout, error))
    return FALSE;

  g_mutex_lock (&self->lock);
  while (!self->receive_closed)
    {
      gboolean in_time = TRUE;

      self->cond_waiters++;
      if (deadline < 0)
        g_cond_wait (&self->cond, &self->lock);
      else
        in_time = g_cond_wait_until (&self->cond, &self->lock, deadline);
      self->cond_waiters--;
      if (!in_time && !self->receive_closed)
        {
          g_mutex_unlock (&self->lock);
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                       "channel %d did not close within %g seconds", self->id, timeout);
          return FALSE;
        }
    }
  if (self->remote_error != NULL || self->end_error != NULL)
    {
      g_propagate_error (error, end_error_unlocked (self));
      ok = FALSE;
    }
  g_mutex_unlock (&self->lock);

  return ok;
}

/**
 * execnet_channel_wait_close_async:
 * @self: a channel
 * @timeout: seconds to wait at most; negative waits for ever
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the channel closed, the timeout
 *   passed or @cancellable was cancelled
 * @user_data: data for @callback
 *
 * Waits asynchronously until the channel is closed for receiving, as
 * [method@Execnet.Channel.wait_close] does. @callback runs in the
 * thread-default main context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_channel_wait_close_async (ExecnetChannel      *self,
                                  gdouble              timeout,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  gboolean ended;
  Waiter *waiter;

  g_return_if_fail (EXECNET_IS_CHANNEL (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_channel_wait_close_async);

  if (!_execnet_check_timeout (timeout, &error))
    {
      _execnet_task_return_error (task, error);
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  waiter = waiter_new (task, cancellable, &timeout);

  /* Looking and queueing under one hold of the lock, as in receive_async. */
  g_mutex_lock (&self->lock);
  ended = self->receive_closed;
  if (ended && (self->remote_error != NULL || self->end_error != NULL))
    error = end_error_unlocked (self);
  if (!ended)
    g_queue_push_tail (&self->close_waiters, g_steal_pointer (&waiter));
  g_mutex_unlock (&self->lock);

  g_clear_pointer (&waiter, waiter_free);
  if (error != NULL)
    _execnet_task_return_error (task, error);
  else if (ended)
    _execnet_task_return_boolean (task, TRUE);
}

/**
 * execnet_channel_wait_close_finish:
 * @self: a channel
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_channel_wait_close_async().
 *
 * Returns: %TRUE when the channel closed cleanly
 *
 * Since: 1.0
 */
gboolean
execnet_channel_wait_close_finish (ExecnetChannel  *self,
                                   GAsyncResult    *result,
                                   GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* A worker thread: sends what send_async queued, in order, blocking while
 * the gateway's write queue is full. */
static void
run_sends (GTask        *sender,
           gpointer      source,
           gpointer      data,
           GCancellable *unused)
{
  ExecnetChannel *self = source;

  for (;;)
    {
      g_autoptr(GTask) task = NULL;
      GError *error = NULL;

      g_mutex_lock (&self->lock);
      task = g_queue_pop_head (&self->sends);
      if (task == NULL)
        self->sender_running = FALSE;
      g_mutex_unlock (&self->lock);

      if (task == NULL)
        break;
      if (g_task_return_error_if_cancelled (task))
        continue;
      if (execnet_channel_send (self, g_task_get_task_data (task), &error))
        _execnet_task_return_boolean (task, TRUE);
      else
        _execnet_task_return_error (task, error);
    }

  g_task_return_boolean (sender, TRUE);
}

/**
 * execnet_channel_send_async:
 * @self: a channel
 * @item: (nullable): the item; %NULL sends Python's `None`. A floating
 *   reference is sunk.
 * @cancellable: (nullable): a #GCancellable; cancelling it withdraws the
 *   item if it is still waiting for room
 * @callback: (scope async): called when the item was queued for sending
 * @user_data: data for @callback
 *
 * Sends @item as [method@Execnet.Channel.send] does, without blocking:
 * when the gateway's write queue has room, the item is queued at once;
 * only under backpressure does it wait, in a worker thread. Items of
 * successive send_async() calls keep their order. @callback runs in the
 * thread-default main context of the calling thread.
 *
 * Since: 1.0
 */
void
execnet_channel_send_async (ExecnetChannel      *self,
                            GVariant            *item,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GVariant *value;
  gboolean queued = FALSE, start = FALSE;
  GError *error = NULL;

  g_return_if_fail (EXECNET_IS_CHANNEL (self));

  value = item != NULL ? g_variant_ref_sink (item)
                       : g_variant_ref_sink (g_variant_new_maybe (G_VARIANT_TYPE_VARIANT, NULL));
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, execnet_channel_send_async);
  g_task_set_task_data (task, value, (GDestroyNotify) g_variant_unref);

  if (g_task_return_error_if_cancelled (task))
    return;

  g_mutex_lock (&self->lock);
  if (self->sender_running || _execnet_gateway_is_congested (self->gateway))
    {
      g_queue_push_tail (&self->sends, g_object_ref (task));
      queued = TRUE;
      start = !self->sender_running;
      self->sender_running = TRUE;
    }
  g_mutex_unlock (&self->lock);

  if (start)
    {
      g_autoptr(GTask) sender = g_task_new (self, NULL, NULL, NULL);

      g_task_set_source_tag (sender, run_sends);
      g_task_run_in_thread (sender, run_sends);
    }
  if (queued)
    return;

  if (execnet_channel_send (self, value, &error))
    _execnet_task_return_boolean (task, TRUE);
  else
    _execnet_task_return_error (task, error);
}

/**
 * execnet_channel_send_finish:
 * @self: a channel
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_channel_send_async().
 *
 * Returns: %TRUE if the item was queued for sending
 *
 * Since: 1.0
 */
gboolean
execnet_channel_send_finish (ExecnetChannel  *self,
                             GAsyncResult    *result,
                             GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * execnet_channel_is_closed:
 * @self: a channel
 *
 * Whether nothing more can be sent on the channel: it was closed by either side or its gateway is gone.
 *
 * Returns: whether the channel is closed for sending
 *
 * Since: 1.0
 */
gboolean
execnet_channel_is_closed (ExecnetChannel *self)
{
  gboolean closed;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), TRUE);

  g_mutex_lock (&self->lock);
  closed = self->closed;
  g_mutex_unlock (&self->lock);

  return closed;
}

/**
 * execnet_channel_get_id:
 * @self: a channel
 *
 * Gets the channel's number on its gateway: odd when this side opened it, even when the remote side did.
 *
 * Returns: the channel's number on its gateway
 *
 * Since: 1.0
 */
gint
execnet_channel_get_id (ExecnetChannel *self)
{
  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), 0);

  return self->id;
}

/**
 * execnet_channel_get_gateway:
 * @self: a channel
 *
 * Gets the gateway the channel belongs to.
 *
 * Returns: (transfer none): the gateway the channel belongs to
 *
 * Since: 1.0
 */
ExecnetGateway *
execnet_channel_get_gateway (ExecnetChannel *self)
{
  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), NULL);

  return self->gateway;
}

/**
 * execnet_channel_set_callback:
 * @self: a channel
 * @callback: (scope notified) (closure user_data): called for each item
 * @user_data: data for @callback
 * @notify: (nullable): frees @user_data when the callback is done
 * @endmarker: (nullable): passed to @callback once the channel has ended;
 *   %NULL for no endmarker. A floating reference is sunk.
 *
 * Delivers items to @callback instead of queueing them for receive. Items
 * already queued are delivered first. The callback runs in the
 * thread-default main context of the calling thread, which must be iterated.
 * The gateway keeps the channel alive until the end has been delivered.
 * A channel takes one callback, once.
 *
 * Since: 1.0
 */
void
execnet_channel_set_callback (ExecnetChannel         *self,
                              ExecnetChannelCallback  callback,
                              gpointer                user_data,
                              GDestroyNotify          notify,
                              GVariant               *endmarker)
{
  g_return_if_fail (EXECNET_IS_CHANNEL (self));
  g_return_if_fail (callback != NULL);

  g_mutex_lock (&self->lock);
  if (self->has_callback)
    {
      g_mutex_unlock (&self->lock);
      g_critical ("channel %d has a callback already", self->id);
      return;
    }
  self->has_callback = TRUE;
  self->callback = callback;
  self->callback_data = user_data;
  self->callback_notify = notify;
  self->endmarker = endmarker != NULL ? g_variant_ref_sink (endmarker) : NULL;
  self->callback_context = g_main_context_ref_thread_default ();
  schedule_dispatch_unlocked (self);
  g_mutex_unlock (&self->lock);

  _execnet_gateway_hold_channel (self->gateway, self, TRUE);
}

/**
 * execnet_channel_to_value:
 * @self: a channel
 *
 * Makes a value that refers to this channel, to send over another channel
 * of the same gateway: the remote code receives a channel object.
 *
 * Returns: (transfer floating): an object path value
 *
 * Since: 1.0
 */
GVariant *
execnet_channel_to_value (ExecnetChannel *self)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), NULL);

  path = _execnet_channel_path_new (self->id);
  return g_variant_new_object_path (path);
}

/**
 * execnet_channel_to_string:
 * @self: a channel
 *
 * Describes the channel as execnet does.
 *
 * Returns: (transfer full): a description like `<Channel id=1 open>`
 *
 * Since: 1.0
 */
char *
execnet_channel_to_string (ExecnetChannel *self)
{
  gboolean closed;

  g_return_val_if_fail (EXECNET_IS_CHANNEL (self), NULL);

  closed = execnet_channel_is_closed (self);
  return g_strdup_printf ("<Channel id=%d %s>", self->id, closed ? "closed" : "open");
}
