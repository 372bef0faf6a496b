/* execnet-types.h: the library's types, declared ahead of their headers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <glib.h>

G_BEGIN_DECLS

/* Each header that defines one of these also declares it; these let the
 * headers name each other's types whatever the order they are read in. */
typedef struct _ExecnetChannel ExecnetChannel;
typedef struct _ExecnetConnection ExecnetConnection;
typedef struct _ExecnetGateway ExecnetGateway;
typedef struct _ExecnetGroup ExecnetGroup;
typedef struct _ExecnetMultiChannel ExecnetMultiChannel;
typedef struct _ExecnetTransport ExecnetTransport;
typedef struct _ExecnetXSpec ExecnetXSpec;

G_END_DECLS
