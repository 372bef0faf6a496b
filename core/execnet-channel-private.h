/* execnet-channel-private.h: what the gateway tells its channels
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-channel.h>

G_BEGIN_DECLS

ExecnetChannel *_execnet_channel_new             (ExecnetGateway *gateway,
                                                  gint32          id);
void            _execnet_channel_deliver         (ExecnetChannel *self,
                                                  GVariant       *item,
                                                  gsize           size);
void            _execnet_channel_deliver_error   (ExecnetChannel *self,
                                                  GError         *error);
void            _execnet_channel_remote_closed   (ExecnetChannel *self,
                                                  const char     *error_text,
                                                  gboolean        send_only);
void            _execnet_channel_connection_lost (ExecnetChannel *self,
                                                  const GError   *error);

G_END_DECLS
