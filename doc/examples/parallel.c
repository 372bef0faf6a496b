/* parallel.c: eight gateways started at once, a task on each, results
 * printed as they arrive, and an asynchronous terminate: a GLib program
 * whose main loop never blocks.
 *
 * The loop's own timer ticks every 10 ms throughout; with --check-ticks it
 * fails when two ticks were ever more than 50 ms apart. On a busy machine
 * that also counts the time the process waited for a CPU, so the tests
 * (tests/test-parallel-ticks.c) run this file with the waiting left out.
 *
 *   cc parallel.c $(pkg-config --cflags --libs execnet-1)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <execnet/execnet.h>

#define N_GATEWAYS 8

static const char task_source[] =
  "import os\n"
  "n = channel.receive()\n"
  "channel.send((n, sum(i * i for i in range(n * 100000)), os.getpid()))\n";

typedef struct
{
  GMainLoop *loop;
  ExecnetGroup *group;
  guint pending;
  gint64 last_tick;
  gint64 longest_gap;
  int status;
} App;

static gboolean
on_tick (gpointer user_data)
{
  App *app = user_data;
  gint64 now = g_get_monotonic_time ();

  app->longest_gap = MAX (app->longest_gap, now - app->last_tick);
  app->last_tick = now;
  return G_SOURCE_CONTINUE;
}

static void
on_terminated (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;

  if (!execnet_group_terminate_finish (EXECNET_GROUP (source), result, &error))
    {
      g_printerr ("terminate: %s\n", error->message);
      app->status = 1;
    }
  text = execnet_group_to_string (app->group);
  g_print ("%s\n", text);
  g_main_loop_quit (app->loop);
}

static void
on_result (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  App *app = user_data;
  ExecnetChannel *channel = EXECNET_CHANNEL (source);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = execnet_channel_receive_finish (channel, result, &error);
  gint64 n, total, pid;

  if (reply == NULL)
    {
      g_printerr ("%s: %s\n", execnet_gateway_get_id (execnet_channel_get_gateway (channel)),
                  error->message);
      app->status = 1;
    }
  else
    {
      g_variant_get (reply, "(xxx)", &n, &total, &pid);
      g_print ("%s: task %" G_GINT64_FORMAT " gave %" G_GINT64_FORMAT " (pid %" G_GINT64_FORMAT ")\n",
               execnet_gateway_get_id (execnet_channel_get_gateway (channel)), n, total, pid);
    }
  g_object_unref (channel);

  if (--app->pending == 0)
    execnet_group_terminate_async (app->group, 5.0, NULL, on_terminated, app);
}

static void
on_started (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  App *app = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) gateways = NULL;

  gateways = execnet_group_make_gateways_finish (app->group, result, &error);
  if (gateways == NULL)
    {
      g_printerr ("cannot start the gateways: %s\n", error->message);
      app->status = 1;
      g_main_loop_quit (app->loop);
      return;
    }

  g_print ("%u gateways ready\n", gateways->len);
  app->pending = gateways->len;
  for (guint i = 0; i < gateways->len; i++)
    {
      ExecnetChannel *channel;

      channel = execnet_gateway_remote_exec (g_ptr_array_index (gateways, i), task_source, &error);
      if (channel == NULL)
        {
          g_printerr ("remote_exec: %s\n", error->message);
          app->status = 1;
          g_main_loop_quit (app->loop);
          return;
        }
      /* Sending never blocks for long: only under backpressure. */
      execnet_channel_send_async (channel, g_variant_new_int64 (i + 1), NULL, NULL, NULL);
      execnet_channel_receive_async (channel, NULL, on_result, app);
    }
}

int
main (int    argc,
      char **argv)
{
  const char *spec = argc > 1 && argv[1][0] != '-' ? argv[1] : "popen";
  gboolean check_ticks = argc > 2 && g_str_equal (argv[2], "--check-ticks");
  const char *specs[N_GATEWAYS + 1] = { NULL };
  App app = { 0 };
  guint tick;

  for (guint i = 0; i < N_GATEWAYS; i++)
    specs[i] = spec;

  app.loop = g_main_loop_new (NULL, FALSE);
  app.group = execnet_group_new ();
  app.last_tick = g_get_monotonic_time ();
  tick = g_timeout_add (10, on_tick, &app);

  execnet_group_make_gateways_async (app.group, specs, NULL, on_started, &app);
  g_main_loop_run (app.loop);

  on_tick (&app);
  g_source_remove (tick);
  g_print ("longest gap between ticks: %" G_GINT64_FORMAT " ms\n", app.longest_gap / 1000);
  if (check_ticks && app.longest_gap > 50 * 1000)
    {
      g_printerr ("the main loop was blocked for %" G_GINT64_FORMAT " ms\n", app.longest_gap / 1000);
      app.status = 1;
    }

  g_object_unref (app.group);
  g_main_loop_unref (app.loop);
  return app.status;
}
