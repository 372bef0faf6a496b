/* execnet-debug.c: the library's debug log and EXECNET_DEBUG keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "execnet-debug-private.h"

/* All debug output goes through GLib's structured log, in the domain
 * "Execnet" at debug level, so it behaves as in any GLib library: the
 * default writer shows it with G_MESSAGES_DEBUG=Execnet (or all), and an
 * application's writer (journald, its own window) gets every message with
 * these fields besides MESSAGE:
 *
 *   EXECNET_DEBUG_KEY  the EXECNET_DEBUG key the message belongs to
 *   EXECNET_GATEWAY    the gateway's id, when there is one
 *   EXECNET_PHASE      for key "phase": which phase of the start begins
 *
 * EXECNET_DEBUG=KEY,... is the switch for people debugging a gateway: it
 * turns on the per-frame keys, and shows the messages of the keys it names
 * on stderr even when the default writer would drop them. */

static const GDebugKey debug_keys[] = {
  { "wire", EXECNET_DEBUG_WIRE },
  { "gateway", EXECNET_DEBUG_GATEWAY },
  { "transport", EXECNET_DEBUG_TRANSPORT },
  { "payload", EXECNET_DEBUG_PAYLOAD },
  { "ssh", EXECNET_DEBUG_SSH },
  { "phase", EXECNET_DEBUG_PHASE },
};

/* The keys EXECNET_DEBUG names, read once ("help" lists them on stderr). */
guint
_execnet_debug_named_flags (void)
{
  static gsize flags = 0;

  if (g_once_init_enter (&flags))
    {
      guint value = g_parse_debug_string (g_getenv ("EXECNET_DEBUG"),
                                          debug_keys, G_N_ELEMENTS (debug_keys));
      /* g_once_init_leave() takes no zero: keep an "initialised" bit. */
      g_once_init_leave (&flags, (gsize) value | ((gsize) 1 << 31));
    }

  return (guint) (flags & ~((gsize) 1 << 31));
}

/* Which keys' messages are made at all. */
guint
_execnet_debug_flags (void)
{
  return _execnet_debug_named_flags () | EXECNET_DEBUG_ALWAYS_LOGGED;
}

/* The flag of @key, or 0 if it is no key of ours. */
guint
_execnet_debug_flag_for_key (const char *key)
{
  for (gsize i = 0; i < G_N_ELEMENTS (debug_keys); i++)
    if (g_strcmp0 (debug_keys[i].key, key) == 0)
      return debug_keys[i].value;
  return 0;
}

static const char *
key_name (guint flag)
{
  for (gsize i = 0; i < G_N_ELEMENTS (debug_keys); i++)
    if (debug_keys[i].value == flag)
      return debug_keys[i].key;
  return "debug";
}

void
_execnet_debug_logv (guint        flag,
                     const char  *gateway_id,
                     const char  *phase,
                     const char  *file,
                     const char  *line,
                     const char  *func,
                     const char  *format,
                     va_list      args)
{
  g_autofree char *text = g_strdup_vprintf (format, args);
  g_autofree char *message = NULL;
  const char *key = key_name (flag);
  GLogField fields[9];
  gsize n = 0;

  /* A phase says which gateway it is about in its text too, for the
   * writers that show only the text. */
  if (phase != NULL)
    message = g_strdup_printf ("%s: %s: %s", gateway_id != NULL ? gateway_id : "gateway",
                               phase, text);
  else
    message = g_steal_pointer (&text);

  fields[n++] = (GLogField) { "GLIB_DOMAIN", EXECNET_LOG_DOMAIN, -1 };
  fields[n++] = (GLogField) { "PRIORITY", "7", -1 };
  fields[n++] = (GLogField) { "MESSAGE", message, -1 };
  fields[n++] = (GLogField) { "CODE_FILE", file, -1 };
  fields[n++] = (GLogField) { "CODE_LINE", line, -1 };
  fields[n++] = (GLogField) { "CODE_FUNC", func, -1 };
  fields[n++] = (GLogField) { "EXECNET_DEBUG_KEY", key, -1 };
  if (gateway_id != NULL)
    fields[n++] = (GLogField) { "EXECNET_GATEWAY", gateway_id, -1 };
  if (phase != NULL)
    fields[n++] = (GLogField) { "EXECNET_PHASE", phase, -1 };

  g_log_structured_array (G_LOG_LEVEL_DEBUG, fields, n);

  /* EXECNET_DEBUG asked for these on stderr: print them unless the
   * default writer shows them already. */
  if ((_execnet_debug_named_flags () & flag) != 0 &&
      g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, EXECNET_LOG_DOMAIN))
    fprintf (stderr, "execnet[%d] %.3f %s: %s\n",
             (int) getpid (), g_get_monotonic_time () / 1e6, key, message);
}

void
_execnet_debug_log (guint        flag,
                    const char  *gateway_id,
                    const char  *phase,
                    const char  *file,
                    const char  *line,
                    const char  *func,
                    const char  *format,
                    ...)
{
  va_list args;

  va_start (args, format);
  _execnet_debug_logv (flag, gateway_id, phase, file, line, func, format, args);
  va_end (args);
}
