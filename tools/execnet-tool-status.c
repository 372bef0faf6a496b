/* execnet-tool-status.c: execnet-tool status and execnet-tool info
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>

#include <json-glib/json-glib.h>

#include "execnet-tool.h"

typedef GVariant *(*QueryFunc) (ExecnetGateway  *gateway,
                                GError         **error);


static const GOptionEntry entries[] = {
  EXECNET_TOOL_JSON_OPTION ("Print the result as one line of JSON"),
  G_OPTION_ENTRY_NULL
};

/* Prints an a{sv} dictionary as “key: value” lines; strings bare, other
 * values as GVariant text. */
static void
print_dictionary_text (GVariant *dictionary)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, dictionary);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      g_autofree char *text = NULL;

      if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        text = g_variant_dup_string (value, NULL);
      else
        text = g_variant_print (value, FALSE);
      g_print ("%s: %s\n", key, text);
    }
}

static void
print_dictionary_json (GVariant *dictionary)
{
  g_autofree char *text = execnet_tool_value_to_json (dictionary);

  fputs (text, stdout);
  fputc ('\n', stdout);
}

static int
run (int          argc,
     char       **argv,
     const char  *summary,
     QueryFunc    query)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(GVariant) result = NULL;
  g_autofree char *description = NULL;
  ExecnetGateway *gateway;

  context = g_option_context_new ("SPEC");
  g_option_context_set_summary (context, summary);
  description = g_strdup_printf ("Exit status: 0 on success, 2 for a bad spec, 3 for an unknown\n"
                                 "transport, 4 when the gateway could not start, 6 when its\n"
                                 "connection was lost.\n"
                                 "\n"
                                 "Example:\n"
                                 "  execnet-tool %s 'popen//python=python3 -X dev'", argv[0]);
  g_option_context_set_description (context, description);
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, execnet_tool_verbose_entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (argc < 2)
    {
      execnet_tool_print_error (argv[0], "no spec given; try “execnet-tool help %s”", argv[0]);
      return EXECNET_TOOL_EXIT_USAGE;
    }
  if (argc > 2)
    {
      execnet_tool_print_error (argv[0], "give exactly one spec");
      return EXECNET_TOOL_EXIT_USAGE;
    }

  group = execnet_group_new ();
  gateway = execnet_group_make_gateway (group, argv[1], &error);
  if (gateway != NULL)
    result = query (gateway, &error);
  execnet_group_terminate (group, EXECNET_TOOL_TERMINATE_TIMEOUT, NULL);

  if (result == NULL)
    return execnet_tool_report_error (argv[0], error);

  if (execnet_tool_json ())
    print_dictionary_json (result);
  else
    print_dictionary_text (result);

  return EXECNET_TOOL_EXIT_OK;
}

int
execnet_tool_status (int    argc,
                     char **argv)
{
  return run (argc, argv,
              "Start a gateway from SPEC and show its remote status, as the agent\n"
              "reports it without running code: the number of open channels\n"
              "(numchannels), of running remote_exec tasks (numexecuting) and the\n"
              "execution model (execmodel). The gateway is then terminated.",
              execnet_gateway_remote_status);
}

int
execnet_tool_info (int    argc,
                   char **argv)
{
  return run (argc, argv,
              "Start a gateway from SPEC and describe its remote interpreter: its\n"
              "executable, version_info, platform, working directory (cwd) and\n"
              "process id (pid). The gateway is then terminated.",
              execnet_gateway_remote_info);
}
