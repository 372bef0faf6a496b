/* execnet-async.c: timeouts for asynchronous calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-async-private.h"

/* The async forms of calls that take a timeout (join, wait_close,
 * terminate) wait on one cancellable only: a deadline's, which is
 * cancelled when the caller's cancellable is, or when the timeout passes.
 * The operation then fails with G_IO_ERROR_CANCELLED, which the caller
 * turns into G_IO_ERROR_TIMED_OUT if _execnet_deadline_timed_out() says
 * so. The timer runs in the thread-default main context of the thread
 * that made the deadline: the caller's. */
struct _ExecnetDeadline
{
  GCancellable *cancellable;   /* (owned) */
  GCancellable *parent;        /* (owned) (nullable) */
  gulong parent_id;
  GSource *timer;              /* (owned) (nullable) */
  gint timed_out;              /* atomic */
};

static void
on_parent_cancelled (GCancellable *parent,
                     gpointer      data)
{
  /* Any thread */
  g_cancellable_cancel (data);
}

static gboolean
on_timer (gpointer data)
{
  ExecnetDeadline *self = data;

  g_atomic_int_set (&self->timed_out, TRUE);
  g_cancellable_cancel (self->cancellable);
  return G_SOURCE_REMOVE;
}

/* @timeout: seconds; negative waits for ever. */
ExecnetDeadline *
_execnet_deadline_new (gdouble       timeout,
                       GCancellable *parent)
{
  ExecnetDeadline *self = g_new0 (ExecnetDeadline, 1);

  self->cancellable = g_cancellable_new ();
  if (parent != NULL)
    {
      self->parent = g_object_ref (parent);
      self->parent_id = g_cancellable_connect (parent, G_CALLBACK (on_parent_cancelled),
                                               self->cancellable, NULL);
    }
  if (timeout >= 0)
    {
      self->timer = g_timeout_source_new ((guint) MIN (timeout * 1000.0, (gdouble) G_MAXUINT));
      g_source_set_static_name (self->timer, "[execnet] timeout");
      g_source_set_callback (self->timer, on_timer, self, NULL);
      g_source_attach (self->timer, g_main_context_get_thread_default ());
    }

  return self;
}

GCancellable *
_execnet_deadline_get_cancellable (ExecnetDeadline *self)
{
  return self->cancellable;
}

gboolean
_execnet_deadline_timed_out (ExecnetDeadline *self)
{
  return g_atomic_int_get (&self->timed_out);
}

/* In the context the deadline was made in. */
void
_execnet_deadline_free (ExecnetDeadline *self)
{
  if (self == NULL)
    return;
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_source_unref (self->timer);
    }
  if (self->parent != NULL)
    {
      g_cancellable_disconnect (self->parent, self->parent_id);
      g_object_unref (self->parent);
    }
  g_object_unref (self->cancellable);
  g_free (self);
}

/* A source in the thread-default main context that runs @func (@data)
 * once @cancellable is cancelled; %NULL without a cancellable. Unlike a
 * handler connected to the cancellable, it can be destroyed from any
 * thread at any time, also from @func, which drops @data with
 * @notify. */
GSource *
_execnet_cancel_source_new (GCancellable   *cancellable,
                            GSourceFunc     func,
                            gpointer        data,
                            GDestroyNotify  notify)
{
  GSource *source;

  if (cancellable == NULL)
    {
      if (notify != NULL)
        notify (data);
      return NULL;
    }

  source = g_cancellable_source_new (cancellable);
  g_source_set_static_name (source, "[execnet] cancel");
  g_source_set_callback (source, func, data, notify);
  g_source_attach (source, g_main_context_get_thread_default ());
  return source;
}

/* Any thread: destroys and frees a source from _execnet_cancel_source_new(). */
void
_execnet_cancel_source_free (GSource *source)
{
  if (source == NULL)
    return;
  g_source_destroy (source);
  g_source_unref (source);
}
