/* execnet-frame-private.h: execnet's 9-byte message frames (pure, GLib only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <execnet/execnet-message.h>

G_BEGIN_DECLS

#define EXECNET_FRAME_HEADER_SIZE 9

/* The default cap on one frame's payload; a larger claimed length is a
 * protocol error. */
#define EXECNET_FRAME_DEFAULT_MAX_PAYLOAD ((gsize) 1 << 30)


#define EXECNET_MESSAGE_LAST EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE

void      _execnet_frame_header_encode (guint8              header[EXECNET_FRAME_HEADER_SIZE],
                                        ExecnetMessageCode  code,
                                        gint32              channel,
                                        gint32              length);
gboolean  _execnet_frame_header_decode (const guint8        header[EXECNET_FRAME_HEADER_SIZE],
                                        gsize               max_payload,
                                        ExecnetMessageCode *code,
                                        gint32             *channel,
                                        gint32             *length,
                                        GError            **error);

/* ExecnetFrameReader: an incremental frame parser that the I/O thread feeds.
 * Bytes are read straight into the buffer it hands out: a staging buffer while
 * headers and small payloads arrive, the payload's own allocation while a
 * large payload arrives, so large payloads are never copied. Memory grows
 * only with the data that actually arrived, never with a claimed length. */
typedef struct _ExecnetFrameReader ExecnetFrameReader;

ExecnetFrameReader *_execnet_frame_reader_new        (gsize                max_payload);
void                _execnet_frame_reader_free       (ExecnetFrameReader  *self);
guint8             *_execnet_frame_reader_get_buffer (ExecnetFrameReader  *self,
                                                      gsize               *size);
gboolean            _execnet_frame_reader_commit     (ExecnetFrameReader  *self,
                                                      gsize                n_read,
                                                      GError             **error);
gboolean            _execnet_frame_reader_pop        (ExecnetFrameReader  *self,
                                                      ExecnetMessageCode  *code,
                                                      gint32              *channel,
                                                      GBytes             **payload);
gboolean            _execnet_frame_reader_is_idle    (ExecnetFrameReader  *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetFrameReader, _execnet_frame_reader_free)

G_END_DECLS
