/* execnet-tool-spec.c: execnet-tool spec
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>

#include <json-glib/json-glib.h>

#include "execnet-tool.h"


static gboolean list_keys = FALSE;

static const GOptionEntry entries[] = {
  EXECNET_TOOL_JSON_OPTION ("Print the result as one line of JSON"),
  /* For the shell completion: the keys a spec of the scheme SPEC accepts. */
  { "list-keys", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_NONE, &list_keys, NULL, NULL },
  G_OPTION_ENTRY_NULL
};

/* What the spec command finds out, printed as text or as JSON. The spec
 * parsed; the other fields may still show why no gateway can be made. */
typedef struct {
  ExecnetXSpec *xspec;          /* (owned) */
  char         *python_command; /* (owned) (nullable) NULL if python= is bad */
  GError       *python_error;   /* (owned) (nullable) why python= is bad */
  char         *module;         /* (owned) (nullable) the plugin file serving the scheme */
  char        **search_path;    /* (owned) */
  ExecnetTransport *transport;  /* (owned) (nullable) NULL if it cannot be loaded */
  GError       *transport_error; /* (owned) (nullable) why it cannot be loaded */
  GVariant     *description;    /* (owned) (nullable) a{sv} of execnet_transport_describe() */
  GError       *spec_error;     /* (owned) (nullable) why the transport refuses the spec */
} SpecReport;

static void
spec_report_free (SpecReport *report)
{
  g_clear_pointer (&report->xspec, execnet_xspec_unref);
  g_free (report->python_command);
  g_clear_error (&report->python_error);
  g_free (report->module);
  g_strfreev (report->search_path);
  g_clear_object (&report->transport);
  g_clear_error (&report->transport_error);
  g_clear_pointer (&report->description, g_variant_unref);
  g_clear_error (&report->spec_error);
  g_free (report);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SpecReport, spec_report_free)

static int
compare_strings (gconstpointer a,
                 gconstpointer b,
                 gpointer      user_data)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* The names of the spec's env: options, sorted, so the output is stable. */
static const char **
dup_env_names (ExecnetXSpec *xspec)
{
  guint n_names;
  const char **names;

  names = (const char **) g_hash_table_get_keys_as_array (execnet_xspec_get_env (xspec), &n_names);
  g_qsort_with_data (names, n_names, sizeof (char *), compare_strings, NULL);

  return names;
}

static void
print_text (SpecReport *report)
{
  ExecnetXSpec *xspec = report->xspec;
  const char * const *keys = execnet_xspec_get_keys (xspec);
  const char *scheme = execnet_xspec_get_scheme (xspec);
  const char *id = execnet_xspec_get_id (xspec);
  GHashTable *env = execnet_xspec_get_env (xspec);

  g_print ("spec: %s\n", execnet_xspec_to_string (xspec));
  g_print ("scheme: %s\n", scheme != NULL ? scheme : "(none)");
  g_print ("id: %s\n", id != NULL ? id : "(none: a group assigns gw0, gw1, …)");

  g_print ("options:\n");
  for (guint i = 0; keys[i] != NULL; i++)
    {
      const char *value = execnet_xspec_get (xspec, keys[i]);

      if (*value == '\0')
        g_print ("  %s\n", keys[i]);
      else
        g_print ("  %s = %s\n", keys[i], value);
    }

  if (g_hash_table_size (env) > 0)
    {
      g_autofree const char **names = dup_env_names (xspec);

      g_print ("remote environment:\n");
      for (guint i = 0; names[i] != NULL; i++)
        g_print ("  %s=%s\n", names[i], (const char *) g_hash_table_lookup (env, names[i]));
    }

  if (report->python_command != NULL)
    g_print ("python command: %s\n", report->python_command);

  if (scheme != NULL)
    g_print ("transport module: %s\n", report->module != NULL ? report->module : "(not found)");

  /* One line per value, as ssh -G prints them. */
  if (report->description != NULL && g_variant_n_children (report->description) > 0)
    {
      GVariantIter iter;
      const char *key;
      GVariant *value;

      g_print ("%s resolves to:\n", scheme);
      g_variant_iter_init (&iter, report->description);
      while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
        {
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
            {
              g_autofree const char **items = g_variant_get_strv (value, NULL);

              for (guint i = 0; items[i] != NULL; i++)
                g_print ("  %s %s\n", key, items[i]);
            }
          else if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
            g_print ("  %s %s\n", key, g_variant_get_string (value, NULL));
          else
            {
              g_autofree char *text = g_variant_print (value, FALSE);

              g_print ("  %s %s\n", key, text);
            }
        }
    }

  g_print ("search path:\n");
  for (guint i = 0; report->search_path[i] != NULL; i++)
    g_print ("  %s\n", report->search_path[i]);
}

static void
print_json (SpecReport *report)
{
  ExecnetXSpec *xspec = report->xspec;
  const char * const *keys = execnet_xspec_get_keys (xspec);
  GHashTable *env = execnet_xspec_get_env (xspec);
  g_autofree const char **names = dup_env_names (xspec);
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *text = NULL;

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "spec");
  json_builder_add_string_value (builder, execnet_xspec_to_string (xspec));
  json_builder_set_member_name (builder, "scheme");
  if (execnet_xspec_get_scheme (xspec) != NULL)
    json_builder_add_string_value (builder, execnet_xspec_get_scheme (xspec));
  else
    json_builder_add_null_value (builder);
  json_builder_set_member_name (builder, "id");
  if (execnet_xspec_get_id (xspec) != NULL)
    json_builder_add_string_value (builder, execnet_xspec_get_id (xspec));
  else
    json_builder_add_null_value (builder);

  /* Keys are unique, and JSON-GLib keeps members in the order added, which
   * is the order they were written in. */
  json_builder_set_member_name (builder, "options");
  json_builder_begin_object (builder);
  for (guint i = 0; keys[i] != NULL; i++)
    {
      json_builder_set_member_name (builder, keys[i]);
      json_builder_add_string_value (builder, execnet_xspec_get (xspec, keys[i]));
    }
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "env");
  json_builder_begin_object (builder);
  for (guint i = 0; names[i] != NULL; i++)
    {
      json_builder_set_member_name (builder, names[i]);
      json_builder_add_string_value (builder, g_hash_table_lookup (env, names[i]));
    }
  json_builder_end_object (builder);

  json_builder_set_member_name (builder, "python_command");
  if (report->python_command != NULL)
    json_builder_add_string_value (builder, report->python_command);
  else
    json_builder_add_null_value (builder);

  json_builder_set_member_name (builder, "module");
  if (report->module != NULL)
    json_builder_add_string_value (builder, report->module);
  else
    json_builder_add_null_value (builder);

  json_builder_set_member_name (builder, "search_path");
  json_builder_begin_array (builder);
  for (guint i = 0; report->search_path[i] != NULL; i++)
    json_builder_add_string_value (builder, report->search_path[i]);
  json_builder_end_array (builder);

  json_builder_set_member_name (builder, "resolved");
  if (report->description != NULL)
    {
      g_autofree char *text = execnet_tool_value_to_json (report->description);
      g_autoptr(JsonNode) node = json_from_string (text, NULL);

      json_builder_add_value (builder, g_steal_pointer (&node));
    }
  else
    json_builder_add_null_value (builder);
  json_builder_end_object (builder);

  root = json_builder_get_root (builder);
  text = execnet_tool_json_node_to_string (root);
  fputs (text, stdout);
  fputc ('\n', stdout);
}

/* spec --list-keys SCHEME: the keys a spec of SCHEME accepts, one a line,
 * for the shell completion: the scheme, the general keys, the transport's
 * own, and "env:". Nothing when the transport cannot be loaded. */
static int
print_keys (const char *scheme)
{
  g_autoptr(ExecnetTransport) transport = execnet_transport_new_for_scheme (scheme, NULL);
  const char * const *own;

  if (transport == NULL)
    return EXECNET_TOOL_EXIT_UNKNOWN_TRANSPORT;

  g_print ("%s\n", scheme);
  for (const char * const *k = execnet_xspec_get_general_keys (); *k != NULL; k++)
    g_print ("%s\n", *k);
  own = execnet_transport_get_keys (transport);
  for (guint i = 0; own != NULL && own[i] != NULL; i++)
    g_print ("%s\n", own[i]);
  g_print ("env:\n");

  return EXECNET_TOOL_EXIT_OK;
}

int
execnet_tool_spec (int    argc,
                   char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(SpecReport) report = NULL;
  const char *scheme;

  context = g_option_context_new ("SPEC");
  g_option_context_set_summary (context,
    "Check SPEC the way making a gateway from it would, and show what it\n"
    "means: its scheme, options, id and remote environment, the command line\n"
    "that would start the remote interpreter, the transport plugin that\n"
    "serves it (found on the transport search path and loaded), and what the\n"
    "transport resolves it to: for ssh, the destination, user, port, identity\n"
    "files and jump hosts from your ssh config, as “ssh -G” shows them.\n"
    "Nothing is started and nothing is connected to.");
  g_option_context_set_description (context,
    "Exit status: 0 when a gateway could be made from SPEC, 2 when SPEC is\n"
    "malformed, names no transport, or has a key or value its transport does\n"
    "not accept (the message says which part is wrong, and suggests the key\n"
    "meant), 3 when no transport plugin serves its scheme or the plugin\n"
    "cannot be loaded, 4 when the ssh options name a file that cannot be used.\n"
    "\n"
    "Examples:\n"
    "  execnet-tool spec 'ssh=node7//chdir=work//env:LANG=C.UTF-8'\n"
    "  execnet-tool spec 'ssh=-F ./ssh_config node7' --json");
  g_option_context_add_main_entries (context, entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);

  if (argc != 2)
    {
      execnet_tool_print_error (argv[0], argc < 2 ? "no spec given; try “execnet-tool help spec”"
                                                  : "give exactly one spec");
      return EXECNET_TOOL_EXIT_USAGE;
    }
  if (list_keys)
    return print_keys (argv[1]);

  report = g_new0 (SpecReport, 1);
  report->xspec = execnet_xspec_new (argv[1], &error);
  if (report->xspec == NULL)
    return execnet_tool_report_error (argv[0], error);

  report->python_command = execnet_transport_build_python_command (report->xspec,
                                                                   &report->python_error);
  scheme = execnet_xspec_get_scheme (report->xspec);
  if (scheme != NULL)
    {
      report->module = execnet_transport_find_module (scheme);
      /* As making a gateway does: load the transport, let it check every
       * key and value, then ask it what it would open. */
      report->transport = execnet_transport_new_for_scheme (scheme, &report->transport_error);
      if (report->transport != NULL &&
          execnet_transport_check_xspec (report->transport, report->xspec, &report->spec_error))
        report->description = execnet_transport_describe (report->transport, report->xspec,
                                                          &report->spec_error);
    }
  report->search_path = execnet_transport_get_search_path ();

  if (execnet_tool_json ())
    print_json (report);
  else
    print_text (report);
  fflush (stdout);

  /* The spec parsed, but making a gateway from it would still fail. */
  if (report->python_error != NULL)
    {
      execnet_tool_print_error (argv[0], "the python= option is wrong: %s",
                                report->python_error->message);
      return EXECNET_TOOL_EXIT_USAGE;
    }
  if (scheme == NULL)
    {
      execnet_tool_print_error (argv[0], "the spec “%s” names no transport; "
                                "start it with popen, ssh=HOST or socket=HOST:PORT",
                                argv[1]);
      return EXECNET_TOOL_EXIT_USAGE;
    }
  if (report->transport_error != NULL)
    return execnet_tool_report_error (argv[0], report->transport_error);
  if (report->spec_error != NULL)
    return execnet_tool_report_error (argv[0], report->spec_error);

  return EXECNET_TOOL_EXIT_OK;
}
