/* bench-popen.c: how fast popen gateways are, against the bare floors and
 * against Python execnet and mitogen, measured in one run on the same
 * machine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * A busy machine changes its speed by 2x within seconds, so no number is
 * compared with one taken at another time: the run is made of rounds, and
 * each round measures every subject (the floors, this library, the Python
 * peers) on every workload back to back. A ratio is taken within a round;
 * the report gives each ratio's median and range over the rounds.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>

#include <execnet/execnet.h>

#include "bench-common.h"
#include <gio/gunixoutputstream.h>
#include <json-glib/json-glib.h>

static char *python = NULL;
static int rounds = 5;
static int starts = 10;
static int roundtrips = 3000;
static int ints = 100000;
static int megabytes = 128;
static int concurrent = 8;
static gboolean skip_reference = FALSE;
static char *reference_script = NULL;

static GOptionEntry entries[] = {
  { "python", 0, 0, G_OPTION_ARG_STRING, &python, "Interpreter to start (default /usr/bin/python3)", "PATH" },
  { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Rounds, each measuring everything (default 5)", "N" },
  { "starts", 'n', 0, G_OPTION_ARG_INT, &starts, "Start-ups per round, median taken (default 10)", "N" },
  { "roundtrips", 0, 0, G_OPTION_ARG_INT, &roundtrips, "Round trips per round (default 3000)", "N" },
  { "ints", 0, 0, G_OPTION_ARG_INT, &ints, "Small ints per round, each way (default 100000)", "N" },
  { "megabytes", 0, 0, G_OPTION_ARG_INT, &megabytes, "MiB per round, each way (default 128)", "N" },
  { "concurrent", 0, 0, G_OPTION_ARG_INT, &concurrent, "Gateways to start at once (default 8)", "N" },
  { "no-reference", 0, 0, G_OPTION_ARG_NONE, &skip_reference, "Measure neither Python execnet nor mitogen", NULL },
  { "reference-script", 0, 0, G_OPTION_ARG_FILENAME, &reference_script, "Path of execnet-reference.py", "PATH" },
  { NULL }
};

typedef enum
{
  MEASURE_CYCLE,       /* s: start, first round trip, terminate */
  MEASURE_START,       /* s: start only */
  MEASURE_CONCURRENT,  /* s: `concurrent` starts at once */
  MEASURE_ROUNDTRIP,   /* s per small round trip */
  MEASURE_INTS_UP,     /* items/s, master to remote */
  MEASURE_INTS_DOWN,   /* items/s, remote to master */
  MEASURE_UPLOAD,      /* MB/s of 1 MiB items, master to remote */
  MEASURE_DOWNLOAD,    /* MB/s of 1 MiB items, remote to master */
  N_MEASURES
} Measure;

/* The peer commands of execnet-reference.py, by measure (NULL: none). */
static const char *peer_commands[N_MEASURES] = {
  "cycle", NULL, NULL, "roundtrip", "ints-up", "ints-down", "upload", "download",
};

typedef enum
{
  SUBJECT_OURS,
  SUBJECT_EXECNET,
  SUBJECT_MITOGEN,
  SUBJECT_FLOOR,       /* python -c pass, a pipe echo, a 1 MiB pipe */
  N_SUBJECTS
} Subject;

/* values[round][subject][measure]; NAN where not measured */
typedef gdouble RoundValues[N_SUBJECTS][N_MEASURES];

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
  for (int i = -1; i < roundtrips; i++)
    {
      gsize n;

      if (i == 0)
        t0 = bench_now ();
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

static void
measure_floors (gdouble *values)
{
  values[MEASURE_CYCLE] = time_python_pass ();
  time_bare_pipe (&values[MEASURE_ROUNDTRIP], &values[MEASURE_UPLOAD]);
}

static void
measure_ours (const char     *spec,
              ExecnetGateway *gateway,
              gdouble        *values)
{
  g_autoptr(GArray) cycles = g_array_new (FALSE, FALSE, sizeof (gdouble));
  g_autoptr(GArray) readies = g_array_new (FALSE, FALSE, sizeof (gdouble));

  for (int i = 0; i < starts; i++)
    {
      gdouble ready, first, cycle;

      bench_cycle (spec, &ready, &first, &cycle);
      g_array_append_val (cycles, cycle);
      g_array_append_val (readies, ready);
    }
  values[MEASURE_CYCLE] = bench_median (cycles);
  values[MEASURE_START] = bench_median (readies);
  values[MEASURE_CONCURRENT] = bench_concurrent_start (spec, concurrent);
  values[MEASURE_ROUNDTRIP] = bench_roundtrip (gateway, roundtrips);
  values[MEASURE_INTS_UP] = bench_ints_up (gateway, ints);
  values[MEASURE_INTS_DOWN] = bench_ints_down (gateway, ints);
  values[MEASURE_UPLOAD] = bench_upload (gateway, megabytes);
  values[MEASURE_DOWNLOAD] = bench_download (gateway, megabytes);
}

/* A Python peer in its own process, answering one command at a time. */
typedef struct
{
  GSubprocess *process;
  GDataInputStream *output;
  GOutputStream *input;
  char *version;
} Peer;

static gboolean
peer_start (Peer       *peer,
            const char *kind)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *line = NULL;

  peer->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                    &error, "/usr/bin/python3", reference_script, kind, python, NULL);
  if (peer->process != NULL)
    {
      peer->input = g_subprocess_get_stdin_pipe (peer->process);
      peer->output = g_data_input_stream_new (g_subprocess_get_stdout_pipe (peer->process));
      line = g_data_input_stream_read_line (peer->output, NULL, NULL, &error);
    }
  if (line == NULL || !json_parser_load_from_data (parser, line, -1, &error))
    {
      g_printerr ("bench-popen: %s not measured: %s\n", kind,
                  error != NULL ? error->message : "the reference script failed");
      return FALSE;
    }
  peer->version = g_strdup (json_object_get_string_member (json_node_get_object (json_parser_get_root (parser)),
                                                           "version"));
  return TRUE;
}

static gdouble
peer_ask (Peer       *peer,
          const char *command,
          int         n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *request = g_strdup_printf ("%s %d\n", command, n);
  g_autofree char *line = NULL;
  JsonNode *root;

  if (!g_output_stream_write_all (peer->input, request, strlen (request), NULL, NULL, &error) ||
      (line = g_data_input_stream_read_line (peer->output, NULL, NULL, &error)) == NULL ||
      !json_parser_load_from_data (parser, line, -1, &error))
    bench_die (peer->version, error != NULL ? error : g_error_new_literal (G_IO_ERROR, G_IO_ERROR_FAILED, "it ended"));
  root = json_parser_get_root (parser);
  return JSON_NODE_HOLDS_VALUE (root) ? json_node_get_double (root) : NAN;
}

static void
measure_peer (Peer    *peer,
              gdouble *values)
{
  for (int m = 0; m < N_MEASURES; m++)
    {
      int n;

      if (peer_commands[m] == NULL)
        continue;
      switch ((Measure) m)
        {
        case MEASURE_CYCLE: n = starts; break;
        case MEASURE_ROUNDTRIP: n = roundtrips; break;
        case MEASURE_INTS_UP:
        case MEASURE_INTS_DOWN: n = ints; break;
        default: n = megabytes; break;
        }
      values[m] = peer_ask (peer, peer_commands[m], n);
    }
}

static void
peer_stop (Peer *peer)
{
  if (peer->process == NULL)
    return;
  g_output_stream_close (peer->input, NULL, NULL);
  g_subprocess_wait (peer->process, NULL, NULL);
  g_clear_object (&peer->output);
  g_clear_object (&peer->process);
  g_clear_pointer (&peer->version, g_free);
}

/* One line of the report: a ratio of two subjects' values of one measure,
 * taken within each round. */
typedef struct
{
  const char *label;
  Measure measure;
  Subject numerator;
  Subject denominator;
  const char *target;
} Ratio;

/* median [min-max] of @samples */
static void
print_samples (const char *label,
               GArray     *samples,
               const char *target)
{
  gdouble median = bench_median (samples);  /* sorts */

  g_print ("  %-50s %6.2fx  [%.2f-%.2f]  %s\n", label, median,
           g_array_index (samples, gdouble, 0),
           g_array_index (samples, gdouble, samples->len - 1), target);
}

static void
print_ratio (const Ratio *ratio,
             RoundValues *values)
{
  g_autoptr(GArray) samples = g_array_new (FALSE, FALSE, sizeof (gdouble));

  for (int r = 0; r < rounds; r++)
    {
      gdouble a = values[r][ratio->numerator][ratio->measure];
      gdouble b = values[r][ratio->denominator][ratio->measure];
      gdouble x = a / b;

      if (!isnan (x))
        g_array_append_val (samples, x);
    }
  if (samples->len == 0)
    return;
  print_samples (ratio->label, samples, ratio->target);
}

static gdouble
median_of (RoundValues *values,
           Subject      subject,
           Measure      measure)
{
  g_autoptr(GArray) samples = g_array_new (FALSE, FALSE, sizeof (gdouble));

  for (int r = 0; r < rounds; r++)
    if (!isnan (values[r][subject][measure]))
      g_array_append_val (samples, values[r][subject][measure]);
  return samples->len ? bench_median (samples) : NAN;
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GOptionContext) context = g_option_context_new ("- time popen gateways");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree RoundValues *values = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *concurrent_label = NULL;
  Peer peers[N_SUBJECTS] = { { 0 } };
  ExecnetGateway *gateway;

  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-popen: %s\n", error->message);
      return 2;
    }
  if (rounds < 1 || starts < 1 || roundtrips < 1 || ints < 1 || megabytes < 1 || concurrent < 1)
    {
      g_printerr ("bench-popen: every count must be at least 1\n");
      return 2;
    }
  if (python == NULL)
    python = g_strdup ("/usr/bin/python3");
  if (reference_script == NULL)
    reference_script = g_build_filename (g_path_get_dirname (argv[0]), "execnet-reference.py", NULL);
  spec = g_strdup_printf ("popen//python=%s", python);

  g_print ("execnet-glib %s, %s; %d rounds of: %d start-ups, %d round trips, %d ints and %d MiB each way\n",
           EXECNET_VERSION_S, python, rounds, starts, roundtrips, ints, megabytes);

  if (!skip_reference)
    {
      if (!peer_start (&peers[SUBJECT_EXECNET], "execnet"))
        peer_stop (&peers[SUBJECT_EXECNET]);
      if (!peer_start (&peers[SUBJECT_MITOGEN], "mitogen"))
        peer_stop (&peers[SUBJECT_MITOGEN]);
    }
  for (int s = SUBJECT_EXECNET; s <= SUBJECT_MITOGEN; s++)
    if (peers[s].process != NULL)
      g_print ("peer: %s\n", peers[s].version);
  g_print ("\n");

  gateway = execnet_group_make_gateway (group, spec, &error);
  if (gateway == NULL)
    bench_die ("make_gateway", error);

  values = g_new (RoundValues, rounds);
  for (int r = 0; r < rounds; r++)
    {
      for (int s = 0; s < N_SUBJECTS; s++)
        for (int m = 0; m < N_MEASURES; m++)
          values[r][s][m] = NAN;
      measure_floors (values[r][SUBJECT_FLOOR]);
      measure_ours (spec, gateway, values[r][SUBJECT_OURS]);
      for (int s = SUBJECT_EXECNET; s <= SUBJECT_MITOGEN; s++)
        if (peers[s].process != NULL)
          measure_peer (&peers[s], values[r][s]);
      g_printerr ("round %d of %d done\n", r + 1, rounds);
    }

  g_print ("medians over the rounds        %14s %14s %14s %14s\n",
           "execnet-glib", "Python execnet", "mitogen", "floor");
  {
    static const struct { Measure m; const char *label; const char *unit; gdouble scale; } rows[] = {
      { MEASURE_CYCLE, "start+1 round trip+terminate", "ms", 1e3 },
      { MEASURE_START, "start-up", "ms", 1e3 },
      { MEASURE_CONCURRENT, "start-ups at once", "ms", 1e3 },
      { MEASURE_ROUNDTRIP, "small round trip", "us", 1e6 },
      { MEASURE_INTS_UP, "small ints, master to remote", "k/s", 1e-3 },
      { MEASURE_INTS_DOWN, "small ints, remote to master", "k/s", 1e-3 },
      { MEASURE_UPLOAD, "1 MiB items, master to remote", "MB/s", 1 },
      { MEASURE_DOWNLOAD, "1 MiB items, remote to master", "MB/s", 1 },
    };

    for (gsize i = 0; i < G_N_ELEMENTS (rows); i++)
      {
        g_autofree char *label = g_strdup_printf ("%s (%s)", rows[i].label, rows[i].unit);

        g_print ("%-30s", label);
        for (int s = 0; s < N_SUBJECTS; s++)
          {
            gdouble x = median_of (values, s, rows[i].m);

            if (isnan (x))
              g_print (" %14s", "-");
            else
              g_print (" %14.1f", x * rows[i].scale);
          }
        g_print ("\n");
      }
  }

  concurrent_label = g_strdup_printf ("%d gateways started at once / one start-up", concurrent);
  {
    const Ratio ratios[] = {
      { "popen cycle / python -c pass", MEASURE_CYCLE, SUBJECT_OURS, SUBJECT_FLOOR, "(goal <= 1.3)" },
      { "  Python execnet's cycle / python -c pass", MEASURE_CYCLE, SUBJECT_EXECNET, SUBJECT_FLOOR, "" },
      { "  mitogen's local context cycle / python -c pass", MEASURE_CYCLE, SUBJECT_MITOGEN, SUBJECT_FLOOR, "" },
      { concurrent_label, MEASURE_CONCURRENT, SUBJECT_OURS, SUBJECT_OURS, "" },
      { "small round trip / Python execnet's", MEASURE_ROUNDTRIP, SUBJECT_OURS, SUBJECT_EXECNET, "(goal <= 0.7)" },
      { "small round trip / a Python pipe echo", MEASURE_ROUNDTRIP, SUBJECT_OURS, SUBJECT_FLOOR, "(goal <= 1.5)" },
      { "small round trip / mitogen's call()", MEASURE_ROUNDTRIP, SUBJECT_OURS, SUBJECT_MITOGEN, "" },
      { "  Python execnet's round trip / a pipe echo", MEASURE_ROUNDTRIP, SUBJECT_EXECNET, SUBJECT_FLOOR, "" },
      { "small ints master to remote, x Python execnet", MEASURE_INTS_UP, SUBJECT_OURS, SUBJECT_EXECNET, "(goal >= 3)" },
      { "small ints remote to master, x Python execnet", MEASURE_INTS_DOWN, SUBJECT_OURS, SUBJECT_EXECNET, "" },
      { "1 MiB items master to remote, x a bare 1 MiB pipe", MEASURE_UPLOAD, SUBJECT_OURS, SUBJECT_FLOOR, "(goal >= 0.85)" },
      { "1 MiB items master to remote, x Python execnet", MEASURE_UPLOAD, SUBJECT_OURS, SUBJECT_EXECNET, "" },
      { "1 MiB items remote to master, x Python execnet", MEASURE_DOWNLOAD, SUBJECT_OURS, SUBJECT_EXECNET, "" },
    };
    RoundValues *per_round = values;

    g_print ("\nratios within a round: median [range]\n");
    for (gsize i = 0; i < G_N_ELEMENTS (ratios); i++)
      {
        if (ratios[i].measure == MEASURE_CONCURRENT)
          {
            /* against the same round's single start-up */
            g_autoptr(GArray) samples = g_array_new (FALSE, FALSE, sizeof (gdouble));

            for (int r = 0; r < rounds; r++)
              {
                gdouble x = per_round[r][SUBJECT_OURS][MEASURE_CONCURRENT] /
                            per_round[r][SUBJECT_OURS][MEASURE_START];
                g_array_append_val (samples, x);
              }
            print_samples (ratios[i].label, samples, ratios[i].target);
            continue;
          }
        print_ratio (&ratios[i], per_round);
      }
  }

  for (int s = 0; s < N_SUBJECTS; s++)
    peer_stop (&peers[s]);
  execnet_group_terminate (group, 5.0, NULL);
  return 0;
}
