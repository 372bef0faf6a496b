/* test-group.c: groups of gateways, after execnet's "Managing multiple
 * gateways and clusters" page, one test per example, and the ways a
 * group's work can go wrong
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <string.h>

#include <execnet/execnet.h>

#include "test-helpers.h"

/* Group(['popen'] * 2): len, repr, iteration, membership by id, lookup by
 * id and by index, terminate. */
static void
test_seed_two_popen (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *specs[] = { spec, spec, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autofree char *text = NULL;
  gint64 pids[2];

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);
  g_assert_nonnull (group);

  g_assert_cmpuint (execnet_group_get_size (group), ==, 2);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (group)), ==, 2);
  g_assert_true (g_list_model_get_item_type (G_LIST_MODEL (group)) == EXECNET_TYPE_GATEWAY);

  text = execnet_group_to_string (group);
  g_assert_cmpstr (text, ==, "<Group ['gw0', 'gw1']>");

  for (guint i = 0; i < g_list_model_get_n_items (G_LIST_MODEL (group)); i++)
    {
      g_autoptr(ExecnetGateway) gateway = g_list_model_get_item (G_LIST_MODEL (group), i);
      g_autofree char *expected = g_strdup_printf ("<PopenGateway id='gw%u' receive-live, "
                                                   "0 active channels>", i);
      g_autofree char *described = NULL;

      g_assert_nonnull (gateway);
      described = execnet_gateway_to_string (gateway);
      g_assert_cmpstr (described, ==, expected);
      g_assert_true (execnet_group_get_gateway (group, i) == gateway);
      g_assert_true (execnet_gateway_get_group (gateway) == group);
      pids[i] = test_gateway_pid (gateway);
    }
  g_assert_null (g_list_model_get_item (G_LIST_MODEL (group), 2));
  g_assert_null (execnet_group_get_gateway (group, 2));

  /* 'gw0' in group and 'gw1' in group */
  g_assert_nonnull (execnet_group_lookup (group, "gw0"));
  g_assert_nonnull (execnet_group_lookup (group, "gw1"));
  g_assert_null (execnet_group_lookup (group, "gw2"));
  g_assert_true (execnet_group_contains (group, execnet_group_lookup (group, "gw0")));
  g_assert_true (execnet_group_contains (group, execnet_group_lookup (group, "gw1")));

  /* group['gw0'] == group[0], group['gw1'] == group[1] */
  g_assert_true (execnet_group_lookup (group, "gw0") == execnet_group_get_gateway (group, 0));
  g_assert_true (execnet_group_lookup (group, "gw1") == execnet_group_get_gateway (group, 1));
  g_assert_true (execnet_group_lookup (group, "gw0") != execnet_group_lookup (group, "gw1"));

  test_terminate (group);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (group)), ==, 0);
  g_assert_null (execnet_group_lookup (group, "gw0"));
  test_assert_pid_gone (pids[0], 5.0);
  test_assert_pid_gone (pids[1], 5.0);
  test_assert_no_children (5.0);
}

/* group.makegateway("popen//id=sub1") */
static void
test_seed_id_sub1 (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *text = NULL;
  ExecnetGateway *gateway;

  gateway = test_make_gateway (group, "id=sub1");
  g_assert_cmpstr (execnet_gateway_get_id (gateway), ==, "sub1");
  g_assert_cmpstr (execnet_xspec_get_id (execnet_gateway_get_xspec (gateway)), ==, "sub1");
  g_assert_true (execnet_group_lookup (group, "sub1") == gateway);

  text = execnet_gateway_to_string (execnet_group_lookup (group, "sub1"));
  g_assert_cmpstr (text, ==, "<PopenGateway id='sub1' receive-live, 0 active channels>");
  g_clear_pointer (&text, g_free);
  text = execnet_group_to_string (group);
  g_assert_cmpstr (text, ==, "<Group ['sub1']>");

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* spec = XSpec("popen"); group.allocate_id(spec); group.makegateway(spec) */
static void
test_seed_allocate_id (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec_text = test_spec (NULL);
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(ExecnetXSpec) other = NULL;
  g_autofree char *allocated = NULL;
  ExecnetGateway *gateway;

  xspec = execnet_xspec_new (spec_text, &error);
  g_assert_no_error (error);
  g_assert_null (execnet_xspec_get_id (xspec));

  execnet_group_allocate_id (group, xspec);
  g_assert_nonnull (execnet_xspec_get_id (xspec));
  allocated = g_strdup (execnet_xspec_get_id (xspec));
  g_assert_cmpstr (allocated, ==, "gw0");

  /* An allocated id is taken: the next spec gets another one, and
   * allocating again for a spec with an id keeps it. */
  other = execnet_xspec_new (spec_text, &error);
  g_assert_no_error (error);
  execnet_group_allocate_id (group, other);
  g_assert_cmpstr (execnet_xspec_get_id (other), ==, "gw1");
  execnet_group_allocate_id (group, xspec);
  g_assert_cmpstr (execnet_xspec_get_id (xspec), ==, allocated);

  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  gateway = execnet_group_make_gateway_for_xspec (group, xspec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  g_assert_cmpstr (execnet_gateway_get_id (gateway), ==, allocated);
  g_assert_true (execnet_group_lookup (group, allocated) == gateway);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* execnet.makegateway() uses execnet.default_group, whose defaultspec is
 * "popen". This is the one test that runs the plain `popen` spec, hence
 * whatever `python3` is on PATH. */
static void
test_seed_default_group (void)
{
  g_autoptr(GError) error = NULL;
  ExecnetGroup *group = execnet_default_group ();
  g_autoptr(ExecnetGateway) gateway = NULL;
  g_autofree char *text = NULL;
  gint64 pid;

  g_assert_true (EXECNET_IS_GROUP (group));
  g_assert_true (execnet_default_group () == group);
  g_assert_cmpstr (execnet_group_get_default_spec (group), ==, "popen");

  gateway = execnet_make_gateway (NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  /* Owned by the group; kept here to check it leaves the group. */
  g_object_ref (gateway);
  g_assert_true (execnet_group_contains (group, gateway));
  g_assert_true (execnet_gateway_get_group (gateway) == group);
  g_assert_cmpstr (execnet_xspec_to_string (execnet_gateway_get_xspec (gateway)), ==, "popen");
  text = execnet_gateway_to_string (gateway);
  g_assert_true (g_str_has_prefix (text, "<PopenGateway id='gw"));
  pid = test_gateway_pid (gateway);

  test_terminate (group);
  g_assert_false (execnet_group_contains (group, gateway));
  test_assert_pid_gone (pid, 5.0);
  test_assert_no_children (5.0);
}

/* group.terminate(timeout=1.0) on a gateway running time.sleep(2.0)
 * returns before the sleep ends and leaves no process behind. */
static void
test_seed_terminate_timeout (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *text = NULL;
  ExecnetGateway *gateway;
  gint64 pid, start, elapsed;

  gateway = test_make_gateway (group, "id=sleeper");
  pid = test_gateway_pid (gateway);

  start = g_get_monotonic_time ();
  channel = test_remote_exec (gateway, "import time ; time.sleep(2.0)");
  text = execnet_group_to_string (group);
  g_assert_cmpstr (text, ==, "<Group ['sleeper']>");

  g_assert_true (execnet_group_terminate (group, 1.0, &error));
  g_assert_no_error (error);
  elapsed = g_get_monotonic_time () - start;
  g_test_message ("terminate returned %.3f s after remote_exec", elapsed / 1e6);
  g_assert_cmpint (elapsed, <, 1900 * 1000);

  g_clear_pointer (&text, g_free);
  text = execnet_group_to_string (group);
  g_assert_cmpstr (text, ==, "<Group []>");
  test_assert_pid_gone (pid, 5.0);
  test_assert_no_children (5.0);

  /* The channel of the interrupted code ended, one way or another. */
  g_assert_null (execnet_channel_receive (channel, TEST_TIMEOUT, &error));
  g_assert_nonnull (error);
  g_assert_false (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT));
}

/* A remote that ignores SIGINT and disables the agent's own exit must be
 * killed at the timeout, and reaped. */
static void
test_terminate_kills_stuck (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) ready = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  gint64 pid, start, elapsed;

  /* The first task runs in the remote main thread, where it may set
   * signal handlers. */
  gateway = test_make_gateway (group, NULL);
  channel = test_remote_exec (gateway,
                              "import os, signal, time\n"
                              "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                              "os._exit = lambda *args: None\n"
                              "channel.send(os.getpid())\n"
                              "while True:\n"
                              "    time.sleep(60)\n");
  ready = test_receive (channel);
  pid = g_variant_get_int64 (ready);
  g_assert_cmpint (pid, >, 1);

  start = g_get_monotonic_time ();
  g_assert_true (execnet_group_terminate (group, 0.5, &error));
  g_assert_no_error (error);
  elapsed = g_get_monotonic_time () - start;
  g_test_message ("terminate(0.5) of a stuck remote took %.3f s", elapsed / 1e6);
  /* 0.5 s, then the kill and the reaping, which are quick. */
  g_assert_cmpint (elapsed, <, 4 * G_USEC_PER_SEC);

  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  test_assert_pid_gone (pid, 5.0);
  test_assert_no_children (5.0);
}

/* Tasks blocked in the remote main thread and in another thread: the
 * remote side ends them (or itself) on its own, within the timeout. */
static void
test_terminate_busy_threads (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) in_main = NULL;
  g_autoptr(ExecnetChannel) in_thread = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  gint64 pid, start, elapsed;

  gateway = test_make_gateway (group, NULL);
  in_main = test_remote_exec (gateway,
                              "import os\n"
                              "channel.send(os.getpid())\n"
                              "channel.receive()\n");
  value = test_receive (in_main);
  pid = g_variant_get_int64 (value);
  g_clear_pointer (&value, g_variant_unref);
  in_thread = test_remote_exec (gateway,
                                "import time\n"
                                "channel.send('sleeping')\n"
                                "time.sleep(60)\n");
  value = test_receive (in_thread);

  start = g_get_monotonic_time ();
  g_assert_true (execnet_group_terminate (group, 5.0, &error));
  g_assert_no_error (error);
  elapsed = g_get_monotonic_time () - start;
  g_test_message ("terminate(5.0) with busy threads took %.3f s", elapsed / 1e6);
  g_assert_cmpint (elapsed, <, 7 * G_USEC_PER_SEC);
  test_assert_pid_gone (pid, 5.0);
  test_assert_no_children (5.0);
}

static void
test_terminate_empty (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();

  test_terminate (group);
  /* And again, on a group that had members. */
  test_make_gateway (group, NULL);
  test_terminate (group);
  test_terminate (group);
  test_assert_no_children (5.0);
}

/* A group dropped without terminate() still ends its gateways' processes. */
static void
test_dispose_without_terminate (void)
{
  ExecnetGroup *group = execnet_group_new ();
  ExecnetGateway *gateway;
  gint64 pid;

  gateway = test_make_gateway (group, NULL);
  pid = test_gateway_pid (gateway);
  g_object_unref (group);

  test_assert_pid_gone (pid, 10.0);
  test_assert_no_children (10.0);
}

static void
test_duplicate_id (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = test_spec ("id=twin");
  g_autofree char *gw0_spec = test_spec ("id=gw0");
  ExecnetGateway *first, *second;

  first = test_make_gateway (group, "id=twin");

  second = execnet_group_make_gateway (group, spec, &error);
  test_assert_error_contains (error, EXECNET_ERROR_DUPLICATE_ID, "twin");
  g_assert_null (second);
  g_clear_error (&error);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 1);
  g_assert_true (execnet_group_lookup (group, "twin") == first);

  /* An automatic id is taken as much as a chosen one. */
  g_assert_cmpstr (execnet_gateway_get_id (test_make_gateway (group, NULL)), ==, "gw0");
  second = execnet_group_make_gateway (group, gw0_spec, &error);
  test_assert_error_contains (error, EXECNET_ERROR_DUPLICATE_ID, "gw0");
  g_assert_null (second);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 2);

  test_terminate (group);

  /* Once terminated, the ids are free again. */
  g_assert_cmpstr (execnet_gateway_get_id (test_make_gateway (group, "id=twin")), ==, "twin");
  test_terminate (group);
  test_assert_no_children (5.0);
}

/* new_with_specs with two specs of one id: fails, and leaves no process. */
static void
test_duplicate_id_with_specs (void)
{
  g_autofree char *spec = test_spec ("id=same");
  const char *specs[] = { spec, spec, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;

  group = execnet_group_new_with_specs (specs, &error);
  test_assert_error_contains (error, EXECNET_ERROR_DUPLICATE_ID, "same");
  g_assert_null (group);
  test_assert_no_children (10.0);
}

static void
on_notify_count (GObject    *object,
                 GParamSpec *pspec,
                 gpointer    user_data)
{
  guint *count = user_data;

  g_assert_cmpstr (g_param_spec_get_name (pspec), ==, "default-spec");
  (*count)++;
}

static void
test_default_spec (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *spec = test_spec ("id=from-default");
  g_autofree char *value = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  guint notified = 0;

  g_assert_cmpstr (execnet_group_get_default_spec (group), ==, "popen");
  g_object_get (group, "default-spec", &value, NULL);
  g_assert_cmpstr (value, ==, "popen");
  g_clear_pointer (&value, g_free);

  g_signal_connect (group, "notify::default-spec", G_CALLBACK (on_notify_count), &notified);

  execnet_group_set_default_spec (group, spec);
  g_assert_cmpuint (notified, ==, 1);
  g_assert_cmpstr (execnet_group_get_default_spec (group), ==, spec);
  g_object_get (group, "default-spec", &value, NULL);
  g_assert_cmpstr (value, ==, spec);
  g_clear_pointer (&value, g_free);

  /* Setting the same value again is no change. */
  execnet_group_set_default_spec (group, spec);
  g_assert_cmpuint (notified, ==, 1);

  /* The group is a gateway factory for its default spec. */
  gateway = execnet_group_make_gateway (group, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  g_assert_cmpstr (execnet_gateway_get_id (gateway), ==, "from-default");
  g_assert_cmpstr (execnet_xspec_to_string (execnet_gateway_get_xspec (gateway)), ==, spec);
  test_terminate (group);

  /* Through the property, and back to the default with NULL. */
  g_object_set (group, "default-spec", "popen//id=x", NULL);
  g_assert_cmpuint (notified, ==, 2);
  g_assert_cmpstr (execnet_group_get_default_spec (group), ==, "popen//id=x");
  execnet_group_set_default_spec (group, NULL);
  g_assert_cmpuint (notified, ==, 3);
  g_assert_cmpstr (execnet_group_get_default_spec (group), ==, "popen");

  test_assert_no_children (5.0);
}

static gint
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/* The ids of @group's members, sorted, joined by spaces. */
static char *
member_ids (ExecnetGroup *group)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();

  for (guint i = 0; i < execnet_group_get_size (group); i++)
    g_ptr_array_add (ids, (gpointer) execnet_gateway_get_id (execnet_group_get_gateway (group, i)));
  g_ptr_array_sort (ids, compare_strings);
  g_ptr_array_add (ids, NULL);

  return g_strjoinv (" ", (char **) ids->pdata);
}

/* Every member of @group answers a round trip on its own channel. */
static void
assert_round_trips (ExecnetGroup *group)
{
  guint n = execnet_group_get_size (group);
  g_autoptr(GPtrArray) channels = g_ptr_array_new_with_free_func (g_object_unref);

  for (guint i = 0; i < n; i++)
    {
      ExecnetChannel *channel = test_remote_exec (execnet_group_get_gateway (group, i),
                                                  "import os\n"
                                                  "x = channel.receive()\n"
                                                  "channel.send((channel.gateway.id, x * 2, os.getpid()))\n");

      g_ptr_array_add (channels, channel);
      test_send (channel, g_variant_new_int32 ((gint32) i));
    }

  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GVariant) reply = test_receive (g_ptr_array_index (channels, i));
      const char *id;
      gint64 doubled, pid;

      g_assert_cmpstr (g_variant_get_type_string (reply), ==, "(sxx)");
      g_variant_get (reply, "(&sxx)", &id, &doubled, &pid);
      test_assert_remote_id (id, execnet_group_get_gateway (group, i));
      g_assert_cmpint (doubled, ==, 2 * i);
      g_assert_cmpint (pid, !=, getpid ());
      test_wait_close (g_ptr_array_index (channels, i));
    }
}

static void
test_ten_at_once (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *specs[11];
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autofree char *ids = NULL;

  for (guint i = 0; i < 10; i++)
    specs[i] = spec;
  specs[10] = NULL;

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);
  g_assert_nonnull (group);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 10);

  ids = member_ids (group);
  g_assert_cmpstr (ids, ==, "gw0 gw1 gw2 gw3 gw4 gw5 gw6 gw7 gw8 gw9");
  assert_round_trips (group);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* The members are listed in the order of the specs, as execnet's
 * Group(specs) makes them one after the other. */
static void
test_with_specs_order (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autofree char *named = test_spec ("id=named");
  const char *specs[] = { spec, named, spec, spec, spec, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autofree char *text = NULL;

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);
  text = execnet_group_to_string (group);
  g_assert_cmpstr (text, ==, "<Group ['gw0', 'named', 'gw1', 'gw2', 'gw3']>");

  test_terminate (group);
  test_assert_no_children (5.0);
}

#define N_MAKER_THREADS 4
#define N_PER_THREAD 2

typedef struct
{
  ExecnetGroup *group;
  ExecnetGateway *made[N_PER_THREAD];
} MakerData;

static gpointer
make_in_thread (gpointer data)
{
  MakerData *maker = data;

  for (guint i = 0; i < N_PER_THREAD; i++)
    maker->made[i] = test_make_gateway (maker->group, NULL);

  return NULL;
}

static void
test_make_from_threads (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  MakerData makers[N_MAKER_THREADS];
  GThread *threads[N_MAKER_THREADS];
  g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint t = 0; t < N_MAKER_THREADS; t++)
    {
      makers[t].group = group;
      threads[t] = g_thread_new ("maker", make_in_thread, &makers[t]);
    }
  for (guint t = 0; t < N_MAKER_THREADS; t++)
    g_thread_join (threads[t]);

  g_assert_cmpuint (execnet_group_get_size (group), ==, N_MAKER_THREADS * N_PER_THREAD);
  for (guint t = 0; t < N_MAKER_THREADS; t++)
    for (guint i = 0; i < N_PER_THREAD; i++)
      {
        ExecnetGateway *gateway = makers[t].made[i];
        const char *id = execnet_gateway_get_id (gateway);

        g_assert_true (execnet_group_contains (group, gateway));
        g_assert_true (execnet_group_lookup (group, id) == gateway);
        g_assert_false (g_hash_table_contains (ids, id));
        g_hash_table_add (ids, (gpointer) id);
      }
  for (guint i = 0; i < N_MAKER_THREADS * N_PER_THREAD; i++)
    {
      g_autofree char *id = g_strdup_printf ("gw%u", i);

      g_assert_true (g_hash_table_contains (ids, id));
    }

  assert_round_trips (group);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* Make a gateway from @spec in a new group and check the error. */
static void
assert_make_fails (const char  *spec,
                   ExecnetError code,
                   const char  *needle)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  gateway = execnet_group_make_gateway (group, spec, &error);
  g_test_message ("%s: %s", spec, error != NULL ? error->message : "(no error)");
  test_assert_error_contains (error, code, needle);
  g_assert_null (gateway);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
}

static void
test_bad_spec_duplicate_key (void)
{
  assert_make_fails ("popen//id=a//id=b", EXECNET_ERROR_INVALID_SPEC, "id");
}

static void
test_bad_spec_malformed (void)
{
  assert_make_fails ("popen//=x", EXECNET_ERROR_INVALID_SPEC, NULL);
  assert_make_fails ("popen//_secret=1", EXECNET_ERROR_INVALID_SPEC, "_secret");
  assert_make_fails ("popen//", EXECNET_ERROR_INVALID_SPEC, NULL);
}

static void
test_bad_spec_no_transport (void)
{
  /* A spec whose keys name no transport cannot make a gateway: the error
   * lists the transports there are. */
  assert_make_fails ("python=x", EXECNET_ERROR_UNKNOWN_TRANSPORT, "popen");
}

static void
test_unknown_scheme (void)
{
  assert_make_fails ("foo=bar", EXECNET_ERROR_UNKNOWN_TRANSPORT, "popen");
  assert_make_fails ("foo=bar", EXECNET_ERROR_UNKNOWN_TRANSPORT, "foo");
}

/* N*SPEC, as pytest-xdist's --tx 4*popen: N gateways, ids in order. */
static void
test_spec_count (void)
{
  g_autofree char *spec = test_spec (NULL);
  g_autofree char *three = g_strdup_printf ("3*%s", spec);
  g_autofree char *named = g_strdup_printf ("%s//id=last", spec);
  const char *specs[] = { three, named, NULL };
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(GError) error = NULL;
  const char *expected[] = { "gw0", "gw1", "gw2", "last" };
  gint64 pids[G_N_ELEMENTS (expected)];

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (execnet_group_get_size (group), ==, G_N_ELEMENTS (expected));
  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      ExecnetGateway *gateway = execnet_group_get_gateway (group, i);

      g_assert_cmpstr (execnet_gateway_get_id (gateway), ==, expected[i]);
      pids[i] = test_gateway_pid (gateway);
      for (guint j = 0; j < i; j++)
        g_assert_cmpint (pids[j], !=, pids[i]);
    }
  test_terminate (group);
}

static void
test_spec_count_errors (void)
{
  const char *bad[] = { "0*popen", "1025*popen", "2*popen//id=same", "2*", NULL };

  for (guint i = 0; bad[i] != NULL; i++)
    {
      const char *specs[] = { bad[i], NULL };
      g_autoptr(GError) error = NULL;

      g_assert_null (execnet_group_new_with_specs (specs, &error));
      g_test_message ("%s: %s", bad[i], error->message);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
    }
  test_assert_no_children (5.0);
}

/* Without a spec, or with an empty one, the group's default spec. */
static void
test_spec_default (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *spec = test_spec (NULL);
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  execnet_group_set_default_spec (group, spec);
  gateway = execnet_group_make_gateway (group, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (execnet_xspec_to_string (execnet_gateway_get_xspec (gateway)), ==, spec);
  gateway = execnet_group_make_gateway (group, "", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (execnet_xspec_to_string (execnet_gateway_get_xspec (gateway)), ==, spec);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 2);
  test_terminate (group);
}

static void
test_missing_python (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  gint64 start = g_get_monotonic_time ();

  gateway = execnet_group_make_gateway (group, "popen//id=nopy//python=/nonexistent/python3", &error);
  g_test_message ("%s", error != NULL ? error->message : "(no error)");
  test_assert_error_contains (error, EXECNET_ERROR_BOOTSTRAP, "/nonexistent/python3");
  g_assert_null (gateway);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 10 * G_USEC_PER_SEC);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);

  /* The failed gateway's id is free again. */
  g_assert_cmpstr (execnet_gateway_get_id (test_make_gateway (group, "id=nopy")), ==, "nopy");
  test_terminate (group);
  test_assert_no_children (5.0);
}

/* An interpreter that starts but is not Python: it never acknowledges. */
static void
test_not_python (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  gateway = execnet_group_make_gateway (group, "popen//python=true", &error);
  g_test_message ("%s", error != NULL ? error->message : "(no error)");
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  g_assert_null (gateway);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  test_assert_no_children (5.0);
}

static void
test_remote_exec_multichannel (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *specs[] = { spec, spec, spec, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetMultiChannel) multi = NULL;
  g_autoptr(GVariant) ids = NULL;
  g_autoptr(GVariant) doubled = NULL;

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);

  multi = execnet_group_remote_exec (group,
                                     "channel.send(channel.gateway.id)\n"
                                     "channel.send(channel.receive() * 2)\n",
                                     &error);
  g_assert_no_error (error);
  g_assert_nonnull (multi);
  g_assert_cmpuint (execnet_multi_channel_get_size (multi), ==, 3);
  g_assert_null (execnet_multi_channel_get_channel (multi, 3));

  ids = execnet_multi_channel_receive_each (multi, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  g_assert_nonnull (ids);
  g_assert_cmpstr (g_variant_get_type_string (ids), ==, "av");
  g_assert_cmpuint (g_variant_n_children (ids), ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (ids, i);
      g_autoptr(GVariant) id = g_variant_get_variant (boxed);
      ExecnetChannel *channel = execnet_multi_channel_get_channel (multi, i);

      g_assert_true (execnet_channel_get_gateway (channel) == execnet_group_get_gateway (group, i));
      g_assert_cmpstr (g_variant_get_type_string (id), ==, "s");
      test_assert_remote_id (g_variant_get_string (id, NULL), execnet_group_get_gateway (group, i));
    }

  g_assert_true (execnet_multi_channel_send_each (multi, g_variant_new_int32 (21), &error));
  g_assert_no_error (error);
  doubled = execnet_multi_channel_receive_each (multi, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (doubled), ==, 3);
  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (doubled, i);
      g_autoptr(GVariant) value = g_variant_get_variant (boxed);

      g_assert_cmpint (g_variant_get_int64 (value), ==, 42);
    }

  g_assert_true (execnet_multi_channel_wait_close (multi, TEST_TIMEOUT, &error));
  g_assert_no_error (error);

  /* Receiving more: every channel has ended. */
  g_assert_null (execnet_multi_channel_receive_each (multi, TEST_TIMEOUT, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_CHANNEL_CLOSED);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* A receive queue delivers every channel's items in arrival order, each
 * with its channel, and the endmarker once per channel after its last
 * item, also for a channel that ended with an error. */
static void
test_receive_queue (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *specs[] = { spec, spec, spec, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetMultiChannel) multi = NULL;
  g_autoptr(ExecnetReceiveQueue) queue = NULL;
  g_autoptr(GHashTable) next = g_hash_table_new (NULL, NULL);
  guint ended = 0, failed_end = 0;

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);

  multi = execnet_group_remote_exec (group,
                                     "n = channel.receive()\n"
                                     "for i in range(5):\n"
                                     "    channel.send((channel.gateway.id, i))\n"
                                     "if n == 2:\n"
                                     "    raise ValueError('the last one fails')\n",
                                     &error);
  g_assert_no_error (error);
  queue = execnet_multi_channel_make_receive_queue (multi, g_variant_new_string ("end"));
  for (guint i = 0; i < 3; i++)
    test_send (execnet_multi_channel_get_channel (multi, i), g_variant_new_int32 (i));

  while (ended < 3)
    {
      g_autoptr(ExecnetChannel) from = NULL;
      g_autoptr(GVariant) item = execnet_receive_queue_pop (queue, TEST_TIMEOUT, &from, &error);
      ExecnetGateway *gateway;
      const char *remote_id;
      gint64 index;

      g_assert_no_error (error);
      g_assert_nonnull (item);
      g_assert_true (EXECNET_IS_CHANNEL (from));
      gateway = execnet_channel_get_gateway (from);

      if (g_variant_is_of_type (item, G_VARIANT_TYPE_STRING))
        {
          g_assert_cmpstr (g_variant_get_string (item, NULL), ==, "end");
          /* After all five items of that channel, once. */
          g_assert_cmpint (GPOINTER_TO_INT (g_hash_table_lookup (next, from)), ==, 5);
          g_hash_table_insert (next, from, GINT_TO_POINTER (6));
          if (gateway == execnet_group_get_gateway (group, 2))
            failed_end++;
          ended++;
          continue;
        }

      g_variant_get (item, "(&sx)", &remote_id, &index);
      test_assert_remote_id (remote_id, gateway);
      g_assert_cmpint (index, ==, GPOINTER_TO_INT (g_hash_table_lookup (next, from)));
      g_hash_table_insert (next, from, GINT_TO_POINTER (index + 1));
    }
  g_assert_cmpuint (failed_end, ==, 1);
  g_assert_cmpuint (g_hash_table_size (next), ==, 3);

  /* Nothing more: a pop times out, promptly. */
  g_assert_null (execnet_receive_queue_pop (queue, 0.2, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);
  g_assert_null (execnet_receive_queue_pop (queue, NAN, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);

  test_terminate (group);
  test_assert_no_children (5.0);
}

typedef struct {
  ExecnetReceiveQueue *queue;
  gint *popped;           /* all poppers' items together */
  guint n_items;          /* this popper's */
} Popper;

#define N_QUEUED 600

/* A thread without a main loop: pops until all items are out, retrying
 * after short timeouts while other poppers take their share. */
static gpointer
pop_all (gpointer data)
{
  Popper *popper = data;

  while (g_atomic_int_get (popper->popped) < N_QUEUED)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) item = execnet_receive_queue_pop (popper->queue, 0.1, NULL, &error);

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
        continue;
      g_assert_no_error (error);
      g_assert_true (g_variant_is_of_type (item, G_VARIANT_TYPE_INT64));
      g_atomic_int_inc (popper->popped);
      popper->n_items++;
    }
  return NULL;
}

/* Several threads pop one queue, without a main loop: every item reaches
 * exactly one of them. Without an endmarker, an ended channel just stops. */
static void
test_receive_queue_threads (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *specs[] = { spec, spec, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetMultiChannel) multi = NULL;
  g_autoptr(ExecnetMultiChannel) quiet = NULL;
  g_autoptr(ExecnetReceiveQueue) queue = NULL;
  g_autoptr(ExecnetReceiveQueue) quiet_queue = NULL;
  Popper poppers[3] = { { NULL, NULL, 0 } };
  GThread *threads[3];
  guint total = 0;
  gint popped = 0;

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);

  multi = execnet_group_remote_exec (group,
                                     "for i in range(300):\n"
                                     "    channel.send(i)\n",
                                     &error);
  g_assert_no_error (error);
  queue = execnet_multi_channel_make_receive_queue (multi, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      poppers[i].queue = queue;
      poppers[i].popped = &popped;
      threads[i] = g_thread_new ("popper", pop_all, &poppers[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    {
      g_thread_join (threads[i]);
      total += poppers[i].n_items;
    }
  g_assert_cmpuint (total, ==, N_QUEUED);
  g_assert_true (execnet_multi_channel_wait_close (multi, TEST_TIMEOUT, &error));
  g_assert_no_error (error);
  g_assert_null (execnet_receive_queue_pop (queue, 0.2, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_clear_error (&error);

  /* A channel that ends without items, no endmarker: nothing at all. */
  quiet = execnet_group_remote_exec (group, "pass\n", &error);
  g_assert_no_error (error);
  quiet_queue = execnet_multi_channel_make_receive_queue (quiet, NULL);
  g_assert_true (execnet_multi_channel_wait_close (quiet, TEST_TIMEOUT, &error));
  g_assert_null (execnet_receive_queue_pop (quiet_queue, 0.2, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* Asserts that @gateway's interpreter is a child of @parent's. */
static void
assert_started_by (ExecnetGateway *gateway,
                   ExecnetGateway *parent)
{
  g_autoptr(ExecnetChannel) channel = test_remote_exec (gateway, "import os\nchannel.send(os.getppid())\n");
  g_autoptr(GVariant) ppid = test_receive (channel);

  g_assert_cmpint (g_variant_get_int64 (ppid), ==, test_gateway_pid (parent));
}

/* via=ID: the interpreter is started by gateway ID's agent and its frames
 * are relayed through ID's connection, at any depth; 4 MiB cross two
 * relays intact; terminate ends the proxied gateways before their relays,
 * and leaves nothing. */
static void
test_via (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GBytes) payload = NULL;
  g_autoptr(GByteArray) data = g_byte_array_new ();
  ExecnetGateway *relay, *first, *second;
  gint64 pids[3];

  relay = test_make_gateway (group, "id=relay");
  first = test_make_gateway (group, "id=first//via=relay");
  second = test_make_gateway (group, "id=second//via=first");
  g_assert_cmpuint (execnet_group_get_size (group), ==, 3);
  assert_started_by (first, relay);
  assert_started_by (second, first);
  pids[0] = test_gateway_pid (relay);
  pids[1] = test_gateway_pid (first);
  pids[2] = test_gateway_pid (second);

  /* 4 MiB of every byte value, there and back through both relays. */
  for (guint i = 0; i < 4 * 1024 * 1024; i++)
    {
      guint8 byte = (guint8) ((i * 7 + i / 4096) & 0xff);

      g_byte_array_append (data, &byte, 1);
    }
  payload = g_byte_array_free_to_bytes (g_steal_pointer (&data));
  channel = test_remote_exec (second, "channel.send(channel.receive())\n");
  test_send (channel, g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, payload, TRUE));
  value = test_receive (channel);
  g_assert_cmpuint (g_variant_get_size (value), ==, g_bytes_get_size (payload));
  g_assert_cmpmem (g_variant_get_data (value), g_variant_get_size (value),
                   g_bytes_get_data (payload, NULL), g_bytes_get_size (payload));
  test_wait_close (channel);

  test_terminate (group);
  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    test_assert_pid_gone (pids[i], 5.0);
  test_assert_no_children (5.0);
}

static void
on_terminated (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (execnet_group_terminate_finish (EXECNET_GROUP (source), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

/* Terminating the group (sync or async, as @data says) ends the proxied
 * gateways before the gateways they go through, at two levels of via=:
 * at its exit each interpreter appends to one file its id and whether the
 * interpreter it relays is still there. The deepest one takes its time
 * to end, about 1.2 s, within what our agent allows a leaving task (1 s)
 * and its atexit handlers (1 s) each: a relay told to exit beside it gives
 * it only 1 s in all before it kills it, and its line would be missing.
 * Nothing of any depth is left. */
static void
test_via_terminate (gconstpointer data)
{
  gboolean use_async = GPOINTER_TO_INT (data);
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *report = NULL;
  g_autofree char *report_path = NULL;
  g_autoptr(ExecnetChannel) busy = NULL;
  ExecnetGateway *gateways[3];
  gint64 pids[3];

  gateways[0] = test_make_gateway (group, "id=relay");
  gateways[1] = test_make_gateway (group, "id=first//via=relay");
  gateways[2] = test_make_gateway (group, "id=second//via=first");
  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    pids[i] = test_gateway_pid (gateways[i]);

  dir = g_dir_make_tmp ("execnet-via-XXXXXX", &error);
  g_assert_no_error (error);
  report_path = g_build_filename (dir, "report", NULL);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    {
      g_autoptr(ExecnetChannel) watch = NULL;
      g_autofree char *source = NULL;

      source = g_strdup_printf ("import atexit, os, time\n"
                                "def note(me=%s%s%s, proxied=%" G_GINT64_FORMAT ", path=%s%s%s):\n"
                                "    if me == 'second':\n"
                                "        time.sleep(0.6)\n"
                                "    alive = proxied and os.path.exists('/proc/%%d' %% proxied)\n"
                                "    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)\n"
                                "    os.write(fd, ('%%s %%s\\n' %% (me, 'alive' if alive else 'gone')).encode())\n"
                                "    os.close(fd)\n"
                                "atexit.register(note)\n",
                                "'", execnet_gateway_get_id (gateways[i]), "'",
                                i + 1 < G_N_ELEMENTS (pids) ? pids[i + 1] : 0,
                                "'", report_path, "'");
      watch = test_remote_exec (gateways[i], source);
      test_wait_close (watch);
    }
  /* A task of the deepest one that cleans up for a while when its
   * gateway ends. */
  busy = test_remote_exec (gateways[2],
                           "import time\n"
                           "channel.send(1)\n"
                           "try:\n"
                           "    channel.receive()\n"
                           "finally:\n"
                           "    time.sleep(0.6)\n");
  g_variant_unref (test_receive (busy));

  if (use_async)
    {
      gboolean done = FALSE;

      execnet_group_terminate_async (group, TEST_TIMEOUT, NULL, on_terminated, &done);
      while (!done)
        g_main_context_iteration (NULL, TRUE);
    }
  else
    test_terminate (group);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    test_assert_pid_gone (pids[i], 5.0);
  test_assert_no_children (5.0);

  if (test_agent () == NULL)
    {
      /* execnet's worker leaves by os._exit (no atexit handlers). */
      g_file_get_contents (report_path, &report, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (report, ==, "second gone\nfirst gone\nrelay gone\n");
      g_assert_no_errno (g_unlink (report_path));
    }
  else
    g_unlink (report_path);
  g_assert_no_errno (g_rmdir (dir));
}

/* via= names a gateway of the same group, or it is an error that says so;
 * nothing is started and nothing is left. */
static void
test_via_unknown (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetGroup) other = execnet_group_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = test_spec ("via=elsewhere");
  g_autofree char *unknown = test_spec ("via=gw9");

  test_make_gateway (other, "id=elsewhere");
  test_make_gateway (group, NULL);

  g_assert_null (execnet_group_make_gateway (group, unknown, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_assert_nonnull (strstr (error->message, "via=gw9"));
  g_clear_error (&error);

  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_assert_nonnull (strstr (error->message, "same group"));
  g_clear_error (&error);

  g_assert_cmpuint (execnet_group_get_size (group), ==, 1);
  test_terminate (group);
  test_terminate (other);
  test_assert_no_children (5.0);
}

/* One member raising: wait_close waits for all and reports the error. */
static void
test_remote_exec_multichannel_error (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *specs[] = { spec, spec, NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetMultiChannel) multi = NULL;

  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);

  multi = execnet_group_remote_exec (group,
                                     "if channel.gateway.id == 'gw1-worker':\n"
                                     "    raise KeyError('only on gw1')\n",
                                     &error);
  g_assert_no_error (error);
  g_assert_false (execnet_multi_channel_wait_close (multi, TEST_TIMEOUT, &error));
  test_assert_error_contains (error, EXECNET_ERROR_REMOTE, "only on gw1");

  test_terminate (group);
  test_assert_no_children (5.0);
}

typedef struct
{
  GThread *thread;
  GString *log;
} ChangesData;

static void
on_items_changed (GListModel *model,
                  guint       position,
                  guint       removed,
                  guint       added,
                  gpointer    user_data)
{
  ChangesData *changes = user_data;

  g_assert_true (g_thread_self () == changes->thread);
  g_string_append_printf (changes->log, "(%u,%u,%u)", position, removed, added);
}

static void
test_items_changed (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ChangesData changes = { g_thread_self (), g_string_new (NULL) };
  ExecnetGateway *first, *second;

  g_signal_connect (group, "items-changed", G_CALLBACK (on_items_changed), &changes);

  first = test_make_gateway (group, NULL);
  g_assert_cmpstr (changes.log->str, ==, "(0,0,1)");
  second = test_make_gateway (group, NULL);
  g_assert_cmpstr (changes.log->str, ==, "(0,0,1)(1,0,1)");
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (group)), ==, 2);

  /* A gateway that exits leaves its group. */
  execnet_gateway_exit (first);
  g_assert_cmpstr (changes.log->str, ==, "(0,0,1)(1,0,1)(0,1,0)");
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (group)), ==, 1);
  g_assert_false (execnet_group_contains (group, first));
  g_assert_true (execnet_group_get_gateway (group, 0) == second);
  g_assert_null (execnet_gateway_get_group (first));

  test_terminate (group);
  g_assert_cmpstr (changes.log->str, ==, "(0,0,1)(1,0,1)(0,1,0)(0,1,0)");

  g_signal_handlers_disconnect_by_data (group, &changes);
  g_string_free (changes.log, TRUE);
  test_assert_no_children (5.0);
}

typedef struct
{
  GThread *thread;
  ExecnetGateway *gateway;
  GError *error;
  gboolean done;
} AsyncData;

static void
on_made (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  AsyncData *data = user_data;

  g_assert_true (g_thread_self () == data->thread);
  data->gateway = execnet_group_make_gateway_for_xspec_finish (EXECNET_GROUP (source), result, &data->error);
  data->done = TRUE;
}

static gboolean
async_done (gpointer data)
{
  return ((AsyncData *) data)->done;
}

static void
test_make_gateway_async (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autofree char *spec = test_spec ("id=async");
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(ExecnetXSpec) bad = NULL;
  g_autoptr(GError) error = NULL;
  AsyncData data = { g_thread_self (), NULL, NULL, FALSE };

  xspec = execnet_xspec_new (spec, &error);
  g_assert_no_error (error);

  g_main_context_push_thread_default (context);
  execnet_group_make_gateway_for_xspec_async (group, xspec, NULL, on_made, &data);
  g_assert_false (data.done);
  test_iterate_until (context, async_done, &data, TEST_TIMEOUT);
  g_assert_no_error (data.error);
  g_assert_nonnull (data.gateway);
  g_assert_cmpstr (execnet_gateway_get_id (data.gateway), ==, "async");
  g_assert_true (execnet_group_contains (group, data.gateway));
  data.gateway = NULL;

  /* A failure completes the same way. */
  bad = execnet_xspec_new ("popen//python=/nonexistent/python3", &error);
  g_assert_no_error (error);
  data.done = FALSE;
  execnet_group_make_gateway_for_xspec_async (group, bad, NULL, on_made, &data);
  test_iterate_until (context, async_done, &data, TEST_TIMEOUT);
  g_assert_error (data.error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  g_assert_null (data.gateway);
  g_clear_error (&data.error);
  g_main_context_pop_thread_default (context);

  test_terminate (group);
  test_assert_no_children (5.0);
}

/* Gateways started together are listed in the order of their specs, not
 * in the order they became ready: the first spec's interpreter is held
 * back (its python= waits on a FIFO) until the second has joined. */
typedef struct
{
  ExecnetGroup *group;
  GPtrArray *made;
  GError *error;
  gboolean done;
} ManyData;

static void
on_many_made (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  ManyData *data = user_data;

  data->made = execnet_group_make_gateways_finish (EXECNET_GROUP (source), result, &data->error);
  data->done = TRUE;
}

static gboolean
many_done (gpointer data)
{
  return ((ManyData *) data)->done;
}

static gboolean
has_one_member (gpointer data)
{
  return g_list_model_get_n_items (G_LIST_MODEL (((ManyData *) data)->group)) == 1 ||
         ((ManyData *) data)->done;
}

static gpointer
release_fifo (gpointer data)
{
  /* Blocks until the held-back interpreter's wrapper opens the FIFO. */
  int fd = open (data, O_WRONLY | O_CLOEXEC);

  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (write (fd, "go\n", 3), ==, 3);
  close (fd);
  return NULL;
}

static void
test_make_gateways_order (void)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("execnet-order-XXXXXX", &error);
  g_autofree char *fifo = g_build_filename (dir, "go", NULL);
  g_autofree char *wrapper = g_build_filename (dir, "held-python", NULL);
  g_autofree char *script = NULL;
  g_autofree char *slow = NULL;
  g_autofree char *fast = test_spec (NULL);
  const char *specs[3];
  ChangesData changes = { g_thread_self (), g_string_new (NULL) };
  ManyData data = { NULL, NULL, NULL, FALSE };
  g_autofree char *text = NULL;
  GThread *releaser;

  g_assert_no_error (error);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  script = g_strdup_printf ("#!/bin/sh\nread line < '%s'\nexec '%s' \"$@\"\n", fifo, test_python ());
  g_file_set_contents (wrapper, script, -1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (wrapper, 0700), ==, 0);
  slow = g_strdup_printf ("popen//python=%s%s%s", wrapper,
                          test_agent () != NULL ? "//agent=" : "",
                          test_agent () != NULL ? test_agent () : "");
  specs[0] = slow;
  specs[1] = fast;
  specs[2] = NULL;

  g_main_context_push_thread_default (context);
  data.group = execnet_group_new ();
  g_signal_connect (data.group, "items-changed", G_CALLBACK (on_items_changed), &changes);
  execnet_group_make_gateways_async (data.group, specs, NULL, on_many_made, &data);

  /* The second joins first, at position 0... */
  test_iterate_until (context, has_one_member, &data, TEST_TIMEOUT);
  g_assert_false (data.done);
  g_assert_cmpstr (execnet_gateway_get_id (execnet_group_get_gateway (data.group, 0)), ==, "gw1");
  g_assert_cmpstr (changes.log->str, ==, "(0,0,1)");

  /* ...and the first, once it may start, joins before it. */
  releaser = g_thread_new ("release-fifo", release_fifo, fifo);
  test_iterate_until (context, many_done, &data, TEST_TIMEOUT);
  g_thread_join (releaser);
  g_assert_no_error (data.error);
  g_assert_cmpuint (data.made->len, ==, 2);
  g_assert_cmpstr (execnet_gateway_get_id (g_ptr_array_index (data.made, 0)), ==, "gw0");
  g_assert_cmpstr (execnet_gateway_get_id (g_ptr_array_index (data.made, 1)), ==, "gw1");
  g_assert_cmpstr (changes.log->str, ==, "(0,0,1)(0,0,1)");
  g_assert_true (execnet_group_get_gateway (data.group, 0) == g_ptr_array_index (data.made, 0));
  g_assert_true (g_list_model_get_item (G_LIST_MODEL (data.group), 0) == g_ptr_array_index (data.made, 0));
  g_object_unref (g_ptr_array_index (data.made, 0));
  text = execnet_group_to_string (data.group);
  g_assert_cmpstr (text, ==, "<Group ['gw0', 'gw1']>");
  g_main_context_pop_thread_default (context);

  g_signal_handlers_disconnect_by_data (data.group, &changes);
  g_string_free (changes.log, TRUE);
  g_ptr_array_unref (data.made);
  test_terminate (data.group);
  g_object_unref (data.group);
  g_unlink (wrapper);
  g_unlink (fifo);
  g_rmdir (dir);
  test_assert_no_children (5.0);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/group/seed/two-popen", test_seed_two_popen);
  g_test_add_func ("/group/seed/id-sub1", test_seed_id_sub1);
  g_test_add_func ("/group/seed/allocate-id", test_seed_allocate_id);
  g_test_add_func ("/group/seed/default-group", test_seed_default_group);
  g_test_add_func ("/group/seed/terminate-timeout", test_seed_terminate_timeout);
  g_test_add_func ("/group/terminate/kills-stuck", test_terminate_kills_stuck);
  g_test_add_func ("/group/terminate/busy-threads", test_terminate_busy_threads);
  g_test_add_func ("/group/terminate/empty", test_terminate_empty);
  g_test_add_func ("/group/terminate/dispose", test_dispose_without_terminate);
  g_test_add_func ("/group/id/duplicate", test_duplicate_id);
  g_test_add_func ("/group/id/duplicate-with-specs", test_duplicate_id_with_specs);
  g_test_add_func ("/group/default-spec", test_default_spec);
  g_test_add_func ("/group/many/ten-at-once", test_ten_at_once);
  g_test_add_func ("/group/many/specs-order", test_with_specs_order);
  g_test_add_func ("/group/many/order-of-specs-not-readiness", test_make_gateways_order);
  g_test_add_func ("/group/many/threads", test_make_from_threads);
  g_test_add_func ("/group/spec/duplicate-key", test_bad_spec_duplicate_key);
  g_test_add_func ("/group/spec/malformed", test_bad_spec_malformed);
  g_test_add_func ("/group/spec/no-transport", test_bad_spec_no_transport);
  g_test_add_func ("/group/spec/unknown-scheme", test_unknown_scheme);
  g_test_add_func ("/group/spec/count", test_spec_count);
  g_test_add_func ("/group/spec/count-errors", test_spec_count_errors);
  g_test_add_func ("/group/spec/default", test_spec_default);
  g_test_add_func ("/group/bootstrap/missing-python", test_missing_python);
  g_test_add_func ("/group/bootstrap/not-python", test_not_python);
  g_test_add_func ("/group/remote-exec/multichannel", test_remote_exec_multichannel);
  g_test_add_func ("/group/remote-exec/multichannel-error", test_remote_exec_multichannel_error);
  g_test_add_func ("/group/receive-queue/endmarkers", test_receive_queue);
  g_test_add_func ("/group/via/nested", test_via);
  g_test_add_data_func ("/group/via/terminate-order", GINT_TO_POINTER (FALSE), test_via_terminate);
  g_test_add_data_func ("/group/via/terminate-order-async", GINT_TO_POINTER (TRUE), test_via_terminate);
  g_test_add_func ("/group/via/unknown", test_via_unknown);
  g_test_add_func ("/group/receive-queue/threads", test_receive_queue_threads);
  g_test_add_func ("/group/list-model/items-changed", test_items_changed);
  g_test_add_func ("/group/make-gateway-async", test_make_gateway_async);

  return g_test_run ();
}
