/* execnet-via-private.h: gateways started by another gateway (via=ID)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-gateway.h>
#include <execnet/execnet-transport.h>

G_BEGIN_DECLS

ExecnetConnection *_execnet_via_connect (ExecnetGateway  *via,
                                         ExecnetXSpec    *xspec,
                                         GError         **error);

GError *_execnet_via_explain_failure (ExecnetGateway    *via,
                                      ExecnetXSpec      *xspec,
                                      ExecnetConnection *connection);

G_END_DECLS
