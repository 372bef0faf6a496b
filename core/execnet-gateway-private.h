/* execnet-gateway-private.h: the gateway's internal API
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-gateway.h>
#include <execnet/execnet-group.h>

#include "execnet-frame-private.h"

G_BEGIN_DECLS

ExecnetGateway *_execnet_gateway_new             (ExecnetXSpec        *xspec,
                                                  ExecnetGroup        *group);
void            _execnet_gateway_start_async     (ExecnetGateway      *self,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
gboolean        _execnet_gateway_start_finish    (ExecnetGateway      *self,
                                                  GAsyncResult        *result,
                                                  GError             **error);
gboolean        _execnet_gateway_send_value      (ExecnetGateway      *self,
                                                  ExecnetMessageCode   code,
                                                  gint32               channel,
                                                  GVariant            *value,
                                                  GError             **error);
void            _execnet_gateway_forget_channel  (ExecnetGateway      *self,
                                                  gint32               channel_id);
void            _execnet_gateway_hold_channel    (ExecnetGateway      *self,
                                                  ExecnetChannel      *channel,
                                                  gboolean             hold);
void            _execnet_gateway_clear_group     (ExecnetGateway      *self);
GMainContext   *_execnet_gateway_get_context     (ExecnetGateway      *self);
void            _execnet_gateway_emit_remote_output (ExecnetGateway   *self,
                                                     const char       *stream,
                                                     GBytes           *data);
void            _execnet_gateway_account         (ExecnetGateway      *self,
                                                  gssize               delta);
gboolean        _execnet_gateway_lead            (ExecnetGateway      *self,
                                                  gboolean           (*done) (gpointer data),
                                                  gpointer             data,
                                                  gint64               deadline);
void            _execnet_gateway_wake_leader     (ExecnetGateway      *self);
void            _execnet_gateway_kill            (ExecnetGateway      *self);
void            _execnet_gateway_wait_ended_async (ExecnetGateway     *self,
                                                   GCancellable       *cancellable,
                                                   GAsyncReadyCallback callback,
                                                   gpointer            user_data);
gboolean        _execnet_gateway_wait_ended_finish (ExecnetGateway    *self,
                                                    GAsyncResult      *result,
                                                    GError           **error);
gboolean        _execnet_gateway_is_congested    (ExecnetGateway      *self);
gboolean        _execnet_gateway_wait_ended      (ExecnetGateway      *self,
                                                  gint64               deadline);
gboolean        _execnet_load_source_file        (GFile               *file,
                                                  GCancellable        *cancellable,
                                                  char               **out_source,
                                                  char               **out_file_name,
                                                  GError             **error);
void            _execnet_gateway_set_via         (ExecnetGateway      *self,
                                                  ExecnetGateway      *via);
ExecnetGateway *_execnet_gateway_get_via         (ExecnetGateway      *self);
void            _execnet_gateway_set_start_order (ExecnetGateway      *self,
                                                  guint64              start_order);
guint64         _execnet_gateway_get_start_order (ExecnetGateway      *self);

G_END_DECLS
