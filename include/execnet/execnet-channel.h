/* execnet-channel.h: typed two-way message channels
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

G_BEGIN_DECLS

#define EXECNET_TYPE_CHANNEL (execnet_channel_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (ExecnetChannel, execnet_channel, EXECNET, CHANNEL, GObject)

/**
 * ExecnetChannelCallback:
 * @channel: the channel the item arrived on
 * @item: (transfer none): the item, or the endmarker once the channel closed
 * @user_data: the data given to execnet_channel_set_callback()
 *
 * Called for each item that arrives on a channel with a callback.
 *
 * Since: 1.0
 */
typedef void (*ExecnetChannelCallback) (ExecnetChannel *channel,
                                        GVariant       *item,
                                        gpointer        user_data);

EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_channel_send          (ExecnetChannel          *self,
                                               GVariant                *item,
                                               GError                 **error);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_channel_receive       (ExecnetChannel          *self,
                                               gdouble                  timeout,
                                               GError                 **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_channel_receive_async (ExecnetChannel          *self,
                                               GCancellable            *cancellable,
                                               GAsyncReadyCallback      callback,
                                               gpointer                 user_data);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_channel_receive_finish (ExecnetChannel         *self,
                                                GAsyncResult           *result,
                                                GError                **error);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_channel_next          (ExecnetChannel          *self,
                                               GError                 **error);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_channel_close         (ExecnetChannel          *self,
                                               const char              *error_text,
                                               GError                 **error);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_channel_wait_close    (ExecnetChannel          *self,
                                               gdouble                  timeout,
                                               GError                 **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_channel_wait_close_async (ExecnetChannel       *self,
                                                  gdouble               timeout,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_channel_wait_close_finish (ExecnetChannel      *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_channel_send_async    (ExecnetChannel          *self,
                                               GVariant                *item,
                                               GCancellable            *cancellable,
                                               GAsyncReadyCallback      callback,
                                               gpointer                 user_data);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_channel_send_finish   (ExecnetChannel          *self,
                                               GAsyncResult            *result,
                                               GError                 **error);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_channel_is_closed     (ExecnetChannel          *self);
EXECNET_AVAILABLE_IN_1_0
gint            execnet_channel_get_id        (ExecnetChannel          *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_channel_get_gateway   (ExecnetChannel          *self);
EXECNET_AVAILABLE_IN_1_0
void            execnet_channel_set_callback  (ExecnetChannel          *self,
                                               ExecnetChannelCallback   callback,
                                               gpointer                 user_data,
                                               GDestroyNotify           notify,
                                               GVariant                *endmarker);
EXECNET_AVAILABLE_IN_1_0
GIOStream      *execnet_channel_get_stream    (ExecnetChannel          *self);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_channel_to_value      (ExecnetChannel          *self);
EXECNET_AVAILABLE_IN_1_0
char           *execnet_channel_to_string     (ExecnetChannel          *self);

G_END_DECLS
