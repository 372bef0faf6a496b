/* execnet-emitter.c: signals in the context an object was made in
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-emitter-private.h"
#include "execnet-inbox-private.h"

/* GDBusConnection's rule, which every object of ours with signals follows:
 * a signal is emitted in the main context that was thread-default when the
 * object was made, never in the thread where the event happened (usually
 * the I/O thread). An emitter belongs to one object; events queued from any
 * thread run in its context one at a time, in the order they were queued,
 * each holding a reference on the object.
 *
 * A synchronous call is a private main context iterated until an async
 * operation completes. An object made inside it belongs to the context the
 * caller had, not to that short-lived one: the sync helper records the
 * caller's context for the duration (a thread-local), and
 * _execnet_ref_caller_context() sees through it. */

struct _ExecnetEmitter
{
  gatomicrefcount ref_count;   /* the owner's, plus one while a run is queued */
  GMainContext *context;       /* (owned) */
  GThread *thread;             /* (unowned) the thread that made the owner */

  GMutex lock;                 /* guards everything below */
  GQueue events;               /* (element-type Event) (owned) */
  gboolean scheduled;          /* a run of the events is queued in the context's inbox */
};

typedef struct
{
  GObject *object;             /* (owned) */
  ExecnetEmitFunc func;
  gpointer data;               /* (owned) freed with free_data */
  GDestroyNotify free_data;
} Event;

static GPrivate caller_context;  /* (unowned) GMainContext of an outer sync call */

static void
event_free (Event *event)
{
  if (event->free_data != NULL)
    event->free_data (event->data);
  g_object_unref (event->object);
  g_free (event);
}

static void
emitter_unref (gpointer data)
{
  ExecnetEmitter *self = data;

  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_queue_clear_full (&self->events, (GDestroyNotify) event_free);
  g_main_context_unref (self->context);
  g_mutex_clear (&self->lock);
  g_free (self);
}

/* Any thread: the context a new object should emit its signals in. */
GMainContext *
_execnet_ref_caller_context (void)
{
  GMainContext *outer = g_private_get (&caller_context);

  if (outer != NULL)
    return g_main_context_ref (outer);
  return g_main_context_ref_thread_default ();
}

/* A sync call begins: objects made until the matching leave belong to the
 * caller's context. Returns what leave restores. */
GMainContext *
_execnet_caller_context_enter (GMainContext *caller)
{
  GMainContext *saved = g_private_get (&caller_context);

  if (saved == NULL)
    g_private_set (&caller_context, caller);
  return saved;
}

void
_execnet_caller_context_leave (GMainContext *saved)
{
  if (saved == NULL)
    g_private_set (&caller_context, NULL);
}

ExecnetEmitter *
_execnet_emitter_new_for_context (GMainContext *context)
{
  ExecnetEmitter *self = g_new0 (ExecnetEmitter, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->context = g_main_context_ref (context);
  self->thread = g_thread_self ();
  /* Attached here, most often in the context's own thread, rather than by
   * the first signal from the I/O thread. */
  _execnet_inbox_ensure (context);
  g_mutex_init (&self->lock);
  g_queue_init (&self->events);

  return self;
}

/* The calling thread's context, seen through a sync call. */
ExecnetEmitter *
_execnet_emitter_new (void)
{
  g_autoptr(GMainContext) context = _execnet_ref_caller_context ();

  return _execnet_emitter_new_for_context (context);
}

/* The owner is finalized: nothing is queued (every event holds a
 * reference on it). */
void
_execnet_emitter_free (ExecnetEmitter *self)
{
  if (self == NULL)
    return;

  /* A run still queued holds its own reference. */
  emitter_unref (self);
}

GMainContext *
_execnet_emitter_get_context (ExecnetEmitter *self)
{
  return self->context;
}

/* Any thread: whether the caller may emit right now, because it is the
 * thread that made the owner or the one iterating the owner's context. */
gboolean
_execnet_emitter_is_home (ExecnetEmitter *self)
{
  return g_thread_self () == self->thread || g_main_context_is_owner (self->context);
}

/* Home: runs what is queued, in order. */
static void
run_events (ExecnetEmitter *self,
            gboolean        from_inbox)
{
  for (;;)
    {
      Event *event;

      g_mutex_lock (&self->lock);
      event = g_queue_pop_head (&self->events);
      if (event == NULL && from_inbox)
        self->scheduled = FALSE;
      g_mutex_unlock (&self->lock);

      if (event == NULL)
        break;
      event->func (event->object, event->data);
      event_free (event);
    }
}

static void
run_scheduled_events (gpointer data)
{
  run_events (data, TRUE);
}

/* Any thread: runs @func (@object, @data) in the emitter's context, after
 * everything queued before. */
void
_execnet_emitter_queue (ExecnetEmitter  *self,
                        GObject         *object,
                        ExecnetEmitFunc  func,
                        gpointer         data,
                        GDestroyNotify   free_data)
{
  Event *event = g_new0 (Event, 1);
  gboolean schedule;

  event->object = g_object_ref (object);
  event->func = func;
  event->data = data;
  event->free_data = free_data;

  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->events, event);
  schedule = !self->scheduled;
  self->scheduled = TRUE;
  g_mutex_unlock (&self->lock);

  if (schedule)
    {
      g_atomic_ref_count_inc (&self->ref_count);
      _execnet_context_invoke (self->context, run_scheduled_events, self, emitter_unref);
    }
}

/* Home: runs what is queued now instead of waiting for the context. */
void
_execnet_emitter_flush (ExecnetEmitter *self)
{
  g_return_if_fail (_execnet_emitter_is_home (self));

  run_events (self, FALSE);
}
