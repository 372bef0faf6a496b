/* execnet-inbox.c: running code in a main context from any thread
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <glib-unix.h>

#include "execnet-inbox-private.h"
#include "execnet-io-worker-private.h"

/* Why not g_main_context_invoke(), g_idle_add() or a plain
 * g_task_return_*() from the I/O thread: each attaches a source to the
 * target context, and g_source_attach() wakes that context while holding
 * the context's lock. The woken thread often preempts the waker right
 * there, runs into the lock the waker still holds, and sleeps until the
 * scheduler gives the waker a CPU again: on a loaded machine, tens of
 * milliseconds of a GUI's main loop stalled for every completion.
 *
 * So each context gets one inbox: a source attached once, a queue under
 * the inbox's own lock (held for a list push, never across a system call)
 * and a pipe to wake it, written after that lock is released. Other
 * threads queue; the inbox runs what is queued, in order, in its context.
 *
 * An inbox lives as long as its context: the context's last unref destroys
 * its sources, and the inbox leaves the table when finalized, unless a new
 * context at the same address has its own inbox there by then. Whoever
 * queues holds a reference on the context (a GTask, an emitter), so the
 * context cannot go while something is queued for it. The table's lock
 * also keeps an inbox's memory valid while it is in the table: finalizing
 * takes that lock before anything is freed. */

typedef struct
{
  ExecnetInboxFunc func;
  gpointer data;               /* (owned) freed with free_data */
  GDestroyNotify free_data;
} Letter;

typedef struct
{
  GSource source;
  GMainContext *context;       /* (unowned) the key in the table */
  int fds[2];                  /* the wake-up pipe: read end polled, write end written */
  gpointer tag;                /* the read end's poll tag */

  GMutex lock;                 /* guards everything below */
  GQueue letters;              /* (element-type Letter) (owned) */
  gboolean woken;              /* a byte is in the pipe */
} Inbox;

G_LOCK_DEFINE_STATIC (inboxes);
static GHashTable *inboxes;    /* (element-type GMainContext Inbox) (unowned values) */

static void
letter_free (Letter *letter)
{
  if (letter->free_data != NULL)
    letter->free_data (letter->data);
  g_free (letter);
}

/* The inbox's context: runs what was queued before it started; what those
 * queue in turn waits for the next round, so that other sources get their
 * turn. */
static gboolean
inbox_dispatch (GSource     *source,
                GSourceFunc  callback,
                gpointer     user_data)
{
  Inbox *self = (Inbox *) source;
  GQueue letters = G_QUEUE_INIT;
  Letter *letter;
  char drain[64];

  g_mutex_lock (&self->lock);
  letters = self->letters;
  g_queue_init (&self->letters);
  self->woken = FALSE;
  /* Drained under the lock, so that a wake-up written after it is kept. */
  while (read (self->fds[0], drain, sizeof drain) > 0)
    ;
  g_mutex_unlock (&self->lock);

  while ((letter = g_queue_pop_head (&letters)) != NULL)
    {
      letter->func (letter->data);
      letter_free (letter);
    }

  return G_SOURCE_CONTINUE;
}

static void
inbox_finalize (GSource *source)
{
  Inbox *self = (Inbox *) source;

  G_LOCK (inboxes);
  if (inboxes != NULL && g_hash_table_lookup (inboxes, self->context) == self)
    g_hash_table_remove (inboxes, self->context);
  G_UNLOCK (inboxes);

  g_queue_clear_full (&self->letters, (GDestroyNotify) letter_free);
  close (self->fds[0]);
  close (self->fds[1]);
  g_mutex_clear (&self->lock);
}

static GSourceFuncs inbox_funcs = {
  .dispatch = inbox_dispatch,
  .finalize = inbox_finalize,
};

/* Called with the table's lock held. (transfer none) */
static Inbox *
lookup_or_attach_unlocked (GMainContext *context)
{
  Inbox *self;
  g_autoptr(GError) error = NULL;

  if (inboxes == NULL)
    inboxes = g_hash_table_new (NULL, NULL);
  /* A destroyed inbox belonged to a context that is gone, or going, at
   * the same address: never handed out, so that no reference is taken on
   * a source being finalized; a new one takes its place in the table. */
  self = g_hash_table_lookup (inboxes, context);
  if (self != NULL && !g_source_is_destroyed (&self->source))
    return self;

  self = (Inbox *) g_source_new (&inbox_funcs, sizeof (Inbox));
  self->context = context;
  g_mutex_init (&self->lock);
  g_queue_init (&self->letters);
  if (!g_unix_open_pipe (self->fds, FD_CLOEXEC, &error) ||
      !g_unix_set_fd_nonblocking (self->fds[0], TRUE, &error) ||
      !g_unix_set_fd_nonblocking (self->fds[1], TRUE, &error))
    g_error ("cannot make the pipe that wakes a main context: %s", error->message);
  self->tag = g_source_add_unix_fd (&self->source, self->fds[0], G_IO_IN);
  g_source_set_priority (&self->source, G_PRIORITY_DEFAULT);
  g_source_set_static_name (&self->source, "[execnet] inbox");
  g_hash_table_replace (inboxes, context, self);
  /* The context holds the only reference. */
  g_source_attach (&self->source, context);
  g_source_unref (&self->source);

  return self;
}

/* Any thread, preferably @context's own: makes @context's inbox now, so
 * that the first delivery from another thread need not attach it. */
void
_execnet_inbox_ensure (GMainContext *context)
{
  if (context == NULL)
    context = g_main_context_default ();

  G_LOCK (inboxes);
  lookup_or_attach_unlocked (context);
  G_UNLOCK (inboxes);
}

/* Any thread: runs @func (@data) in @context soon, after whatever was
 * queued there before, then frees @data with @free_data. The caller holds
 * a reference on @context until then. */
void
_execnet_context_invoke (GMainContext     *context,
                         ExecnetInboxFunc  func,
                         gpointer          data,
                         GDestroyNotify    free_data)
{
  Letter *letter = g_new (Letter, 1);
  gboolean wake;
  Inbox *self;

  if (context == NULL)
    context = g_main_context_default ();

  letter->func = func;
  letter->data = data;
  letter->free_data = free_data;

  G_LOCK (inboxes);
  self = lookup_or_attach_unlocked (context);
  g_source_ref (&self->source);
  G_UNLOCK (inboxes);

  g_mutex_lock (&self->lock);
  g_queue_push_tail (&self->letters, letter);
  wake = !self->woken;
  self->woken = TRUE;
  g_mutex_unlock (&self->lock);

  /* No lock held: being preempted here stalls nobody. */
  if (wake)
    {
      while (write (self->fds[1], "", 1) < 0 && errno == EINTR)
        ;
    }
  g_source_unref (&self->source);
}

typedef enum
{
  RETURN_BOOLEAN,
  RETURN_POINTER,
  RETURN_ERROR,
} ReturnKind;

typedef struct
{
  GTask *task;                 /* (owned) */
  ReturnKind kind;
  gboolean boolean;
  gpointer pointer;            /* (owned) until returned, freed with destroy */
  GDestroyNotify destroy;
  GError *error;               /* (owned) (nullable) */
} Return;

static void
return_now (gpointer data)
{
  Return *ret = data;

  switch (ret->kind)
    {
    case RETURN_BOOLEAN:
      g_task_return_boolean (ret->task, ret->boolean);
      break;
    case RETURN_POINTER:
      g_task_return_pointer (ret->task, g_steal_pointer (&ret->pointer), ret->destroy);
      break;
    case RETURN_ERROR:
      g_task_return_error (ret->task, g_steal_pointer (&ret->error));
      break;
    }
}

static void
return_free (gpointer data)
{
  Return *ret = data;

  if (ret->pointer != NULL && ret->destroy != NULL)
    ret->destroy (ret->pointer);
  g_clear_error (&ret->error);
  g_object_unref (ret->task);
  g_free (ret);
}

/* Any thread: in @task's own context, returns at once; elsewhere, returns
 * through the context's inbox (see above) instead of having GTask attach a
 * source to it. A thread reading a wire in a blocked receive (a stand-in
 * for the I/O thread) always goes through the inbox, even in its own
 * context: the completion must not run inside that receive. */
static void
task_return (Return *ret)
{
  GMainContext *context = g_task_get_context (ret->task);

  if (g_main_context_is_owner (context) && !_execnet_io_worker_is_stand_in ())
    {
      return_now (ret);
      return_free (ret);
      return;
    }
  _execnet_context_invoke (context, return_now, ret, return_free);
}

/* Any thread: g_task_return_boolean() for a task of any context. The
 * caller keeps its own reference, as with GTask's. */
void
_execnet_task_return_boolean (GTask    *task,
                              gboolean  result)
{
  Return *ret = g_new0 (Return, 1);

  ret->task = g_object_ref (task);
  ret->kind = RETURN_BOOLEAN;
  ret->boolean = result;
  task_return (ret);
}

/* Any thread: g_task_return_pointer() for a task of any context. */
void
_execnet_task_return_pointer (GTask          *task,
                              gpointer        result,
                              GDestroyNotify  result_destroy)
{
  Return *ret = g_new0 (Return, 1);

  ret->task = g_object_ref (task);
  ret->kind = RETURN_POINTER;
  ret->pointer = result;
  ret->destroy = result_destroy;
  task_return (ret);
}

/* Any thread: g_task_return_error() for a task of any context. */
void
_execnet_task_return_error (GTask  *task,
                            GError *error)
{
  Return *ret = g_new0 (Return, 1);

  ret->task = g_object_ref (task);
  ret->kind = RETURN_ERROR;
  ret->error = error;
  task_return (ret);
}

/* Any thread: g_task_return_new_error() for a task of any context. */
void
_execnet_task_return_new_error (GTask      *task,
                                GQuark      domain,
                                gint        code,
                                const char *format,
                                ...)
{
  va_list args;
  GError *error;

  va_start (args, format);
  error = g_error_new_valist (domain, code, format, args);
  va_end (args);
  _execnet_task_return_error (task, error);
}
