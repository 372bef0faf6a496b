/* bench-ssh.c: how fast ssh gateways start, against the system ssh client,
 * measured in one run on the same machine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * By default the server is a private sshd on 127.0.0.1 (tests/fixtures/sshd-fixture.c),
 * so that the numbers are about the client side: the network adds the same
 * round trips to every column. --destination and --ssh-config measure a
 * real host instead.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <execnet/execnet.h>

#include "bench-common.h"

#include "sshd-fixture.h"

static char *python = NULL;
static char *destination = NULL;
static char *ssh_config = NULL;
static int starts = 20;
static int roundtrips = 2000;
static int megabytes = 64;
static int concurrent = 8;
static gboolean skip_reference = FALSE;

static GOptionEntry entries[] = {
  { "python", 0, 0, G_OPTION_ARG_STRING, &python, "Remote interpreter (default /usr/bin/python3)", "PATH" },
  { "destination", 'd', 0, G_OPTION_ARG_STRING, &destination, "ssh words of a real host instead of the private sshd", "WORDS" },
  { "ssh-config", 'F', 0, G_OPTION_ARG_FILENAME, &ssh_config, "ssh config for --destination", "PATH" },
  { "starts", 'n', 0, G_OPTION_ARG_INT, &starts, "Start-ups to time, each way (default 20)", "N" },
  { "roundtrips", 0, 0, G_OPTION_ARG_INT, &roundtrips, "Round trips to time (default 2000)", "N" },
  { "megabytes", 0, 0, G_OPTION_ARG_INT, &megabytes, "MiB to send each way (default 64)", "N" },
  { "concurrent", 0, 0, G_OPTION_ARG_INT, &concurrent, "Gateways to start at once (default 8)", "N" },
  { "no-reference", 0, 0, G_OPTION_ARG_NONE, &skip_reference, "Do not measure Python execnet", NULL },
  { NULL }
};

/* The system ssh client's command line running @command on the host. */
static char **
ssh_client_argv (const char         *option,
                 const char * const *command)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) words = NULL;
  GError *error = NULL;

  if (!g_shell_parse_argv (destination, NULL, &words, &error))
    bench_die ("--destination", error);
  g_strv_builder_add_many (builder, "ssh", "-o", "BatchMode=yes", NULL);
  if (option != NULL)
    g_strv_builder_add_many (builder, "-o", option, NULL);
  if (ssh_config != NULL)
    g_strv_builder_add_many (builder, "-F", ssh_config, NULL);
  g_strv_builder_addv (builder, (const char **) words);
  g_strv_builder_addv (builder, (const char **) command);
  return g_strv_builder_end (builder);
}

static gdouble
time_ssh_client (char **argv)
{
  g_autoptr(GSubprocess) process = NULL;
  GError *error = NULL;
  gdouble t0 = bench_now ();

  process = g_subprocess_newv ((const char * const *) argv, G_SUBPROCESS_FLAGS_STDIN_INHERIT, &error);
  if (process == NULL || !g_subprocess_wait_check (process, NULL, &error))
    bench_die ("the ssh client", error);
  return bench_now () - t0;
}

/* Seconds for @n `python -c pass` started at once, all ended: with the
 * private sshd, the remote host is this machine, and this is what its
 * cores allow @n interpreters started together. */
static gdouble
time_pythons_at_once (const char *python,
                      int         n)
{
  g_autoptr(GPtrArray) processes = g_ptr_array_new_with_free_func (g_object_unref);
  GError *error = NULL;
  gdouble t0 = bench_now ();

  for (int i = 0; i < n; i++)
    {
      GSubprocess *process = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error,
                                               python, "-c", "pass", NULL);

      if (process == NULL)
        bench_die ("python -c pass", error);
      g_ptr_array_add (processes, process);
    }
  for (guint i = 0; i < processes->len; i++)
    if (!g_subprocess_wait_check (processes->pdata[i], NULL, &error))
      bench_die ("python -c pass", error);
  return bench_now () - t0;
}

/* Seconds to make one more gateway on the connection of one made just
 * before: no handshake and no login, only the server's session and the
 * interpreter. */
static gdouble
time_second_on_connection (const char *spec)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  GError *error = NULL;
  gdouble t0;

  if (execnet_group_make_gateway (group, spec, &error) == NULL)
    bench_die ("make_gateway", error);
  t0 = bench_now ();
  if (execnet_group_make_gateway (group, spec, &error) == NULL)
    bench_die ("make_gateway", error);
  t0 = bench_now () - t0;
  execnet_group_terminate (group, 5.0, NULL);
  return t0;
}

typedef struct
{
  gdouble ready;            /* make_gateway returned */
  gdouble first_roundtrip;  /* ready plus one remote_exec round trip */
  gdouble concurrent;
  gdouble roundtrip;
  gdouble upload;
  gdouble download;
  BenchRates spawned;       /* the same on a gateway the spawner started */
} Results;

static void
measure_ours (const char *spec,
              Results    *results)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway;
  BenchRates rates;
  GError *error = NULL;

  gateway = execnet_group_make_gateway (group, spec, &error);
  if (gateway == NULL)
    bench_die ("make_gateway", error);
  bench_channel_rates (gateway, roundtrips, megabytes, &rates);
  results->roundtrip = rates.roundtrip;
  results->upload = rates.upload;
  results->download = rates.download;

  /* A second gateway on the connection: the spawner starts it, and its
   * stream is a channel forwarded to the spawner's socket. */
  gateway = execnet_group_make_gateway (group, spec, &error);
  if (gateway == NULL)
    bench_die ("make_gateway", error);
  bench_channel_rates (gateway, roundtrips, megabytes, &results->spawned);

  execnet_group_terminate (group, 5.0, NULL);
}

/* Python execnet's ssh gateway (the ssh program plus its bootstrap), if
 * this machine has it: the medians of @runs start-ups to ready and to a
 * first round trip, timed inside its own process. */
static const char reference_script[] =
  "import sys, time\n"
  "import execnet\n"
  "spec, starts = sys.argv[1], int(sys.argv[2])\n"
  "ready, first = [], []\n"
  "for _ in range(starts):\n"
  "    t0 = time.perf_counter()\n"
  "    gw = execnet.makegateway(spec)\n"
  "    ready.append(time.perf_counter() - t0)\n"
  "    gw.remote_exec('channel.send(1)').receive()\n"
  "    first.append(time.perf_counter() - t0)\n"
  "    gw.exit()\n"
  "    gw.join()\n"
  "ready.sort(); first.sort()\n"
  "print(ready[len(ready) // 2], first[len(first) // 2], execnet.__version__)\n";

static gboolean
measure_reference (const char  *spec,
                   int          runs,
                   Results     *results,
                   char       **version)
{
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *output = NULL;
  g_autofree char *errors = NULL;
  g_autofree char *n_runs = g_strdup_printf ("%d", runs);
  g_auto(GStrv) fields = NULL;

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                              &error, "/usr/bin/python3", "-c", reference_script,
                              spec, n_runs, NULL);
  if (process == NULL ||
      !g_subprocess_communicate_utf8 (process, NULL, NULL, &output, &errors, &error))
    {
      g_printerr ("bench-ssh: Python execnet not measured: %s\n", error->message);
      return FALSE;
    }
  if (!g_subprocess_get_successful (process))
    {
      const char *last_line = errors ? strrchr (g_strstrip (errors), '\n') : NULL;

      g_printerr ("bench-ssh: Python execnet not measured: %s\n",
                  last_line ? last_line + 1 : (errors ? errors : "it failed"));
      return FALSE;
    }

  fields = g_strsplit (g_strstrip (output), " ", 3);
  if (g_strv_length (fields) != 3)
    return FALSE;
  results->ready = g_ascii_strtod (fields[0], NULL);
  results->first_roundtrip = g_ascii_strtod (fields[1], NULL);
  *version = g_strdup (fields[2]);
  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- time ssh gateways against the ssh client");
  g_autoptr(GError) error = NULL;
  g_autoptr(SshdFixture) sshd = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *version = NULL;
  g_autofree char *concurrent_label = NULL;
  const char *ssh_true[] = { "true", NULL };
  const char *ssh_python[] = { NULL, "-c", "pass", NULL };
  Results ours = { 0 }, theirs = { 0 };
  gboolean have_reference = !skip_reference;
  gdouble client_true, client_curve, client_python;
  gdouble concurrent_ratio, concurrent_min, concurrent_max;
  gdouble unshared_ratio, python_floor, second;
  g_autofree char *unshared_spec = NULL;

  sshd_fixture_prepare_environment ();
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-ssh: %s\n", error->message);
      return 2;
    }
  if (python == NULL)
    python = g_strdup ("/usr/bin/python3");

  if (destination == NULL)
    {
      sshd = sshd_fixture_new (&error);
      if (sshd == NULL)
        {
          g_printerr ("bench-ssh: cannot start the private sshd: %s\n", error->message);
          return g_error_matches (error, G_IO_ERROR, SSHD_FIXTURE_ERROR_UNAVAILABLE) ? 77 : 1;
        }
      destination = g_strdup ("localhost");
      ssh_config = g_strdup (sshd->client_config);
    }
  /* The same spec for both libraries (Python execnet turns ssh_config=
   * into ssh -F). */
  if (ssh_config != NULL)
    spec = g_strdup_printf ("ssh=%s//ssh_config=%s//python=%s", destination, ssh_config, python);
  else
    spec = g_strdup_printf ("ssh=%s//python=%s", destination, python);
  ssh_python[0] = python;
  unshared_spec = g_strdup_printf ("%s//ssh_share=no", spec);
  concurrent_label = g_strdup_printf ("%d gateways started at once", concurrent);

  g_print ("execnet-glib %s, ssh to %s, %s, %d start-ups each, %d round trips, %d MiB each way\n\n",
           EXECNET_VERSION_S, destination, python, starts, roundtrips, megabytes);

  /* Start-ups interleaved, so that a machine whose load drifts during the
   * run treats every column alike. */
  {
    g_autoptr(GArray) true_samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) curve_samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) python_samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) ready_samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) first_samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) reference_ready = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) reference_first = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) concurrent_ratios = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) concurrent_samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) unshared_ratios = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) floor_ratios = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_autoptr(GArray) second_samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
    g_auto(GStrv) true_argv = ssh_client_argv (NULL, ssh_true);
    g_auto(GStrv) curve_argv = ssh_client_argv ("KexAlgorithms=curve25519-sha256", ssh_true);
    g_auto(GStrv) python_argv = ssh_client_argv (NULL, ssh_python);

    for (int i = 0; i < starts; i++)
      {
        gdouble sample, ready, first, cycle;

        sample = time_ssh_client (true_argv);
        g_array_append_val (true_samples, sample);
        sample = time_ssh_client (curve_argv);
        g_array_append_val (curve_samples, sample);
        sample = time_ssh_client (python_argv);
        g_array_append_val (python_samples, sample);
        bench_cycle (spec, &ready, &first, &cycle);
        g_array_append_val (ready_samples, ready);
        g_array_append_val (first_samples, first);
        /* Many at once, against the single start-up just before. */
        if (i % 3 == 0)
          {
            sample = bench_concurrent_start (spec, concurrent);
            g_array_append_val (concurrent_samples, sample);
            sample /= ready;
            g_array_append_val (concurrent_ratios, sample);
            /* The same with a connection each (ssh_share=no), and the
             * floor: as many bare interpreters at once against one. */
            sample = bench_concurrent_start (unshared_spec, concurrent) / ready;
            g_array_append_val (unshared_ratios, sample);
            sample = time_pythons_at_once (python, concurrent) / time_pythons_at_once (python, 1);
            g_array_append_val (floor_ratios, sample);
            sample = time_second_on_connection (spec);
            g_array_append_val (second_samples, sample);
          }
        if (have_reference)
          {
            Results one = { 0 };

            g_clear_pointer (&version, g_free);
            have_reference = measure_reference (spec, 1, &one, &version);
            g_array_append_val (reference_ready, one.ready);
            g_array_append_val (reference_first, one.first_roundtrip);
          }
      }
    client_true = bench_median (true_samples);
    client_curve = bench_median (curve_samples);
    client_python = bench_median (python_samples);
    ours.ready = bench_median (ready_samples);
    ours.first_roundtrip = bench_median (first_samples);
    ours.concurrent = bench_median (concurrent_samples);
    concurrent_ratio = bench_median (concurrent_ratios);  /* sorts */
    concurrent_min = g_array_index (concurrent_ratios, gdouble, 0);
    concurrent_max = g_array_index (concurrent_ratios, gdouble, concurrent_ratios->len - 1);
    unshared_ratio = bench_median (unshared_ratios);
    python_floor = bench_median (floor_ratios);
    second = bench_median (second_samples);
    if (have_reference)
      {
        theirs.ready = bench_median (reference_ready);
        theirs.first_roundtrip = bench_median (reference_first);
      }
  }
  measure_ours (spec, &ours);

  g_print ("%-38s %10.1f ms\n", "ssh HOST true (median)", client_true * 1e3);
  /* OpenSSH negotiates a post-quantum key exchange (sntrup761x25519) that
   * libssh 0.10 does not have; libssh uses curve25519. Same exchange, for
   * the like-for-like ratio: */
  g_print ("%-38s %10.1f ms  (%.2fx ssh true)\n", "  with KexAlgorithms=curve25519-sha256",
           client_curve * 1e3, client_curve / client_true);
  g_print ("%-38s %10.1f ms  (%.2fx ssh true)\n", "ssh HOST python -c pass (median)",
           client_python * 1e3, client_python / client_true);
  g_print ("%-38s %10.1f ms  (%.2fx ssh true)\n", "ssh gateway ready (median)",
           ours.ready * 1e3, ours.ready / client_true);
  g_print ("%-38s %10.1f ms  (%.2fx ssh true, %.2fx ssh python -c pass)\n",
           "ssh gateway + 1 round trip (median)",
           ours.first_roundtrip * 1e3, ours.first_roundtrip / client_true,
           ours.first_roundtrip / client_python);
  g_print ("%-38s %13s  (%.2fx ssh true with the same key exchange)\n", "", "",
           ours.first_roundtrip / client_curve);
  if (have_reference)
    g_print ("%-38s %10.1f ms  (%.2fx ssh true) Python execnet %s\n",
             "  execnet ready / + 1 round trip", theirs.ready * 1e3,
             theirs.ready / client_true, version);
  if (have_reference)
    g_print ("%-38s %10.1f ms  (%.2fx ssh true)\n", "",
             theirs.first_roundtrip * 1e3, theirs.first_roundtrip / client_true);
  g_print ("%-38s %10.1f ms  (%.2fx one start-up [%.2f-%.2f]; goal <= 1.5)\n", concurrent_label,
           ours.concurrent * 1e3, concurrent_ratio, concurrent_min, concurrent_max);
  g_print ("%-38s %13s  (%.2fx one start-up)\n", "  with a connection each (ssh_share=no)", "",
           unshared_ratio);
  g_print ("%-38s %13s  (%.2fx one)\n", "  floor: python -c pass, as many at once", "",
           python_floor);
  g_print ("%-38s %10.1f ms  (%.2fx one start-up)\n", "  one more on a connection, alone",
           second * 1e3, second / ours.ready);
  g_print ("%-38s %10.1f us\n", "small item round trip", ours.roundtrip * 1e6);
  g_print ("%-38s %8.0f MB/s\n", "1 MiB items, master to remote", ours.upload);
  g_print ("%-38s %8.0f MB/s\n", "1 MiB items, remote to master", ours.download);
  g_print ("%-38s %10.1f us, %.0f / %.0f MB/s\n", "  the same, started by the spawner",
           ours.spawned.roundtrip * 1e6, ours.spawned.upload, ours.spawned.download);

  return 0;
}
