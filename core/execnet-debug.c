/* execnet-debug.c: EXECNET_DEBUG keys
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include "execnet-debug-private.h"

/* EXECNET_DEBUG=wire,gateway,payload,transport (or "all", or "help") turns
 * on trace output on
 * stderr: frame headers, gateway life cycles, every frame's decoded value,
 * plugin loading. It is meant for people debugging a gateway, so it prints
 * directly rather than through a log handler an application may silence. */

static const GDebugKey debug_keys[] = {
  { "wire", EXECNET_DEBUG_WIRE },
  { "gateway", EXECNET_DEBUG_GATEWAY },
  { "transport", EXECNET_DEBUG_TRANSPORT },
  { "payload", EXECNET_DEBUG_PAYLOAD },
};

guint
_execnet_debug_flags (void)
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

void
_execnet_debug_print (const char *key,
                      const char *format,
                      ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fprintf (stderr, "execnet[%d] %.3f %s: %s\n",
           (int) getpid (), g_get_monotonic_time () / 1e6,
           key, message);
}
