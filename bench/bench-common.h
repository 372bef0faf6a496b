/* bench-common.h: what the benchmark programs share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet.h>

G_BEGIN_DECLS

typedef struct
{
  gdouble roundtrip;   /* seconds */
  gdouble upload;      /* MB/s, master to remote */
  gdouble download;    /* MB/s, remote to master */
} BenchRates;

gdouble bench_median           (GArray         *samples);
gdouble bench_now              (void);
void    bench_die              (const char     *what,
                                GError         *error) G_GNUC_NORETURN;
gdouble bench_concurrent_start (const char     *spec,
                                int             n);
void    bench_cycle            (const char     *spec,
                                gdouble        *ready,
                                gdouble        *first,
                                gdouble        *cycle);
gdouble bench_roundtrip        (ExecnetGateway *gateway,
                                int             n);
gdouble bench_ints_up          (ExecnetGateway *gateway,
                                int             n);
gdouble bench_ints_down        (ExecnetGateway *gateway,
                                int             n);
gdouble bench_upload           (ExecnetGateway *gateway,
                                int             megabytes);
gdouble bench_download         (ExecnetGateway *gateway,
                                int             megabytes);
void    bench_channel_rates    (ExecnetGateway *gateway,
                                int             roundtrips,
                                int             megabytes,
                                BenchRates     *rates);

G_END_DECLS
