/* execnet-tool-verbose.c: -v and -vv, like ssh -v
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "execnet-tool.h"

/* The library reports the phases of a gateway's start (resolving,
 * connecting, authenticating, starting-python, bootstrap, ready) as debug
 * messages in GLib's structured log, with the phase in the field
 * EXECNET_PHASE. -v installs a log writer that shows them, one line each
 * with the time since the tool started; -vv shows every debug message of
 * the library (gateway life cycle, plugin loading, libssh's log) too.
 * Everything else goes to GLib's default writer as before. */

static int verbosity = 0;
static gint64 start_time = 0;

/* EXECNET_DEBUG keys the user asked for: with our writer in place the
 * library leaves showing them to us. */
static gboolean
key_asked_for (const char *key)
{
  const char *env = g_getenv ("EXECNET_DEBUG");
  g_auto(GStrv) keys = NULL;

  if (env == NULL || key == NULL)
    return FALSE;
  keys = g_strsplit_set (env, ",:; \t", -1);
  return g_strv_contains ((const char * const *) keys, key) ||
         g_strv_contains ((const char * const *) keys, "all");
}

/* Any thread: the library logs from its I/O thread and transport threads. */
static GLogWriterOutput
write_log (GLogLevelFlags   level,
           const GLogField *fields,
           gsize            n_fields,
           gpointer         user_data)
{
  const char *domain = NULL, *message = NULL, *phase = NULL, *key = NULL;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (strcmp (fields[i].key, "GLIB_DOMAIN") == 0)
        domain = fields[i].value;
      else if (strcmp (fields[i].key, "MESSAGE") == 0)
        message = fields[i].value;
      else if (strcmp (fields[i].key, "EXECNET_PHASE") == 0)
        phase = fields[i].value;
      else if (strcmp (fields[i].key, "EXECNET_DEBUG_KEY") == 0)
        key = fields[i].value;
    }

  if (g_strcmp0 (domain, "Execnet") != 0 || (level & G_LOG_LEVEL_DEBUG) == 0)
    return g_log_writer_default (level, fields, n_fields, user_data);

  if ((phase != NULL && verbosity >= 1) || verbosity >= 2 || key_asked_for (key))
    execnet_tool_verbose_print (phase != NULL ? 1 : 0, "%s%s%s",
                                phase != NULL ? "" : key,
                                phase != NULL ? "" : ": ",
                                message != NULL ? message : "");
  return G_LOG_WRITER_HANDLED;
}

static gboolean
on_verbose (const char  *option_name,
            const char  *value,
            gpointer     data,
            GError     **error)
{
  execnet_tool_set_verbosity (verbosity + 1);
  return TRUE;
}

const GOptionEntry execnet_tool_verbose_entries[] = {
  { "verbose", 'v', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, on_verbose,
    "Show each phase of starting the gateway with its time (-vv: all debug messages)", NULL },
  G_OPTION_ENTRY_NULL
};

/* Main thread, before any gateway exists (it may change the environment). */
void
execnet_tool_set_verbosity (int level)
{
  static gboolean writer_set = FALSE;

  verbosity = level;
  if (verbosity < 1 || writer_set)
    return;

  writer_set = TRUE;
  start_time = g_get_monotonic_time ();
  /* With the domain in G_MESSAGES_DEBUG the library sends its messages
   * only to the writer, which shows the ones asked for, once. */
  if (g_log_writer_default_would_drop (G_LOG_LEVEL_DEBUG, "Execnet"))
    {
      const char *old = g_getenv ("G_MESSAGES_DEBUG");
      g_autofree char *value = old != NULL && *old != '\0' ? g_strconcat (old, " Execnet", NULL)
                                                           : g_strdup ("Execnet");

      g_setenv ("G_MESSAGES_DEBUG", value, TRUE);
    }
  g_log_set_writer_func (write_log, NULL, NULL);
}

int
execnet_tool_get_verbosity (void)
{
  return verbosity;
}

/* Any thread: one line on stderr when the verbosity is at least @level. */
void
execnet_tool_verbose_print (int         level,
                            const char *format,
                            ...)
{
  g_autofree char *message = NULL;
  va_list args;

  if (verbosity < level || verbosity == 0)
    return;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);

  fprintf (stderr, "execnet-tool: %8.3f s  %s\n",
           (g_get_monotonic_time () - start_time) / (double) G_USEC_PER_SEC, message);
}
