/* execnet-bootstrap-private.h: starting the agent on the remote side
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <execnet/execnet-transport.h>
#include <execnet/execnet-xspec.h>

G_BEGIN_DECLS

/* How long a remote may take to acknowledge the bootstrap, unless the spec
 * says otherwise with connect_timeout=. */
#define EXECNET_BOOTSTRAP_DEFAULT_TIMEOUT 60.0

GBytes   *_execnet_bootstrap_build_line (ExecnetXSpec         *xspec,
                                         const char           *gateway_id,
                                         ExecnetBootstrapMode  mode,
                                         GError              **error);
void      _execnet_bootstrap_async      (ExecnetConnection    *connection,
                                         ExecnetXSpec         *xspec,
                                         const char           *gateway_id,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
gboolean  _execnet_bootstrap_finish     (ExecnetConnection    *connection,
                                         GAsyncResult         *result,
                                         GError              **error);
char     *_execnet_bootstrap_setup_source (ExecnetXSpec        *xspec);
void      _execnet_append_python_string (GString              *out,
                                         const char           *text,
                                         gssize                length);

G_END_DECLS
