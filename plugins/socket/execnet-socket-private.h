/* execnet-socket-private.h: the socket plugin's parts, between its files
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <execnet/execnet.h>

G_BEGIN_DECLS

/* What an installvia= spec needs until the transport opened it: the token
 * file (removed when freed) and the channel to the one-shot server. */
typedef struct _ExecnetSocketInstalled ExecnetSocketInstalled;

void          _execnet_socket_installed_free     (ExecnetSocketInstalled  *installed);
void          _execnet_socket_install_via_async  (gpointer                 source_object,
                                                  ExecnetGroup            *group,
                                                  ExecnetXSpec            *xspec,
                                                  GCancellable            *cancellable,
                                                  GAsyncReadyCallback      callback,
                                                  gpointer                 user_data);
ExecnetXSpec *_execnet_socket_install_via_finish (GAsyncResult            *result,
                                                  ExecnetSocketInstalled **installed,
                                                  GError                 **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetSocketInstalled, _execnet_socket_installed_free)

G_END_DECLS
