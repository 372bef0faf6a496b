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
  g_printerr ("%s: %s: %s\n", g_get_prgname (), what, error->message);
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
  "    n += len(item)\n"
  "channel.send(n)\n";

static const char produce_source[] =
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

/* On @gateway: seconds per small round trip, and MB/s of 1 MiB items
 * each way. */
void
bench_channel_rates (ExecnetGateway *gateway,
                     int             roundtrips,
                     int             megabytes,
                     BenchRates     *rates)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) block = NULL;
  g_autofree guint8 *data = g_malloc (1 << 20);
  GError *error = NULL;
  gdouble t0 = 0;

  channel = execnet_gateway_remote_exec (gateway, echo_source, &error);
  if (channel == NULL)
    bench_die ("remote_exec", error);
  for (int i = -1; i < roundtrips; i++)
    {
      g_autoptr(GVariant) reply = NULL;

      if (i == 0)
        t0 = bench_now ();
      if (!execnet_channel_send (channel, g_variant_new_int32 (i), &error) ||
          (reply = execnet_channel_receive (channel, -1, &error)) == NULL)
        bench_die ("round trip", error);
    }
  rates->roundtrip = (bench_now () - t0) / roundtrips;
  execnet_channel_close (channel, NULL, NULL);
  g_clear_object (&channel);

  memset (data, 'x', 1 << 20);
  block = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, 1 << 20, 1));
  channel = execnet_gateway_remote_exec (gateway, count_source, &error);
  if (channel == NULL)
    bench_die ("remote_exec", error);
  t0 = bench_now ();
  for (int i = 0; i < megabytes; i++)
    if (!execnet_channel_send (channel, block, &error))
      bench_die ("upload", error);
  {
    g_autoptr(GVariant) total = NULL;

    if (!execnet_channel_send (channel, NULL, &error) ||
        (total = execnet_channel_receive (channel, -1, &error)) == NULL)
      bench_die ("upload", error);
  }
  rates->upload = megabytes / (bench_now () - t0);
  g_clear_object (&channel);

  channel = execnet_gateway_remote_exec (gateway, produce_source, &error);
  if (channel == NULL)
    bench_die ("remote_exec", error);
  t0 = bench_now ();
  if (!execnet_channel_send (channel, g_variant_new_int32 (megabytes), &error))
    bench_die ("download", error);
  for (int i = 0; i < megabytes; i++)
    {
      g_autoptr(GVariant) item = execnet_channel_receive (channel, -1, &error);

      if (item == NULL)
        bench_die ("download", error);
    }
  rates->download = megabytes / (bench_now () - t0);
}
