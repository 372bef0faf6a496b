/* execnet-util.c: small helpers that every part of the core shares
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>
#include <sys/wait.h>

#include "execnet-emitter-private.h"
#include "execnet-util-private.h"

gint64
_execnet_deadline_from_timeout (gdouble timeout)
{
  gint64 now = g_get_monotonic_time ();

  /* A NaN fails every comparison: it must not reach the conversion below,
   * whose result would be undefined. Callers reject it first. */
  if (!(timeout >= 0))
    return -1;
  if (timeout >= (gdouble) (G_MAXINT64 - now) / G_USEC_PER_SEC)
    return -1;
  return now + (gint64) (timeout * G_USEC_PER_SEC);
}

gboolean
_execnet_check_timeout (gdouble   timeout,
                        GError  **error)
{
  if (!isnan (timeout))
    return TRUE;

  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                       "the timeout is NaN; give a number of seconds, or a "
                       "negative number to wait without limit");
  return FALSE;
}

char *
_execnet_describe_exit_status (int wait_status)
{
  if (wait_status < 0)
    return g_strdup ("ended");
  if (WIFEXITED (wait_status))
    return g_strdup_printf ("exited with status %d", WEXITSTATUS (wait_status));
  if (WIFSIGNALED (wait_status))
    return g_strdup_printf ("was killed by signal %d (%s)",
                            WTERMSIG (wait_status), g_strsignal (WTERMSIG (wait_status)));
  return g_strdup_printf ("ended with wait status %d", wait_status);
}

static void
on_sync_done (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **out = user_data;

  *out = g_object_ref (result);
  g_main_context_wakeup (g_main_context_get_thread_default ());
}

/* See the header. Returns (transfer full) the result. */
GAsyncResult *
_execnet_run_sync (ExecnetStartFunc func,
                   gpointer         data)
{
  g_autoptr(GMainContext) caller = _execnet_ref_caller_context ();
  GMainContext *context = g_main_context_new ();
  GMainContext *saved = _execnet_caller_context_enter (caller);
  GAsyncResult *result = NULL;

  g_main_context_push_thread_default (context);
  func (data, on_sync_done, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  _execnet_caller_context_leave (saved);
  /* Dispatch whatever the finished operation left behind. */
  while (g_main_context_iteration (context, FALSE))
    ;
  g_main_context_unref (context);

  return result;
}

/* Through the global lookup, not the resource's generated getter: GLib
 * (2.74) registers static resources lazily, on the first lookup, and a
 * getter called while another thread registers them can return NULL;
 * g_resources_lookup_data() waits for that registration to finish. */
GBytes *
_execnet_remote_lookup (const char *path)
{
  GBytes *data = g_resources_lookup_data (path, G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);

  g_assert (data != NULL);
  return data;
}
