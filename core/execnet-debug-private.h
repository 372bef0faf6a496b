/* execnet-debug-private.h: the library's debug log and EXECNET_DEBUG keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The log domain of every debug message of the library and its plugins. */
#define EXECNET_LOG_DOMAIN "Execnet"

typedef enum {
  EXECNET_DEBUG_WIRE      = 1 << 0,  /* every frame in and out */
  EXECNET_DEBUG_GATEWAY   = 1 << 1,  /* gateway life cycle */
  EXECNET_DEBUG_TRANSPORT = 1 << 2,  /* plugin loading */
  EXECNET_DEBUG_PAYLOAD   = 1 << 3,  /* every frame's value, decoded */
  EXECNET_DEBUG_SSH       = 1 << 4,  /* libssh's own log, verbose */
  EXECNET_DEBUG_PHASE     = 1 << 5,  /* the phases of starting a gateway */
} ExecnetDebugFlags;

/* Messages of these keys are few per gateway: they are always logged, and
 * the log writer decides (G_MESSAGES_DEBUG, journald, the application's).
 * Those of the others cost work per frame and are made only when
 * EXECNET_DEBUG names their key. */
#define EXECNET_DEBUG_ALWAYS_LOGGED \
  (EXECNET_DEBUG_GATEWAY | EXECNET_DEBUG_TRANSPORT | EXECNET_DEBUG_SSH | EXECNET_DEBUG_PHASE)

guint       _execnet_debug_flags        (void);
guint       _execnet_debug_named_flags  (void);
guint       _execnet_debug_flag_for_key (const char *key);

#define EXECNET_DEBUG_ENABLED(flag) (G_UNLIKELY (_execnet_debug_flags () & (flag)))

/* Logs a message of debug key FLAG about the gateway @gateway_id
 * (nullable). */
#define EXECNET_NOTE(flag, gateway_id, ...) \
  G_STMT_START { \
    if (EXECNET_DEBUG_ENABLED (EXECNET_DEBUG_ ## flag)) \
      _execnet_debug_log (EXECNET_DEBUG_ ## flag, (gateway_id), NULL, \
                          __FILE__, G_STRINGIFY (__LINE__), G_STRFUNC, __VA_ARGS__); \
  } G_STMT_END

/* Logs that starting the gateway @gateway_id enters @phase (a string:
 * "bootstrap", "ready"; transports report theirs with
 * execnet_transport_log_phase()). */
#define EXECNET_PHASE(gateway_id, phase, ...) \
  _execnet_debug_log (EXECNET_DEBUG_PHASE, (gateway_id), (phase), \
                      __FILE__, G_STRINGIFY (__LINE__), G_STRFUNC, __VA_ARGS__)

void _execnet_debug_log  (guint        flag,
                          const char  *gateway_id,
                          const char  *phase,
                          const char  *file,
                          const char  *line,
                          const char  *func,
                          const char  *format,
                          ...) G_GNUC_PRINTF (7, 8);
void _execnet_debug_logv (guint        flag,
                          const char  *gateway_id,
                          const char  *phase,
                          const char  *file,
                          const char  *line,
                          const char  *func,
                          const char  *format,
                          va_list      args) G_GNUC_PRINTF (7, 0);

G_END_DECLS
