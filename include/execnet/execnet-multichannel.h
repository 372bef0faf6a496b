/* execnet-multichannel.h: one operation over many channels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <gio/gio.h>
#include <execnet/execnet-version.h>
#include <execnet/execnet-types.h>
#include <execnet/execnet-channel.h>
#include <execnet/execnet-receive-queue.h>

G_BEGIN_DECLS

#define EXECNET_TYPE_MULTI_CHANNEL (execnet_multi_channel_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (ExecnetMultiChannel, execnet_multi_channel, EXECNET, MULTI_CHANNEL, GObject)

EXECNET_AVAILABLE_IN_1_0
ExecnetMultiChannel *execnet_multi_channel_new          (ExecnetChannel * const *channels,
                                                         guint                   n_channels);
EXECNET_AVAILABLE_IN_1_0
guint                execnet_multi_channel_get_size     (ExecnetMultiChannel    *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetChannel      *execnet_multi_channel_get_channel  (ExecnetMultiChannel    *self,
                                                         guint                   index);
EXECNET_AVAILABLE_IN_1_0
gboolean             execnet_multi_channel_send_each    (ExecnetMultiChannel    *self,
                                                         GVariant               *item,
                                                         GError                **error);
EXECNET_AVAILABLE_IN_1_0
GVariant            *execnet_multi_channel_receive_each (ExecnetMultiChannel    *self,
                                                         gdouble                 timeout,
                                                         GError                **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetReceiveQueue *execnet_multi_channel_make_receive_queue (ExecnetMultiChannel *self,
                                                               GVariant            *endmarker);
EXECNET_AVAILABLE_IN_1_0
void                 execnet_multi_channel_receive_each_async  (ExecnetMultiChannel  *self,
                                                                gdouble               timeout,
                                                                GCancellable         *cancellable,
                                                                GAsyncReadyCallback   callback,
                                                                gpointer              user_data);
EXECNET_AVAILABLE_IN_1_0
GVariant            *execnet_multi_channel_receive_each_finish (ExecnetMultiChannel  *self,
                                                                GAsyncResult         *result,
                                                                GError              **error);
EXECNET_AVAILABLE_IN_1_0
gboolean             execnet_multi_channel_wait_close   (ExecnetMultiChannel    *self,
                                                         gdouble                 timeout,
                                                         GError                **error);

G_END_DECLS
