/* execnet-rsync.h: one local directory copied to many gateways
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <gio/gio.h>
#include <execnet/execnet-version.h>
#include <execnet/execnet-gateway.h>

G_BEGIN_DECLS

/**
 * ExecnetRSyncFlags:
 * @EXECNET_RSYNC_NONE: copy and update only; leave extra remote files alone
 * @EXECNET_RSYNC_DELETE: also remove what the destination has and the
 *   source does not
 *
 * How [method@Execnet.RSync.add_target] treats one destination.
 *
 * Since: 1.0
 */
typedef enum /*< flags >*/
{
  EXECNET_RSYNC_NONE   = 0,
  EXECNET_RSYNC_DELETE = 1 << 0,
} ExecnetRSyncFlags;

#define EXECNET_TYPE_RSYNC (execnet_rsync_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_FINAL_TYPE (ExecnetRSync, execnet_rsync, EXECNET, RSYNC, GObject)

EXECNET_AVAILABLE_IN_1_0
ExecnetRSync *execnet_rsync_new         (const char           *source_dir);
EXECNET_AVAILABLE_IN_1_0
const char   *execnet_rsync_get_source_dir (ExecnetRSync      *self);
EXECNET_AVAILABLE_IN_1_0
gboolean      execnet_rsync_add_target  (ExecnetRSync         *self,
                                         ExecnetGateway       *gateway,
                                         const char           *dest_dir,
                                         ExecnetRSyncFlags     flags,
                                         GError              **error);
EXECNET_AVAILABLE_IN_1_0
gboolean      execnet_rsync_send        (ExecnetRSync         *self,
                                         GCancellable         *cancellable,
                                         GError              **error);
EXECNET_AVAILABLE_IN_1_0
void          execnet_rsync_send_async  (ExecnetRSync         *self,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
EXECNET_AVAILABLE_IN_1_0
gboolean      execnet_rsync_send_finish (ExecnetRSync         *self,
                                         GAsyncResult         *result,
                                         GError              **error);

G_END_DECLS
