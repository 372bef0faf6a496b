/* execnet-gateway.h: a connection to one remote Python interpreter
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
#include <execnet/execnet-xspec.h>
#include <execnet/execnet-channel.h>
#include <execnet/execnet-message.h>

G_BEGIN_DECLS

#define EXECNET_TYPE_GATEWAY (execnet_gateway_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (ExecnetGateway, execnet_gateway, EXECNET, GATEWAY, GObject)

EXECNET_AVAILABLE_IN_1_0
const char     *execnet_gateway_get_id        (ExecnetGateway  *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetXSpec   *execnet_gateway_get_xspec     (ExecnetGateway  *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetGroup   *execnet_gateway_get_group     (ExecnetGateway  *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetChannel *execnet_gateway_remote_exec   (ExecnetGateway  *self,
                                               const char      *source,
                                               GError         **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetChannel *execnet_gateway_remote_call   (ExecnetGateway  *self,
                                               const char      *source,
                                               const char      *function,
                                               GVariant        *kwargs,
                                               GError         **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetChannel *execnet_gateway_remote_call_full (ExecnetGateway  *self,
                                                  const char      *source,
                                                  const char      *file_name,
                                                  const char      *function,
                                                  GVariant        *kwargs,
                                                  GError         **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetChannel *execnet_gateway_remote_exec_file (ExecnetGateway  *self,
                                                  GFile           *file,
                                                  GCancellable    *cancellable,
                                                  GError         **error);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_gateway_forward_logging (ExecnetGateway  *self,
                                                 const char      *logger,
                                                 gint             level,
                                                 gdouble          timeout,
                                                 GError         **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_gateway_forward_logging_async (ExecnetGateway      *self,
                                                       const char          *logger,
                                                       gint                 level,
                                                       gdouble              timeout,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_gateway_forward_logging_finish (ExecnetGateway  *self,
                                                        GAsyncResult    *result,
                                                        GError         **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetChannel *execnet_gateway_new_channel   (ExecnetGateway  *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetChannel *execnet_gateway_channel_from_value (ExecnetGateway *self,
                                                    GVariant       *value);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_gateway_remote_status (ExecnetGateway  *self,
                                               GError         **error);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_gateway_remote_info   (ExecnetGateway  *self,
                                               GError         **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_gateway_exit          (ExecnetGateway  *self);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_gateway_is_alive      (ExecnetGateway  *self);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_gateway_join          (ExecnetGateway  *self,
                                               gdouble          timeout,
                                               GError         **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_gateway_join_async    (ExecnetGateway      *self,
                                               gdouble              timeout,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_gateway_join_finish   (ExecnetGateway      *self,
                                               GAsyncResult        *result,
                                               GError             **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_gateway_remote_status_async (ExecnetGateway      *self,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_gateway_remote_status_finish (ExecnetGateway  *self,
                                                      GAsyncResult    *result,
                                                      GError         **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_gateway_remote_info_async (ExecnetGateway      *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
GVariant       *execnet_gateway_remote_info_finish (ExecnetGateway  *self,
                                                    GAsyncResult    *result,
                                                    GError         **error);
EXECNET_AVAILABLE_IN_1_0
char           *execnet_gateway_to_string     (ExecnetGateway  *self);
EXECNET_AVAILABLE_IN_1_0
const char     *execnet_gateway_get_remote_address (ExecnetGateway *self);

/**
 * ExecnetWireObserver:
 * @gateway: the gateway
 * @outgoing: %TRUE for a message sent to the remote side
 * @code: the message code; execnet_message_code_name() names it
 * @channel: the channel id the message is about
 * @payload: the message's payload: a serialized value without version byte
 *   (execnet_loads() reads it after a version byte), or empty
 * @user_data: the data given to execnet_gateway_set_wire_observer()
 *
 * Sees a message on the wire. Called from any thread: outgoing messages in
 * the sending thread, incoming ones in the I/O thread. It must be quick and
 * must not call back into the gateway. Bindings that run callbacks in one
 * thread only cannot observe the wire: GJS refuses the call from the I/O
 * thread (PyGObject takes its interpreter lock and can).
 *
 * Since: 1.0
 */
typedef void (*ExecnetWireObserver) (ExecnetGateway *gateway,
                                     gboolean        outgoing,
                                     ExecnetMessageCode code,
                                     gint            channel,
                                     GBytes         *payload,
                                     gpointer        user_data);

EXECNET_AVAILABLE_IN_1_0
void            execnet_gateway_set_wire_observer (ExecnetGateway      *self,
                                                   ExecnetWireObserver  observer,
                                                   gpointer             user_data,
                                                   GDestroyNotify       notify);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_gateway_get_startup_times (ExecnetGateway *self,
                                                   gint64         *connect_us,
                                                   gint64         *bootstrap_us);

G_END_DECLS
