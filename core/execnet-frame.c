/* execnet-frame.c: execnet's 9-byte message frames
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <glib.h>

#include <execnet/execnet-error.h>

#include "execnet-frame-private.h"

/* A frame is a 9-byte header (int8 message code, int32 channel id, int32
 * payload length, all big-endian and signed) followed by the payload.
 *
 * The reader has two places for incoming bytes. Headers and small payloads
 * arrive in a fixed staging buffer, so that a burst of small messages costs
 * one read() and one copy per message. A payload of LARGE_PAYLOAD bytes or
 * more gets a buffer of its own as soon as its header is parsed, and the
 * reader hands out the free part of that buffer, so the socket writes the
 * bulk directly where the final GBytes lives. That buffer starts small and
 * doubles as data arrives: a header may announce up to the configured limit,
 * but memory is only spent on bytes that really came.
 */

/* The sizes below can be shrunk at build time so that a fuzzer reaches
 * every path with small inputs (see fuzz/fuzz-frame.c). */

/* Room for many small frames per read(), and always more than a small frame
 * plus its header, so a partial one never blocks the buffer. */
#ifndef STAGING_SIZE
#define STAGING_SIZE (64 * 1024)
#endif

/* Payloads at least this long go to a buffer of their own. */
#ifndef LARGE_PAYLOAD
#define LARGE_PAYLOAD (16 * 1024)
#endif

/* The first size of that buffer, before it doubles towards the length. */
#ifndef FIRST_PAYLOAD_ALLOC
#define FIRST_PAYLOAD_ALLOC (256 * 1024)
#endif

/* Unparsed bytes (a partial header or small frame) fill less than 3/4 of
 * staging, so moving them to the front always leaves room. */
G_STATIC_ASSERT (LARGE_PAYLOAD + EXECNET_FRAME_HEADER_SIZE < STAGING_SIZE / 4 * 3);

typedef struct {
  ExecnetMessageCode code;
  gint32             channel;
  GBytes            *payload;  /* (owned) */
} Frame;

struct _ExecnetFrameReader {
  gsize    max_payload;

  /* Received bytes not parsed yet are staging[start, end). */
  guint8  *staging;          /* (owned) STAGING_SIZE bytes */
  gsize    start;
  gsize    end;

  /* The large payload being received, if any. */
  guint8  *payload;          /* (owned) (nullable) payload_alloc bytes */
  gsize    payload_size;     /* as announced */
  gsize    payload_alloc;
  gsize    payload_filled;
  ExecnetMessageCode payload_code;
  gint32   payload_channel;

  gsize    handed_out;       /* room given by the last get_buffer() */
  GQueue   frames;           /* (owned) (element-type Frame): complete */
  gboolean failed;
};

/**
 * execnet_message_code_name:
 * @code: a message code from the wire, such as an [enum@Execnet.MessageCode]
 *
 * Names a message code of the wire protocol as execnet's source does, for
 * traces and error messages. The code is a plain number because the wire
 * may carry codes that are none of [enum@Execnet.MessageCode].
 *
 * Returns: the message's name, such as `CHANNEL_DATA`, or `UNKNOWN`
 *
 * Since: 1.0
 */
const char *
execnet_message_code_name (guint code)
{
  static const char * const names[] = {
    [EXECNET_MESSAGE_STATUS] = "STATUS",
    [EXECNET_MESSAGE_RECONFIGURE] = "RECONFIGURE",
    [EXECNET_MESSAGE_GATEWAY_TERMINATE] = "GATEWAY_TERMINATE",
    [EXECNET_MESSAGE_CHANNEL_EXEC] = "CHANNEL_EXEC",
    [EXECNET_MESSAGE_CHANNEL_DATA] = "CHANNEL_DATA",
    [EXECNET_MESSAGE_CHANNEL_CLOSE] = "CHANNEL_CLOSE",
    [EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR] = "CHANNEL_CLOSE_ERROR",
    [EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE] = "CHANNEL_LAST_MESSAGE",
  };

  if (code > EXECNET_MESSAGE_LAST)
    return "UNKNOWN";
  return names[code];
}

static void
put_be32 (guint8 *out,
          gint32  value)
{
  guint32 be = GUINT32_TO_BE ((guint32) value);

  memcpy (out, &be, 4);
}

static gint32
get_be32 (const guint8 *in)
{
  guint32 be;

  memcpy (&be, in, 4);
  return (gint32) GUINT32_FROM_BE (be);
}

void
_execnet_frame_header_encode (guint8             header[EXECNET_FRAME_HEADER_SIZE],
                              ExecnetMessageCode code,
                              gint32             channel,
                              gint32             length)
{
  g_return_if_fail (header != NULL);
  g_return_if_fail (code >= 0 && code <= EXECNET_MESSAGE_LAST);
  g_return_if_fail (length >= 0);

  header[0] = (guint8) code;
  put_be32 (header + 1, channel);
  put_be32 (header + 5, length);
}

gboolean
_execnet_frame_header_decode (const guint8        header[EXECNET_FRAME_HEADER_SIZE],
                              gsize               max_payload,
                              ExecnetMessageCode *code,
                              gint32             *channel,
                              gint32             *length,
                              GError            **error)
{
  gint8 raw_code;
  gint32 raw_length;

  g_return_val_if_fail (header != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  raw_code = (gint8) header[0];
  raw_length = get_be32 (header + 5);

  if (raw_code < 0 || raw_code > EXECNET_MESSAGE_LAST)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                   "unknown message code %d", raw_code);
      return FALSE;
    }

  if (raw_length < 0)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                   "frame announces a negative length (%" G_GINT32_FORMAT ")",
                   raw_length);
      return FALSE;
    }

  if ((gsize) raw_length > max_payload)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                   "frame announces %" G_GINT32_FORMAT " bytes, more than the "
                   "%" G_GSIZE_FORMAT "-byte limit",
                   raw_length, max_payload);
      return FALSE;
    }

  if (code != NULL)
    *code = raw_code;
  if (channel != NULL)
    *channel = get_be32 (header + 1);
  if (length != NULL)
    *length = raw_length;
  return TRUE;
}

static void
frame_free (gpointer data)
{
  Frame *frame = data;

  g_bytes_unref (frame->payload);
  g_free (frame);
}

static void
reader_push_frame (ExecnetFrameReader *self,
                   ExecnetMessageCode  code,
                   gint32              channel,
                   GBytes             *payload)
{
  Frame *frame = g_new (Frame, 1);

  frame->code = code;
  frame->channel = channel;
  frame->payload = payload;
  g_queue_push_tail (&self->frames, frame);
}

ExecnetFrameReader *
_execnet_frame_reader_new (gsize max_payload)
{
  ExecnetFrameReader *self = g_new0 (ExecnetFrameReader, 1);

  self->max_payload = max_payload;
  self->staging = g_malloc (STAGING_SIZE);
  g_queue_init (&self->frames);
  return self;
}

void
_execnet_frame_reader_free (ExecnetFrameReader *self)
{
  if (self == NULL)
    return;

  g_queue_clear_full (&self->frames, frame_free);
  g_free (self->payload);
  g_free (self->staging);
  g_free (self);
}

/* Returns where the next read() should write and, in @size, how much room
 * there is (never 0). */
guint8 *
_execnet_frame_reader_get_buffer (ExecnetFrameReader *self,
                                  gsize              *size)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (size != NULL, NULL);
  g_return_val_if_fail (!self->failed, NULL);

  if (self->payload != NULL)
    {
      /* A large payload: read into its own buffer, grown geometrically
       * (and only once the part received so far is full). */
      if (self->payload_filled == self->payload_alloc)
        {
          self->payload_alloc = MIN (self->payload_alloc * 2, self->payload_size);
          self->payload = g_realloc (self->payload, self->payload_alloc);
        }

      *size = self->payload_alloc - self->payload_filled;
      self->handed_out = *size;
      return self->payload + self->payload_filled;
    }

  if (self->start == self->end)
    {
      self->start = self->end = 0;
    }
  else if (self->start > 0 && STAGING_SIZE - self->end < STAGING_SIZE / 4)
    {
      /* What is left is less than a small frame and its header. */
      memmove (self->staging, self->staging + self->start,
               self->end - self->start);
      self->end -= self->start;
      self->start = 0;
    }

  *size = STAGING_SIZE - self->end;
  self->handed_out = *size;
  return self->staging + self->end;
}

static gboolean
reader_parse_staging (ExecnetFrameReader  *self,
                      GError             **error)
{
  while (self->end - self->start >= EXECNET_FRAME_HEADER_SIZE)
    {
      const guint8 *header = self->staging + self->start;
      ExecnetMessageCode code;
      gint32 channel, length;
      gsize available;

      if (!_execnet_frame_header_decode (header, self->max_payload,
                                         &code, &channel, &length, error))
        {
          self->failed = TRUE;
          return FALSE;
        }

      available = self->end - self->start - EXECNET_FRAME_HEADER_SIZE;

      if (available >= (gsize) length)
        {
          reader_push_frame (self, code, channel,
                             g_bytes_new (header + EXECNET_FRAME_HEADER_SIZE,
                                          length));
          self->start += EXECNET_FRAME_HEADER_SIZE + length;
          continue;
        }

      if (length >= LARGE_PAYLOAD)
        {
          /* Move the start of the payload once; the rest is read in place. */
          self->payload_size = length;
          self->payload_alloc = MIN (self->payload_size, FIRST_PAYLOAD_ALLOC);
          self->payload_alloc = MAX (self->payload_alloc, available);
          self->payload = g_malloc (self->payload_alloc);
          memcpy (self->payload, header + EXECNET_FRAME_HEADER_SIZE, available);
          self->payload_filled = available;
          self->payload_code = code;
          self->payload_channel = channel;
          self->start = self->end = 0;
        }

      break;
    }

  return TRUE;
}

/* Records that @n_read bytes were written into the last buffer and parses
 * what is complete. After an error the reader accepts nothing more. */
gboolean
_execnet_frame_reader_commit (ExecnetFrameReader  *self,
                              gsize                n_read,
                              GError             **error)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (!self->failed, FALSE);
  g_return_val_if_fail (n_read <= self->handed_out, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  self->handed_out = 0;

  if (self->payload != NULL)
    {
      self->payload_filled += n_read;
      if (self->payload_filled == self->payload_size)
        {
          g_assert (self->payload_alloc == self->payload_size);
          reader_push_frame (self, self->payload_code, self->payload_channel,
                             g_bytes_new_take (g_steal_pointer (&self->payload),
                                               self->payload_size));
          self->payload_size = self->payload_alloc = self->payload_filled = 0;
        }
      return TRUE;
    }

  self->end += n_read;
  return reader_parse_staging (self, error);
}

/* Takes the oldest complete frame. @payload is (transfer full); an empty
 * payload is an empty GBytes, never NULL. */
gboolean
_execnet_frame_reader_pop (ExecnetFrameReader  *self,
                           ExecnetMessageCode  *code,
                           gint32              *channel,
                           GBytes             **payload)
{
  Frame *frame;

  g_return_val_if_fail (self != NULL, FALSE);

  frame = g_queue_pop_head (&self->frames);
  if (frame == NULL)
    return FALSE;

  if (code != NULL)
    *code = frame->code;
  if (channel != NULL)
    *channel = frame->channel;
  if (payload != NULL)
    *payload = g_steal_pointer (&frame->payload);

  g_clear_pointer (&frame->payload, g_bytes_unref);
  g_free (frame);
  return TRUE;
}

/* Whether no partial frame is buffered: at end of input, TRUE means a clean
 * end and FALSE a truncated frame. */
gboolean
_execnet_frame_reader_is_idle (ExecnetFrameReader *self)
{
  g_return_val_if_fail (self != NULL, FALSE);

  return self->payload == NULL && self->start == self->end;
}
