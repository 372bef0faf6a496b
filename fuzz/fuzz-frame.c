/* fuzz-frame.c: libFuzzer target for the frame reader
 *
 * The first two input bytes seed the sizes of the simulated reads; the rest
 * is the byte stream, fed to a reader with a 1 MiB payload limit. Every
 * frame that comes out must re-encode to exactly the bytes it came from.
 *
 * Inputs are small, so to reach the reader's large-payload path also build
 * core/execnet-frame.c with its buffer sizes shrunk, for example
 * -DSTAGING_SIZE=256 -DLARGE_PAYLOAD=64 -DFIRST_PAYLOAD_ALLOC=96.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include <glib.h>

#include <execnet/execnet-error.h>

#include "execnet-frame-private.h"

#define MAX_PAYLOAD (1024 * 1024)

int LLVMFuzzerTestOneInput (const uint8_t *data,
                            size_t         size);

/* Pops what is complete and checks it against the stream from @checked on;
 * returns the new @checked. */
static gsize
pop_and_check (ExecnetFrameReader *reader,
               const guint8       *stream,
               gsize               received,
               gsize               checked)
{
  ExecnetMessageCode code;
  gint32 channel;
  GBytes *payload;

  while (_execnet_frame_reader_pop (reader, &code, &channel, &payload))
    {
      guint8 header[EXECNET_FRAME_HEADER_SIZE];
      gsize len;
      const guint8 *bytes = g_bytes_get_data (payload, &len);

      g_assert_true (len <= MAX_PAYLOAD);
      g_assert_true (checked + EXECNET_FRAME_HEADER_SIZE + len <= received);

      _execnet_frame_header_encode (header, code, channel, (gint32) len);
      g_assert_true (memcmp (header, stream + checked, sizeof header) == 0);
      checked += sizeof header;
      g_assert_true (len == 0 || memcmp (bytes, stream + checked, len) == 0);
      checked += len;

      g_bytes_unref (payload);
    }

  return checked;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  g_autoptr(ExecnetFrameReader) reader = NULL;
  g_autoptr(GError) error = NULL;
  guint32 state;
  gsize pos = 0;
  gsize checked = 0;
  gboolean failed = FALSE;

  g_log_set_always_fatal (G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);

  if (size < 2)
    return 0;
  state = ((guint32) data[0] | (guint32) data[1] << 8) * 2654435761u + 1;
  data += 2;
  size -= 2;

  reader = _execnet_frame_reader_new (MAX_PAYLOAD);

  while (pos < size)
    {
      gsize room, piece, n;
      guint8 *buffer = _execnet_frame_reader_get_buffer (reader, &room);

      g_assert_true (buffer != NULL);
      g_assert_true (room > 0);

      /* xorshift32: mostly small reads, sometimes whatever fits. */
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      piece = (state & 3) == 0 ? room : 1 + (state >> 8) % 64;

      n = MIN (MIN (room, piece), size - pos);
      memcpy (buffer, data + pos, n);
      pos += n;

      if (!_execnet_frame_reader_commit (reader, n, &error))
        {
          g_assert_true (error != NULL);
          g_assert_true (g_error_matches (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL));
          failed = TRUE;
        }

      /* Frames before a bad header are still delivered. */
      checked = pop_and_check (reader, data, pos, checked);
      if (failed)
        break;
    }

  if (!failed)
    g_assert_true (_execnet_frame_reader_is_idle (reader) == (checked == size));

  return 0;
}
