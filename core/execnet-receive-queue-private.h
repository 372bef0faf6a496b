/* execnet-receive-queue-private.h: ExecnetReceiveQueue's internal API
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-receive-queue.h>

G_BEGIN_DECLS

ExecnetReceiveQueue *_execnet_receive_queue_new (GPtrArray *channels,
                                                 GVariant  *endmarker);

G_END_DECLS
