/* execnet-serialize.h: execnet's public serialization format
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <glib.h>
#include <execnet/execnet-version.h>

G_BEGIN_DECLS

/**
 * EXECNET_DUMPS_VERSION:
 *
 * The format version byte that execnet_dumps() writes first, as execnet 2.x.
 *
 * Since: 1.0
 */
#define EXECNET_DUMPS_VERSION 2

EXECNET_AVAILABLE_IN_1_0
GBytes   *execnet_dumps (GVariant  *value,
                         GError   **error);
EXECNET_AVAILABLE_IN_1_0
GVariant *execnet_loads (GBytes    *data,
                         GError   **error);

G_END_DECLS
