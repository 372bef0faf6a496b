/* execnet-wire.c: framed, queued I/O on one connection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gfiledescriptorbased.h>

#include <execnet/execnet-error.h>

#include "execnet-debug-private.h"
#include "execnet-io-worker-private.h"
#include "execnet-value-private.h"
#include "execnet-wire-private.h"

/* A wire carries execnet frames over one connection's stream, both ways,
 * in the shared I/O thread.
 *
 * Writing: any thread calls _execnet_wire_send(). When nothing is queued or
 * being written and the stream is pollable, the sender writes the frame (a
 * 9-byte header plus the payload's chunks, which are never copied) itself
 * with one non-blocking writev: a small message then costs no thread hop,
 * which is what round-trip latency is made of. Whatever does not fit into
 * the pipe at once, and every frame sent while others wait, goes into a
 * queue under the lock, in call order, and a wake-up source tells the I/O
 * thread, which writes queued frames in batches with one writev each. When
 * the stream is a file descriptor (pipes, sockets), the wire makes it
 * non-blocking and calls writev() itself, in both places: GIO's pollable
 * writes would block on a blocking pipe once it is full, and the I/O thread
 * must never block; it waits for room with a G_IO_OUT source instead. When
 * more than max_queued bytes wait, senders block until the I/O thread has
 * caught up; the I/O thread itself never blocks (it may queue beyond the
 * limit, as it only ever sends small control messages).
 *
 * Reading: whoever holds the wire's one reading turn reads straight into
 * the buffers the frame reader hands out and passes each complete frame to
 * the owner's handler. Normally that is the I/O thread. When the input is
 * a file descriptor, a thread blocked in a receive may take the turn
 * instead (_execnet_wire_lead): it polls and reads the fd itself and hands
 * every frame on as the I/O thread would, until what it waits for arrived,
 * then gives the turn back. A round trip then costs no thread hop on the
 * receiving side. Meanwhile the I/O thread's read source polls nothing
 * (its fd is set to -1), and at most one thread holds the turn: a would-be
 * leader waits while the I/O thread is busy reading, and the I/O thread
 * leaves the fd alone while a leader reads. An end of input, an error or
 * garbage that a leader meets is left for the I/O thread to report, so
 * that read_closed always runs there. The wire also owns the count of
 * delivered bytes that wait unconsumed, and the decision to park reading
 * while there are too many (_execnet_wire_account); the remote side's
 * writes then block, which bounds memory on both sides. Nobody leads
 * while reading is parked.
 *
 * Life cycle: a wire starts reading as soon as it is made, and holds a
 * reference on its owner from then until read_closed has been delivered, so that the
 * handlers always have a live owner. Reading ends at end-of-file, on an
 * error, or by _execnet_wire_abort(); once it has ended, writing fails too,
 * since nobody is left at the other end to read. */

struct _ExecnetWire
{
  gatomicrefcount ref_count;

  /* Written once in _execnet_wire_new(), never again (owner is cleared
   * only in the I/O thread when reading ended, or at the last unref):
   * read without the lock. */
  ExecnetConnection *connection;   /* (owned) */
  char *gateway_id;                /* (owned) for the debug log's EXECNET_GATEWAY field */
  char *description;               /* (owned) for messages: "gateway gw0 (python3 pid 42)" */
  const ExecnetWireHandler *handler;
  GObject *owner;                  /* (owned) (nullable) while reading */
  GCancellable *cancellable;       /* (owned) cancelled by abort */
  GSource *wake_source;            /* (owned) attached to the I/O context */

  /* Whoever has the reading turn (the I/O thread, or the leader): */
  ExecnetFrameReader *reader;      /* (owned) */

  /* Reading a file descriptor; written once in _execnet_wire_new(). */
  int in_fd;                       /* the input's non-blocking fd, or -1: then the I/O
                                    * thread reads with read_async and nobody leads */
  int wake_fd;                     /* an eventfd that wakes a leader, or -1 */
  GSource *read_source;            /* (owned) (nullable) polls in_fd in the I/O thread */

  /* I/O thread only: */
  GPtrArray *in_flight;            /* (owned) (element-type QueuedFrame) being written */
  GArray *vectors;                 /* (owned) (element-type GOutputVector) for in_flight */
  guint vector_index;              /* the first vector not yet written, with fd */
  gboolean write_closed;           /* close_write() was called on the connection */

  /* Any thread, atomically: the bytes of delivered items that wait
   * unconsumed (_execnet_wire_account). The I/O thread alone decides to
   * park reading, after each read, and to go on, in resume_in_io_thread. */
  gsize unconsumed;

  GMutex lock;                     /* guards the fields below */
  GCond cond;                      /* signalled when queued_bytes drops or writing dies */
  guint send_waiters;              /* senders waiting on cond */
  GQueue queue;                    /* (element-type QueuedFrame) (owned) */
  gsize queued_bytes;              /* in queue and in flight */
  gsize max_queued;
  gboolean writing;                /* a writev is in flight, or a sender writes through */
  gboolean can_write_through;      /* the output stream is pollable, or an fd */
  int fd;                          /* the output's non-blocking fd, or -1 */
  gboolean finishing;              /* no more sends accepted */
  gboolean reading;                /* started and not yet ended */
  GError *write_error;             /* (owned) (nullable) set once writing is dead */
  GError *abort_error;             /* (owned) (nullable) why the wire was aborted */
  ExecnetWireTap *tap;             /* (owned) (nullable) set under the lock, read atomically */

  /* The reading turn (see "Reading" above). read_parked is written by the
   * I/O thread alone, under the lock. */
  gboolean read_parked;            /* reading stopped for backpressure */
  GThread *leader;                 /* (unowned) (nullable) a receiving thread that reads */
  gboolean io_busy;                /* the I/O thread reads or hands on frames */
  GCond read_cond;                 /* signalled when io_busy drops, if lead_waiters */
  guint lead_waiters;              /* threads waiting on read_cond */
  gboolean end_pending;            /* a leader met the end of input */
  GError *end_error;               /* (owned) (nullable) what it met, NULL for end-of-file */
};

struct _ExecnetWireTap
{
  gatomicrefcount ref_count;
  ExecnetGateway *gateway;         /* (unowned) it outlives its wire, and so its tap's use */
  ExecnetWireObserver func;
  gpointer data;
  GDestroyNotify notify;
};

/* Any thread. */
ExecnetWireTap *
_execnet_wire_tap_new (ExecnetGateway      *gateway,
                       ExecnetWireObserver  func,
                       gpointer             data,
                       GDestroyNotify       notify)
{
  ExecnetWireTap *tap = g_new0 (ExecnetWireTap, 1);

  g_atomic_ref_count_init (&tap->ref_count);
  tap->gateway = gateway;
  tap->func = func;
  tap->data = data;
  tap->notify = notify;
  return tap;
}

ExecnetWireTap *
_execnet_wire_tap_ref (ExecnetWireTap *tap)
{
  g_atomic_ref_count_inc (&tap->ref_count);
  return tap;
}

/* Any thread; the last reference runs the observer's notify, so never
 * with a lock held. */
void
_execnet_wire_tap_unref (ExecnetWireTap *tap)
{
  if (tap != NULL && g_atomic_ref_count_dec (&tap->ref_count))
    {
      if (tap->notify != NULL)
        tap->notify (tap->data);
      g_free (tap);
    }
}

typedef struct
{
  guint8 header[EXECNET_FRAME_HEADER_SIZE];
  ExecnetMessageCode code;         /* as in header, kept for traces */
  gint32 channel;
  GPtrArray *chunks;               /* (owned) (nullable) (element-type GBytes) */
  gsize size;                      /* header plus payload */
  gsize written;                   /* bytes the sender already wrote itself */
} QueuedFrame;

/* Batches stay below this, so one writev never pins too much memory. */
#define MAX_BATCH_FRAMES 256
#define MAX_BATCH_BYTES ((gsize) 8 << 20)

static void
queued_frame_free (gpointer data)
{
  QueuedFrame *frame = data;

  g_clear_pointer (&frame->chunks, g_ptr_array_unref);
  g_free (frame);
}

static void maybe_write (ExecnetWire *self);
static void read_more (ExecnetWire *self);
static void start_reading (ExecnetWire *self);
static gboolean read_source_dispatch (GSource *source, GSourceFunc callback, gpointer user_data);

/* I/O thread: dispatch of the wake-up source */
static gboolean
on_wake (gpointer data)
{
  ExecnetWire *self = data;

  g_source_set_ready_time (self->wake_source, -1);
  maybe_write (self);

  return G_SOURCE_CONTINUE;
}

static gboolean
wake_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  return callback (user_data);
}

static GSourceFuncs wake_source_funcs = {
  .dispatch = wake_source_dispatch,
};

/* The I/O thread's watch on in_fd. Its poll record is the source's own:
 * the I/O thread sets its events to G_IO_IN while it reads and to 0 while
 * a leader reads or reading is parked, always in its own dispatch, so that
 * the I/O context picks the change up at its next poll without a wake-up
 * (GLib reads the events of every poll record before each poll). A
 * hang-up or error is reported whatever the events: then the record is
 * removed until the I/O thread reads again (read_source_watch). Other
 * threads nudge it to look again (nudge_read_source): a flag and one
 * wake-up of the context, and none while a nudge is pending. Not a ready
 * time: setting one takes the context's lock, and clearing it wakes the
 * context once more. The source may recurse (it never iterates a main
 * loop), so that GLib does not remove and re-add its fd, waking the
 * context twice, around every dispatch. */
typedef struct
{
  GSource source;
  GPollFD pollfd;                  /* I/O thread only */
  gboolean removed;                /* I/O thread only: pollfd is not polled */
  gint nudged;                     /* atomic */
} ReadSource;

/* I/O thread: whether to poll in_fd from now on; @revents is what the
 * last poll saw. */
static void
read_source_watch (ReadSource   *self,
                   gboolean      watch,
                   GIOCondition  revents)
{
  if (watch)
    {
      if (self->removed)
        g_source_add_poll (&self->source, &self->pollfd);
      self->removed = FALSE;
      self->pollfd.events = G_IO_IN | G_IO_HUP | G_IO_ERR;
    }
  else
    {
      self->pollfd.events = 0;
      /* Reported even with no events asked for: the poll would spin. */
      if ((revents & (G_IO_HUP | G_IO_ERR | G_IO_NVAL)) != 0 && !self->removed)
        {
          g_source_remove_poll (&self->source, &self->pollfd);
          self->removed = TRUE;
        }
    }
}

static gboolean
read_source_prepare (GSource *source,
                     gint    *timeout)
{
  *timeout = -1;
  return g_atomic_int_get (&((ReadSource *) source)->nudged);
}

static gboolean
read_source_check (GSource *source)
{
  ReadSource *read_source = (ReadSource *) source;

  return read_source->pollfd.revents != 0 || g_atomic_int_get (&read_source->nudged);
}

static GSourceFuncs read_source_funcs = {
  .prepare = read_source_prepare,
  .check = read_source_check,
  .dispatch = read_source_dispatch,
};

ExecnetWire *
_execnet_wire_new (ExecnetConnection        *connection,
                   const char               *gateway_id,
                   const char               *description,
                   const ExecnetWireHandler *handler,
                   GObject                  *owner)
{
  ExecnetWire *self = g_new0 (ExecnetWire, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->connection = g_object_ref (connection);
  self->gateway_id = g_strdup (gateway_id);
  self->description = g_strdup (description);
  self->handler = handler;
  self->owner = g_object_ref (owner);
  self->cancellable = g_cancellable_new ();
  self->reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  self->in_flight = g_ptr_array_new_with_free_func (queued_frame_free);
  self->vectors = g_array_new (FALSE, FALSE, sizeof (GOutputVector));
  self->max_queued = EXECNET_WIRE_DEFAULT_MAX_QUEUED;
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  g_cond_init (&self->read_cond);
  g_queue_init (&self->queue);

  self->wake_source = g_source_new (&wake_source_funcs, sizeof (GSource));
  g_source_set_static_name (self->wake_source, "[execnet] wire wake-up");
  g_source_set_priority (self->wake_source, G_PRIORITY_DEFAULT);
  /* The source's reference is dropped when the source is destroyed, at the
   * end of reading. */
  g_source_set_callback (self->wake_source, on_wake,
                         _execnet_wire_ref (self), (GDestroyNotify) _execnet_wire_unref);
  g_source_attach (self->wake_source, _execnet_io_worker_get_context ());

  {
    GOutputStream *output = g_io_stream_get_output_stream (execnet_connection_get_stream (connection));

    self->fd = -1;
    if (G_IS_FILE_DESCRIPTOR_BASED (output))
      {
        int fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (output));
        int flags = fcntl (fd, F_GETFL);

        if (flags >= 0 && ((flags & O_NONBLOCK) || fcntl (fd, F_SETFL, flags | O_NONBLOCK) == 0))
          self->fd = fd;
      }
    self->can_write_through = self->fd >= 0 ||
                              (G_IS_POLLABLE_OUTPUT_STREAM (output) &&
                               g_pollable_output_stream_can_poll (G_POLLABLE_OUTPUT_STREAM (output)));
  }

  {
    GInputStream *input = g_io_stream_get_input_stream (execnet_connection_get_stream (connection));

    self->in_fd = self->wake_fd = -1;
    if (G_IS_FILE_DESCRIPTOR_BASED (input))
      {
        int fd = g_file_descriptor_based_get_fd (G_FILE_DESCRIPTOR_BASED (input));
        int flags = fcntl (fd, F_GETFL);

        if (flags >= 0 && ((flags & O_NONBLOCK) || fcntl (fd, F_SETFL, flags | O_NONBLOCK) == 0))
          self->wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (self->wake_fd >= 0)
          self->in_fd = fd;
      }
    if (self->in_fd >= 0)
      {
        ReadSource *source = (ReadSource *) g_source_new (&read_source_funcs, sizeof (ReadSource));

        source->pollfd.fd = self->in_fd;
        source->pollfd.events = G_IO_IN | G_IO_HUP | G_IO_ERR;
        g_source_add_poll (&source->source, &source->pollfd);
        g_source_set_static_name (&source->source, "[execnet] wire reading");
        g_source_set_priority (&source->source, G_PRIORITY_DEFAULT);
        g_source_set_can_recurse (&source->source, TRUE);
        /* As with the wake-up source, destroying it drops its reference. */
        g_source_set_callback (&source->source, (GSourceFunc) (void (*) (void)) read_source_dispatch,
                               _execnet_wire_ref (self), (GDestroyNotify) _execnet_wire_unref);
        self->read_source = &source->source;
      }
  }

  start_reading (self);

  return self;
}

ExecnetWire *
_execnet_wire_ref (ExecnetWire *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

void
_execnet_wire_unref (ExecnetWire *self)
{
  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;

  g_assert (self->owner == NULL || !self->reading);
  g_clear_object (&self->owner);
  g_source_destroy (self->wake_source);
  g_source_unref (self->wake_source);
  if (self->read_source != NULL)
    {
      g_source_destroy (self->read_source);
      g_source_unref (self->read_source);
    }
  if (self->wake_fd >= 0)
    close (self->wake_fd);
  g_clear_error (&self->end_error);
  g_queue_clear_full (&self->queue, queued_frame_free);
  g_ptr_array_unref (self->in_flight);
  g_array_unref (self->vectors);
  _execnet_frame_reader_free (self->reader);
  g_clear_error (&self->write_error);
  g_clear_error (&self->abort_error);
  g_clear_pointer (&self->tap, _execnet_wire_tap_unref);
  g_object_unref (self->cancellable);
  g_object_unref (self->connection);
  g_free (self->gateway_id);
  g_free (self->description);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_cond_clear (&self->read_cond);
  g_free (self);
}

/* Called with the lock held: writing is over; fail whoever waits. */
static void
kill_writing_unlocked (ExecnetWire  *self,
                       GError       *error)  /* (transfer full) */
{
  if (self->write_error == NULL)
    self->write_error = error;
  else
    g_error_free (error);
  g_queue_clear_full (&self->queue, queued_frame_free);
  g_queue_init (&self->queue);
  self->queued_bytes = 0;
  g_cond_broadcast (&self->cond);
}

/* Called with the lock held: a write to the stream failed; writing is over. */
static void
fail_writing_unlocked (ExecnetWire  *self,
                       const GError *error)
{
  EXECNET_NOTE (WIRE, self->gateway_id, "%s: write failed: %s", self->description, error->message);
  kill_writing_unlocked (self, g_error_new (EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                                            "cannot write to %s: %s",
                                            self->description, error->message));
}

/* I/O thread: the batch in flight is written, or writing failed. */
static void
finish_batch (ExecnetWire *self,
              GError      *error)  /* (transfer full) (nullable) */
{
  gsize batch_bytes = 0;

  for (guint i = 0; i < self->in_flight->len; i++)
    batch_bytes += ((QueuedFrame *) g_ptr_array_index (self->in_flight, i))->size;
  g_ptr_array_set_size (self->in_flight, 0);
  g_array_set_size (self->vectors, 0);

  g_mutex_lock (&self->lock);
  self->writing = FALSE;
  self->queued_bytes -= MIN (batch_bytes, self->queued_bytes);
  if (error != NULL)
    fail_writing_unlocked (self, error);
  if (self->send_waiters > 0)
    g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  g_clear_error (&error);
}

static void
on_written (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  ExecnetWire *self = user_data;
  GError *error = NULL;

  /* I/O thread */
  g_output_stream_writev_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error);
  finish_batch (self, error);
  maybe_write (self);
  _execnet_wire_unref (self);
}

G_STATIC_ASSERT (sizeof (GOutputVector) == sizeof (struct iovec));
G_STATIC_ASSERT (G_STRUCT_OFFSET (GOutputVector, size) == G_STRUCT_OFFSET (struct iovec, iov_len));

/* Any thread: writes @vectors from *@index on to the non-blocking @fd,
 * until all are written or the fd is full; advances *@index and trims the
 * vector it stops in. Returns the bytes written, or -1 with @error set. */
static gssize
writev_fd (int      fd,
           GArray  *vectors,
           guint   *index,
           GError **error)
{
  gssize total = 0;

  while (*index < vectors->len)
    {
      GOutputVector *first = &g_array_index (vectors, GOutputVector, *index);
      gssize n = writev (fd, (const struct iovec *) first, MIN (vectors->len - *index, IOV_MAX));

      if (n < 0)
        {
          int saved_errno = errno;

          if (saved_errno == EINTR)
            continue;
          if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK)
            break;
          g_set_error_literal (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                               g_strerror (saved_errno));
          return -1;
        }

      total += n;
      while (n > 0)
        {
          GOutputVector *vector = &g_array_index (vectors, GOutputVector, *index);

          if ((gsize) n >= vector->size)
            {
              n -= vector->size;
              (*index)++;
            }
          else
            {
              vector->buffer = (const guint8 *) vector->buffer + n;
              vector->size -= n;
              n = 0;
            }
        }
    }

  return total;
}

static gboolean on_fd_writable (gint fd, GIOCondition condition, gpointer user_data);

/* I/O thread: writes what it can of the batch in flight. Returns TRUE when
 * the batch is finished; otherwise a G_IO_OUT source goes on with it. */
static gboolean
continue_fd_write (ExecnetWire *self)
{
  GError *error = NULL;
  GSource *source;

  if (writev_fd (self->fd, self->vectors, &self->vector_index, &error) < 0)
    {
      finish_batch (self, error);
      return TRUE;
    }
  if (self->vector_index == self->vectors->len)
    {
      finish_batch (self, NULL);
      return TRUE;
    }

  source = g_unix_fd_source_new (self->fd, G_IO_OUT | G_IO_ERR | G_IO_HUP);
  g_source_set_static_name (source, "[execnet] wire writable");
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) on_fd_writable,
                         _execnet_wire_ref (self), (GDestroyNotify) _execnet_wire_unref);
  g_source_attach (source, g_main_context_get_thread_default ());
  g_source_unref (source);
  return FALSE;
}

static gboolean
on_fd_writable (gint         fd,
                GIOCondition condition,
                gpointer     user_data)
{
  ExecnetWire *self = user_data;

  /* I/O thread */
  if (continue_fd_write (self))
    maybe_write (self);

  return G_SOURCE_REMOVE;
}

static void
trace_frame (ExecnetWire       *self,
             const QueuedFrame *frame)
{
  EXECNET_NOTE (WIRE, self->gateway_id, "%s -> %s channel=%d length=%" G_GSIZE_FORMAT,
                self->description, execnet_message_code_name (frame->code), frame->channel,
                frame->size - EXECNET_FRAME_HEADER_SIZE);
}

/* Appends the parts of @frame after its first @skip bytes to @vectors. */
static void
append_vectors (GArray      *vectors,
                QueuedFrame *frame,
                gsize        skip)
{
  GOutputVector vector;

  if (skip < EXECNET_FRAME_HEADER_SIZE)
    {
      vector.buffer = frame->header + skip;
      vector.size = EXECNET_FRAME_HEADER_SIZE - skip;
      g_array_append_val (vectors, vector);
      skip = 0;
    }
  else
    skip -= EXECNET_FRAME_HEADER_SIZE;

  for (guint i = 0; frame->chunks != NULL && i < frame->chunks->len; i++)
    {
      gsize size;
      const guint8 *data = g_bytes_get_data (g_ptr_array_index (frame->chunks, i), &size);

      if (skip >= size)
        {
          skip -= size;
          continue;
        }
      vector.buffer = data + skip;
      vector.size = size - skip;
      skip = 0;
      g_array_append_val (vectors, vector);
    }
}

/* Any thread, holding the "writing" flag but not the lock: writes as much
 * of @frame as the stream takes without blocking. Returns the bytes
 * written; sets @error when writing failed. */
static gsize
write_through (ExecnetWire *self,
               QueuedFrame *frame,
               GError     **error)
{
  GPollableOutputStream *output =
    G_POLLABLE_OUTPUT_STREAM (g_io_stream_get_output_stream (execnet_connection_get_stream (self->connection)));
  g_autoptr(GArray) vectors = g_array_new (FALSE, FALSE, sizeof (GOutputVector));
  gsize written = 0;

  append_vectors (vectors, frame, 0);

  if (self->fd >= 0)
    {
      guint index = 0;
      gssize n = writev_fd (self->fd, vectors, &index, error);

      return n < 0 ? 0 : (gsize) n;
    }

  while (written < frame->size)
    {
      gsize n = 0;
      GPollableReturn ret;

      ret = g_pollable_output_stream_writev_nonblocking (output,
                                                         (GOutputVector *) (gpointer) vectors->data,
                                                         vectors->len, &n, NULL, error);
      if (ret == G_POLLABLE_RETURN_FAILED)
        return written;
      if (ret == G_POLLABLE_RETURN_WOULD_BLOCK || n == 0)
        break;
      written += n;
      g_array_set_size (vectors, 0);
      append_vectors (vectors, frame, written);
    }

  return written;
}

/* I/O thread: takes the next batch into flight; FALSE if there is none to
 * write now (one is in flight, writing is dead, or the queue is empty). */
static gboolean
start_batch (ExecnetWire *self)
{
  gsize batch_bytes = 0;
  gboolean close_now = FALSE;

  g_mutex_lock (&self->lock);
  if (self->writing || self->write_error != NULL)
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (g_queue_is_empty (&self->queue))
    {
      close_now = self->finishing && !self->write_closed;
      self->write_closed |= close_now;
      g_mutex_unlock (&self->lock);

      if (close_now)
        {
          g_autoptr(GError) error = NULL;

          if (!execnet_connection_close_write (self->connection, &error))
            EXECNET_NOTE (WIRE, self->gateway_id, "%s: closing the write side: %s", self->description, error->message);
        }
      return FALSE;
    }

  while (!g_queue_is_empty (&self->queue) &&
         self->in_flight->len < MAX_BATCH_FRAMES &&
         batch_bytes < MAX_BATCH_BYTES)
    {
      QueuedFrame *frame = g_queue_pop_head (&self->queue);

      append_vectors (self->vectors, frame, frame->written);
      batch_bytes += frame->size;
      g_ptr_array_add (self->in_flight, frame);
    }
  self->vector_index = 0;
  self->writing = TRUE;
  g_mutex_unlock (&self->lock);

  if (EXECNET_DEBUG_ENABLED (EXECNET_DEBUG_WIRE))
    for (guint i = 0; i < self->in_flight->len; i++)
      trace_frame (self, g_ptr_array_index (self->in_flight, i));

  return TRUE;
}

/* I/O thread: writes queued batches until the stream is full or the queue
 * is empty. */
static void
maybe_write (ExecnetWire *self)
{
  while (start_batch (self))
    {
      if (self->fd < 0)
        {
          GOutputStream *output = g_io_stream_get_output_stream (execnet_connection_get_stream (self->connection));

          g_output_stream_writev_all_async (output,
                                            (GOutputVector *) (gpointer) self->vectors->data,
                                            self->vectors->len,
                                            G_PRIORITY_DEFAULT,
                                            self->cancellable,
                                            on_written,
                                            _execnet_wire_ref (self));
          return;
        }

      if (!continue_fd_write (self))
        return;
    }
}

/* Any thread: @tap (nullable) (transfer none) replaces the wire's. */
void
_execnet_wire_set_tap (ExecnetWire    *self,
                       ExecnetWireTap *tap)
{
  ExecnetWireTap *old;

  if (tap != NULL)
    _execnet_wire_tap_ref (tap);

  g_mutex_lock (&self->lock);
  old = self->tap;
  g_atomic_pointer_set (&self->tap, tap);
  g_mutex_unlock (&self->lock);

  _execnet_wire_tap_unref (old);
}

/* Any thread: with EXECNET_DEBUG=payload, prints the frame with its value
 * decoded, as execnet-tool trace does for one program. */
static void
debug_payload (ExecnetWire        *self,
               gboolean            outgoing,
               ExecnetMessageCode  code,
               gint32              channel,
               GBytes             *payload)
{
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  if (g_bytes_get_size (payload) > 0)
    {
      value = _execnet_value_decode (payload, NULL, NULL, &error);
      text = value != NULL ? g_variant_print (value, TRUE) : g_strdup_printf ("<%s>", error->message);
    }

  EXECNET_NOTE (PAYLOAD, self->gateway_id, "%s %s %s channel=%d%s%s", self->description,
                        outgoing ? "->" : "<-", execnet_message_code_name (code), channel,
                        text != NULL ? " " : "", text != NULL ? text : "");
}

/* Any thread: shows a frame to the tap, and prints it with
 * EXECNET_DEBUG=payload. An outgoing frame (@chunks, @payload NULL) is
 * joined into one buffer once, and only when someone looks: with no tap
 * and no debugging this costs one atomic read per frame. */
static void
tap_and_debug_frame (ExecnetWire        *self,
                     gboolean            outgoing,
                     ExecnetMessageCode  code,
                     gint32              channel,
                     GPtrArray          *chunks,
                     GBytes             *payload)
{
  gboolean debug = EXECNET_DEBUG_ENABLED (EXECNET_DEBUG_PAYLOAD);
  g_autoptr(GBytes) flat = NULL;
  ExecnetWireTap *tap = NULL;

  if (g_atomic_pointer_get (&self->tap) != NULL)
    {
      g_mutex_lock (&self->lock);
      tap = self->tap != NULL ? _execnet_wire_tap_ref (self->tap) : NULL;
      g_mutex_unlock (&self->lock);
    }
  if (tap == NULL && !debug)
    return;

  if (payload == NULL)
    payload = flat = chunks != NULL ? _execnet_chunks_flatten (chunks, -1) : g_bytes_new (NULL, 0);

  if (tap != NULL)
    {
      tap->func (tap->gateway, outgoing, code, channel, payload, tap->data);
      _execnet_wire_tap_unref (tap);
    }
  if (debug)
    debug_payload (self, outgoing, code, channel, payload);
}

/* Any thread. Queues one frame; blocks while the queue is over its limit
 * (except in the I/O thread). @chunks (nullable) (transfer none). */
gboolean
_execnet_wire_send (ExecnetWire         *self,
                    ExecnetMessageCode   code,
                    gint32               channel,
                    GPtrArray           *chunks,
                    GError             **error)
{
  gsize payload = chunks != NULL ? _execnet_chunks_get_size (chunks) : 0;
  gboolean in_io_thread = _execnet_io_worker_is_current ();
  QueuedFrame *frame;

  if (payload > EXECNET_FRAME_DEFAULT_MAX_PAYLOAD)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE,
                   "an item of %" G_GSIZE_FORMAT " bytes is larger than the "
                   "%" G_GSIZE_FORMAT "-byte frame limit; send it in pieces",
                   payload, (gsize) EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
      return FALSE;
    }

  tap_and_debug_frame (self, TRUE, code, channel, chunks, NULL);

  frame = g_new0 (QueuedFrame, 1);
  _execnet_frame_header_encode (frame->header, code, channel, (gint32) payload);
  frame->code = code;
  frame->channel = channel;
  frame->chunks = chunks != NULL ? g_ptr_array_ref (chunks) : NULL;
  frame->size = EXECNET_FRAME_HEADER_SIZE + payload;

  g_mutex_lock (&self->lock);
  while (!in_io_thread &&
         self->write_error == NULL && !self->finishing &&
         self->queued_bytes > 0 &&
         self->queued_bytes + frame->size > self->max_queued)
    {
      self->send_waiters++;
      g_cond_wait (&self->cond, &self->lock);
      self->send_waiters--;
    }

  if (self->write_error != NULL || self->finishing)
    {
      if (self->write_error != NULL)
        g_set_error_literal (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                             self->write_error->message);
      else
        g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                     "%s is exiting; it accepts no more messages", self->description);
      g_mutex_unlock (&self->lock);
      queued_frame_free (frame);
      return FALSE;
    }

  if (self->can_write_through && !self->writing && g_queue_is_empty (&self->queue))
    {
      g_autoptr(GError) write_error = NULL;

      self->writing = TRUE;
      g_mutex_unlock (&self->lock);

      if (EXECNET_DEBUG_ENABLED (EXECNET_DEBUG_WIRE))
        trace_frame (self, frame);
      frame->written = write_through (self, frame, &write_error);

      g_mutex_lock (&self->lock);
      self->writing = FALSE;
      if (write_error != NULL)
        {
          fail_writing_unlocked (self, write_error);
          g_mutex_unlock (&self->lock);
          queued_frame_free (frame);
          /* The frame was accepted; the error shows on the next call. */
          return TRUE;
        }
      if (frame->written == frame->size)
        {
          gboolean more = !g_queue_is_empty (&self->queue) || self->finishing;

          /* A futex call per send otherwise: wake only who waits. */
          if (self->send_waiters > 0)
            g_cond_broadcast (&self->cond);
          g_mutex_unlock (&self->lock);
          queued_frame_free (frame);
          /* Frames queued meanwhile, or a pending close, are the I/O thread's. */
          if (more)
            g_source_set_ready_time (self->wake_source, 0);
          return TRUE;
        }
      /* The rest goes first, ahead of anything queued meanwhile. */
      g_queue_push_head (&self->queue, frame);
      self->queued_bytes += frame->size;
      g_mutex_unlock (&self->lock);
      g_source_set_ready_time (self->wake_source, 0);
      return TRUE;
    }

  g_queue_push_tail (&self->queue, frame);
  self->queued_bytes += frame->size;
  g_mutex_unlock (&self->lock);

  g_source_set_ready_time (self->wake_source, 0);

  return TRUE;
}

/* Any thread: after what is queued now, the remote gets end-of-file. */
void
_execnet_wire_finish_writing (ExecnetWire *self)
{
  g_mutex_lock (&self->lock);
  self->finishing = TRUE;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);

  g_source_set_ready_time (self->wake_source, 0);
}

gboolean
_execnet_wire_is_reading (ExecnetWire *self)
{
  gboolean reading;

  g_mutex_lock (&self->lock);
  reading = self->reading;
  g_mutex_unlock (&self->lock);

  return reading;
}

/* Any thread: whether a sender would have to wait for room now; a frame
 * up to a quarter of the limit would. */
gboolean
_execnet_wire_is_congested (ExecnetWire *self)
{
  gboolean congested;

  g_mutex_lock (&self->lock);
  congested = self->queued_bytes > 0 &&
              self->queued_bytes + self->max_queued / 4 > self->max_queued;
  g_mutex_unlock (&self->lock);

  return congested;
}

/* I/O thread, once: reading is over. */
static void
reading_done (ExecnetWire  *self,
              GError       *error)  /* (transfer full) (nullable) */
{
  g_autoptr(GObject) owner = NULL;
  g_autoptr(GError) reported = error;

  g_mutex_lock (&self->lock);
  self->reading = FALSE;
  owner = g_steal_pointer (&self->owner);
  if (self->abort_error != NULL)
    {
      g_clear_error (&reported);
      reported = g_error_copy (self->abort_error);
    }
  kill_writing_unlocked (self, g_error_new (EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED,
                                            "the connection to %s is closed",
                                            self->description));
  g_mutex_unlock (&self->lock);

  EXECNET_NOTE (WIRE, self->gateway_id, "%s: reading ended: %s", self->description,
                reported != NULL ? reported->message : "end of file");

  g_source_destroy (self->wake_source);
  self->handler->read_closed (owner, reported);
}

/* Whoever reads: what ended the input, as read_closed reports it. @error
 * (transfer full) (nullable) is the read's error, NULL at end-of-file. */
static GError *
input_end_error (ExecnetWire *self,
                 GError      *error)
{
  /* Not garbage: a remote that dies while it writes leaves half a
   * frame, whichever transport carried it. It is a lost connection,
   * as a read error or a clean end would be. */
  if (_execnet_frame_reader_is_idle (self->reader))
    return error;
  if (error == NULL)
    return g_error_new (G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                        "%s closed the connection in the middle of a message",
                        self->description);
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      GError *partial = g_error_new (G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                                     "%s: %s", self->description, error->message);

      g_error_free (error);
      return partial;
    }
  return error;
}

/* Whoever reads: hands every complete frame to the owner, in order, until
 * none is left or the wire is aborted. A leader also stops when a wire
 * tap appears (the tap sees incoming frames in the I/O thread): then it
 * returns FALSE and the I/O thread hands on the rest. */
static gboolean
hand_on_frames (ExecnetWire *self,
                gboolean     leading)
{
  ExecnetMessageCode code;
  gint32 channel;
  GBytes *payload;

  while (!g_cancellable_is_cancelled (self->cancellable))
    {
      if (leading && g_atomic_pointer_get (&self->tap) != NULL)
        return FALSE;
      if (!_execnet_frame_reader_pop (self->reader, &code, &channel, &payload))
        break;
      if (EXECNET_DEBUG_ENABLED (EXECNET_DEBUG_WIRE))
        EXECNET_NOTE (WIRE, self->gateway_id, "%s <- %s channel=%d length=%" G_GSIZE_FORMAT "%s",
                      self->description, execnet_message_code_name (code),
                      channel, g_bytes_get_size (payload), leading ? ", read by a receive" : "");
      tap_and_debug_frame (self, FALSE, code, channel, NULL, payload);
      self->handler->frame (self->owner, code, channel, payload);
      g_bytes_unref (payload);
    }
  return TRUE;
}

typedef enum
{
  READ_SOME,     /* bytes arrived */
  READ_NOTHING,  /* the fd had nothing */
  READ_END,      /* the input ended; see the error */
} ReadResult;

/* Whoever reads: one non-blocking read of in_fd into the frame reader.
 * Sets @filled when the read filled the buffer it had (more may wait);
 * at READ_END sets @error to what ended the input, NULL at a clean
 * end-of-file. */
static ReadResult
read_fd_once (ExecnetWire  *self,
              gboolean     *filled,
              GError      **error)
{
  gsize size;
  guint8 *buffer = _execnet_frame_reader_get_buffer (self->reader, &size);
  gssize n;

  do
    n = read (self->in_fd, buffer, size);
  while (n < 0 && errno == EINTR);

  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return READ_NOTHING;
  if (n < 0)
    {
      int saved_errno = errno;

      *error = input_end_error (self, g_error_new_literal (G_IO_ERROR, g_io_error_from_errno (saved_errno),
                                                           g_strerror (saved_errno)));
      return READ_END;
    }
  if (n == 0)
    {
      *error = input_end_error (self, NULL);
      return READ_END;
    }
  if (!_execnet_frame_reader_commit (self->reader, n, error))
    {
      g_prefix_error (error, "garbage from %s: ", self->description);
      return READ_END;
    }
  *filled = (gsize) n == size;
  return READ_SOME;
}

/* Reads at most this many buffers in one dispatch of the read source
 * before the I/O thread turns to other gateways. */
#define MAX_READS_PER_DISPATCH 16

/* I/O thread, holding the reading turn (io_busy). @revents: what the poll
 * saw on in_fd, 0 when only nudged. Returns FALSE once reading ended. */
static gboolean
io_read_fd (ExecnetWire  *self,
            GIOCondition  revents)
{
  GError *end = NULL;
  gboolean ended;

  /* Whatever a leader left: frames it did not hand on, then the end it met. */
  hand_on_frames (self, FALSE);
  if (g_cancellable_is_cancelled (self->cancellable))
    {
      reading_done (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "aborted"));
      return FALSE;
    }
  g_mutex_lock (&self->lock);
  ended = self->end_pending;
  end = g_steal_pointer (&self->end_error);
  self->end_pending = FALSE;
  g_mutex_unlock (&self->lock);
  if (ended)
    {
      reading_done (self, end);
      return FALSE;
    }

  if (self->read_parked)
    {
      if ((gsize) g_atomic_pointer_get (&self->unconsumed) >= EXECNET_WIRE_UNCONSUMED_LOW)
        return TRUE;
      EXECNET_NOTE (WIRE, self->gateway_id, "%s: reading again", self->description);
      g_mutex_lock (&self->lock);
      self->read_parked = FALSE;
      g_mutex_unlock (&self->lock);
      /* The next poll tells whether there is anything. */
      return TRUE;
    }

  if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) == 0)
    return TRUE;

  for (guint i = 0; i < MAX_READS_PER_DISPATCH; i++)
    {
      gboolean filled = FALSE;

      switch (read_fd_once (self, &filled, &end))
        {
        case READ_NOTHING:
          return TRUE;
        case READ_END:
          reading_done (self, end);
          return FALSE;
        case READ_SOME:
          break;
        }

      hand_on_frames (self, FALSE);
      if (g_cancellable_is_cancelled (self->cancellable))
        {
          reading_done (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "aborted"));
          return FALSE;
        }
      if ((gsize) g_atomic_pointer_get (&self->unconsumed) > EXECNET_WIRE_UNCONSUMED_HIGH)
        {
          EXECNET_NOTE (WIRE, self->gateway_id, "%s: reading paused: too much unconsumed", self->description);
          g_mutex_lock (&self->lock);
          self->read_parked = TRUE;
          g_mutex_unlock (&self->lock);
          return TRUE;
        }
      if (!filled)
        break;
    }
  return TRUE;
}

/* I/O thread: in_fd is readable, or someone nudged the source (a leader
 * came or went, consumers caught up, the wire was aborted). */
static gboolean
read_source_dispatch (GSource     *source,
                      GSourceFunc  callback,
                      gpointer     user_data)
{
  ReadSource *read_source = (ReadSource *) source;
  ExecnetWire *self = user_data;
  GIOCondition revents = read_source->pollfd.revents;
  gboolean go_on;

  read_source->pollfd.revents = 0;
  /* Cleared before the state is read: a nudge after this runs us again. */
  g_atomic_int_set (&read_source->nudged, FALSE);

  g_mutex_lock (&self->lock);
  if (self->leader != NULL)
    {
      /* A receiving thread reads; it nudges us when it is done. */
      g_mutex_unlock (&self->lock);
      read_source_watch (read_source, FALSE, revents);
      return G_SOURCE_CONTINUE;
    }
  self->io_busy = TRUE;
  g_mutex_unlock (&self->lock);

  go_on = io_read_fd (self, revents);

  g_mutex_lock (&self->lock);
  self->io_busy = FALSE;
  if (self->lead_waiters > 0)
    g_cond_broadcast (&self->read_cond);
  g_mutex_unlock (&self->lock);
  /* read_parked is the I/O thread's to write. */
  if (go_on)
    read_source_watch (read_source, !self->read_parked, revents);

  return go_on ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Any thread: has the I/O thread look at the reading turn again. */
static void
nudge_read_source (ExecnetWire *self)
{
  ReadSource *read_source = (ReadSource *) self->read_source;

  if (g_atomic_int_compare_and_exchange (&read_source->nudged, FALSE, TRUE))
    g_main_context_wakeup (_execnet_io_worker_get_context ());
}

/* Called with the lock held: whether a receiving thread may take the
 * reading turn now, once the I/O thread is not busy. */
static gboolean
can_lead_unlocked (ExecnetWire *self)
{
  return self->reading && self->leader == NULL && !self->end_pending && !self->read_parked &&
         self->tap == NULL && !g_cancellable_is_cancelled (self->cancellable) &&
         (gsize) g_atomic_pointer_get (&self->unconsumed) <= EXECNET_WIRE_UNCONSUMED_HIGH;
}

/* The leader: reads and hands on frames until @done, the deadline, or
 * something only the I/O thread may handle. */
static void
lead (ExecnetWire         *self,
      ExecnetWireLeadDone  done,
      gpointer             data,
      gint64               deadline)
{
  struct pollfd fds[2] = {
    { .fd = self->in_fd, .events = POLLIN },
    { .fd = self->wake_fd, .events = POLLIN },
  };

  for (;;)
    {
      GError *end = NULL;
      gboolean filled = FALSE;
      struct timespec timeout;
      int n;

      if (!hand_on_frames (self, TRUE) || done (data) ||
          g_cancellable_is_cancelled (self->cancellable) ||
          (gsize) g_atomic_pointer_get (&self->unconsumed) > EXECNET_WIRE_UNCONSUMED_HIGH)
        return;

      if (deadline >= 0)
        {
          gint64 left = MAX (deadline - g_get_monotonic_time (), 0);

          timeout.tv_sec = left / G_USEC_PER_SEC;
          timeout.tv_nsec = (left % G_USEC_PER_SEC) * 1000;
        }
      n = ppoll (fds, G_N_ELEMENTS (fds), deadline >= 0 ? &timeout : NULL, NULL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return;
      if (fds[1].revents != 0)
        {
          eventfd_t count;

          eventfd_read (self->wake_fd, &count);
        }
      if (fds[0].revents == 0)
        continue;

      if (read_fd_once (self, &filled, &end) == READ_END)
        {
          /* read_closed runs in the I/O thread: leave the end to it. */
          g_mutex_lock (&self->lock);
          self->end_pending = TRUE;
          self->end_error = end;
          g_mutex_unlock (&self->lock);
          return;
        }
    }
}

/* Any thread but the I/O thread, holding no lock: a receive that would
 * block takes the reading turn, if it may, and reads the stream itself
 * until @done (@data) is TRUE (checked after every read), the monotonic
 * @deadline (negative: none) passes, or something needs the I/O thread;
 * then it gives the turn back. If the I/O thread is busy reading, it
 * waits for it instead, up to the deadline. Returns FALSE when it may not
 * lead (the input is not a file descriptor, another thread leads, reading
 * is parked or ended, a wire tap is set): the caller then waits for the
 * I/O thread to deliver, as it would without leaders. Returns TRUE
 * otherwise: the caller checks again what it waits for and its deadline. */
gboolean
_execnet_wire_lead (ExecnetWire         *self,
                    ExecnetWireLeadDone  done,
                    gpointer             data,
                    gint64               deadline)
{
  if (self->in_fd < 0 || _execnet_io_worker_is_current () || _execnet_io_worker_is_stand_in ())
    return FALSE;

  g_mutex_lock (&self->lock);
  if (!can_lead_unlocked (self))
    {
      g_mutex_unlock (&self->lock);
      return FALSE;
    }
  if (self->io_busy)
    {
      /* It may be delivering what the caller waits for. */
      self->lead_waiters++;
      if (deadline < 0)
        g_cond_wait (&self->read_cond, &self->lock);
      else
        g_cond_wait_until (&self->read_cond, &self->lock, deadline);
      self->lead_waiters--;
      g_mutex_unlock (&self->lock);
      return TRUE;
    }
  self->leader = g_thread_self ();
  g_mutex_unlock (&self->lock);
  /* The I/O thread stops polling in_fd. */
  nudge_read_source (self);
  EXECNET_NOTE (WIRE, self->gateway_id, "%s: a receive reads", self->description);

  _execnet_io_worker_set_stand_in (TRUE);
  lead (self, done, data, deadline);
  _execnet_io_worker_set_stand_in (FALSE);

  g_mutex_lock (&self->lock);
  self->leader = NULL;
  g_mutex_unlock (&self->lock);
  /* The I/O thread reads on, and reports an end the leader met. */
  nudge_read_source (self);

  return TRUE;
}

/* Any thread: a leader, if there is one, looks again at what it waits
 * for (something other than a frame ended it: a local close). */
void
_execnet_wire_wake_leader (ExecnetWire *self)
{
  gboolean leading;

  if (self->wake_fd < 0)
    return;
  g_mutex_lock (&self->lock);
  leading = self->leader != NULL;
  g_mutex_unlock (&self->lock);
  if (leading)
    eventfd_write (self->wake_fd, 1);
}

/* I/O thread: one read_async finished (streams that are not file
 * descriptors). */
static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  ExecnetWire *self = user_data;
  GError *error = NULL;
  gssize n_read;

  /* I/O thread */
  n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n_read < 0)
    reading_done (self, input_end_error (self, error));
  else if (n_read == 0)
    reading_done (self, input_end_error (self, NULL));
  else if (!_execnet_frame_reader_commit (self->reader, n_read, &error))
    {
      g_prefix_error (&error, "garbage from %s: ", self->description);
      reading_done (self, error);
    }
  else
    {
      hand_on_frames (self, FALSE);

      if (g_cancellable_is_cancelled (self->cancellable))
        reading_done (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "aborted"));
      else if ((gsize) g_atomic_pointer_get (&self->unconsumed) > EXECNET_WIRE_UNCONSUMED_HIGH)
        {
          EXECNET_NOTE (WIRE, self->gateway_id, "%s: reading paused: too much unconsumed", self->description);
          g_mutex_lock (&self->lock);
          self->read_parked = TRUE;
          g_mutex_unlock (&self->lock);
        }
      else
        read_more (self);
    }

  _execnet_wire_unref (self);
}

/* I/O thread */
static void
read_more (ExecnetWire *self)
{
  GInputStream *input = g_io_stream_get_input_stream (execnet_connection_get_stream (self->connection));
  gsize size;
  guint8 *buffer = _execnet_frame_reader_get_buffer (self->reader, &size);

  g_input_stream_read_async (input, buffer, size, G_PRIORITY_DEFAULT,
                             self->cancellable, on_read, _execnet_wire_ref (self));
}

static gboolean
start_in_io_thread (gpointer data)
{
  read_more (data);
  return G_SOURCE_REMOVE;
}

/* Any thread: reading begins in the I/O thread. */
static void
start_reading (ExecnetWire *self)
{
  g_mutex_lock (&self->lock);
  self->reading = TRUE;
  g_mutex_unlock (&self->lock);

  if (self->read_source != NULL)
    g_source_attach (self->read_source, _execnet_io_worker_get_context ());
  else if (_execnet_io_worker_is_current ())
    read_more (self);
  else
    _execnet_io_worker_invoke (start_in_io_thread, _execnet_wire_ref (self),
                               (GDestroyNotify) _execnet_wire_unref);
}

/* I/O thread: reading goes on, if it was parked and consumers caught up,
 * or ends if the wire was aborted meanwhile (read_async only). */
static gboolean
resume_in_io_thread (gpointer data)
{
  ExecnetWire *self = data;

  if (!self->read_parked)
    return G_SOURCE_REMOVE;

  if (g_cancellable_is_cancelled (self->cancellable))
    {
      self->read_parked = FALSE;
      reading_done (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "aborted"));
    }
  else if ((gsize) g_atomic_pointer_get (&self->unconsumed) < EXECNET_WIRE_UNCONSUMED_LOW)
    {
      g_mutex_lock (&self->lock);
      self->read_parked = FALSE;
      g_mutex_unlock (&self->lock);
      EXECNET_NOTE (WIRE, self->gateway_id, "%s: reading again", self->description);
      read_more (self);
    }
  return G_SOURCE_REMOVE;
}

/* Any thread: the I/O thread looks at a parked or aborted reader again. */
static void
resume_reading (ExecnetWire *self)
{
  if (self->read_source != NULL)
    nudge_read_source (self);
  else
    _execnet_io_worker_invoke (resume_in_io_thread, _execnet_wire_ref (self),
                               (GDestroyNotify) _execnet_wire_unref);
}

/* Any thread: @delta bytes were delivered on a channel (positive) or
 * taken from one (negative); every delivered byte is taken exactly once.
 * A decrease that crosses the low mark asks the I/O thread to go on
 * reading if it parked. */
void
_execnet_wire_account (ExecnetWire *self,
                       gssize       delta)
{
  gsize before = (gsize) g_atomic_pointer_add (&self->unconsumed, delta);

  if (delta < 0)
    {
      g_assert (before >= (gsize) -delta);
      if (before >= EXECNET_WIRE_UNCONSUMED_LOW && before + delta < EXECNET_WIRE_UNCONSUMED_LOW)
        resume_reading (self);
    }
}

/* Any thread: stops reading and writing; read_closed reports @error. */
void
_execnet_wire_abort (ExecnetWire  *self,
                     const GError *error)
{
  g_mutex_lock (&self->lock);
  if (self->abort_error == NULL)
    self->abort_error = g_error_copy (error);
  kill_writing_unlocked (self, g_error_copy (error));
  g_mutex_unlock (&self->lock);

  g_cancellable_cancel (self->cancellable);
  /* A leader gives the turn back; a parked reader, or one that reads the
   * fd with its own source, has no read to cancel: wake it to end. */
  _execnet_wire_wake_leader (self);
  resume_reading (self);
}
