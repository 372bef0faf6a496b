/* execnet-tool-transports.c: execnet-tool transports
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>

#include <json-glib/json-glib.h>

#include "execnet-tool.h"


static gboolean check = FALSE;

static const GOptionEntry entries[] = {
  { "check", 0, 0, G_OPTION_ARG_NONE, &check,
    "Load each plugin and report those that fail, with the reason", NULL },
  EXECNET_TOOL_JSON_OPTION ("Print the result as one line of JSON"),
  G_OPTION_ENTRY_NULL
};

/* @problems: (nullable) without --check; else, per scheme, why its plugin
 * failed to load, or NULL if it loaded. */
static void
print_text (char **schemes,
            char **modules,
            char **problems,
            char **search_path)
{
  int width = 0;

  for (guint i = 0; schemes[i] != NULL; i++)
    width = MAX (width, (int) g_utf8_strlen (schemes[i], -1));

  if (schemes[0] == NULL)
    g_print ("no transports found\n");
  for (guint i = 0; schemes[i] != NULL; i++)
    {
      const char *module = modules[i] != NULL ? modules[i] : "(built in or already loaded)";

      if (problems == NULL)
        g_print ("%-*s  %s\n", width, schemes[i], module);
      else if (problems[i] == NULL)
        g_print ("%-*s  ok      %s\n", width, schemes[i], module);
      else
        g_print ("%-*s  FAILED  %s\n%-*s  %s\n", width, schemes[i], module,
                 width, "", problems[i]);
    }

  g_print ("search path:\n");
  for (guint i = 0; search_path[i] != NULL; i++)
    g_print ("  %s\n", search_path[i]);
}

static void
print_json (char **schemes,
            char **modules,
            char **problems,
            char **search_path)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "transports");
  json_builder_begin_array (builder);
  for (guint i = 0; schemes[i] != NULL; i++)
    {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "scheme");
      json_builder_add_string_value (builder, schemes[i]);
      json_builder_set_member_name (builder, "module");
      if (modules[i] != NULL)
        json_builder_add_string_value (builder, modules[i]);
      else
        json_builder_add_null_value (builder);
      if (problems != NULL)
        {
          json_builder_set_member_name (builder, "loads");
          json_builder_add_boolean_value (builder, problems[i] == NULL);
          json_builder_set_member_name (builder, "error");
          if (problems[i] != NULL)
            json_builder_add_string_value (builder, problems[i]);
          else
            json_builder_add_null_value (builder);
        }
      json_builder_end_object (builder);
    }
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "search_path");
  json_builder_begin_array (builder);
  for (guint i = 0; search_path[i] != NULL; i++)
    json_builder_add_string_value (builder, search_path[i]);
  json_builder_end_array (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  text = execnet_tool_json_node_to_string (root);
  fputs (text, stdout);
  fputc ('\n', stdout);
}

int
execnet_tool_transports (int    argc,
                         char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) schemes = NULL;
  g_auto(GStrv) search_path = NULL;
  g_autoptr(GPtrArray) modules = NULL;
  g_autoptr(GPtrArray) problems = NULL;
  guint n_failed = 0;

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
    "List every transport that a spec can name, with the plugin file that\n"
    "serves it, and the directories searched for plugins: those of\n"
    "EXECNET_TRANSPORT_PATH first, then the installed transport directory.\n"
    "No plugin is loaded, unless --check is given: then each one is, and the\n"
    "reason is shown for each that fails (a missing library, a file that is\n"
    "not a plugin, a plugin that registers no transport for its scheme).");
  g_option_context_set_description (context,
    "Exit status: 0, or with --check 3 when a plugin fails to load.");
  g_option_context_add_main_entries (context, entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (argc > 1)
    {
      execnet_tool_print_error (argv[0], "unexpected argument “%s”", argv[1]);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  schemes = execnet_transport_list_schemes ();
  search_path = execnet_transport_get_search_path ();
  modules = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; schemes[i] != NULL; i++)
    g_ptr_array_add (modules, execnet_transport_find_module (schemes[i]));
  g_ptr_array_add (modules, NULL);

  /* Loading the plugin is what making a gateway does first; it is
   * everything short of starting an interpreter. */
  if (check)
    {
      problems = g_ptr_array_new_with_free_func (g_free);
      for (guint i = 0; schemes[i] != NULL; i++)
        {
          g_autoptr(GError) load_error = NULL;
          g_autoptr(ExecnetTransport) transport = execnet_transport_new_for_scheme (schemes[i],
                                                                                   &load_error);

          g_ptr_array_add (problems, transport == NULL ? g_strdup (load_error->message) : NULL);
          if (transport == NULL)
            n_failed++;
        }
    }

  if (execnet_tool_json ())
    print_json (schemes, (char **) modules->pdata,
                problems != NULL ? (char **) problems->pdata : NULL, search_path);
  else
    print_text (schemes, (char **) modules->pdata,
                problems != NULL ? (char **) problems->pdata : NULL, search_path);

  if (n_failed > 0)
    {
      execnet_tool_print_error (argv[0], "%u of %u transport plugins cannot be loaded; "
                                "see above why", n_failed, g_strv_length (schemes));
      return EXECNET_TOOL_EXIT_UNKNOWN_TRANSPORT;
    }

  return EXECNET_TOOL_EXIT_OK;
}
