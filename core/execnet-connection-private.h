/* execnet-connection-private.h: the connection's internal API
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-connection.h>

G_BEGIN_DECLS

void _execnet_connection_set_bootstrap_answer (ExecnetConnection *self,
                                               GBytes            *answer);

G_END_DECLS
