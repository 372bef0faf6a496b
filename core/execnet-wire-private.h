/* execnet-wire-private.h: framed, queued I/O on one connection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <execnet/execnet-gateway.h>
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
  /* The thread that reads (the I/O thread, or a receiving thread that
   * leads, see _execnet_wire_lead()): one complete frame arrived.
   * @payload (transfer none). */
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

/* Incoming data is bounded by the wire alone: _execnet_wire_account()
 * counts the bytes of delivered items that wait unconsumed. Past
 * EXECNET_WIRE_UNCONSUMED_HIGH the wire stops reading after the frames it
 * has, so the remote side's writes block; once consumers bring the count
 * below EXECNET_WIRE_UNCONSUMED_LOW it reads again. */
#define EXECNET_WIRE_UNCONSUMED_HIGH ((gsize) 64 << 20)
#define EXECNET_WIRE_UNCONSUMED_LOW  ((gsize) 32 << 20)

void         _execnet_wire_account         (ExecnetWire              *self,
                                            gssize                    delta);

/* Whether what a leading receiver waits for is there (or never will be). */
typedef gboolean (*ExecnetWireLeadDone) (gpointer data);

gboolean     _execnet_wire_lead            (ExecnetWire              *self,
                                            ExecnetWireLeadDone       done,
                                            gpointer                  data,
                                            gint64                    deadline);
void         _execnet_wire_wake_leader     (ExecnetWire              *self);

/* The one wire observer: refcounted, so that a frame being shown to it
 * keeps it alive while another thread replaces it. It sees every frame:
 * outgoing ones in the sender's thread before they are written, incoming
 * ones in the I/O thread before they are handled. */
typedef struct _ExecnetWireTap ExecnetWireTap;

ExecnetWireTap *_execnet_wire_tap_new      (ExecnetGateway           *gateway,
                                            ExecnetWireObserver       func,
                                            gpointer                  data,
                                            GDestroyNotify            notify);
ExecnetWireTap *_execnet_wire_tap_ref      (ExecnetWireTap           *tap);
void         _execnet_wire_tap_unref       (ExecnetWireTap           *tap);
void         _execnet_wire_set_tap         (ExecnetWire              *self,
                                            ExecnetWireTap           *tap);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetWire, _execnet_wire_unref)

G_END_DECLS
