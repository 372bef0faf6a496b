/* test-signals.c: signals arrive in the context their object was made in
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <execnet/execnet.h>

#include "test-helpers.h"

typedef struct
{
  GThread *thread;             /* where the signals must arrive */
  guint count;
  GError *reason;              /* (owned) (nullable) the last one's */
} Closed;

static void
on_closed (GObject      *object,
           const GError *reason,
           gpointer      user_data)
{
  Closed *closed = user_data;

  g_assert_true (g_thread_self () == closed->thread);
  closed->count++;
  g_clear_error (&closed->reason);
  if (reason != NULL)
    closed->reason = g_error_copy (reason);
}

static gboolean
closed_once (gpointer data)
{
  return ((Closed *) data)->count > 0;
}

/* Iterates the thread-default context a little more, so that a second
 * emission would have arrived. Bounded by a timeout source, not a sleep. */
static void
drain (GMainContext *context)
{
  gboolean done = FALSE;
  g_autoptr(GSource) later = g_timeout_source_new (100);

  g_source_set_callback (later, test_on_timeout, &done, NULL);
  g_source_attach (later, context);
  while (!done)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (later);
}

static void
test_gateway_closed_on_exit (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  Closed closed = { g_thread_self (), 0, NULL };
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetGateway) kept = g_object_ref (gateway);

  g_signal_connect (kept, "closed", G_CALLBACK (on_closed), &closed);
  test_terminate (group);

  /* Nothing was emitted inside terminate: only the main context emits. */
  g_assert_cmpuint (closed.count, ==, 0);
  test_iterate_until (NULL, closed_once, &closed, TEST_TIMEOUT);
  drain (NULL);
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_no_error (closed.reason);

  g_signal_handlers_disconnect_by_data (kept, &closed);
  test_assert_no_children (5.0);
}

static void
test_gateway_closed_on_death (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  Closed closed = { g_thread_self (), 0, NULL };
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  g_autoptr(ExecnetChannel) channel = NULL;

  g_signal_connect (gateway, "closed", G_CALLBACK (on_closed), &closed);
  channel = test_remote_exec (gateway, "import os; os._exit(3)");

  test_iterate_until (NULL, closed_once, &closed, TEST_TIMEOUT);
  drain (NULL);
  g_assert_cmpuint (closed.count, ==, 1);
  g_assert_error (closed.reason, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
  g_clear_error (&closed.reason);

  g_signal_handlers_disconnect_by_data (gateway, &closed);
  test_terminate (group);
  test_assert_no_children (5.0);
}

static void
test_channel_closed (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway = test_make_gateway (group, NULL);
  Closed clean = { g_thread_self (), 0, NULL };
  Closed failed = { g_thread_self (), 0, NULL };
  Closed local = { g_thread_self (), 0, NULL };
  g_autoptr(ExecnetChannel) one = NULL;
  g_autoptr(ExecnetChannel) two = NULL;
  g_autoptr(ExecnetChannel) three = NULL;

  one = test_remote_exec (gateway, "channel.receive()");
  g_signal_connect (one, "closed", G_CALLBACK (on_closed), &clean);
  two = test_remote_exec (gateway, "channel.receive()\nraise ValueError('no such thing')");
  g_signal_connect (two, "closed", G_CALLBACK (on_closed), &failed);
  three = test_remote_exec (gateway, "channel.receive()");
  g_signal_connect (three, "closed", G_CALLBACK (on_closed), &local);

  test_send (one, NULL);
  test_send (two, NULL);
  test_iterate_until (NULL, closed_once, &clean, TEST_TIMEOUT);
  test_iterate_until (NULL, closed_once, &failed, TEST_TIMEOUT);
  g_assert_no_error (clean.reason);
  g_assert_error (failed.reason, EXECNET_ERROR, EXECNET_ERROR_REMOTE);
  g_assert_nonnull (strstr (failed.reason->message, "no such thing"));
  g_clear_error (&failed.reason);

  /* Closed from this side: emitted later, from the context, not inside close(). */
  g_assert_true (execnet_channel_close (three, NULL, NULL));
  g_assert_cmpuint (local.count, ==, 0);
  test_iterate_until (NULL, closed_once, &local, TEST_TIMEOUT);
  g_assert_no_error (local.reason);

  drain (NULL);
  g_assert_cmpuint (clean.count, ==, 1);
  g_assert_cmpuint (failed.count, ==, 1);
  g_assert_cmpuint (local.count, ==, 1);

  g_signal_handlers_disconnect_by_data (one, &clean);
  g_signal_handlers_disconnect_by_data (two, &failed);
  g_signal_handlers_disconnect_by_data (three, &local);
  test_terminate (group);
  test_assert_no_children (5.0);
}

/* A channel opened from a thread with its own context emits there. */
typedef struct
{
  ExecnetGateway *gateway;
  Closed closed;
} ThreadChannel;

static gpointer
channel_in_thread (gpointer data)
{
  ThreadChannel *tc = data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(ExecnetChannel) channel = NULL;

  g_main_context_push_thread_default (context);
  tc->closed.thread = g_thread_self ();
  /* The remote ends only once told to: a channel that closed before the
   * handler was connected would emit nothing (no handler, no emission). */
  channel = test_remote_exec (tc->gateway, "channel.receive()");
  g_signal_connect (channel, "closed", G_CALLBACK (on_closed), &tc->closed);
  test_send (channel, NULL);
  test_iterate_until (context, closed_once, &tc->closed, TEST_TIMEOUT);
  g_signal_handlers_disconnect_by_data (channel, &tc->closed);
  g_main_context_pop_thread_default (context);

  return NULL;
}

static void
test_channel_closed_in_thread_context (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ThreadChannel tc = { test_make_gateway (group, NULL), { NULL, 0, NULL } };
  GThread *thread = g_thread_new ("channel", channel_in_thread, &tc);

  g_thread_join (thread);
  g_assert_cmpuint (tc.closed.count, ==, 1);
  g_assert_no_error (tc.closed.reason);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* items-changed and notify:: from a worker thread reach the group's own
 * context, and the list model agrees with each emission. */
typedef struct
{
  GThread *thread;
  GString *log;
  guint notified;
} ModelLog;

static void
on_items_changed (GListModel *model,
                  guint       position,
                  guint       removed,
                  guint       added,
                  gpointer    user_data)
{
  ModelLog *log = user_data;

  g_assert_true (g_thread_self () == log->thread);
  g_string_append_printf (log->log, "(%u,%u,%u:%u)", position, removed, added,
                          g_list_model_get_n_items (model));
}

static void
on_notify (GObject    *object,
           GParamSpec *pspec,
           gpointer    user_data)
{
  ModelLog *log = user_data;

  g_assert_true (g_thread_self () == log->thread);
  log->notified++;
}

static gpointer
make_in_thread (gpointer data)
{
  ExecnetGroup *group = data;
  ExecnetGateway *gateway = test_make_gateway (group, NULL);

  execnet_group_set_default_spec (group, "popen//python=/usr/bin/python3");
  execnet_gateway_exit (gateway);
  return gateway;
}

static gboolean
logged_three (gpointer data)
{
  ModelLog *log = data;

  return g_str_equal (log->log->str, "(0,0,1:1)(0,1,0:0)") && log->notified == 1;
}

static void
test_group_signals_from_thread (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ModelLog log = { g_thread_self (), g_string_new (NULL), 0 };
  GThread *thread;

  g_signal_connect (group, "items-changed", G_CALLBACK (on_items_changed), &log);
  g_signal_connect (group, "notify::default-spec", G_CALLBACK (on_notify), &log);

  thread = g_thread_new ("maker", make_in_thread, group);
  g_thread_join (thread);

  /* The thread added and removed a gateway; the model still shows the
   * state of the last emission: none yet. */
  g_assert_cmpstr (log.log->str, ==, "");
  g_assert_cmpuint (log.notified, ==, 0);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (group)), ==, 0);

  test_iterate_until (NULL, logged_three, &log, TEST_TIMEOUT);

  g_signal_handlers_disconnect_by_data (group, &log);
  g_string_free (log.log, TRUE);
  test_terminate (group);
  test_assert_no_children (5.0);
}

/* Without a handler, the list model follows the members at once. */
static gpointer
make_one_in_thread (gpointer data)
{
  return test_make_gateway (data, NULL);
}

static void
test_group_model_unobserved (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetGateway) item = NULL;
  GThread *thread = g_thread_new ("maker", make_one_in_thread, group);
  ExecnetGateway *gateway = g_thread_join (thread);

  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (group)), ==, 1);
  item = g_list_model_get_item (G_LIST_MODEL (group), 0);
  g_assert_true (item == gateway);

  test_terminate (group);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (group)), ==, 0);
  test_assert_no_children (5.0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/signals/gateway/closed-on-exit", test_gateway_closed_on_exit);
  g_test_add_func ("/signals/gateway/closed-on-death", test_gateway_closed_on_death);
  g_test_add_func ("/signals/channel/closed", test_channel_closed);
  g_test_add_func ("/signals/channel/closed-in-thread-context", test_channel_closed_in_thread_context);
  g_test_add_func ("/signals/group/from-thread", test_group_signals_from_thread);
  g_test_add_func ("/signals/group/unobserved", test_group_model_unobserved);

  return g_test_run ();
}
