/* bench-rsync.c: ExecnetRSync against `rsync -a` over a pipe, in one run
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Makes a source of many small files and one large file, then, in each
 * round, copies it to fresh directories on N popen gateways with
 * ExecnetRSync (cold), once more (nothing changed), and with N `rsync -a`
 * processes at once whose remote side is started through a pipe (an -e
 * program that drops the host name and runs the server itself: rsync's own
 * protocol, without ssh's encryption). Times are wall-clock seconds; the
 * ratio is taken within a round.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <execnet/execnet.h>
#include <glib/gstdio.h>

#include "bench-common.h"

static char *python = NULL;
static int rounds = 3;
static int files = 10000;
static int megabytes = 512;
static int gateways = 4;

static GOptionEntry entries[] = {
  { "python", 0, 0, G_OPTION_ARG_STRING, &python, "Interpreter to start (default /usr/bin/python3)", "PATH" },
  { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Rounds (default 3)", "N" },
  { "files", 'f', 0, G_OPTION_ARG_INT, &files, "Small files in the source (default 10000)", "N" },
  { "megabytes", 'm', 0, G_OPTION_ARG_INT, &megabytes, "Size of the large file in MiB (default 512)", "N" },
  { "gateways", 'g', 0, G_OPTION_ARG_INT, &gateways, "Targets at once (default 4)", "N" },
  { NULL }
};

static void
make_source (const char *src)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *big = g_build_filename (src, "large.bin", NULL);
  g_autofree guchar *chunk = g_malloc (1024 * 1024);
  g_autoptr(GRand) rand = g_rand_new_with_seed (7);
  FILE *out;

  for (int i = 0; i < files; i++)
    {
      g_autofree char *dir = g_strdup_printf ("%s/d%03d", src, i / 100);
      g_autofree char *path = g_strdup_printf ("%s/f%05d.txt", dir, i);
      g_autofree char *text = g_strdup_printf ("file %d %u\n", i, g_rand_int (rand));

      g_mkdir_with_parents (dir, 0755);
      if (!g_file_set_contents (path, text, -1, &error))
        bench_die ("cannot write the source", error);
    }
  out = fopen (big, "wb");
  if (out == NULL)
    {
      g_printerr ("bench-rsync: cannot write %s\n", big);
      exit (1);
    }
  for (int m = 0; m < megabytes; m++)
    {
      for (gsize i = 0; i < 1024 * 1024; i += 4)
        *(guint32 *) (chunk + i) = g_rand_int (rand);
      fwrite (chunk, 1, 1024 * 1024, out);
    }
  fclose (out);
}

static gdouble
time_execnet (ExecnetGroup *group,
              const char   *src,
              const char   *base,
              const char   *tag)
{
  g_autoptr(ExecnetRSync) rsync = execnet_rsync_new (src);
  g_autoptr(GError) error = NULL;
  gdouble start;

  for (int i = 0; i < gateways; i++)
    {
      g_autofree char *dest = g_strdup_printf ("%s/%s%d", base, tag, i);

      if (!execnet_rsync_add_target (rsync, execnet_group_get_gateway (group, i), dest,
                                     EXECNET_RSYNC_NONE, &error))
        bench_die ("add_target", error);
    }
  start = bench_now ();
  if (!execnet_rsync_send (rsync, NULL, &error))
    bench_die ("execnet_rsync_send", error);
  return bench_now () - start;
}

static gdouble
time_rsync (const char *src,
            const char *base,
            const char *rsh,
            const char *tag)
{
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  g_autofree char *from = g_strconcat (src, "/", NULL);
  g_autoptr(GError) error = NULL;
  gdouble start = bench_now ();

  for (int i = 0; i < gateways; i++)
    {
      g_autofree char *dest = g_strdup_printf ("pipe:%s/%s%d/", base, tag, i);
      GSubprocess *process = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, "rsync", "-a",
                                               "-e", rsh, from, dest, NULL);

      if (process == NULL)
        bench_die ("cannot start rsync (install it: scripts/install-deps.sh)", error);
      g_ptr_array_add (processes, process);
    }
  for (guint i = 0; i < processes->len; i++)
    if (!g_subprocess_wait_check (g_ptr_array_index (processes, i), NULL, &error))
      bench_die ("rsync failed", error);
  return bench_now () - start;
}

static void
remove_tree (const char *path)
{
  const char *argv[] = { "rm", "-rf", path, NULL };

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL, NULL, NULL);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- ExecnetRSync against rsync -a");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *base = NULL, *src = NULL, *rsh = NULL, *spec = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    bench_die ("options", error);
  spec = g_strdup_printf ("popen//python=%s", python != NULL ? python : "/usr/bin/python3");

  base = g_dir_make_tmp ("bench-rsync-XXXXXX", &error);
  if (base == NULL)
    bench_die ("scratch directory", error);
  src = g_build_filename (base, "src", NULL);
  rsh = g_build_filename (base, "pipe-rsh", NULL);
  if (!g_file_set_contents (rsh, "#!/bin/sh\nshift\nexec \"$@\"\n", -1, &error))
    bench_die ("pipe script", error);
  g_chmod (rsh, 0755);
  g_print ("source: %d small files and %d MiB in one file, to %d targets\n", files, megabytes, gateways);
  make_source (src);

  for (int i = 0; i < gateways; i++)
    if (execnet_group_make_gateway (group, spec, &error) == NULL)
      bench_die ("make_gateway", error);

  g_print ("%-6s %12s %12s %12s %12s %10s\n", "round", "execnet s", "again s", "rsync -a s", "again s", "ratio");
  for (int r = 0; r < rounds; r++)
    {
      g_autofree char *round_dir = g_strdup_printf ("%s/round%d", base, r);
      gdouble ours, ours_again, theirs, theirs_again;

      g_mkdir (round_dir, 0755);
      ours = time_execnet (group, src, round_dir, "e");
      ours_again = time_execnet (group, src, round_dir, "e");
      theirs = time_rsync (src, round_dir, rsh, "r");
      theirs_again = time_rsync (src, round_dir, rsh, "r");
      g_print ("%-6d %12.2f %12.2f %12.2f %12.2f %10.2f\n", r + 1, ours, ours_again, theirs,
               theirs_again, ours / theirs);
      remove_tree (round_dir);
    }

  execnet_group_terminate (group, 5.0, NULL);
  remove_tree (base);
  return 0;
}
