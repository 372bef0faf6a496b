/* test-async.c: every _async call: success, error and cancellation
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <math.h>

#include <execnet/execnet.h>

#include "test-helpers.h"

static GThread *main_thread;

static void
on_result (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  GAsyncResult **out = user_data;

  /* Completions run in the caller's thread-default context. */
  g_assert_true (g_thread_self () == main_thread);
  g_assert_null (*out);
  *out = g_object_ref (result);
}

static gboolean
has_result (gpointer data)
{
  return *(GAsyncResult **) data != NULL;
}

/* Iterates the default context until @result is set; returns it (transfer full). */
static GAsyncResult *
wait_for (GAsyncResult **result)
{
  test_iterate_until (NULL, has_result, result, TEST_TIMEOUT);
  return g_steal_pointer (result);
}

/* Nothing is completed inside the _async call itself. */
#define assert_pending(result) g_assert_null (result)

static char *
python_spec (const char *extra)
{
  return test_spec (extra);
}

static void
test_make_gateway_async (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *spec = python_spec ("id=a1");
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  execnet_group_make_gateway_async (group, spec, NULL, on_result, &result);
  assert_pending (result);
  done = wait_for (&result);
  gateway = execnet_group_make_gateway_finish (group, done, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (execnet_gateway_get_id (gateway), ==, "a1");
  g_assert_true (execnet_group_lookup (group, "a1") == gateway);
  g_clear_object (&done);

  /* Errors: a malformed spec, then an interpreter that does not exist. */
  execnet_group_make_gateway_async (group, "popen//=x", NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_group_make_gateway_finish (group, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_group_make_gateway_async (group, "popen//python=/nonexistent/python3", NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_group_make_gateway_finish (group, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  g_clear_error (&error);
  g_clear_object (&done);

  g_assert_cmpuint (execnet_group_get_size (group), ==, 1);
  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_make_gateway_for_xspec (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *spec = python_spec (NULL);
  g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new (spec, NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  execnet_group_make_gateway_for_xspec_async (group, xspec, NULL, on_result, &result);
  /* The id is given before the gateway is ready. */
  g_assert_cmpstr (execnet_xspec_get_id (xspec), ==, "gw0");
  done = wait_for (&result);
  gateway = execnet_group_make_gateway_for_xspec_finish (group, done, &error);
  g_assert_no_error (error);
  g_assert_true (execnet_gateway_get_xspec (gateway) == xspec);
  g_clear_object (&done);

  /* The same id again is an error. */
  execnet_group_make_gateway_for_xspec_async (group, xspec, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_group_make_gateway_for_xspec_finish (group, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_DUPLICATE_ID);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* Cancelling a start that is under way kills and reaps what it started. */
static void
test_make_gateway_cancelled (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *spec = python_spec (NULL);

  /* At once, and after the process was started (a bootstrap that waits on
   * a slow interpreter start: `python=sh -c "sleep..."` is not needed, the
   * I/O thread is slower than the idle that cancels). */
  for (guint delay = 0; delay < 3; delay++)
    {
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GAsyncResult) done = NULL;
      g_autoptr(GError) error = NULL;
      ExecnetGateway *gateway;

      if (delay == 0)
        g_cancellable_cancel (cancellable);
      execnet_group_make_gateway_async (group, spec, cancellable, on_result, &result);
      if (delay > 0)
        g_timeout_add (delay * 5, test_cancel_soon, cancellable);
      done = wait_for (&result);
      gateway = execnet_group_make_gateway_finish (group, done, &error);
      if (gateway == NULL)
        {
          g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
          /* Whatever it started is gone by the time it reports. */
          test_assert_no_children (0.0);
        }
      else
        test_terminate (group);
    }

  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  test_assert_no_children (5.0);
}

static void
test_make_gateways (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *a = python_spec ("id=first");
  g_autofree char *b = python_spec (NULL);
  g_autofree char *c = python_spec ("id=third");
  const char *specs[] = { a, b, c, NULL };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) gateways = NULL;

  execnet_group_make_gateways_async (group, specs, NULL, on_result, &result);
  assert_pending (result);
  done = wait_for (&result);
  gateways = execnet_group_make_gateways_finish (group, done, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (gateways->len, ==, 3);
  g_assert_cmpstr (execnet_gateway_get_id (g_ptr_array_index (gateways, 0)), ==, "first");
  g_assert_cmpstr (execnet_gateway_get_id (g_ptr_array_index (gateways, 1)), ==, "gw0");
  g_assert_cmpstr (execnet_gateway_get_id (g_ptr_array_index (gateways, 2)), ==, "third");
  g_assert_cmpuint (execnet_group_get_size (group), ==, 3);
  g_clear_object (&done);
  g_clear_pointer (&gateways, g_ptr_array_unref);

  /* The sync form gives the same. */
  {
    const char *more[] = { b, b, NULL };

    gateways = execnet_group_make_gateways (group, more, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (gateways->len, ==, 2);
    g_assert_cmpuint (execnet_group_get_size (group), ==, 5);
    g_clear_pointer (&gateways, g_ptr_array_unref);
  }

  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_make_gateways_error (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *good = python_spec (NULL);
  const char *specs[] = { good, "popen//python=/nonexistent/python3", good, NULL };
  const char *malformed[] = { good, "popen//=x", NULL };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;

  execnet_group_make_gateways_async (group, specs, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_group_make_gateways_finish (group, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  g_clear_error (&error);
  g_clear_object (&done);
  /* The ones that started were stopped before it reported. */
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  test_assert_no_children (0.0);

  execnet_group_make_gateways_async (group, malformed, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_group_make_gateways_finish (group, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);

  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_make_gateways_cancelled (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *spec = python_spec (NULL);
  const char *specs[] = { spec, spec, spec, spec, NULL };
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) gateways = NULL;

  execnet_group_make_gateways_async (group, specs, cancellable, on_result, &result);
  g_timeout_add (10, test_cancel_soon, cancellable);
  done = wait_for (&result);
  gateways = execnet_group_make_gateways_finish (group, done, &error);
  if (gateways == NULL)
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
      test_assert_no_children (0.0);
    }

  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_terminate_async (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;

  test_make_gateway (group, NULL);
  test_make_gateway (group, NULL);
  execnet_group_terminate_async (group, 10.0, NULL, on_result, &result);
  assert_pending (result);
  done = wait_for (&result);
  g_assert_true (execnet_group_terminate_finish (group, done, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  test_assert_no_children (0.0);
  g_clear_object (&done);

  /* An empty group, and a bad timeout. */
  execnet_group_terminate_async (group, 1.0, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_true (execnet_group_terminate_finish (group, done, &error));
  g_clear_object (&done);

  execnet_group_terminate_async (group, NAN, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_false (execnet_group_terminate_finish (group, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

/* A remote that does not end when asked is killed after the timeout, and
 * the main loop went on meanwhile. */
static void
test_terminate_async_kills (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;

  if (test_skip_unless_our_agent ("ignores SIGTERM through our agent's signal module"))
    return;
  channel = test_remote_exec (gateway,
                              "import signal, time\n"
                              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                              "channel.send(1)\n"
                              "while True: time.sleep(1)\n");
  g_variant_unref (test_receive (channel));

  execnet_group_terminate_async (group, 0.3, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_true (execnet_group_terminate_finish (group, done, &error));
  g_assert_no_error (error);
  test_assert_no_children (0.0);
}

/* Cancelling a pending terminate still leaves nothing behind. */
static void
test_terminate_async_cancelled (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start;

  if (test_skip_unless_our_agent ("ignores SIGTERM through our agent's signal module"))
    return;
  channel = test_remote_exec (gateway,
                              "import signal, time\n"
                              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                              "channel.send(1)\n"
                              "while True: time.sleep(1)\n");
  g_variant_unref (test_receive (channel));

  start = g_get_monotonic_time ();
  execnet_group_terminate_async (group, 600.0, cancellable, on_result, &result);
  g_timeout_add (50, test_cancel_soon, cancellable);
  done = wait_for (&result);
  g_assert_false (execnet_group_terminate_finish (group, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* Well before the 600 s timeout. */
  g_assert_cmpint (g_get_monotonic_time () - start, <, (gint64) (TEST_TIMEOUT * G_USEC_PER_SEC));
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  test_assert_no_children (0.0);
}

static void
test_join_async (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetGateway) kept = g_object_ref (gateway);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;

  /* Still running: a short timeout passes, then a cancellation. */
  execnet_gateway_join_async (kept, 0.2, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_false (execnet_gateway_join_finish (kept, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_gateway_join_async (kept, -1, cancellable, on_result, &result);
  g_timeout_add (10, test_cancel_soon, cancellable);
  done = wait_for (&result);
  g_assert_false (execnet_gateway_join_finish (kept, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_gateway_exit (kept);
  execnet_gateway_join_async (kept, TEST_TIMEOUT, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_true (execnet_gateway_join_finish (kept, done, &error));
  g_assert_no_error (error);

  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_remote_status_and_info (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetGateway) kept = g_object_ref (gateway);
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) info = NULL;
  gint64 pid = 0;

  execnet_gateway_remote_status_async (kept, NULL, on_result, &result);
  assert_pending (result);
  done = wait_for (&result);
  status = execnet_gateway_remote_status_finish (kept, done, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (status, "numexecuting", "x", &pid));
  g_clear_object (&done);

  execnet_gateway_remote_info_async (kept, NULL, on_result, &result);
  done = wait_for (&result);
  info = execnet_gateway_remote_info_finish (kept, done, &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (info, "pid", "x", &pid));
  g_assert_cmpint (pid, ==, test_gateway_pid (kept));
  g_clear_object (&done);

  /* Cancelled before it starts. */
  g_cancellable_cancel (cancelled);
  execnet_gateway_remote_status_async (kept, cancelled, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_gateway_remote_status_finish (kept, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_gateway_remote_info_async (kept, cancelled, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_gateway_remote_info_finish (kept, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&done);

  /* A gateway that is gone. */
  test_terminate (group);
  execnet_gateway_remote_status_async (kept, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_gateway_remote_status_finish (kept, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_gateway_remote_info_async (kept, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_gateway_remote_info_finish (kept, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);

  test_assert_no_children (5.0);
}

static void
test_send_async (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GCancellable) cancelled = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) total = NULL;
  GAsyncResult *results[200] = { NULL };

  channel = test_remote_exec (gateway,
                              "n = 0\n"
                              "for item in channel:\n"
                              "    if item is None: break\n"
                              "    n += len(item)\n"
                              "channel.send(n)\n");

  /* Many big items in a row: they arrive in order and complete, some only
   * once the write queue had room again. */
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      char *big = g_malloc (1 << 20);

      memset (big, 'x', 1 << 20);
      execnet_channel_send_async (channel,
                                  g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, big,
                                                           1 << 20, TRUE, g_free, big),
                                  NULL, on_result, &results[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (results); i++)
    {
      g_autoptr(GAsyncResult) one = wait_for (&results[i]);

      g_assert_true (execnet_channel_send_finish (channel, one, &error));
      g_assert_no_error (error);
    }
  execnet_channel_send_async (channel, NULL, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_true (execnet_channel_send_finish (channel, done, &error));
  g_clear_object (&done);
  total = test_receive (channel);
  g_assert_cmpint (g_variant_get_int64 (total), ==, (gint64) G_N_ELEMENTS (results) << 20);

  /* Cancelled, and closed. */
  g_cancellable_cancel (cancelled);
  execnet_channel_send_async (channel, g_variant_new_int32 (1), cancelled, on_result, &result);
  done = wait_for (&result);
  g_assert_false (execnet_channel_send_finish (channel, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_channel_close (channel, NULL, NULL);
  execnet_channel_send_async (channel, g_variant_new_int32 (1), NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_false (execnet_channel_send_finish (channel, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_CHANNEL_CLOSED);

  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_wait_close_async (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetChannel) waits = test_remote_exec (gateway, "channel.receive()");
  g_autoptr(ExecnetChannel) raises = test_remote_exec (gateway, "raise KeyError('k')");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;

  execnet_channel_wait_close_async (waits, 0.2, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_false (execnet_channel_wait_close_finish (waits, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_channel_wait_close_async (waits, -1, cancellable, on_result, &result);
  g_timeout_add (10, test_cancel_soon, cancellable);
  done = wait_for (&result);
  g_assert_false (execnet_channel_wait_close_finish (waits, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_channel_wait_close_async (waits, TEST_TIMEOUT, NULL, on_result, &result);
  test_send (waits, NULL);
  done = wait_for (&result);
  g_assert_true (execnet_channel_wait_close_finish (waits, done, &error));
  g_assert_no_error (error);
  g_clear_object (&done);

  execnet_channel_wait_close_async (raises, TEST_TIMEOUT, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_false (execnet_channel_wait_close_finish (raises, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_REMOTE);
  g_assert_nonnull (strstr (error->message, "KeyError"));

  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_receive_each_async (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetMultiChannel) multi = NULL;
  g_autoptr(ExecnetMultiChannel) failing = NULL;
  g_autoptr(ExecnetMultiChannel) silent = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GAsyncResult) done = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) items = NULL;

  test_make_gateway (group, "id=x");
  test_make_gateway (group, "id=y");

  multi = execnet_group_remote_exec (group, "channel.send(channel.gateway.id)", &error);
  g_assert_no_error (error);
  execnet_multi_channel_receive_each_async (multi, TEST_TIMEOUT, NULL, on_result, &result);
  done = wait_for (&result);
  items = execnet_multi_channel_receive_each_finish (multi, done, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (items), ==, 2);
  {
    g_autoptr(GVariant) first = g_variant_get_child_value (items, 0);
    g_autoptr(GVariant) second = g_variant_get_child_value (items, 1);
    g_autoptr(GVariant) x = g_variant_get_variant (first);
    g_autoptr(GVariant) y = g_variant_get_variant (second);

    g_assert_cmpstr (g_variant_get_string (x, NULL), ==, "x-worker");
    g_assert_cmpstr (g_variant_get_string (y, NULL), ==, "y-worker");
  }
  g_clear_object (&done);

  failing = execnet_group_remote_exec (group, "raise ValueError('each')", &error);
  execnet_multi_channel_receive_each_async (failing, TEST_TIMEOUT, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_multi_channel_receive_each_finish (failing, done, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_REMOTE);
  g_clear_error (&error);
  g_clear_object (&done);

  silent = execnet_group_remote_exec (group, "channel.receive()", &error);
  execnet_multi_channel_receive_each_async (silent, 0.2, NULL, on_result, &result);
  done = wait_for (&result);
  g_assert_null (execnet_multi_channel_receive_each_finish (silent, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_clear_object (&done);

  execnet_multi_channel_receive_each_async (silent, -1, cancellable, on_result, &result);
  g_timeout_add (10, test_cancel_soon, cancellable);
  done = wait_for (&result);
  g_assert_null (execnet_multi_channel_receive_each_finish (silent, done, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);

  test_terminate (group);
  test_assert_no_children (5.0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  main_thread = g_thread_self ();

  g_test_add_func ("/async/group/make-gateway", test_make_gateway_async);
  g_test_add_func ("/async/group/make-gateway-for-xspec", test_make_gateway_for_xspec);
  g_test_add_func ("/async/group/make-gateway-cancelled", test_make_gateway_cancelled);
  g_test_add_func ("/async/group/make-gateways", test_make_gateways);
  g_test_add_func ("/async/group/make-gateways-error", test_make_gateways_error);
  g_test_add_func ("/async/group/make-gateways-cancelled", test_make_gateways_cancelled);
  g_test_add_func ("/async/group/terminate", test_terminate_async);
  g_test_add_func ("/async/group/terminate-kills", test_terminate_async_kills);
  g_test_add_func ("/async/group/terminate-cancelled", test_terminate_async_cancelled);
  g_test_add_func ("/async/gateway/join", test_join_async);
  g_test_add_func ("/async/gateway/remote-status-and-info", test_remote_status_and_info);
  g_test_add_func ("/async/channel/send", test_send_async);
  g_test_add_func ("/async/channel/wait-close", test_wait_close_async);
  g_test_add_func ("/async/multi-channel/receive-each", test_receive_each_async);

  return g_test_run ();
}
