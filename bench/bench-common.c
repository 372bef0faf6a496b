/* bench-common.c: what the benchmark programs share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bench-common.h"

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  gdouble x = *(const gdouble *) a, y = *(const gdouble *) b;

  return (x > y) - (x < y);
}

gdouble
bench_median (GArray *samples)
{
  g_array_sort (samples, compare_doubles);
  return g_array_index (samples, gdouble, samples->len / 2);
}

gdouble
bench_now (void)
{
  return g_get_monotonic_time () / (gdouble) G_USEC_PER_SEC;
}

void
bench_die (const char *what,
           GError     *error)
{
  /* A receive that meets the channel's end returns NULL without an error. */
  g_printerr ("%s: %s: %s\n", g_get_prgname (), what,
              error != NULL ? error->message : "the channel ended without a reply");
  exit (1);
}

static const char echo_source[] =
  "for item in channel:\n"
  "    channel.send(item)\n";

static const char count_source[] =
  "n = 0\n"
  "while True:\n"
  "    item = channel.receive()\n"
  "    if item is None:\n"
  "        break\n"
  "    n += 1\n"
  "channel.send(n)\n";

static const char count_bytes_source[] =
  "n = 0\n"
  "while True:\n"
  "    item = channel.receive()\n"
  "    if item is None:\n"
  "        break\n"
  "    n += len(item)\n"
  "channel.send(n)\n";

static const char produce_ints_source[] =
  "for i in range(channel.receive()):\n"
  "    channel.send(i)\n";

static const char produce_bytes_source[] =
  "item = b'x' * (1 << 20)\n"
  "for _ in range(channel.receive()):\n"
  "    channel.send(item)\n";

/* Seconds to start @n gateways of @spec at once. */
gdouble
bench_concurrent_start (const char *spec,
                        int         n)
{
  g_auto(GStrv) specs = g_new0 (char *, n + 1);
  g_autoptr(ExecnetGroup) many = NULL;
  GError *error = NULL;
  gdouble t0;

  for (int i = 0; i < n; i++)
    specs[i] = g_strdup (spec);

  t0 = bench_now ();
  many = execnet_group_new_with_specs ((const char * const *) specs, &error);
  if (many == NULL)
    bench_die ("new_with_specs", error);
  t0 = bench_now () - t0;
  execnet_group_terminate (many, 5.0, NULL);

  return t0;
}

/* One gateway's whole life as a user sees it: seconds to start it, to
 * its first reply, and to its end (terminated and reaped). */
void
bench_cycle (const char *spec,
             gdouble    *ready,
             gdouble    *first,
             gdouble    *cycle)
{
  g_autoptr(ExecnetGroup) one = execnet_group_new ();
  g_autoptr(ExecnetChannel) probe = NULL;
  g_autoptr(GVariant) reply = NULL;
  ExecnetGateway *gateway;
  GError *error = NULL;
  gdouble t0 = bench_now ();

  gateway = execnet_group_make_gateway (one, spec, &error);
  if (gateway == NULL)
    bench_die ("make_gateway", error);
  *ready = bench_now () - t0;
  probe = execnet_gateway_remote_exec (gateway, "channel.send(1)", &error);
  if (probe == NULL || (reply = execnet_channel_receive (probe, -1, &error)) == NULL)
    bench_die ("first round trip", error);
  *first = bench_now () - t0;
  if (!execnet_group_terminate (one, 5.0, &error))
    bench_die ("terminate", error);
  *cycle = bench_now () - t0;
}

static ExecnetChannel *
start (ExecnetGateway *gateway,
       const char     *source)
{
  GError *error = NULL;
  ExecnetChannel *channel = execnet_gateway_remote_exec (gateway, source, &error);

  if (channel == NULL)
    bench_die ("remote_exec", error);
  return channel;
}

static void
send_or_die (ExecnetChannel *channel,
             GVariant       *item,
             const char     *what)
{
  GError *error = NULL;

  if (!execnet_channel_send (channel, item, &error))
    bench_die (what, error);
}

static GVariant *
receive_or_die (ExecnetChannel *channel,
                const char     *what)
{
  GError *error = NULL;
  GVariant *item = execnet_channel_receive (channel, -1, &error);

  if (item == NULL)
    bench_die (what, error);
  return item;
}

/* Seconds per small item round trip against a remote echo loop. */
gdouble
bench_roundtrip (ExecnetGateway *gateway,
                 int             n)
{
  g_autoptr(ExecnetChannel) channel = start (gateway, echo_source);
  gdouble t0 = 0;

  for (int i = -1; i < n; i++)
    {
      g_autoptr(GVariant) reply = NULL;

      if (i == 0)
        t0 = bench_now ();
      send_or_die (channel, g_variant_new_int32 (i), "round trip");
      reply = receive_or_die (channel, "round trip");
    }
  t0 = bench_now () - t0;
  execnet_channel_close (channel, NULL, NULL);
  return t0 / n;
}

/* Items per second: @n small ints from the master, the remote counting. */
gdouble
bench_ints_up (ExecnetGateway *gateway,
               int             n)
{
  g_autoptr(ExecnetChannel) channel = start (gateway, count_source);
  g_autoptr(GVariant) total = NULL;
  gdouble t0 = bench_now ();

  for (int i = 0; i < n; i++)
    send_or_die (channel, g_variant_new_int32 (i), "ints up");
  send_or_die (channel, NULL, "ints up");
  total = receive_or_die (channel, "ints up");
  return n / (bench_now () - t0);
}

/* Items per second: @n small ints from the remote. */
gdouble
bench_ints_down (ExecnetGateway *gateway,
                 int             n)
{
  g_autoptr(ExecnetChannel) channel = start (gateway, produce_ints_source);
  gdouble t0 = bench_now ();

  send_or_die (channel, g_variant_new_int32 (n), "ints down");
  for (int i = 0; i < n; i++)
    g_variant_unref (receive_or_die (channel, "ints down"));
  return n / (bench_now () - t0);
}

/* MB/s of @megabytes items of 1 MiB from the master, the remote counting. */
gdouble
bench_upload (ExecnetGateway *gateway,
              int             megabytes)
{
  g_autoptr(ExecnetChannel) channel = start (gateway, count_bytes_source);
  g_autofree guint8 *data = g_malloc (1 << 20);
  g_autoptr(GVariant) block = NULL;
  g_autoptr(GVariant) total = NULL;
  gdouble t0;

  memset (data, 'x', 1 << 20);
  block = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, 1 << 20, 1));
  t0 = bench_now ();
  for (int i = 0; i < megabytes; i++)
    send_or_die (channel, block, "upload");
  send_or_die (channel, NULL, "upload");
  total = receive_or_die (channel, "upload");
  return megabytes / (bench_now () - t0);
}

/* MB/s of @megabytes items of 1 MiB from the remote. */
gdouble
bench_download (ExecnetGateway *gateway,
                int             megabytes)
{
  g_autoptr(ExecnetChannel) channel = start (gateway, produce_bytes_source);
  gdouble t0 = bench_now ();

  send_or_die (channel, g_variant_new_int32 (megabytes), "download");
  for (int i = 0; i < megabytes; i++)
    g_variant_unref (receive_or_die (channel, "download"));
  return megabytes / (bench_now () - t0);
}

/* On @gateway: seconds per small round trip, and MB/s of 1 MiB items
 * each way. */
void
bench_channel_rates (ExecnetGateway *gateway,
                     int             roundtrips,
                     int             megabytes,
                     BenchRates     *rates)
{
  rates->roundtrip = bench_roundtrip (gateway, roundtrips);
  rates->upload = bench_upload (gateway, megabytes);
  rates->download = bench_download (gateway, megabytes);
}
