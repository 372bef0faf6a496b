/* test-frame.c: the 9-byte frame codec and the incremental frame reader
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <execnet/execnet-error.h>

#include "execnet-frame-private.h"

#define BYTES(literal) literal, sizeof (literal) - 1

/* ---------------------------------------------------------------------- */
/* Message codes and headers                                               */

static void
test_code_names (void)
{
  static const struct {
    int         code;
    const char *name;
  } cases[] = {
    { 0, "STATUS" },
    { 1, "RECONFIGURE" },
    { 2, "GATEWAY_TERMINATE" },
    { 3, "CHANNEL_EXEC" },
    { 4, "CHANNEL_DATA" },
    { 5, "CHANNEL_CLOSE" },
    { 6, "CHANNEL_CLOSE_ERROR" },
    { 7, "CHANNEL_LAST_MESSAGE" },
    { 8, "UNKNOWN" },
    { -1, "UNKNOWN" },
    { 42, "UNKNOWN" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpstr (execnet_message_code_name (cases[i].code), ==, cases[i].name);
}

typedef struct {
  const char        *name;
  ExecnetMessageCode code;
  gint32             channel;
  gint32             length;
  const char        *header;   /* 9 bytes */
} HeaderCase;

static const HeaderCase header_cases[] = {
  { "status", EXECNET_MESSAGE_STATUS, 0, 0, "\0\0\0\0\0\0\0\0\0" },
  { "channel-data", EXECNET_MESSAGE_CHANNEL_DATA, 1, 5, "\4\0\0\0\1\0\0\0\5" },
  { "channel-exec", EXECNET_MESSAGE_CHANNEL_EXEC, 3, 0x01020304, "\3\0\0\0\3\1\2\3\4" },
  { "big-endian-channel", EXECNET_MESSAGE_CHANNEL_CLOSE, 0x7f000102, 0, "\5\177\0\1\2\0\0\0\0" },
  { "negative-channel", EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR, -2, 1, "\6\377\377\377\376\0\0\0\1" },
  { "last-message", EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE, 2, 16, "\7\0\0\0\2\0\0\0\20" },
  { "terminate", EXECNET_MESSAGE_GATEWAY_TERMINATE, 0, 0, "\2\0\0\0\0\0\0\0\0" },
  { "reconfigure", EXECNET_MESSAGE_RECONFIGURE, 0, 9, "\1\0\0\0\0\0\0\0\11" },
};

static void
test_header_encode (gconstpointer data)
{
  const HeaderCase *tc = data;
  guint8 header[EXECNET_FRAME_HEADER_SIZE];

  _execnet_frame_header_encode (header, tc->code, tc->channel, tc->length);
  g_assert_cmpmem (header, sizeof header, tc->header, EXECNET_FRAME_HEADER_SIZE);
}

static void
test_header_decode (gconstpointer data)
{
  const HeaderCase *tc = data;
  g_autoptr(GError) error = NULL;
  ExecnetMessageCode code;
  gint32 channel, length;
  gboolean ok;

  ok = _execnet_frame_header_decode ((const guint8 *) tc->header,
                                     EXECNET_FRAME_DEFAULT_MAX_PAYLOAD,
                                     &code, &channel, &length, &error);
  g_assert_no_error (error);
  g_assert_true (ok);
  g_assert_cmpint (code, ==, tc->code);
  g_assert_cmpint (channel, ==, tc->channel);
  g_assert_cmpint (length, ==, tc->length);
}

typedef struct {
  const char *name;
  const char *header;
  gsize       max_payload;
  const char *message;   /* NULL: valid */
} BadHeaderCase;

static const BadHeaderCase bad_header_cases[] = {
  { "at-limit", "\4\0\0\0\1\0\0\1\0", 256, NULL },
  { "over-limit", "\4\0\0\0\1\0\0\1\1", 256, "frame announces 257 bytes, more than the 256-byte limit" },
  { "over-default-limit", "\4\0\0\0\1\177\377\377\377", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD,
    "frame announces 2147483647 bytes, more than the 1073741824-byte limit" },
  { "default-limit", "\4\0\0\0\1\100\0\0\0", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD, NULL },
  { "zero-limit", "\4\0\0\0\1\0\0\0\1", 0, "frame announces 1 bytes, more than the 0-byte limit" },
  { "negative-length", "\4\0\0\0\1\377\377\377\373", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD,
    "frame announces a negative length (-5)" },
  { "min-length", "\4\0\0\0\1\200\0\0\0", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD,
    "frame announces a negative length (-2147483648)" },
  { "code-8", "\10\0\0\0\1\0\0\0\0", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD, "unknown message code 8" },
  { "code-42", "\52\0\0\0\1\0\0\0\0", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD, "unknown message code 42" },
  { "code-negative", "\377\0\0\0\1\0\0\0\0", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD, "unknown message code -1" },
  { "ascii-text", "GET / HTT", EXECNET_FRAME_DEFAULT_MAX_PAYLOAD, "unknown message code 71" },
};

static void
test_header_decode_bad (gconstpointer data)
{
  const BadHeaderCase *tc = data;
  g_autoptr(GError) error = NULL;
  ExecnetMessageCode code = 99;
  gint32 channel = 99, length = 99;
  gboolean ok;

  ok = _execnet_frame_header_decode ((const guint8 *) tc->header, tc->max_payload,
                                     &code, &channel, &length, &error);
  if (tc->message == NULL)
    {
      g_assert_no_error (error);
      g_assert_true (ok);
      return;
    }

  g_assert_false (ok);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, tc->message);
  /* Outputs are left alone on failure. */
  g_assert_cmpint (code, ==, 99);
  g_assert_cmpint (channel, ==, 99);
  g_assert_cmpint (length, ==, 99);
}

/* ---------------------------------------------------------------------- */
/* Reader                                                                  */

typedef struct {
  ExecnetMessageCode code;
  gint32             channel;
  GBytes            *payload;
} TestFrame;

static void
test_frame_clear (gpointer data)
{
  TestFrame *frame = data;

  g_clear_pointer (&frame->payload, g_bytes_unref);
}

/* Frames with payloads of the given sizes, cycling codes and channels, and
 * their concatenated encoding. */
static GArray *
make_frames (const gsize  *sizes,
             gsize         n_sizes,
             GBytes      **stream)
{
  GArray *frames = g_array_new (FALSE, FALSE, sizeof (TestFrame));
  GByteArray *out = g_byte_array_new ();

  g_array_set_clear_func (frames, test_frame_clear);

  for (gsize i = 0; i < n_sizes; i++)
    {
      TestFrame frame;
      guint8 header[EXECNET_FRAME_HEADER_SIZE];
      guint8 *payload = g_malloc (MAX (sizes[i], 1));

      for (gsize j = 0; j < sizes[i]; j++)
        payload[j] = (guint8) (i * 31 + j * 7 + (j >> 12));

      frame.code = i % (EXECNET_MESSAGE_LAST + 1);
      frame.channel = (gint32) (i * 2 + 1);
      frame.payload = g_bytes_new_take (payload, sizes[i]);
      g_array_append_val (frames, frame);

      _execnet_frame_header_encode (header, frame.code, frame.channel, (gint32) sizes[i]);
      g_byte_array_append (out, header, sizeof header);
      g_byte_array_append (out, payload, sizes[i]);
    }

  *stream = g_byte_array_free_to_bytes (out);
  return frames;
}

static void
pop_all (ExecnetFrameReader *reader,
         GPtrArray          *popped)
{
  ExecnetMessageCode code;
  gint32 channel;
  GBytes *payload;

  while (_execnet_frame_reader_pop (reader, &code, &channel, &payload))
    {
      TestFrame *frame = g_new (TestFrame, 1);

      g_assert_nonnull (payload);
      frame->code = code;
      frame->channel = channel;
      frame->payload = payload;
      g_ptr_array_add (popped, frame);
    }
}

static void
test_frame_free (gpointer data)
{
  test_frame_clear (data);
  g_free (data);
}

typedef gsize (*PieceFunc) (gsize index);

/* Feeds @stream as read() would, at most piece(i) bytes per commit. */
static GPtrArray *
feed_stream (ExecnetFrameReader *reader,
             GBytes             *stream,
             PieceFunc           piece)
{
  GPtrArray *popped = g_ptr_array_new_with_free_func (test_frame_free);
  gsize size;
  const guint8 *data = g_bytes_get_data (stream, &size);
  gsize pos = 0;

  for (gsize i = 0; pos < size; i++)
    {
      g_autoptr(GError) error = NULL;
      gsize room;
      guint8 *buffer = _execnet_frame_reader_get_buffer (reader, &room);
      gsize limit = piece (i);
      gsize n;

      g_assert_nonnull (buffer);
      g_assert_cmpuint (room, >, 0);

      n = MIN (MIN (room, size - pos), limit);
      memcpy (buffer, data + pos, n);
      pos += n;
      g_assert_true (_execnet_frame_reader_commit (reader, n, &error));
      g_assert_no_error (error);

      pop_all (reader, popped);
    }

  return popped;
}

static void
assert_frames_equal (GPtrArray *popped,
                     GArray    *expected)
{
  g_assert_cmpuint (popped->len, ==, expected->len);

  for (guint i = 0; i < expected->len; i++)
    {
      TestFrame *got = g_ptr_array_index (popped, i);
      TestFrame *want = &g_array_index (expected, TestFrame, i);

      g_assert_cmpint (got->code, ==, want->code);
      g_assert_cmpint (got->channel, ==, want->channel);
      g_assert_true (g_bytes_equal (got->payload, want->payload));
    }
}

static gsize
piece_whole (gsize index)
{
  return G_MAXSIZE;
}

static gsize
piece_one_byte (gsize index)
{
  return 1;
}

static gsize
piece_varied (gsize index)
{
  static const gsize sizes[] = { 1, 8, 9, 10, 100, 4096, 3, 16384, 65536, 7, 1000000 };

  return sizes[index % G_N_ELEMENTS (sizes)];
}

static const gsize mixed_sizes[] = {
  0, 1, 5, 9, 100, 0, 16383, 16384, 16385, 3, 20000, 0, 70000, 65527, 65536,
  300000, 12, 0, 1, 2, 262144, 262145, 40000, 7,
};

static void
test_reader_many_frames_one_chunk (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  g_autoptr(GBytes) stream = NULL;
  g_autoptr(GArray) frames = NULL;
  g_autoptr(GPtrArray) popped = NULL;
  gsize sizes[200];
  guint8 *buffer;
  gsize room;
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < G_N_ELEMENTS (sizes); i++)
    sizes[i] = i % 37;
  frames = make_frames (sizes, G_N_ELEMENTS (sizes), &stream);
  g_assert_cmpuint (g_bytes_get_size (stream), <, 64 * 1024);

  /* Everything arrives in one read() and comes out in one commit. */
  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  g_assert_cmpuint (room, >=, g_bytes_get_size (stream));
  memcpy (buffer, g_bytes_get_data (stream, NULL), g_bytes_get_size (stream));
  g_assert_true (_execnet_frame_reader_commit (reader, g_bytes_get_size (stream), &error));
  g_assert_no_error (error);
  g_assert_true (_execnet_frame_reader_is_idle (reader));

  popped = g_ptr_array_new_with_free_func (test_frame_free);
  pop_all (reader, popped);
  assert_frames_equal (popped, frames);
}

static void
test_reader_whole_reads (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  g_autoptr(GBytes) stream = NULL;
  g_autoptr(GArray) frames = make_frames (mixed_sizes, G_N_ELEMENTS (mixed_sizes), &stream);
  g_autoptr(GPtrArray) popped = feed_stream (reader, stream, piece_whole);

  assert_frames_equal (popped, frames);
  g_assert_true (_execnet_frame_reader_is_idle (reader));
}

static void
test_reader_byte_by_byte (void)
{
  static const gsize sizes[] = { 0, 3, 16384, 1, 20000, 0, 9 };
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  g_autoptr(GBytes) stream = NULL;
  g_autoptr(GArray) frames = make_frames (sizes, G_N_ELEMENTS (sizes), &stream);
  g_autoptr(GPtrArray) popped = feed_stream (reader, stream, piece_one_byte);

  assert_frames_equal (popped, frames);
  g_assert_true (_execnet_frame_reader_is_idle (reader));
}

static void
test_reader_varied_pieces (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  g_autoptr(GBytes) stream = NULL;
  g_autoptr(GArray) frames = make_frames (mixed_sizes, G_N_ELEMENTS (mixed_sizes), &stream);
  g_autoptr(GPtrArray) popped = feed_stream (reader, stream, piece_varied);

  assert_frames_equal (popped, frames);
  g_assert_true (_execnet_frame_reader_is_idle (reader));
}

static void
test_reader_random_pieces (void)
{
  g_autoptr(GBytes) stream = NULL;
  g_autoptr(GArray) frames = make_frames (mixed_sizes, G_N_ELEMENTS (mixed_sizes), &stream);
  gsize size;
  const guint8 *data = g_bytes_get_data (stream, &size);

  for (guint round = 0; round < 20; round++)
    {
      g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
      g_autoptr(GPtrArray) popped = g_ptr_array_new_with_free_func (test_frame_free);
      gsize pos = 0;

      while (pos < size)
        {
          gsize room;
          guint8 *buffer = _execnet_frame_reader_get_buffer (reader, &room);
          gsize piece = g_test_rand_int_range (1, 70000);
          gsize n = MIN (MIN (room, size - pos), piece);

          g_assert_cmpuint (room, >, 0);
          memcpy (buffer, data + pos, n);
          pos += n;
          g_assert_true (_execnet_frame_reader_commit (reader, n, NULL));
          pop_all (reader, popped);
        }

      assert_frames_equal (popped, frames);
      g_assert_true (_execnet_frame_reader_is_idle (reader));
    }
}

static void
test_reader_zero_length (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (16);
  gsize room;
  guint8 *buffer = _execnet_frame_reader_get_buffer (reader, &room);
  ExecnetMessageCode code;
  gint32 channel;
  g_autoptr(GBytes) payload = NULL;

  memcpy (buffer, "\2\0\0\0\0\0\0\0\0", 9);
  g_assert_true (_execnet_frame_reader_commit (reader, 9, NULL));
  g_assert_true (_execnet_frame_reader_pop (reader, &code, &channel, &payload));
  g_assert_cmpint (code, ==, EXECNET_MESSAGE_GATEWAY_TERMINATE);
  g_assert_cmpint (channel, ==, 0);
  g_assert_nonnull (payload);
  g_assert_cmpuint (g_bytes_get_size (payload), ==, 0);
  g_assert_false (_execnet_frame_reader_pop (reader, &code, &channel, &payload));
}

static void
test_reader_idle (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  static const char stream[] = "\4\0\0\0\1\0\0\0\3abc";
  gsize room;
  guint8 *buffer;

  g_assert_true (_execnet_frame_reader_is_idle (reader));

  /* Part of a header */
  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  memcpy (buffer, stream, 4);
  g_assert_true (_execnet_frame_reader_commit (reader, 4, NULL));
  g_assert_false (_execnet_frame_reader_is_idle (reader));

  /* The header and part of the payload */
  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  memcpy (buffer, stream + 4, 6);
  g_assert_true (_execnet_frame_reader_commit (reader, 6, NULL));
  g_assert_false (_execnet_frame_reader_is_idle (reader));
  g_assert_false (_execnet_frame_reader_pop (reader, NULL, NULL, NULL));

  /* The rest: complete, even before the frame is popped */
  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  memcpy (buffer, stream + 10, 2);
  g_assert_true (_execnet_frame_reader_commit (reader, 2, NULL));
  g_assert_true (_execnet_frame_reader_is_idle (reader));
  g_assert_true (_execnet_frame_reader_pop (reader, NULL, NULL, NULL));
}

/* A 4 MiB payload is read in place: after its header, the buffers handed out
 * are the payload's own, bigger than staging could be. */
static void
test_reader_large_payload (void)
{
  const gsize len = 4 * 1024 * 1024;
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  g_autofree guint8 *stream = g_malloc (EXECNET_FRAME_HEADER_SIZE + len);
  g_autoptr(GArray) writes = g_array_new (FALSE, FALSE, sizeof (gpointer) * 2);
  g_autoptr(GBytes) payload = NULL;
  gsize pos = 0, size = EXECNET_FRAME_HEADER_SIZE + len;
  gsize max_room = 0;
  gsize written_in_place = 0;
  const guint8 *payload_data;
  ExecnetMessageCode code;
  gint32 channel;

  _execnet_frame_header_encode (stream, EXECNET_MESSAGE_CHANNEL_DATA, 3, (gint32) len);
  for (gsize i = 0; i < len; i++)
    stream[EXECNET_FRAME_HEADER_SIZE + i] = (guint8) (i ^ (i >> 8));

  /* The first read brings the header and the payload's first bytes through
   * staging, as a socket would. */
  while (pos < size)
    {
      gsize room;
      guint8 *buffer = _execnet_frame_reader_get_buffer (reader, &room);
      gsize n = MIN (room, size - pos);
      gpointer record[2] = { buffer, GSIZE_TO_POINTER (n) };

      memcpy (buffer, stream + pos, n);
      pos += n;
      g_assert_true (_execnet_frame_reader_commit (reader, n, NULL));
      g_array_append_val (writes, record);
      max_room = MAX (max_room, room);
    }

  g_assert_true (_execnet_frame_reader_pop (reader, &code, &channel, &payload));
  g_assert_cmpint (code, ==, EXECNET_MESSAGE_CHANNEL_DATA);
  g_assert_cmpint (channel, ==, 3);
  g_assert_cmpmem (g_bytes_get_data (payload, NULL), g_bytes_get_size (payload),
                   stream + EXECNET_FRAME_HEADER_SIZE, len);

  g_assert_cmpuint (max_room, >, 64 * 1024);
  g_assert_cmpuint (max_room, <=, len);

  /* Every write after the buffer reached its final size landed in the
   * payload itself; growth is geometric, so that is at least half. */
  payload_data = g_bytes_get_data (payload, NULL);
  for (guint i = 0; i < writes->len; i++)
    {
      gpointer *record = &g_array_index (writes, gpointer, i * 2);
      const guint8 *buffer = record[0];

      if (buffer >= payload_data && buffer < payload_data + len)
        written_in_place += GPOINTER_TO_SIZE (record[1]);
    }
  g_assert_cmpuint (written_in_place, >=, len / 2);
  g_assert_true (_execnet_frame_reader_is_idle (reader));
}

/* A header may claim the full limit; memory follows what arrives. */
static void
test_reader_lying_header (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  guint8 chunk[EXECNET_FRAME_HEADER_SIZE + 100] = { 0 };
  gsize room;
  guint8 *buffer;
  gsize received = 100;

  _execnet_frame_header_encode (chunk, EXECNET_MESSAGE_CHANNEL_DATA, 1,
                                (gint32) EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);

  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  g_assert_cmpuint (room, >=, sizeof chunk);
  memcpy (buffer, chunk, sizeof chunk);
  g_assert_true (_execnet_frame_reader_commit (reader, sizeof chunk, NULL));

  /* Then the peer goes away: the reader holds a partial frame, and what it
   * offers to read into is small. */
  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  g_assert_nonnull (buffer);
  g_assert_cmpuint (room, <=, 1024 * 1024);
  g_assert_false (_execnet_frame_reader_is_idle (reader));
  g_assert_false (_execnet_frame_reader_pop (reader, NULL, NULL, NULL));

  /* As more arrives, the room stays within the amount received so far. */
  for (guint i = 0; i < 6; i++)
    {
      buffer = _execnet_frame_reader_get_buffer (reader, &room);
      g_assert_cmpuint (room, <=, MAX (received, 256 * 1024));
      memset (buffer, 0, room);
      g_assert_true (_execnet_frame_reader_commit (reader, room, NULL));
      received += room;
    }
  g_assert_cmpuint (received, <, 32 * 1024 * 1024);
  g_assert_false (_execnet_frame_reader_is_idle (reader));
}

static void
test_reader_over_limit (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (1024 * 1024);
  g_autoptr(GError) error = NULL;
  gsize room;
  guint8 *buffer;

  /* A good frame, then one over the limit in the same read */
  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  memcpy (buffer, "\4\0\0\0\1\0\0\0\1x" "\4\0\0\0\1\0\40\0\1", 19);
  g_assert_false (_execnet_frame_reader_commit (reader, 19, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==,
                   "frame announces 2097153 bytes, more than the 1048576-byte limit");

  /* Frames before the bad one are still delivered. */
  g_assert_true (_execnet_frame_reader_pop (reader, NULL, NULL, NULL));
  g_assert_false (_execnet_frame_reader_pop (reader, NULL, NULL, NULL));
}

static void
test_reader_garbage (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  g_autoptr(GError) error = NULL;
  static const char garbage[] = "SSH-2.0-OpenSSH_9.2p1 Debian\r\n";
  gsize room;
  guint8 *buffer;

  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  memcpy (buffer, garbage, sizeof garbage - 1);
  g_assert_false (_execnet_frame_reader_commit (reader, sizeof garbage - 1, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, "unknown message code 83");
  g_assert_false (_execnet_frame_reader_pop (reader, NULL, NULL, NULL));
}

static void
test_reader_garbage_late (void)
{
  g_autoptr(ExecnetFrameReader) reader = _execnet_frame_reader_new (EXECNET_FRAME_DEFAULT_MAX_PAYLOAD);
  g_autoptr(GError) error = NULL;
  gsize room;
  guint8 *buffer;

  /* The bad header arrives a byte at a time after a good frame. */
  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  memcpy (buffer, "\0\0\0\0\0\0\0\0\0\377\0\0\0\0\0\0\0", 17);
  g_assert_true (_execnet_frame_reader_commit (reader, 17, &error));
  g_assert_no_error (error);

  buffer = _execnet_frame_reader_get_buffer (reader, &room);
  buffer[0] = 0;
  g_assert_false (_execnet_frame_reader_commit (reader, 1, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_cmpstr (error->message, ==, "unknown message code -1");
  g_assert_true (_execnet_frame_reader_pop (reader, NULL, NULL, NULL));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/frame/code-names", test_code_names);
  for (gsize i = 0; i < G_N_ELEMENTS (header_cases); i++)
    {
      g_autofree char *encode = g_strconcat ("/frame/header/encode/", header_cases[i].name, NULL);
      g_autofree char *decode = g_strconcat ("/frame/header/decode/", header_cases[i].name, NULL);

      g_test_add_data_func (encode, &header_cases[i], test_header_encode);
      g_test_add_data_func (decode, &header_cases[i], test_header_decode);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (bad_header_cases); i++)
    {
      g_autofree char *path = g_strconcat ("/frame/header/limits/", bad_header_cases[i].name, NULL);

      g_test_add_data_func (path, &bad_header_cases[i], test_header_decode_bad);
    }

  g_test_add_func ("/frame/reader/many-frames-one-chunk", test_reader_many_frames_one_chunk);
  g_test_add_func ("/frame/reader/whole-reads", test_reader_whole_reads);
  g_test_add_func ("/frame/reader/byte-by-byte", test_reader_byte_by_byte);
  g_test_add_func ("/frame/reader/varied-pieces", test_reader_varied_pieces);
  g_test_add_func ("/frame/reader/random-pieces", test_reader_random_pieces);
  g_test_add_func ("/frame/reader/zero-length", test_reader_zero_length);
  g_test_add_func ("/frame/reader/idle", test_reader_idle);
  g_test_add_func ("/frame/reader/large-payload", test_reader_large_payload);
  g_test_add_func ("/frame/reader/lying-header", test_reader_lying_header);
  g_test_add_func ("/frame/reader/over-limit", test_reader_over_limit);
  g_test_add_func ("/frame/reader/garbage", test_reader_garbage);
  g_test_add_func ("/frame/reader/garbage-late", test_reader_garbage_late);

  return g_test_run ();
}
