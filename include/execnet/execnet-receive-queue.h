/* execnet-receive-queue.h: items from many channels, in arrival order
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <gio/gio.h>
#include <execnet/execnet-version.h>
#include <execnet/execnet-channel.h>

G_BEGIN_DECLS

#define EXECNET_TYPE_RECEIVE_QUEUE (execnet_receive_queue_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (ExecnetReceiveQueue, execnet_receive_queue, EXECNET, RECEIVE_QUEUE, GObject)

EXECNET_AVAILABLE_IN_1_0
GVariant *execnet_receive_queue_pop (ExecnetReceiveQueue  *self,
                                     gdouble               timeout,
                                     ExecnetChannel      **out_channel,
                                     GError              **error);

G_END_DECLS
