/* execnet-group-private.h: what the group's gateways tell it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-gateway.h>
#include <execnet/execnet-group.h>

G_BEGIN_DECLS

void _execnet_group_gateway_exited (ExecnetGroup   *self,
                                    ExecnetGateway *gateway);

G_END_DECLS
