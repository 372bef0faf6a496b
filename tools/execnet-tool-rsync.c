/* execnet-tool-rsync.c: execnet-tool rsync
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "execnet-tool.h"

static gboolean opt_delete;
static gboolean opt_quiet;

static const GOptionEntry entries[] = {
  { "delete", 'd', 0, G_OPTION_ARG_NONE, &opt_delete,
    "Remove what the destinations have and SRC does not", NULL },
  { "quiet", 'q', 0, G_OPTION_ARG_NONE, &opt_quiet,
    "Do not list the files sent", NULL },
  G_OPTION_ENTRY_NULL
};

typedef struct {
  GAsyncResult *result;  /* (owned) (nullable) */
} Wait;

static void
on_progress (ExecnetRSync   *rsync,
             ExecnetGateway *gateway,
             const char     *path,
             guint64         done,
             guint64         total,
             gpointer        data)
{
  if (!opt_quiet && done == total)
    g_print ("%s: %s (%" G_GUINT64_FORMAT " bytes)\n", execnet_gateway_get_id (gateway), path, total);
}

static void
on_done (GObject      *source,
         GAsyncResult *result,
         gpointer      data)
{
  Wait *wait = data;

  wait->result = g_object_ref (result);
  g_main_context_wakeup (NULL);
}

int
execnet_tool_rsync (int    argc,
                    char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetRSync) rsync = NULL;
  Wait wait = { NULL };
  gboolean ok;

  opt_delete = opt_quiet = FALSE;
  context = g_option_context_new ("SRC SPEC:DEST...");
  g_option_context_set_summary (context,
    "Copy the local directory SRC to DEST on a new gateway for each SPEC,\n"
    "all at once. Only files whose size or time differ and whose content\n"
    "differs are sent; modes, symbolic links and times are kept, and each\n"
    "file is replaced atomically. DEST is made if missing. The last colon\n"
    "of each argument separates the spec from the destination.");
  g_option_context_set_description (context,
    "Exit status: 0 on success, 2 for bad arguments, a missing SRC or a bad spec, 4 when a\n"
    "gateway could not start, 1 when a receiver refused (an unwritable\n"
    "destination, a path leading outside it), 7 for other errors.\n"
    "\n"
    "Example:\n"
    "  execnet-tool rsync --delete site popen:/srv/site 'ssh=web1:/srv/site'");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, execnet_tool_verbose_entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (argc < 3)
    {
      execnet_tool_print_error (argv[0], "give a source directory and at least one SPEC:DEST; "
                                "try “execnet-tool help %s”", argv[0]);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  if (!g_file_test (argv[1], G_FILE_TEST_IS_DIR))
    {
      execnet_tool_print_error (argv[0], "the source %s is not a directory or does not exist; "
                                "give an existing local directory", argv[1]);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  group = execnet_group_new ();
  rsync = execnet_rsync_new (argv[1]);
  g_signal_connect (rsync, "progress", G_CALLBACK (on_progress), NULL);
  for (int i = 2; i < argc; i++)
    {
      const char *colon = strrchr (argv[i], ':');
      g_autofree char *spec = NULL;
      ExecnetGateway *gateway;

      if (colon == NULL || colon == argv[i] || colon[1] == '\0')
        {
          execnet_tool_print_error (argv[0], "“%s” is not SPEC:DEST; write for example "
                                    "popen:/tmp/copy", argv[i]);
          execnet_group_terminate (group, EXECNET_TOOL_TERMINATE_TIMEOUT, NULL);
          return EXECNET_TOOL_EXIT_USAGE;
        }
      spec = g_strndup (argv[i], colon - argv[i]);
      gateway = execnet_group_make_gateway (group, spec, &error);
      if (gateway == NULL ||
          !execnet_rsync_add_target (rsync, gateway, colon + 1,
                                     opt_delete ? EXECNET_RSYNC_DELETE : EXECNET_RSYNC_NONE,
                                     &error))
        {
          execnet_group_terminate (group, EXECNET_TOOL_TERMINATE_TIMEOUT, NULL);
          return execnet_tool_report_error (argv[0], error);
        }
    }

  execnet_rsync_send_async (rsync, NULL, on_done, &wait);
  while (wait.result == NULL)
    g_main_context_iteration (NULL, TRUE);
  ok = execnet_rsync_send_finish (rsync, wait.result, &error);
  g_object_unref (wait.result);
  execnet_group_terminate (group, EXECNET_TOOL_TERMINATE_TIMEOUT, NULL);
  if (!ok)
    return execnet_tool_report_error (argv[0], error);
  return EXECNET_TOOL_EXIT_OK;
}
