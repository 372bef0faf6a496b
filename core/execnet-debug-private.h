/* execnet-debug-private.h: EXECNET_DEBUG keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  EXECNET_DEBUG_WIRE      = 1 << 0,  /* every frame in and out */
  EXECNET_DEBUG_GATEWAY   = 1 << 1,  /* gateway life cycle */
  EXECNET_DEBUG_TRANSPORT = 1 << 2,  /* plugin loading */
  EXECNET_DEBUG_PAYLOAD   = 1 << 3,  /* every frame's value, decoded */
} ExecnetDebugFlags;

guint _execnet_debug_flags (void);

#define EXECNET_DEBUG_ENABLED(flag) (G_UNLIKELY (_execnet_debug_flags () & (flag)))

#define EXECNET_NOTE(flag, ...) \
  G_STMT_START { \
    if (EXECNET_DEBUG_ENABLED (EXECNET_DEBUG_ ## flag)) \
      _execnet_debug_print (#flag, __VA_ARGS__); \
  } G_STMT_END

void _execnet_debug_print (const char *key,
                           const char *format,
                           ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
