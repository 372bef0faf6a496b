/* execnet-tool-common.c: what exec and trace share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <gio/gunixinputstream.h>
#include <json-glib/json-glib.h>

#include "execnet-tool.h"

char *
execnet_tool_load_source (const char  *path,
             GError     **error)
{
  g_autoptr(GInputStream) input = NULL;
  g_autoptr(GOutputStream) output = NULL;
  g_autoptr(GFile) file = NULL;

  if (strcmp (path, "-") == 0)
    {
      input = g_unix_input_stream_new (0, FALSE);
    }
  else
    {
      file = g_file_new_for_commandline_arg (path);
      input = G_INPUT_STREAM (g_file_read (file, NULL, error));
      if (input == NULL)
        return NULL;
    }

  output = g_memory_output_stream_new_resizable ();
  if (g_output_stream_splice (output, input, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE, NULL, error) < 0)
    return NULL;
  /* A NUL to end the string; splicing wrote the bytes without one. */
  if (!g_output_stream_write_all (output, "", 1, NULL, NULL, error) ||
      !g_output_stream_close (output, NULL, error))
    return NULL;

  return g_memory_output_stream_steal_data (G_MEMORY_OUTPUT_STREAM (output));
}

GPtrArray *
execnet_tool_parse_values (char    **texts,
              GError  **error)
{
  g_autoptr(GPtrArray) values = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);

  for (guint i = 0; texts != NULL && texts[i] != NULL; i++)
    {
      g_autoptr(GError) local_error = NULL;
      GVariant *value = g_variant_parse (NULL, texts[i], NULL, NULL, &local_error);

      if (value == NULL)
        {
          g_autofree char *context = g_variant_parse_error_print_context (local_error, texts[i]);

          g_set_error (error, G_VARIANT_PARSE_ERROR, local_error->code,
                       "--send value %u is not GVariant text:\n%s", i + 1, context);
          return NULL;
        }
      /* g_variant_parse() returns a full, non-floating reference. */
      g_ptr_array_add (values, value);
    }

  return g_steal_pointer (&values);
}

/* Writes one line to stdout and flushes it; fails when stdout is gone (as
 * when piped to `head`: GIO ignores SIGPIPE, so writing on would go on
 * failing quietly). Values and JSON are UTF-8 whatever the locale, and are
 * data to be read back: they are written as they are, not converted. */
gboolean
execnet_tool_write_line (const char  *text,
                         GError     **error)
{
  int saved_errno;

  fputs (text, stdout);
  fputc ('\n', stdout);

  errno = 0;
  if (fflush (stdout) == 0 && !ferror (stdout))
    return TRUE;

  /* stdio keeps the error, not always its errno. */
  saved_errno = errno;
  if (saved_errno != 0)
    g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                 "cannot write to standard output: %s", g_strerror (saved_errno));
  else
    g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                         "cannot write to standard output");
  return FALSE;
}

/* GVariant text, or JSON (execnet-tool-json.c) with --json. */
char *
execnet_tool_format_value (GVariant *value)
{
  if (execnet_tool_json ())
    return execnet_tool_value_to_json (value);
  return g_variant_print (value, TRUE);
}

static void
on_started (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GAsyncResult **result_out = user_data;

  *result_out = g_object_ref (result);
}

static gboolean
on_deadline (gpointer user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
  return G_SOURCE_REMOVE;
}

/* Starts a gateway and cancels the start at @deadline (monotonic
 * microseconds; negative for none), which then counts as a timeout of
 * @timeout seconds. */
ExecnetGateway *
execnet_tool_start_gateway (ExecnetGroup  *group,
                            ExecnetXSpec  *xspec,
                            gint64         deadline,
                            double         timeout,
                            GError       **error)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GSource) timer = NULL;
  g_autoptr(GError) local_error = NULL;
  ExecnetGateway *gateway;

  g_main_context_push_thread_default (context);
  if (deadline >= 0)
    {
      gint64 remaining = MAX (deadline - g_get_monotonic_time (), 0);

      timer = g_timeout_source_new (remaining / 1000);
      g_source_set_callback (timer, on_deadline, cancellable, NULL);
      g_source_attach (timer, context);
    }
  execnet_group_make_gateway_for_xspec_async (group, xspec, cancellable, on_started, &result);
  while (result == NULL)
    g_main_context_iteration (context, TRUE);
  if (timer != NULL)
    g_source_destroy (timer);
  g_main_context_pop_thread_default (context);

  gateway = execnet_group_make_gateway_for_xspec_finish (group, result, &local_error);
  if (gateway == NULL)
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     "timed out after %g seconds starting the gateway “%s”",
                     timeout, execnet_xspec_to_string (xspec));
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
    }

  return gateway != NULL ? g_object_ref (gateway) : NULL;
}

/* Seconds left until @deadline, for execnet_channel_receive(). */
double
execnet_tool_seconds_left (gint64 deadline)
{
  if (deadline < 0)
    return -1;
  return MAX (deadline - g_get_monotonic_time (), 0) / (double) G_USEC_PER_SEC;
}

/* The code of exec and trace: from -c CODE (@code), or from the FILE or "-"
 * argument after the spec. Prints what is wrong and returns NULL with
 * *@exit_code set when the arguments are off. */
char *
execnet_tool_get_code (int          argc,
                       char       **argv,
                       const char  *code,
                       int         *exit_code)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *source = NULL;

  *exit_code = EXECNET_TOOL_EXIT_USAGE;
  if (argc < 2)
    {
      execnet_tool_print_error (argv[0], "no spec given; try “execnet-tool help %s”", argv[0]);
      return NULL;
    }
  if (argc > 3)
    {
      execnet_tool_print_error (argv[0], "too many arguments, from “%s” on", argv[3]);
      return NULL;
    }
  if ((code != NULL) == (argc == 3))
    {
      execnet_tool_print_error (argv[0], "give the code either with -c CODE or as FILE (or “-”)");
      return NULL;
    }

  source = code != NULL ? g_strdup (code) : execnet_tool_load_source (argv[2], &error);
  if (source == NULL)
    {
      execnet_tool_print_error (argv[0], "%s", error->message);
      return NULL;
    }
  if (!g_utf8_validate (source, -1, NULL))
    {
      execnet_tool_print_error (argv[0], "the code is not valid UTF-8 text");
      return NULL;
    }

  *exit_code = EXECNET_TOOL_EXIT_OK;
  return g_steal_pointer (&source);
}

/* Runs @source on a new gateway of @group made from @xspec: calls
 * @prepare (if any) on the gateway first, sends @values, hands every item
 * the code sends to @on_item (if any) until the channel closes. @timeout
 * (seconds, negative for none) covers it all, start-up included. */
gboolean
execnet_tool_run_code (ExecnetGroup         *group,
                       ExecnetXSpec         *xspec,
                       const char           *source,
                       GPtrArray            *values,
                       double                timeout,
                       ExecnetToolPrepare    prepare,
                       gpointer              prepare_data,
                       ExecnetToolItemFunc   on_item,
                       GError              **error)
{
  gint64 deadline = timeout >= 0 ? g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC) : -1;
  g_autoptr(ExecnetGateway) gateway = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;

  gateway = execnet_tool_start_gateway (group, xspec, deadline, timeout, error);
  if (gateway == NULL)
    return FALSE;
  if (prepare != NULL)
    prepare (gateway, prepare_data);

  channel = execnet_gateway_remote_exec (gateway, source, error);
  if (channel == NULL)
    return FALSE;

  for (guint i = 0; i < values->len; i++)
    if (!execnet_channel_send (channel, g_ptr_array_index (values, i), error))
      return FALSE;

  if (timeout >= 0)
    execnet_tool_verbose_print (1, "%s: waiting for the code on channel %d to send or end "
                                "(timeout %g s in all)", execnet_gateway_get_id (gateway),
                                execnet_channel_get_id (channel), timeout);
  else
    execnet_tool_verbose_print (1, "%s: waiting for the code on channel %d to send or end "
                                "(no timeout: give --timeout, or set EXECNET_TOOL_TIMEOUT)",
                                execnet_gateway_get_id (gateway), execnet_channel_get_id (channel));

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GVariant) item = execnet_channel_receive (channel, execnet_tool_seconds_left (deadline),
                                                          &local_error);

      if (item != NULL)
        {
          if (on_item != NULL && !on_item (item, error))
            return FALSE;
          continue;
        }

      if (g_error_matches (local_error, EXECNET_ERROR, EXECNET_ERROR_CHANNEL_CLOSED))
        return TRUE;

      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                     "timed out after %g seconds: the remote code had not finished", timeout);
      else
        g_propagate_error (error, g_steal_pointer (&local_error));
      return FALSE;
    }
}

gboolean
execnet_tool_default_timeout (double   *timeout,
                              GError  **error)
{
  const char *text = g_getenv ("EXECNET_TOOL_TIMEOUT");
  char *end = NULL;
  double value;

  if (*timeout >= 0 || text == NULL || *text == '\0')
    return TRUE;

  value = g_ascii_strtod (text, &end);
  if (end == text || *end != '\0' || !(value >= 0) || value > 1e9)
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "EXECNET_TOOL_TIMEOUT=%s is not a number of seconds; unset it or give "
                   "one such as 60", text);
      return FALSE;
    }
  *timeout = value;
  return TRUE;
}
