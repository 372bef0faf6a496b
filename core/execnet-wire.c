/* execnet-wire.c: framed, queued I/O on one connection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/uio.h>

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
 * Reading: the I/O thread reads straight into the buffers the frame reader
 * hands out and passes each complete frame to the owner's handler. The
 * wire also owns the count of delivered bytes that wait unconsumed, and
 * the decision to park reading while there are too many
 * (_execnet_wire_account); the remote side's writes then block, which
 * bounds memory on both sides.
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

  /* I/O thread only: */
  ExecnetFrameReader *reader;      /* (owned) */
  GPtrArray *in_flight;            /* (owned) (element-type QueuedFrame) being written */
  GArray *vectors;                 /* (owned) (element-type GOutputVector) for in_flight */
  guint vector_index;              /* the first vector not yet written, with fd */
  gboolean write_closed;           /* close_write() was called on the connection */
  gboolean read_parked;            /* reading stopped for backpressure */

  /* Any thread, atomically: the bytes of delivered items that wait
   * unconsumed (_execnet_wire_account). The I/O thread alone decides to
   * park reading, after each read, and to go on, in resume_in_io_thread. */
  gsize unconsumed;

  GMutex lock;                     /* guards the fields below */
  GCond cond;                      /* signalled when queued_bytes drops or writing dies */
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
    g_cond_wait (&self->cond, &self->lock);

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

static void
on_read (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  ExecnetWire *self = user_data;
  GError *error = NULL;
  gssize n_read;
  ExecnetMessageCode code;
  gint32 channel;
  GBytes *payload;

  /* I/O thread */
  n_read = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n_read < 0)
    {
      if (!_execnet_frame_reader_is_idle (self->reader) &&
          !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          GError *partial = g_error_new (G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                                         "%s: %s", self->description, error->message);

          g_error_free (error);
          error = partial;
        }
      reading_done (self, error);
    }
  else if (n_read == 0)
    {
      /* Not garbage: a remote that dies while it writes leaves half a
       * frame, whichever transport carried it. It is a lost connection,
       * as a read error or a clean end would be. */
      if (!_execnet_frame_reader_is_idle (self->reader))
        error = g_error_new (G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT,
                             "%s closed the connection in the middle of a message",
                             self->description);
      reading_done (self, error);
    }
  else if (!_execnet_frame_reader_commit (self->reader, n_read, &error))
    {
      g_prefix_error (&error, "garbage from %s: ", self->description);
      reading_done (self, error);
    }
  else
    {
      while (!g_cancellable_is_cancelled (self->cancellable) &&
             _execnet_frame_reader_pop (self->reader, &code, &channel, &payload))
        {
          if (EXECNET_DEBUG_ENABLED (EXECNET_DEBUG_WIRE))
            EXECNET_NOTE (WIRE, self->gateway_id, "%s <- %s channel=%d length=%" G_GSIZE_FORMAT,
                                  self->description, execnet_message_code_name (code),
                                  channel, g_bytes_get_size (payload));
          tap_and_debug_frame (self, FALSE, code, channel, NULL, payload);
          self->handler->frame (self->owner, code, channel, payload);
          g_bytes_unref (payload);
        }

      if (g_cancellable_is_cancelled (self->cancellable))
        reading_done (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "aborted"));
      else if ((gsize) g_atomic_pointer_get (&self->unconsumed) > EXECNET_WIRE_UNCONSUMED_HIGH)
        {
          EXECNET_NOTE (WIRE, self->gateway_id, "%s: reading paused: too much unconsumed", self->description);
          self->read_parked = TRUE;
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

  if (_execnet_io_worker_is_current ())
    read_more (self);
  else
    _execnet_io_worker_invoke (start_in_io_thread, _execnet_wire_ref (self),
                               (GDestroyNotify) _execnet_wire_unref);
}

/* I/O thread: reading goes on, if it was parked and consumers caught up,
 * or ends if the wire was aborted meanwhile. */
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
      self->read_parked = FALSE;
      EXECNET_NOTE (WIRE, self->gateway_id, "%s: reading again", self->description);
      read_more (self);
    }
  return G_SOURCE_REMOVE;
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
        _execnet_io_worker_invoke (resume_in_io_thread, _execnet_wire_ref (self),
                                   (GDestroyNotify) _execnet_wire_unref);
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
  /* A parked reader has no read to cancel: wake it to end. */
  _execnet_io_worker_invoke (resume_in_io_thread, _execnet_wire_ref (self),
                             (GDestroyNotify) _execnet_wire_unref);
}
