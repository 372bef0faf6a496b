/* execnet-tool-exec.c: execnet-tool exec
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"


#include "execnet-tool.h"

static char *code = NULL;
static char **send_texts = NULL;
static double timeout = -1;

static const GOptionEntry entries[] = {
  { "code", 'c', 0, G_OPTION_ARG_STRING, &code, "Run CODE instead of a file", "CODE" },
  { "send", 's', 0, G_OPTION_ARG_STRING_ARRAY, &send_texts,
    "Send VALUE (GVariant text) to the code's channel; repeat for more", "VALUE" },
  { "timeout", 't', 0, G_OPTION_ARG_DOUBLE, &timeout,
    "Give up after S seconds, counting from the start of the gateway", "S" },
  EXECNET_TOOL_JSON_OPTION ("Print each item as one line of JSON"),
  G_OPTION_ENTRY_NULL
};

static gboolean
print_value (GVariant  *value,
             GError   **error)
{
  g_autofree char *text = execnet_tool_format_value (value);

  return execnet_tool_write_line (text, error);
}

/* Runs @source on a new gateway of @group, sends @values and prints
 * everything that comes back until the channel closes. */
int
execnet_tool_exec (int    argc,
                   char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(GPtrArray) values = NULL;
  g_autofree char *source = NULL;
  int exit_code;
  gboolean ok;

  context = g_option_context_new ("SPEC [FILE | -]");
  g_option_context_set_summary (context,
    "Start a gateway from SPEC, run Python code there and print every item\n"
    "the code sends on its channel (GVariant text, or JSON lines with --json)\n"
    "until the channel closes. The code comes from -c CODE, from FILE, or\n"
    "from standard input with “-”. Values given with --send are sent to the\n"
    "code's channel in order, right after it starts.");
  g_option_context_set_description (context,
    "Exit status: 0 when the code finished, 1 when it raised (the remote\n"
    "traceback goes to standard error), 2 for bad arguments or a bad spec,\n"
    "3 for an unknown transport, 4 when the gateway could not start, 5 on\n"
    "timeout, 6 when the connection was lost, 7 otherwise.\n"
    "\n"
    "Example:\n"
    "  execnet-tool exec popen -c 'channel.send(channel.receive() + 1)' --send 41");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, execnet_tool_verbose_entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (!execnet_tool_default_timeout (&timeout, &error))
    return execnet_tool_report_error (argv[0], error);

  source = execnet_tool_get_code (argc, argv, code, &exit_code);
  if (source == NULL)
    return exit_code;

  values = execnet_tool_parse_values (send_texts, &error);
  if (values == NULL)
    return execnet_tool_report_error (argv[0], error);

  xspec = execnet_xspec_new (argv[1], &error);
  if (xspec == NULL)
    return execnet_tool_report_error (argv[0], error);

  group = execnet_group_new ();
  ok = execnet_tool_run_code (group, xspec, source, values, timeout, NULL, NULL, print_value, &error);
  /* Whatever happened, no process is left behind. */
  execnet_group_terminate (group, EXECNET_TOOL_TERMINATE_TIMEOUT, NULL);

  if (!ok)
    return execnet_tool_report_error (argv[0], error);
  return EXECNET_TOOL_EXIT_OK;
}
