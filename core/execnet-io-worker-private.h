/* execnet-io-worker-private.h: the one I/O thread of the process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

GMainContext *_execnet_io_worker_get_context (void);
gboolean      _execnet_io_worker_is_current  (void);
void          _execnet_io_worker_set_stand_in (gboolean      stand_in);
gboolean      _execnet_io_worker_is_stand_in (void);
void          _execnet_io_worker_invoke      (GSourceFunc    func,
                                              gpointer       data,
                                              GDestroyNotify notify);

G_END_DECLS
