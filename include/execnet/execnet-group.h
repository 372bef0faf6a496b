/* execnet-group.h: managing many gateways
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
#include <execnet/execnet-gateway.h>
#include <execnet/execnet-multichannel.h>

G_BEGIN_DECLS

#define EXECNET_TYPE_GROUP (execnet_group_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (ExecnetGroup, execnet_group, EXECNET, GROUP, GObject)

EXECNET_AVAILABLE_IN_1_0
ExecnetGroup   *execnet_group_new                    (void);
EXECNET_AVAILABLE_IN_1_0
ExecnetGroup   *execnet_group_new_with_specs         (const char * const  *specs,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_group_make_gateway           (ExecnetGroup        *self,
                                                      const char          *spec,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_group_make_gateway_for_xspec (ExecnetGroup        *self,
                                                      ExecnetXSpec        *xspec,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_group_make_gateway_async     (ExecnetGroup        *self,
                                                      const char          *spec,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_group_make_gateway_finish    (ExecnetGroup        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_group_make_gateway_for_xspec_async  (ExecnetGroup        *self,
                                                             ExecnetXSpec        *xspec,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_group_make_gateway_for_xspec_finish (ExecnetGroup        *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);
EXECNET_AVAILABLE_IN_1_0
GPtrArray      *execnet_group_make_gateways          (ExecnetGroup        *self,
                                                      const char * const  *specs,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_group_make_gateways_async    (ExecnetGroup        *self,
                                                      const char * const  *specs,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
GPtrArray      *execnet_group_make_gateways_finish   (ExecnetGroup        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_group_allocate_id            (ExecnetGroup        *self,
                                                      ExecnetXSpec        *xspec);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_group_lookup                 (ExecnetGroup        *self,
                                                      const char          *id);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_group_contains               (ExecnetGroup        *self,
                                                      ExecnetGateway      *gateway);
EXECNET_AVAILABLE_IN_1_0
guint           execnet_group_get_size               (ExecnetGroup        *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_group_get_gateway            (ExecnetGroup        *self,
                                                      guint                index);
EXECNET_AVAILABLE_IN_1_0
const char     *execnet_group_get_default_spec       (ExecnetGroup        *self);
EXECNET_AVAILABLE_IN_1_0
void            execnet_group_set_default_spec       (ExecnetGroup        *self,
                                                      const char          *spec);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_group_terminate              (ExecnetGroup        *self,
                                                      gdouble              timeout,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
void            execnet_group_terminate_async        (ExecnetGroup        *self,
                                                      gdouble              timeout,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
gboolean        execnet_group_terminate_finish       (ExecnetGroup        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
char           *execnet_group_to_string              (ExecnetGroup        *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetMultiChannel *execnet_group_remote_exec       (ExecnetGroup        *self,
                                                      const char          *source,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetMultiChannel *execnet_group_remote_call_full  (ExecnetGroup        *self,
                                                      const char          *source,
                                                      const char          *file_name,
                                                      const char          *function,
                                                      GVariant            *kwargs,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetMultiChannel *execnet_group_remote_exec_file  (ExecnetGroup        *self,
                                                      GFile               *file,
                                                      GCancellable        *cancellable,
                                                      GError             **error);

EXECNET_AVAILABLE_IN_1_0
ExecnetGroup   *execnet_default_group                (void);
EXECNET_AVAILABLE_IN_1_0
ExecnetGateway *execnet_make_gateway                 (const char          *spec,
                                                      GError             **error);

G_END_DECLS
