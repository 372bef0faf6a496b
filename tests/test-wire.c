/* test-wire.c: the wire on its own, against a C peer over a socketpair
 *
 * The wire (core/execnet-wire.c) is tested here without a gateway or a
 * remote interpreter: the test plays the other side with plain reads and
 * writes on the second socket of a pair, byte-exact.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gio/gio.h>
#include <execnet/execnet.h>

#include "execnet-frame-private.h"
#include "execnet-wire-private.h"

/* Generous: the machine may be loaded. */
#define WAIT_USEC (60 * G_USEC_PER_SEC)

typedef struct
{
  ExecnetMessageCode code;
  gint32 channel;
  GBytes *payload;  /* (owned) */
} Received;

typedef struct
{
  GMutex lock;
  GCond cond;
  GPtrArray *received;  /* (element-type Received) guarded by lock */
  gboolean closed;      /* guarded by lock */
  GError *close_error;  /* (owned) (nullable) guarded by lock */

  GObject *owner;       /* (owned) carries a pointer to this fixture */
  ExecnetWire *wire;    /* (owned) */
  int peer;             /* the test's end of the socketpair */
} Fixture;

static void
received_free (gpointer data)
{
  Received *received = data;

  g_bytes_unref (received->payload);
  g_free (received);
}

/* I/O thread */
static void
on_frame (GObject            *owner,
          ExecnetMessageCode  code,
          gint32              channel,
          GBytes             *payload)
{
  Fixture *f = g_object_get_data (owner, "fixture");
  Received *received = g_new0 (Received, 1);

  received->code = code;
  received->channel = channel;
  received->payload = g_bytes_ref (payload);
  g_mutex_lock (&f->lock);
  g_ptr_array_add (f->received, received);
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
}

/* I/O thread */
static void
on_read_closed (GObject      *owner,
                const GError *error)
{
  Fixture *f = g_object_get_data (owner, "fixture");

  g_mutex_lock (&f->lock);
  g_assert_false (f->closed);
  f->closed = TRUE;
  f->close_error = error != NULL ? g_error_copy (error) : NULL;
  g_cond_broadcast (&f->cond);
  g_mutex_unlock (&f->lock);
}

static const ExecnetWireHandler handler = { on_frame, on_read_closed };

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) stream = NULL;
  g_autoptr(ExecnetConnection) connection = NULL;
  int fds[2];

  g_mutex_init (&f->lock);
  g_cond_init (&f->cond);
  f->received = g_ptr_array_new_with_free_func (received_free);

  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), ==, 0);
  f->peer = fds[1];
  socket = g_socket_new_from_fd (fds[0], &error);
  g_assert_no_error (error);
  stream = g_socket_connection_factory_create_connection (socket);
  connection = g_object_new (EXECNET_TYPE_CONNECTION, "stream", stream, NULL);

  f->owner = g_object_new (G_TYPE_OBJECT, NULL);
  g_object_set_data (f->owner, "fixture", f);
  f->wire = _execnet_wire_new (connection, "test", "the test peer", &handler, f->owner);
}

static void
wait_closed (Fixture *f)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_USEC;

  g_mutex_lock (&f->lock);
  while (!f->closed)
    if (!g_cond_wait_until (&f->cond, &f->lock, deadline))
      g_error ("the wire did not report the end of reading in time");
  g_mutex_unlock (&f->lock);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(GError) stop = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "test over");

  _execnet_wire_abort (f->wire, stop);
  wait_closed (f);
  g_clear_pointer (&f->wire, _execnet_wire_unref);
  g_clear_object (&f->owner);
  if (f->peer >= 0)
    close (f->peer);
  g_ptr_array_unref (f->received);
  g_clear_error (&f->close_error);
  g_mutex_clear (&f->lock);
  g_cond_clear (&f->cond);
}

/* Waits until @n frames arrived. */
static void
wait_received (Fixture *f,
               guint    n)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_USEC;

  g_mutex_lock (&f->lock);
  while (f->received->len < n && !f->closed)
    if (!g_cond_wait_until (&f->cond, &f->lock, deadline))
      break;
  g_assert_cmpuint (f->received->len, >=, n);
  g_mutex_unlock (&f->lock);
}

static void
peer_write (Fixture    *f,
            const void *data,
            gsize       size)
{
  const guint8 *p = data;

  while (size > 0)
    {
      ssize_t n = write (f->peer, p, size);

      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      p += n;
      size -= n;
    }
}

static void
peer_read (Fixture *f,
           void    *data,
           gsize    size)
{
  guint8 *p = data;

  while (size > 0)
    {
      struct pollfd pfd = { f->peer, POLLIN, 0 };
      ssize_t n;

      g_assert_cmpint (poll (&pfd, 1, WAIT_USEC / 1000), ==, 1);
      n = read (f->peer, p, size);
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >, 0);
      p += n;
      size -= n;
    }
}

/* Reads one frame as the peer and checks it. */
static void
peer_expect_frame (Fixture            *f,
                   ExecnetMessageCode  code,
                   gint32              channel,
                   const guint8       *payload,
                   gsize               size)
{
  guint8 header[EXECNET_FRAME_HEADER_SIZE];
  g_autofree guint8 *got = g_malloc (size + 1);
  g_autoptr(GError) error = NULL;
  ExecnetMessageCode got_code;
  gint32 got_channel, got_length;

  peer_read (f, header, sizeof header);
  g_assert_true (_execnet_frame_header_decode (header, G_MAXINT32, &got_code, &got_channel,
                                               &got_length, &error));
  g_assert_no_error (error);
  g_assert_cmpint (got_code, ==, code);
  g_assert_cmpint (got_channel, ==, channel);
  g_assert_cmpint (got_length, ==, (gint32) size);
  peer_read (f, got, size);
  g_assert_true (size == 0 || memcmp (got, payload, size) == 0);
}

static GBytes *
make_frame_bytes (ExecnetMessageCode  code,
                  gint32              channel,
                  const guint8       *payload,
                  gsize               size)
{
  g_autoptr(GByteArray) frame = g_byte_array_new ();
  guint8 header[EXECNET_FRAME_HEADER_SIZE];

  _execnet_frame_header_encode (header, code, channel, (gint32) size);
  g_byte_array_append (frame, header, sizeof header);
  g_byte_array_append (frame, payload, size);
  return g_byte_array_free_to_bytes (g_steal_pointer (&frame));
}

/* A payload whose every byte says where it is. */
static guint8 *
make_pattern (gsize size,
              guint seed)
{
  guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) ((i * 7 + seed) ^ (i >> 11));
  return data;
}

static void
send_bytes (Fixture            *f,
            ExecnetMessageCode  code,
            gint32              channel,
            const guint8       *payload,
            gsize               size)
{
  g_autoptr(GPtrArray) chunks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(GError) error = NULL;

  /* Two chunks, so that vectors are joined on the way out. */
  if (size > 0)
    {
      g_ptr_array_add (chunks, g_bytes_new (payload, size / 2));
      g_ptr_array_add (chunks, g_bytes_new (payload + size / 2, size - size / 2));
    }
  g_assert_true (_execnet_wire_send (f->wire, code, channel, size > 0 ? chunks : NULL, &error));
  g_assert_no_error (error);
}

/* Small frames go out at once, in order, byte-exact. */
static void
test_send_write_through (Fixture       *f,
                         gconstpointer  data)
{
  const guint8 hello[] = "hello";

  send_bytes (f, EXECNET_MESSAGE_CHANNEL_DATA, 3, hello, 5);
  send_bytes (f, EXECNET_MESSAGE_CHANNEL_CLOSE, 3, NULL, 0);
  send_bytes (f, EXECNET_MESSAGE_CHANNEL_EXEC, -2, hello, 1);

  peer_expect_frame (f, EXECNET_MESSAGE_CHANNEL_DATA, 3, hello, 5);
  peer_expect_frame (f, EXECNET_MESSAGE_CHANNEL_CLOSE, 3, NULL, 0);
  peer_expect_frame (f, EXECNET_MESSAGE_CHANNEL_EXEC, -2, hello, 1);
}

typedef struct
{
  Fixture *f;
  guint n_frames;
  gsize size;
  gint32 channel;
  gint sent;  /* atomic */
} Sender;

static gpointer
sender_thread (gpointer data)
{
  Sender *sender = data;

  for (guint i = 0; i < sender->n_frames; i++)
    {
      g_autofree guint8 *payload = make_pattern (sender->size, i + (guint) sender->channel);

      send_bytes (sender->f, EXECNET_MESSAGE_CHANNEL_DATA, sender->channel, payload, sender->size);
      g_atomic_int_inc (&sender->sent);
    }
  return NULL;
}

/* A frame larger than the socket buffer is written in parts, the rest
 * queued; what follows it waits its turn. */
static void
test_send_queued (Fixture       *f,
                  gconstpointer  data)
{
  gsize size = 8 << 20;
  g_autofree guint8 *large = make_pattern (size, 1);
  const guint8 tail[] = "tail";

  send_bytes (f, EXECNET_MESSAGE_CHANNEL_DATA, 1, large, size);
  send_bytes (f, EXECNET_MESSAGE_CHANNEL_DATA, 2, tail, 4);

  peer_expect_frame (f, EXECNET_MESSAGE_CHANNEL_DATA, 1, large, size);
  peer_expect_frame (f, EXECNET_MESSAGE_CHANNEL_DATA, 2, tail, 4);
}

/* Several threads send at once: each one's frames arrive whole and in the
 * order it sent them. */
static void
test_send_batches (Fixture       *f,
                   gconstpointer  data)
{
  Sender senders[4];
  GThread *threads[G_N_ELEMENTS (senders)];
  guint next[G_N_ELEMENTS (senders)] = { 0 };
  guint n_frames = 200;

  for (guint i = 0; i < G_N_ELEMENTS (senders); i++)
    {
      senders[i] = (Sender) { f, n_frames, 100 + i * 300, (gint32) i, 0 };
      threads[i] = g_thread_new ("sender", sender_thread, &senders[i]);
    }

  for (guint k = 0; k < n_frames * G_N_ELEMENTS (senders); k++)
    {
      guint8 header[EXECNET_FRAME_HEADER_SIZE];
      ExecnetMessageCode code;
      gint32 channel, length;
      g_autofree guint8 *payload = NULL;
      g_autofree guint8 *expected = NULL;

      peer_read (f, header, sizeof header);
      g_assert_true (_execnet_frame_header_decode (header, G_MAXINT32, &code, &channel, &length, NULL));
      g_assert_cmpint (channel, >=, 0);
      g_assert_cmpint (channel, <, (gint32) G_N_ELEMENTS (senders));
      g_assert_cmpint (length, ==, (gint32) senders[channel].size);
      payload = g_malloc (length);
      peer_read (f, payload, length);
      expected = make_pattern (length, next[channel] + (guint) channel);
      g_assert_true (memcmp (payload, expected, length) == 0);
      next[channel]++;
    }

  for (guint i = 0; i < G_N_ELEMENTS (senders); i++)
    {
      g_thread_join (threads[i]);
      g_assert_cmpuint (next[i], ==, n_frames);
    }
}

/* While the peer reads nothing, senders block once the write queue is full,
 * and go on when it drains. */
static void
test_send_backpressure (Fixture       *f,
                        gconstpointer  data)
{
  Sender sender = { f, 5, 8 << 20, 9, 0 };
  GThread *thread = g_thread_new ("sender", sender_thread, &sender);
  gint64 until;

  /* Not a synchronisation: a bounded look for the absence of progress. */
  until = g_get_monotonic_time () + G_USEC_PER_SEC / 5;
  while (g_get_monotonic_time () < until)
    {
      g_assert_cmpint (g_atomic_int_get (&sender.sent), <, (gint) sender.n_frames);
      g_thread_yield ();
    }

  for (guint i = 0; i < sender.n_frames; i++)
    {
      g_autofree guint8 *expected = make_pattern (sender.size, i + 9);

      peer_expect_frame (f, EXECNET_MESSAGE_CHANNEL_DATA, 9, expected, sender.size);
    }
  g_thread_join (thread);
  g_assert_cmpint (g_atomic_int_get (&sender.sent), ==, (gint) sender.n_frames);
}

/* Frames that trickle in a byte at a time arrive whole. */
static void
test_receive_partial (Fixture       *f,
                      gconstpointer  data)
{
  const guint8 payload[] = "partial writes";
  g_autoptr(GBytes) first = make_frame_bytes (EXECNET_MESSAGE_CHANNEL_DATA, 5, payload, 14);
  g_autoptr(GBytes) second = make_frame_bytes (EXECNET_MESSAGE_CHANNEL_CLOSE, 5, NULL, 0);
  GBytes *frames[] = { first, second };

  for (guint i = 0; i < G_N_ELEMENTS (frames); i++)
    {
      gsize size;
      const guint8 *bytes = g_bytes_get_data (frames[i], &size);

      for (gsize k = 0; k < size; k++)
        peer_write (f, bytes + k, 1);
    }

  wait_received (f, 2);
  g_mutex_lock (&f->lock);
  {
    Received *a = g_ptr_array_index (f->received, 0);
    Received *b = g_ptr_array_index (f->received, 1);

    g_assert_cmpint (a->code, ==, EXECNET_MESSAGE_CHANNEL_DATA);
    g_assert_cmpint (a->channel, ==, 5);
    g_assert_cmpmem (g_bytes_get_data (a->payload, NULL), g_bytes_get_size (a->payload), payload, 14);
    g_assert_cmpint (b->code, ==, EXECNET_MESSAGE_CHANNEL_CLOSE);
    g_assert_cmpuint (g_bytes_get_size (b->payload), ==, 0);
  }
  g_mutex_unlock (&f->lock);
}

/* The peer ends after every possible prefix of a frame: at a frame's
 * boundary that is a clean end, inside one a partial-input error. */
static void
test_receive_eof_everywhere (void)
{
  const guint8 payload[] = "0123456789abcdefghij";
  g_autoptr(GBytes) whole = make_frame_bytes (EXECNET_MESSAGE_CHANNEL_DATA, 1, payload, 20);
  gsize size;
  const guint8 *bytes = g_bytes_get_data (whole, &size);

  for (gsize cut = 0; cut <= size; cut++)
    {
      Fixture f = { 0 };

      fixture_set_up (&f, NULL);
      /* One whole frame first, so the wire is past its start. */
      peer_write (&f, bytes, size);
      if (cut > 0)
        peer_write (&f, bytes, cut);
      close (f.peer);
      f.peer = -1;
      wait_closed (&f);

      g_mutex_lock (&f.lock);
      if (cut == 0 || cut == size)
        {
          g_assert_no_error (f.close_error);
          g_assert_cmpuint (f.received->len, ==, cut == 0 ? 1 : 2);
        }
      else
        {
          g_assert_error (f.close_error, G_IO_ERROR, G_IO_ERROR_PARTIAL_INPUT);
          g_assert_cmpuint (f.received->len, ==, 1);
        }
      g_mutex_unlock (&f.lock);
      fixture_tear_down (&f, NULL);
    }
}

/* Not a synchronisation: a bounded look for the absence of progress. */
static void
assert_no_more_received (Fixture *f,
                         guint    count)
{
  gint64 until = g_get_monotonic_time () + G_USEC_PER_SEC / 5;

  g_mutex_lock (&f->lock);
  while (g_cond_wait_until (&f->cond, &f->lock, until))
    ;
  g_assert_cmpuint (f->received->len, ==, count);
  g_mutex_unlock (&f->lock);
}

/* The read cap: past the high mark of unconsumed bytes the read side stops
 * after what it has already read, and goes on only once consumers bring
 * the count below the low mark, not as soon as it drops under the high
 * one. */
static void
test_receive_paused (Fixture       *f,
                     gconstpointer  data)
{
  const guint8 payload[] = "ab";
  g_autoptr(GBytes) frame = make_frame_bytes (EXECNET_MESSAGE_CHANNEL_DATA, 1, payload, 2);

  _execnet_wire_account (f->wire, EXECNET_WIRE_UNCONSUMED_HIGH + 1);
  /* The read already under way takes this one. */
  peer_write (f, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame));
  wait_received (f, 1);

  peer_write (f, g_bytes_get_data (frame, NULL), g_bytes_get_size (frame));
  assert_no_more_received (f, 1);

  /* Between the marks: still parked. */
  _execnet_wire_account (f->wire, -(gssize) (EXECNET_WIRE_UNCONSUMED_HIGH - EXECNET_WIRE_UNCONSUMED_LOW));
  assert_no_more_received (f, 1);

  /* Below the low mark: reading goes on. */
  _execnet_wire_account (f->wire, -2);
  wait_received (f, 2);
  _execnet_wire_account (f->wire, -(gssize) (EXECNET_WIRE_UNCONSUMED_LOW - 1));
}

/* Aborting while a large frame is half written ends reading with the
 * abort's error and refuses further sends; nothing waits for ever. */
static void
test_abort_mid_frame (Fixture       *f,
                      gconstpointer  data)
{
  gsize size = 8 << 20;
  g_autofree guint8 *large = make_pattern (size, 3);
  g_autoptr(GError) abort_error = g_error_new_literal (EXECNET_ERROR, EXECNET_ERROR_PROTOCOL, "stop here");
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) chunks = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  guint8 some[4096];

  send_bytes (f, EXECNET_MESSAGE_CHANNEL_DATA, 1, large, size);
  /* The first part has gone out: the frame is half written. */
  peer_read (f, some, sizeof some);

  _execnet_wire_abort (f->wire, abort_error);
  wait_closed (f);
  g_mutex_lock (&f->lock);
  g_assert_error (f->close_error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_mutex_unlock (&f->lock);

  g_ptr_array_add (chunks, g_bytes_new_static ("x", 1));
  g_assert_false (_execnet_wire_send (f->wire, EXECNET_MESSAGE_CHANNEL_DATA, 1, chunks, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
}

/* ExecnetMessageCode is a registered enum with the protocol's values. */
static void
test_message_code_type (void)
{
  g_autoptr(GEnumClass) klass = g_type_class_ref (EXECNET_TYPE_MESSAGE_CODE);
  GEnumValue *value = g_enum_get_value (klass, EXECNET_MESSAGE_CHANNEL_DATA);

  g_assert_nonnull (value);
  g_assert_cmpint (value->value, ==, 4);
  g_assert_cmpstr (value->value_nick, ==, "channel-data");
  g_assert_cmpstr (execnet_message_code_name (value->value), ==, "CHANNEL_DATA");
  g_assert_cmpuint (klass->n_values, ==, 8);
  g_assert_true (G_TYPE_IS_ENUM (EXECNET_TYPE_ERROR));
  g_assert_true (G_TYPE_IS_ENUM (EXECNET_TYPE_BOOTSTRAP_MODE));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("/wire/send/write-through", test_send_write_through);
  ADD ("/wire/send/queued", test_send_queued);
  ADD ("/wire/send/batches", test_send_batches);
  ADD ("/wire/send/backpressure", test_send_backpressure);
  ADD ("/wire/receive/partial", test_receive_partial);
  ADD ("/wire/receive/paused", test_receive_paused);
  ADD ("/wire/abort/mid-frame", test_abort_mid_frame);
#undef ADD
  g_test_add_func ("/wire/receive/eof-everywhere", test_receive_eof_everywhere);
  g_test_add_func ("/wire/message-code/type", test_message_code_type);

  return g_test_run ();
}
