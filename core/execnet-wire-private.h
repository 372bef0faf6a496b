/* execnet-wire-private.h: framed, queued I/O on one connection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <execnet/execnet-transport.h>

#include "execnet-frame-private.h"

G_BEGIN_DECLS

/* The most bytes that may wait in one wire's write queue before senders
 * block (backpressure). One frame is always accepted into an empty queue,
 * whatever its size. */
#define EXECNET_WIRE_DEFAULT_MAX_QUEUED ((gsize) 16 << 20)

typedef struct _ExecnetWire ExecnetWire;

typedef struct
{
  /* I/O thread: one complete frame arrived. @payload (transfer none). */
  void (*frame)       (GObject            *owner,
                       ExecnetMessageCode  code,
                       gint32              channel,
                       GBytes             *payload);
  /* I/O thread, exactly once: reading ended; @error is NULL at a clean
   * end-of-file. */
  void (*read_closed) (GObject            *owner,
                       const GError       *error);
} ExecnetWireHandler;

ExecnetWire *_execnet_wire_new             (ExecnetConnection        *connection,
                                            const char               *gateway_id,
                                            const char               *description,
                                            const ExecnetWireHandler *handler,
                                            GObject                  *owner);
ExecnetWire *_execnet_wire_ref             (ExecnetWire              *self);
void         _execnet_wire_unref           (ExecnetWire              *self);
gboolean     _execnet_wire_send            (ExecnetWire              *self,
                                            ExecnetMessageCode        code,
                                            gint32                    channel,
                                            GPtrArray                *chunks,
                                            GError                  **error);
void         _execnet_wire_finish_writing  (ExecnetWire              *self);
void         _execnet_wire_abort           (ExecnetWire              *self,
                                            const GError             *error);
gboolean     _execnet_wire_is_reading      (ExecnetWire              *self);
gboolean     _execnet_wire_is_congested    (ExecnetWire              *self);
void         _execnet_wire_set_reading_paused (ExecnetWire           *self,
                                               gboolean               paused);

/* Sees every frame: outgoing ones in the sender's thread before they are
 * written, incoming ones in the I/O thread before they are handled.
 * @payload (transfer none). */
typedef void (*ExecnetWireTap) (gpointer            data,
                                gboolean            outgoing,
                                ExecnetMessageCode  code,
                                gint32              channel,
                                GBytes             *payload);

void         _execnet_wire_set_tap         (ExecnetWire              *self,
                                            ExecnetWireTap            tap,
                                            gpointer                  data,
                                            GDestroyNotify            notify);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetWire, _execnet_wire_unref)

G_END_DECLS
