/* execnet-tool-probe.c: execnet-tool probe
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>

#include <json-glib/json-glib.h>

#include "execnet-tool.h"

/* How long the gateway gets to end on its own before it is killed. */
#define TERMINATE_TIMEOUT 5.0

/* The phases timed in each run. "start" is the whole of make_gateway;
 * "transport" and "bootstrap" are its two parts as the gateway reports
 * them (execnet_gateway_get_startup_times). */
typedef enum {
  PHASE_START,
  PHASE_TRANSPORT,
  PHASE_BOOTSTRAP,
  PHASE_ROUND_TRIP,
  PHASE_TERMINATE,
  N_PHASES
} Phase;

static const struct {
  const char *name;   /* for text */
  const char *key;    /* for JSON */
} phases[N_PHASES] = {
  [PHASE_START] = { "start", "start" },
  [PHASE_TRANSPORT] = { "  transport", "transport" },
  [PHASE_BOOTSTRAP] = { "  bootstrap", "bootstrap" },
  [PHASE_ROUND_TRIP] = { "round trip", "round_trip" },
  [PHASE_TERMINATE] = { "terminate", "terminate" },
};

static int count = 5;

static const GOptionEntry entries[] = {
  { "count", 'n', 0, G_OPTION_ARG_INT, &count, "Start N gateways, one after the other (default 5)", "N" },
  EXECNET_TOOL_JSON_OPTION ("Print one line of JSON per run, then the summary (times in microseconds)"),
  G_OPTION_ENTRY_NULL
};

/* Times are kept in microseconds: text shows them as milliseconds, JSON as
 * integers, which print exactly. */
static gint64
elapsed_us (gint64 since)
{
  return g_get_monotonic_time () - since;
}

/* One run: fills @times (microseconds per phase). */
static gboolean
probe_once (const char  *spec,
            gint64      *times,
            GError     **error)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) echo = NULL;
  ExecnetGateway *gateway;
  gboolean ok = FALSE;
  gint64 start;

  start = g_get_monotonic_time ();
  gateway = execnet_group_make_gateway (group, spec, error);
  times[PHASE_START] = elapsed_us (start);
  if (gateway == NULL)
    goto out;
  execnet_gateway_get_startup_times (gateway, &times[PHASE_TRANSPORT], &times[PHASE_BOOTSTRAP]);

  start = g_get_monotonic_time ();
  channel = execnet_gateway_remote_exec (gateway, "channel.send(channel.receive())", error);
  if (channel == NULL ||
      !execnet_channel_send (channel, g_variant_new_string ("probe"), error))
    goto out;
  echo = execnet_channel_receive (channel, -1, error);
  times[PHASE_ROUND_TRIP] = elapsed_us (start);
  if (echo == NULL)
    goto out;

  ok = TRUE;

out:
  /* Terminate even after a failure, but report only the first error. */
  start = g_get_monotonic_time ();
  if (ok)
    ok = execnet_group_terminate (group, TERMINATE_TIMEOUT, error);
  else
    execnet_group_terminate (group, TERMINATE_TIMEOUT, NULL);
  times[PHASE_TERMINATE] = elapsed_us (start);

  return ok;
}

static int
compare_times (gconstpointer a,
               gconstpointer b,
               gpointer      user_data)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

/* Sorts @values and returns their minimum, median and maximum. */
static void
summarize (gint64 *values,
           int     n,
           gint64 *min,
           gint64 *median,
           gint64 *max)
{
  g_qsort_with_data (values, n, sizeof (gint64), compare_times, NULL);
  *min = values[0];
  *max = values[n - 1];
  *median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

static void
print_json_node (JsonBuilder *builder)
{
  g_autoptr(JsonNode) root = json_builder_get_root (builder);
  g_autofree char *text = execnet_tool_json_node_to_string (root);

  fputs (text, stdout);
  fputc ('\n', stdout);
  fflush (stdout);
}

static void
print_run (int           run,
           const gint64 *times)
{
  if (execnet_tool_json ())
    {
      g_autoptr(JsonBuilder) builder = json_builder_new ();

      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "run");
      json_builder_add_int_value (builder, run);
      for (int p = 0; p < N_PHASES; p++)
        {
          g_autofree char *member = g_strdup_printf ("%s_us", phases[p].key);

          json_builder_set_member_name (builder, member);
          json_builder_add_int_value (builder, times[p]);
        }
      json_builder_end_object (builder);
      print_json_node (builder);
    }
  else
    {
      g_print ("run %d:", run);
      for (int p = 0; p < N_PHASES; p++)
        g_print ("%s %s %.2f ms", p > 0 ? "," : "", phases[p].name, times[p] / 1000.0);
      g_print ("\n");
      fflush (stdout);
    }
}

static void
print_summary (gint64 **samples,
               int      n)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();

  if (execnet_tool_json ())
    {
      json_builder_begin_object (builder);
      json_builder_set_member_name (builder, "summary");
      json_builder_begin_object (builder);
    }
  else
    {
      g_print ("%-12s %10s %10s %10s\n", "phase (ms)", "min", "median", "max");
    }

  for (int p = 0; p < N_PHASES; p++)
    {
      gint64 min, median, max;

      summarize (samples[p], n, &min, &median, &max);
      if (execnet_tool_json ())
        {
          json_builder_set_member_name (builder, phases[p].key);
          json_builder_begin_object (builder);
          json_builder_set_member_name (builder, "min_us");
          json_builder_add_int_value (builder, min);
          json_builder_set_member_name (builder, "median_us");
          json_builder_add_int_value (builder, median);
          json_builder_set_member_name (builder, "max_us");
          json_builder_add_int_value (builder, max);
          json_builder_end_object (builder);
        }
      else
        {
          g_print ("%-12s %10.2f %10.2f %10.2f\n", phases[p].name,
                   min / 1000.0, median / 1000.0, max / 1000.0);
        }
    }

  if (execnet_tool_json ())
    {
      json_builder_set_member_name (builder, "runs");
      json_builder_add_int_value (builder, n);
      json_builder_end_object (builder);
      json_builder_end_object (builder);
      print_json_node (builder);
    }
}

int
execnet_tool_probe (int    argc,
                    char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autofree gint64 *storage = NULL;
  gint64 *samples[N_PHASES];

  context = g_option_context_new ("SPEC");
  g_option_context_set_summary (context,
    "Like ping, for gateways: N times in a row, start a gateway from SPEC,\n"
    "make one round trip and terminate it, timing each phase; then print the\n"
    "minimum, median and maximum of each phase in milliseconds.\n"
    "\n"
    "  start       making the gateway, in all; of which\n"
    "    transport   the transport starting or reaching the interpreter\n"
    "    bootstrap   sending the agent until it acknowledged (chdir, nice and\n"
    "                env are applied before that)\n"
    "  round trip  remote_exec of channel.send(channel.receive()), sending one\n"
    "              string and receiving it back\n"
    "  terminate   terminating the gateway's group and reaping the process");
  g_option_context_set_description (context,
    "Exit status: as for “execnet-tool exec”; the first failing run ends\n"
    "the probe.\n"
    "\n"
    "Example:\n"
    "  execnet-tool probe -n 20 'ssh=node7//python=python3'");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, execnet_tool_verbose_entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (argc != 2)
    {
      execnet_tool_print_error (argv[0], argc < 2 ? "no spec given; try “execnet-tool help probe”"
                                                  : "give exactly one spec");
      return EXECNET_TOOL_EXIT_USAGE;
    }
  if (count < 1)
    {
      execnet_tool_print_error (argv[0], "the count must be at least 1, not %d", count);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  /* A bad spec fails once, before any run. */
  xspec = execnet_xspec_new (argv[1], &error);
  if (xspec == NULL)
    return execnet_tool_report_error (argv[0], error);

  storage = g_new0 (gint64, (gsize) count * N_PHASES);
  for (int p = 0; p < N_PHASES; p++)
    samples[p] = storage + (gsize) p * count;

  for (int run = 0; run < count; run++)
    {
      gint64 times[N_PHASES] = { 0 };

      if (!probe_once (argv[1], times, &error))
        return execnet_tool_report_error (argv[0], error);

      print_run (run + 1, times);
      for (int p = 0; p < N_PHASES; p++)
        samples[p][run] = times[p];
    }

  print_summary (samples, count);

  return EXECNET_TOOL_EXIT_OK;
}
