/* bench-popen.c: how fast popen gateways are, against the baselines and
 * against Python execnet, measured in one run on the same machine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <fcntl.h>

#include <execnet/execnet.h>

#include "bench-common.h"
#include <gio/gunixoutputstream.h>
#include <json-glib/json-glib.h>

static char *python = NULL;
static int starts = 20;
static int roundtrips = 5000;
static int megabytes = 256;
static int concurrent = 8;
static gboolean skip_reference = FALSE;
static char *reference_script = NULL;

static GOptionEntry entries[] = {
  { "python", 0, 0, G_OPTION_ARG_STRING, &python, "Interpreter to start (default /usr/bin/python3)", "PATH" },
  { "starts", 'n', 0, G_OPTION_ARG_INT, &starts, "Start-ups to time (default 20)", "N" },
  { "roundtrips", 0, 0, G_OPTION_ARG_INT, &roundtrips, "Round trips to time (default 5000)", "N" },
  { "megabytes", 0, 0, G_OPTION_ARG_INT, &megabytes, "MiB to send each way (default 256)", "N" },
  { "concurrent", 0, 0, G_OPTION_ARG_INT, &concurrent, "Gateways to start at once (default 8)", "N" },
  { "no-reference", 0, 0, G_OPTION_ARG_NONE, &skip_reference, "Do not measure Python execnet", NULL },
  { "reference-script", 0, 0, G_OPTION_ARG_FILENAME, &reference_script, "Path of execnet-reference.py", "PATH" },
  { NULL }
};

/* The floor: starting and ending the bare interpreter. */
static gdouble
time_python_pass (void)
{
  g_autoptr(GArray) samples = g_array_new (FALSE, FALSE, sizeof (gdouble));

  for (int i = 0; i < starts; i++)
    {
      g_autoptr(GSubprocess) process = NULL;
      GError *error = NULL;
      gdouble t0 = bench_now (), elapsed;

      process = g_subprocess_new (G_SUBPROCESS_FLAGS_NONE, &error, python, "-c", "pass", NULL);
      if (process == NULL || !g_subprocess_wait_check (process, NULL, &error))
        bench_die ("python -c pass", error);
      elapsed = bench_now () - t0;
      g_array_append_val (samples, elapsed);
    }

  return bench_median (samples);
}

/* The floor for throughput and latency: raw bytes through a pipe to the
 * interpreter and back, with no framing or serialization. */
static void
time_bare_pipe (gdouble *roundtrip,
                gdouble *upload)
{
  static const char echo[] =
    "import os\n"
    "while True:\n"
    "    data = os.read(0, 1 << 20)\n"
    "    if not data:\n"
    "        break\n"
    "    if data[:1] != b'x':\n"
    "        os.write(1, data)\n";
  g_autoptr(GSubprocess) process = NULL;
  g_autofree guint8 *block = g_malloc (1 << 20);
  GOutputStream *in;
  GInputStream *out;
  GError *error = NULL;
  guint8 message[16] = "ping-ping-ping!";
  gdouble t0;

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                              &error, python, "-c", echo, NULL);
  if (process == NULL)
    bench_die ("bare pipe", error);
  in = g_subprocess_get_stdin_pipe (process);
  out = g_subprocess_get_stdout_pipe (process);
  /* The same pipe size the popen transport asks for. */
  fcntl (g_unix_output_stream_get_fd (G_UNIX_OUTPUT_STREAM (in)), F_SETPIPE_SZ, 1 << 20);

  t0 = bench_now ();
  for (int i = 0; i < roundtrips; i++)
    {
      gsize n;

      if (!g_output_stream_write_all (in, message, sizeof message, NULL, NULL, &error) ||
          !g_input_stream_read_all (out, message, sizeof message, &n, NULL, &error))
        bench_die ("bare pipe round trip", error);
    }
  *roundtrip = (bench_now () - t0) / roundtrips;

  memset (block, 'x', 1 << 20);
  t0 = bench_now ();
  for (int i = 0; i < megabytes; i++)
    if (!g_output_stream_write_all (in, block, 1 << 20, NULL, NULL, &error))
      bench_die ("bare pipe upload", error);
  g_output_stream_close (in, NULL, NULL);
  g_subprocess_wait (process, NULL, NULL);
  *upload = megabytes / (bench_now () - t0);
}

typedef struct
{
  gdouble start;
  gdouble start_concurrent;
  gdouble roundtrip;
  gdouble upload;
  gdouble download;
} Results;

static void
measure_ours (const char *spec,
              Results    *results)
{
  g_autoptr(GArray) samples = g_array_new (FALSE, FALSE, sizeof (gdouble));
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway;
  BenchRates rates;
  GError *error = NULL;

  for (int i = 0; i < starts; i++)
    {
      g_autoptr(ExecnetGroup) one = execnet_group_new ();
      gdouble t0 = bench_now (), elapsed;

      if (execnet_group_make_gateway (one, spec, &error) == NULL)
        bench_die ("make_gateway", error);
      elapsed = bench_now () - t0;
      g_array_append_val (samples, elapsed);
      execnet_group_terminate (one, 5.0, NULL);
    }
  results->start = bench_median (samples);
  results->start_concurrent = bench_concurrent_start (spec, concurrent);

  gateway = execnet_group_make_gateway (group, spec, &error);
  if (gateway == NULL)
    bench_die ("make_gateway", error);
  bench_channel_rates (gateway, roundtrips, megabytes, &rates);
  results->roundtrip = rates.roundtrip;
  results->upload = rates.upload;
  results->download = rates.download;

  execnet_group_terminate (group, 5.0, NULL);
}

static gboolean
measure_reference (Results *results,
                   char   **version)
{
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *output = NULL;
  g_autofree char *n_starts = g_strdup_printf ("%d", starts);
  g_autofree char *n_roundtrips = g_strdup_printf ("%d", roundtrips);
  g_autofree char *n_megabytes = g_strdup_printf ("%d", megabytes);
  JsonObject *object;

  process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error,
                              "/usr/bin/python3", reference_script, python,
                              n_starts, n_roundtrips, n_megabytes, NULL);
  if (process == NULL ||
      !g_subprocess_communicate_utf8 (process, NULL, NULL, &output, NULL, &error) ||
      !g_subprocess_get_successful (process) ||
      !json_parser_load_from_data (parser, output, -1, &error))
    {
      g_printerr ("bench-popen: Python execnet not measured: %s\n",
                  error != NULL ? error->message : "the reference script failed");
      return FALSE;
    }

  object = json_node_get_object (json_parser_get_root (parser));
  results->start = json_object_get_double_member (object, "start");
  results->roundtrip = json_object_get_double_member (object, "roundtrip");
  results->upload = json_object_get_double_member (object, "upload");
  results->download = json_object_get_double_member (object, "download");
  *version = g_strdup (json_object_get_string_member (object, "version"));
  return TRUE;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- time popen gateways");
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *version = NULL;
  Results ours = { 0 }, theirs = { 0 };
  gboolean have_reference = FALSE;
  gdouble pass, pipe_roundtrip, pipe_upload;
  g_autofree char *concurrent_label = NULL;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-popen: %s\n", error->message);
      return 2;
    }
  if (python == NULL)
    python = g_strdup ("/usr/bin/python3");
  if (reference_script == NULL)
    reference_script = g_build_filename (g_path_get_dirname (argv[0]), "execnet-reference.py", NULL);
  spec = g_strdup_printf ("popen//python=%s", python);
  concurrent_label = g_strdup_printf ("%d gateways started at once", concurrent);

  g_print ("execnet-glib %s, %s, %d start-ups, %d round trips, %d MiB each way\n\n",
           EXECNET_VERSION_S, python, starts, roundtrips, megabytes);

  pass = time_python_pass ();
  time_bare_pipe (&pipe_roundtrip, &pipe_upload);
  measure_ours (spec, &ours);
  if (!skip_reference)
    have_reference = measure_reference (&theirs, &version);

  g_print ("%-34s %14s %16s\n", "", "execnet-glib", have_reference ? "Python execnet" : "(not measured)");
  g_print ("%-34s %11.1f ms %13.1f ms   (python -c pass: %.1f ms)\n", "popen start-up (median)",
           ours.start * 1e3, theirs.start * 1e3, pass * 1e3);
  g_print ("%-34s %13.2fx %15.2fx\n", "  ratio to python -c pass", ours.start / pass, theirs.start / pass);
  g_print ("%-34s %11.1f ms %16s   (%.2fx one start-up)\n", concurrent_label,
           ours.start_concurrent * 1e3, "", ours.start_concurrent / ours.start);
  g_print ("%-34s %11.1f us %13.1f us   (bare pipe: %.1f us)\n", "small item round trip",
           ours.roundtrip * 1e6, theirs.roundtrip * 1e6, pipe_roundtrip * 1e6);
  g_print ("%-34s %9.0f MB/s %11.0f MB/s   (bare pipe: %.0f MB/s)\n", "1 MiB items, master to remote",
           ours.upload, theirs.upload, pipe_upload);
  g_print ("%-34s %9.0f MB/s %11.0f MB/s\n", "1 MiB items, remote to master",
           ours.download, theirs.download);
  if (have_reference)
    g_print ("\nagainst Python execnet %s: start-up %.2fx faster, round trip %.2fx faster, "
             "upload %.2fx, download %.2fx\n",
             version, theirs.start / ours.start, theirs.roundtrip / ours.roundtrip,
             ours.upload / theirs.upload, ours.download / theirs.download);

  return 0;
}
