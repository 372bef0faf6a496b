/* test-emitter.c: signals queued from any thread run in the object's context
 *
 * Links the internal library: it reaches the private emitter and the
 * gateway's private remote-output entry point, without starting a gateway.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <execnet/execnet.h>

#include "execnet-emitter-private.h"
#include "execnet-gateway-private.h"

typedef struct
{
  GThread *thread;
  GString *log;
} Output;

static void
on_remote_output (ExecnetGateway *gateway,
                  const char     *stream,
                  GBytes         *data,
                  gpointer        user_data)
{
  Output *output = user_data;
  gsize size;
  const char *bytes = g_bytes_get_data (data, &size);

  g_assert_true (g_thread_self () == output->thread);
  g_string_append_printf (output->log, "%s:%.*s;", stream, (int) size, bytes);
}

static gpointer
write_output (gpointer data)
{
  ExecnetGateway *gateway = data;

  for (guint i = 0; i < 50; i++)
    {
      g_autofree char *text = g_strdup_printf ("%u", i);
      g_autoptr(GBytes) bytes = g_bytes_new (text, strlen (text));

      _execnet_gateway_emit_remote_output (gateway, i % 2 ? "stderr" : "stdout", bytes);
    }
  return NULL;
}

static void
test_remote_output_order_and_context (void)
{
  g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new ("popen//id=gw0", NULL);
  g_autoptr(ExecnetGateway) gateway = _execnet_gateway_new (xspec, NULL);
  g_autoptr(GString) expected = g_string_new (NULL);
  Output output = { g_thread_self (), g_string_new (NULL) };
  g_autoptr(GBytes) ignored = g_bytes_new_static ("x", 1);
  GThread *thread;

  /* Nobody listens: dropped, nothing queued. */
  _execnet_gateway_emit_remote_output (gateway, "stdout", ignored);
  g_assert_false (g_main_context_iteration (NULL, FALSE));

  g_signal_connect (gateway, "remote-output", G_CALLBACK (on_remote_output), &output);
  thread = g_thread_new ("writer", write_output, gateway);
  g_thread_join (thread);
  g_assert_cmpstr (output.log->str, ==, "");

  while (g_main_context_iteration (NULL, FALSE))
    ;
  for (guint i = 0; i < 50; i++)
    g_string_append_printf (expected, "%s:%u;", i % 2 ? "stderr" : "stdout", i);
  g_assert_cmpstr (output.log->str, ==, expected->str);

  g_signal_handlers_disconnect_by_data (gateway, &output);
  g_string_free (output.log, TRUE);
}

/* An object made inside a sync call belongs to the caller's context, not
 * the sync call's private one. */
static void
test_caller_context_through_sync (void)
{
  g_autoptr(GMainContext) outer = g_main_context_new ();
  g_autoptr(GMainContext) inner = g_main_context_new ();
  g_autoptr(GMainContext) seen = NULL;
  GMainContext *saved;

  g_main_context_push_thread_default (outer);
  saved = _execnet_caller_context_enter (outer);
  g_main_context_push_thread_default (inner);
  seen = _execnet_ref_caller_context ();
  g_main_context_pop_thread_default (inner);
  _execnet_caller_context_leave (saved);
  g_main_context_pop_thread_default (outer);

  g_assert_true (seen == outer);
}

static void
append_event (GObject  *object,
              gpointer  data)
{
  g_string_append (data, "e;");
}

/* flush() in the home thread runs what is queued at once; the pending
 * source then finds nothing and frees nothing twice. */
static void
test_flush_then_source (void)
{
  g_autoptr(GObject) object = g_object_new (G_TYPE_OBJECT, NULL);
  ExecnetEmitter *emitter = _execnet_emitter_new ();
  g_autoptr(GString) log = g_string_new (NULL);

  g_assert_true (_execnet_emitter_is_home (emitter));
  _execnet_emitter_queue (emitter, object, append_event, log, NULL);
  _execnet_emitter_queue (emitter, object, append_event, log, NULL);
  _execnet_emitter_flush (emitter);
  g_assert_cmpstr (log->str, ==, "e;e;");
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpstr (log->str, ==, "e;e;");

  /* Freed with a dispatch still pending. */
  _execnet_emitter_queue (emitter, object, append_event, log, NULL);
  _execnet_emitter_flush (emitter);
  _execnet_emitter_free (emitter);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpstr (log->str, ==, "e;e;e;");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/emitter/remote-output", test_remote_output_order_and_context);
  g_test_add_func ("/emitter/caller-context", test_caller_context_through_sync);
  g_test_add_func ("/emitter/flush-then-source", test_flush_then_source);

  return g_test_run ();
}
