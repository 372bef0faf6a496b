/* execnet-tool.c: the dispatcher of execnet-tool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "execnet-tool.h"

/* Like GLib's gio tool: this file only dispatches. Each subcommand lives in
 * its own execnet-tool-<command>.c with its own GOptionContext, so
 * `execnet-tool help CMD` is simply `execnet-tool CMD --help`. */

typedef struct {
  const char *name;
  int       (*run) (int argc, char **argv);
  const char *summary;
} Command;

static const Command commands[] = {
  { "exec", execnet_tool_exec, "Run Python code on a new gateway and print what it sends" },
  { "spec", execnet_tool_spec, "Parse a gateway spec and show which transport serves it" },
  { "transports", execnet_tool_transports, "List the transport plugins and where they are" },
  { "status", execnet_tool_status, "Show the remote status of a new gateway" },
  { "info", execnet_tool_info, "Describe the remote interpreter of a new gateway" },
  { "probe", execnet_tool_probe, "Time starting, using and terminating a gateway" },
  { "trace", execnet_tool_trace, "Run Python code and show every frame on the wire" },
  { "dumps", execnet_tool_dumps, "Serialize a GVariant value in execnet's format" },
  { "loads", execnet_tool_loads, "Deserialize execnet's format into a GVariant value" },
  { "socketserver", execnet_tool_socketserver, "Serve gateways to remote masters over a socket" },
  { "rsync", execnet_tool_rsync, "Copy a local directory to directories on new gateways" },
};

static const struct {
  ExecnetToolExit code;
  const char     *meaning;
} exit_codes[] = {
  { EXECNET_TOOL_EXIT_OK, "success" },
  { EXECNET_TOOL_EXIT_REMOTE_ERROR, "the remote code raised an exception" },
  { EXECNET_TOOL_EXIT_USAGE, "bad arguments or a malformed spec" },
  { EXECNET_TOOL_EXIT_UNKNOWN_TRANSPORT, "no transport plugin for the spec's scheme" },
  { EXECNET_TOOL_EXIT_CONNECT, "the gateway could not be started (host, connection, authentication, bootstrap)" },
  { EXECNET_TOOL_EXIT_TIMEOUT, "a timeout expired" },
  { EXECNET_TOOL_EXIT_CONNECTION_LOST, "the gateway's connection was lost" },
  { EXECNET_TOOL_EXIT_FAILURE, "any other failure" },
};

/* With --json, an error is one JSON object on stderr:
 * {"error": {"command": ..., "message": ..., "domain": ..., "code": ...,
 * "exit_status": ...}}, the last three when known. */
static void
print_json_error (const char   *command,
                  const char   *message,
                  const GError *error,
                  int           exit_status)
{
  g_auto(GVariantBuilder) members = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GVariant) root = NULL;
  g_autofree char *text = NULL;

  if (command != NULL)
    g_variant_builder_add (&members, "{sv}", "command", g_variant_new_string (command));
  g_variant_builder_add (&members, "{sv}", "message", g_variant_new_string (message));
  if (error != NULL)
    {
      g_variant_builder_add (&members, "{sv}", "domain",
                             g_variant_new_string (g_quark_to_string (error->domain)));
      g_variant_builder_add (&members, "{sv}", "code", g_variant_new_int32 (error->code));
    }
  if (exit_status >= 0)
    g_variant_builder_add (&members, "{sv}", "exit_status", g_variant_new_int32 (exit_status));
  root = g_variant_ref_sink (g_variant_new_parsed ("{'error': %v}", g_variant_builder_end (&members)));
  text = execnet_tool_value_to_json (root);
  g_printerr ("%s\n", text);
}

void
execnet_tool_print_error (const char *command,
                          const char *format,
                          ...)
{
  g_autofree char *message = NULL;
  va_list args;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  /* Remote tracebacks end with a newline of their own. */
  g_strchomp (message);

  if (execnet_tool_json ())
    print_json_error (command, message, NULL, -1);
  else if (command != NULL)
    g_printerr ("execnet-tool %s: %s\n", command, message);
  else
    g_printerr ("execnet-tool: %s\n", message);
}

static ExecnetToolExit
exit_code_for_error (const GError *error)
{
  if (error->domain == EXECNET_ERROR)
    {
      switch ((ExecnetError) error->code)
        {
        case EXECNET_ERROR_INVALID_SPEC:
          return EXECNET_TOOL_EXIT_USAGE;
        case EXECNET_ERROR_UNKNOWN_TRANSPORT:
          return EXECNET_TOOL_EXIT_UNKNOWN_TRANSPORT;
        case EXECNET_ERROR_HOST_NOT_FOUND:
        case EXECNET_ERROR_CONNECTION_REFUSED:
        case EXECNET_ERROR_AUTHENTICATION:
        case EXECNET_ERROR_BOOTSTRAP:
          return EXECNET_TOOL_EXIT_CONNECT;
        case EXECNET_ERROR_REMOTE:
          return EXECNET_TOOL_EXIT_REMOTE_ERROR;
        case EXECNET_ERROR_CHANNEL_CLOSED:
        case EXECNET_ERROR_GATEWAY_CLOSED:
        case EXECNET_ERROR_PROTOCOL:
          return EXECNET_TOOL_EXIT_CONNECTION_LOST;
        case EXECNET_ERROR_UNSUPPORTED_VALUE:
        case EXECNET_ERROR_DUPLICATE_ID:
        default:
          return EXECNET_TOOL_EXIT_FAILURE;
        }
    }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    return EXECNET_TOOL_EXIT_TIMEOUT;

  /* Mistakes in what the user typed, found while parsing it. */
  if (error->domain == G_OPTION_ERROR || error->domain == G_VARIANT_PARSE_ERROR ||
      error->domain == G_SHELL_ERROR)
    return EXECNET_TOOL_EXIT_USAGE;

  return EXECNET_TOOL_EXIT_FAILURE;
}

int
execnet_tool_report_error (const char   *command,
                           const GError *error)
{
  g_return_val_if_fail (error != NULL, EXECNET_TOOL_EXIT_FAILURE);

  if (execnet_tool_json ())
    {
      g_autofree char *message = g_strchomp (g_strdup (error->message));

      print_json_error (command, message, error, exit_code_for_error (error));
    }
  else
    execnet_tool_print_error (command, "%s", error->message);

  return exit_code_for_error (error);
}

static void
print_usage (FILE *out)
{
  GString *text = g_string_new (NULL);

  g_string_append (text,
                   "Usage:\n"
                   "  execnet-tool [-v|-vv] COMMAND [ARGS…]\n"
                   "\n"
                   "A debugging tool for execnet gateways, transports, channels and the wire.\n"
                   "\n"
                   "Commands:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    g_string_append_printf (text, "  %-13s %s\n", commands[i].name, commands[i].summary);
  g_string_append_printf (text, "  %-13s %s\n", "help", "Show the help of a command");

  g_string_append (text,
                   "\n"
                   "Use “execnet-tool help COMMAND” or “execnet-tool COMMAND --help”\n"
                   "for the options of a command, and “execnet-tool --version”\n"
                   "for the version.\n"
                   "\n"
                   "Exit status:\n");
  for (gsize i = 0; i < G_N_ELEMENTS (exit_codes); i++)
    g_string_append_printf (text, "  %d  %s\n", exit_codes[i].code, exit_codes[i].meaning);

  if (out == stdout)
    g_print ("%s", text->str);
  else
    g_printerr ("%s", text->str);
  g_string_free (text, TRUE);
}

static const Command *
find_command (const char *name)
{
  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (commands[i].name, name) == 0)
      return &commands[i];
  return NULL;
}

/* Edit distance (insertions, deletions, substitutions, transpositions),
 * for "did you mean". */
static guint
edit_distance (const char *a,
               const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *d = g_new0 (guint, (la + 1) * (lb + 1));

#define D(i, j) d[(i) * (lb + 1) + (j)]
  for (gsize i = 0; i <= la; i++)
    D (i, 0) = i;
  for (gsize j = 0; j <= lb; j++)
    D (0, j) = j;
  for (gsize i = 1; i <= la; i++)
    for (gsize j = 1; j <= lb; j++)
      {
        guint cost = a[i - 1] == b[j - 1] ? 0 : 1;

        D (i, j) = MIN (MIN (D (i - 1, j) + 1, D (i, j - 1) + 1), D (i - 1, j - 1) + cost);
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          D (i, j) = MIN (D (i, j), D (i - 2, j - 2) + 1);
      }
  return D (la, lb);
#undef D
}

/* The command closest to @name, if close enough to be a typo. */
static const char *
closest_command (const char *name)
{
  const char *best = NULL;
  guint best_distance = G_MAXUINT;

  for (gsize i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      guint distance = edit_distance (name, commands[i].name);

      if (distance < best_distance)
        {
          best = commands[i].name;
          best_distance = distance;
        }
    }
  return best_distance <= MAX (1, strlen (name) / 3) ? best : NULL;
}

/* GOptionContext shows the program name in --help: make it the command's. */
static void
set_prgname (const Command *command)
{
  g_autofree char *prgname = g_strdup_printf ("execnet-tool %s", command->name);

  g_set_prgname (prgname);
}

static int
run_help (int    argc,
          char **argv)
{
  const Command *command;
  char *help_argv[3];

  if (argc < 3)
    {
      print_usage (stdout);
      return EXECNET_TOOL_EXIT_OK;
    }

  command = find_command (argv[2]);
  if (command == NULL)
    {
      execnet_tool_print_error (NULL, "unknown command “%s”; “execnet-tool help” lists them",
                                argv[2]);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  set_prgname (command);
  help_argv[0] = argv[2];
  help_argv[1] = (char *) "--help";
  help_argv[2] = NULL;
  return command->run (2, help_argv);
}

int
main (int    argc,
      char **argv)
{
  const char *name;
  const Command *command;

  setlocale (LC_ALL, "");

  if (argc < 2)
    {
      print_usage (stderr);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  /* -v, -vv or --verbose before the command, as with ssh. */
  while (argc >= 2 && (strcmp (argv[1], "--verbose") == 0 ||
                       (argv[1][0] == '-' && argv[1][1] == 'v' &&
                        strspn (argv[1] + 1, "v") == strlen (argv[1] + 1))))
    {
      execnet_tool_set_verbosity (execnet_tool_get_verbosity () +
                                  (argv[1][1] == '-' ? 1 : (int) strlen (argv[1] + 1)));
      argv[1] = argv[0];
      argv++;
      argc--;
    }
  if (argc < 2)
    {
      print_usage (stderr);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  name = argv[1];
  if (strcmp (name, "help") == 0 || strcmp (name, "--help") == 0 ||
      strcmp (name, "-h") == 0 || strcmp (name, "-?") == 0)
    return run_help (argc, argv);

  if (strcmp (name, "--version") == 0)
    {
      g_print ("execnet-tool %s\n", EXECNET_VERSION_S);
      return EXECNET_TOOL_EXIT_OK;
    }

  command = find_command (name);
  if (command == NULL)
    {
      if (name[0] == '-')
        execnet_tool_print_error (NULL, "unknown option “%s”; give a command first", name);
      else if (closest_command (name) != NULL)
        execnet_tool_print_error (NULL, "unknown command “%s”; did you mean “%s”?",
                                  name, closest_command (name));
      else
        execnet_tool_print_error (NULL, "unknown command “%s”", name);
      print_usage (stderr);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  {
    g_autoptr(GError) error = NULL;

    if (!execnet_tool_take_json_pretty (argc, argv, &error))
      return execnet_tool_report_error (command->name, error);
  }

  /* The subcommand sees itself as argv[0]. */
  set_prgname (command);
  return command->run (argc - 1, argv + 1);
}
