/* test-torture.c: the library under stress and abuse (the `slow` suite)
 *
 * Many gateway lifetimes in a row, a master killed outright, remote
 * processes that refuse to die, many threads sending on one channel, and
 * remote sides that break the protocol (tests/malicious-agent.py). Each
 * test checks the promise it is about: nothing leaks, nothing is left
 * behind, nothing waits without bound, and one bad gateway harms no other.
 *
 * The test program is also its own killed master: run with the single
 * argument --killed-master it starts gateways, reports them and waits to
 * be killed (see test_master_killed()).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <execnet/execnet.h>

#include "test-helpers.h"

/* ---------------------------------------------------------------------- */
/* What the process holds, from /proc                                      */

/* The entries of the directory @path, each as "name -> what it is":
 * the link target for file descriptors, the thread name for tasks. */
static GPtrArray *
list_proc_dir (const char *path,
               gboolean    describe_as_thread)
{
  GPtrArray *entries = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *entry_path = g_build_filename (path, name, NULL);
      g_autofree char *what = NULL;

      if (describe_as_thread)
        {
          g_autofree char *comm_path = g_build_filename (entry_path, "comm", NULL);

          if (g_file_get_contents (comm_path, &what, NULL, NULL))
            g_strchomp (what);
        }
      else
        {
          what = g_file_read_link (entry_path, NULL);
        }

      g_ptr_array_add (entries, g_strdup_printf ("%s -> %s", name, what != NULL ? what : "?"));
    }

  return entries;
}

static char *
join_entries (GPtrArray *entries)
{
  g_autoptr(GString) text = g_string_new (NULL);

  for (guint i = 0; i < entries->len; i++)
    g_string_append_printf (text, "%s%s", i > 0 ? ", " : "",
                            (const char *) g_ptr_array_index (entries, i));
  return g_string_free (g_steal_pointer (&text), FALSE);
}

typedef struct
{
  guint n_fds;
  guint n_threads;
  guint n_children;
} Census;

static void
take_census (Census *census)
{
  g_autoptr(GPtrArray) fds = list_proc_dir ("/proc/self/fd", FALSE);
  g_autoptr(GPtrArray) tasks = list_proc_dir ("/proc/self/task", TRUE);
  g_autoptr(GArray) children = test_list_children ();

  census->n_fds = fds->len;
  census->n_threads = tasks->len;
  census->n_children = children->len;
}

/* Takes the census once it holds still: the last gateway's pipes may be
 * closed by the I/O thread a moment after terminate() returned. */
static void
take_settled_census (Census *census)
{
  gint64 deadline = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  Census previous;

  take_census (&previous);
  for (;;)
    {
      g_usleep (50 * 1000);
      take_census (census);
      if (memcmp (census, &previous, sizeof previous) == 0 ||
          g_get_monotonic_time () >= deadline)
        return;
      previous = *census;
    }
}

/* Waits up to @timeout seconds for the process to hold what @before says
 * (threads and processes end asynchronously after terminate), then asserts
 * that it does, listing what it holds if not. */
static void
assert_census_back_to (const Census *before,
                       gdouble       timeout)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);
  Census now;

  for (;;)
    {
      take_census (&now);
      if (memcmp (&now, before, sizeof now) == 0 || g_get_monotonic_time () >= deadline)
        break;
      g_usleep (20 * 1000);
    }

  if (now.n_fds != before->n_fds)
    {
      g_autoptr(GPtrArray) fds = list_proc_dir ("/proc/self/fd", FALSE);
      g_autofree char *text = join_entries (fds);

      g_test_message ("open file descriptors: %s", text);
    }
  if (now.n_threads != before->n_threads)
    {
      g_autoptr(GPtrArray) tasks = list_proc_dir ("/proc/self/task", TRUE);
      g_autofree char *text = join_entries (tasks);

      g_test_message ("threads: %s", text);
    }

  g_assert_cmpuint (now.n_fds, ==, before->n_fds);
  g_assert_cmpuint (now.n_threads, ==, before->n_threads);
  g_assert_cmpuint (now.n_children, ==, before->n_children);
}

static gsize
statm_field (guint index)
{
  g_autofree char *contents = NULL;
  g_auto(GStrv) fields = NULL;

  g_assert_true (g_file_get_contents ("/proc/self/statm", &contents, NULL, NULL));
  fields = g_strsplit (contents, " ", -1);
  g_assert_cmpuint (g_strv_length (fields), >, index);
  return (gsize) g_ascii_strtoull (fields[index], NULL, 10) * (gsize) sysconf (_SC_PAGESIZE);
}

/* Resident and virtual memory, in bytes. */
static gsize
resident_size (void)
{
  return statm_field (1);
}

static gsize
virtual_size (void)
{
  return statm_field (0);
}

#define MIB ((gsize) 1 << 20)

/* AddressSanitizer holds freed memory back (its quarantine), so resident
 * memory grows under it whatever the code does; LeakSanitizer watches
 * for leaks there instead. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---------------------------------------------------------------------- */
/* Many gateway lifetimes in a row                                         */

#define N_CYCLES 500
#define RSS_CHECK_FROM 100
#define RSS_GROWTH_LIMIT (8 * MIB)

/* One gateway's whole life: start it, one round trip, terminate. */
static void
run_cycle (gint64 n)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) reply = NULL;
  ExecnetGateway *gateway;

  gateway = test_make_gateway (group, NULL);
  channel = test_remote_exec (gateway, "channel.send(channel.receive() + 1)");
  test_send (channel, g_variant_new_int64 (n));
  reply = test_receive (channel);
  g_assert_cmpint (g_variant_get_int64 (reply), ==, n + 1);
  test_wait_close (channel);
  test_terminate (group);
}

static void
test_cycles (void)
{
  Census before;
  gsize rss_early = 0;
  gsize rss_late;
  gint64 start;

  /* The first gateway starts what lives as long as the process: the I/O
   * thread, GLib's worker thread, loaded plugins. */
  run_cycle (0);
  take_settled_census (&before);
  g_assert_cmpuint (before.n_children, ==, 0);
  g_test_message ("after warm-up: %u fds, %u threads", before.n_fds, before.n_threads);

  start = g_get_monotonic_time ();
  for (guint i = 1; i <= N_CYCLES; i++)
    {
      run_cycle (i);
      if (i == RSS_CHECK_FROM)
        rss_early = resident_size ();
    }
  rss_late = resident_size ();

  g_test_message ("%d cycles, %.1f ms each; RSS %" G_GSIZE_FORMAT " KiB after cycle %d, "
                  "%" G_GSIZE_FORMAT " KiB after cycle %d",
                  N_CYCLES, (g_get_monotonic_time () - start) / 1000.0 / N_CYCLES,
                  rss_early / 1024, RSS_CHECK_FROM, rss_late / 1024, N_CYCLES);

  assert_census_back_to (&before, 5.0);
  if (UNDER_ASAN)
    g_test_message ("resident memory not checked under AddressSanitizer");
  else
    g_assert_cmpuint (rss_late, <, rss_early + RSS_GROWTH_LIMIT);
}

/* ---------------------------------------------------------------------- */
/* A master killed with live gateways                                      */

#define N_KILLED_MASTER_GATEWAYS 4
#define KILLED_MASTER_ARG "--killed-master"

/* Runs in the child: starts the gateways, prints "pid N" for each and
 * "ready", then waits for its input to end (it is SIGKILLed before). */
static int
run_killed_master (void)
{
  g_autofree char *spec = test_spec (NULL);
  const char *specs[N_KILLED_MASTER_GATEWAYS + 1];
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  char buffer[64];

  for (guint i = 0; i < N_KILLED_MASTER_GATEWAYS; i++)
    specs[i] = spec;
  specs[N_KILLED_MASTER_GATEWAYS] = NULL;

  group = execnet_group_new_with_specs (specs, &error);
  if (group == NULL)
    {
      printf ("error %s\n", error->message);
      return 1;
    }

  for (guint i = 0; i < execnet_group_get_size (group); i++)
    {
      g_autoptr(GVariant) info = NULL;
      gint64 pid = 0;

      info = execnet_gateway_remote_info (execnet_group_get_gateway (group, i), &error);
      if (info == NULL || !g_variant_lookup (info, "pid", "x", &pid))
        {
          printf ("error no remote pid: %s\n", error != NULL ? error->message : "missing");
          return 1;
        }
      printf ("pid %" G_GINT64_FORMAT "\n", pid);
    }
  printf ("ready\n");
  fflush (stdout);

  while (read (STDIN_FILENO, buffer, sizeof buffer) > 0)
    ;

  execnet_group_terminate (group, 5.0, NULL);
  return 0;
}

/* Reads one line from @fd into a new string (without the newline), or
 * returns NULL at end of file or once @deadline (monotonic) has passed. */
static char *
read_line_before (int      fd,
                  GString *pending,
                  gint64   deadline)
{
  for (;;)
    {
      const char *newline = memchr (pending->str, '\n', pending->len);
      struct pollfd pfd = { fd, POLLIN, 0 };
      gint64 now = g_get_monotonic_time ();
      char buffer[256];
      gssize n;
      int ready;

      if (newline != NULL)
        {
          char *line = g_strndup (pending->str, newline - pending->str);

          g_string_erase (pending, 0, newline - pending->str + 1);
          return line;
        }

      if (now >= deadline)
        return NULL;
      ready = poll (&pfd, 1, (int) ((deadline - now) / 1000) + 1);
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready <= 0)
        continue;

      n = read (fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return NULL;
      g_string_append_len (pending, buffer, n);
    }
}

/* The parent's id and state of process @pid; FALSE if it does not exist. */
static gboolean
read_process_stat (gint64  pid,
                   gint64 *ppid,
                   char   *state)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/stat", pid);
  g_autofree char *contents = NULL;
  const char *paren;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;
  paren = strrchr (contents, ')');
  g_assert_nonnull (paren);
  g_assert_cmpint (sscanf (paren + 1, " %c %" G_GINT64_FORMAT, state, ppid), ==, 2);
  return TRUE;
}

/* A process whose master died is gone once it has ended: a zombie left
 * to its new parent (init or a subreaper, not us) counts as gone. */
static gboolean
orphan_is_gone (gint64 pid)
{
  gint64 ppid;
  char state;

  if (!read_process_stat (pid, &ppid, &state))
    return TRUE;
  return state == 'Z' && ppid != getpid ();
}

#define KILLED_MASTER_DEADLINE 1.0
#define KILLED_MASTER_MARGIN 0.5

static void
test_master_killed (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) master = NULL;
  g_autofree char *self_path = NULL;
  g_autoptr(GString) pending = g_string_new (NULL);
  gint64 pids[N_KILLED_MASTER_GATEWAYS];
  gint64 master_pid;
  gint64 deadline;
  gint64 killed_at;
  guint n_pids = 0;
  int fd;

  self_path = g_file_read_link ("/proc/self/exe", &error);
  g_assert_no_error (error);

  master = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                             &error, self_path, KILLED_MASTER_ARG, NULL);
  g_assert_no_error (error);
  master_pid = g_ascii_strtoll (g_subprocess_get_identifier (master), NULL, 10);
  fd = g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (g_subprocess_get_stdout_pipe (master)));

  deadline = g_get_monotonic_time () + (gint64) (TEST_TIMEOUT * G_USEC_PER_SEC);
  for (;;)
    {
      g_autofree char *line = read_line_before (fd, pending, deadline);

      if (line == NULL)
        g_error ("the killed-master child ended or went silent before it was ready");
      if (g_str_equal (line, "ready"))
        break;
      if (g_str_has_prefix (line, "error "))
        g_error ("the killed-master child failed: %s", line + 6);
      g_assert_true (g_str_has_prefix (line, "pid "));
      g_assert_cmpuint (n_pids, <, N_KILLED_MASTER_GATEWAYS);
      pids[n_pids++] = g_ascii_strtoll (line + 4, NULL, 10);
    }
  g_assert_cmpuint (n_pids, ==, N_KILLED_MASTER_GATEWAYS);

  /* They are the live grandchildren of the master (their parent is the
   * guard of their process group, see core/execnet-spawn.c), so their end
   * is its death's. */
  for (guint i = 0; i < n_pids; i++)
    {
      gint64 ppid, guard_ppid;
      char state;

      g_assert_true (read_process_stat (pids[i], &ppid, &state));
      g_assert_cmpint (state, !=, 'Z');
      g_assert_true (read_process_stat (ppid, &guard_ppid, &state));
      g_assert_cmpint (guard_ppid, ==, master_pid);
    }

  killed_at = g_get_monotonic_time ();
  g_subprocess_force_exit (master);
  g_subprocess_wait (master, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_signaled (master));
  g_assert_cmpint (g_subprocess_get_term_sig (master), ==, SIGKILL);

  deadline = killed_at + (gint64) ((KILLED_MASTER_DEADLINE + KILLED_MASTER_MARGIN) * G_USEC_PER_SEC);
  for (guint i = 0; i < n_pids; i++)
    {
      while (!orphan_is_gone (pids[i]) && g_get_monotonic_time () < deadline)
        g_usleep (5 * 1000);

      if (!orphan_is_gone (pids[i]))
        {
          gint64 ppid = 0;
          char state = '?';

          read_process_stat (pids[i], &ppid, &state);
          g_error ("agent %" G_GINT64_FORMAT " (state %c, parent %" G_GINT64_FORMAT ") "
                   "outlived its SIGKILLed master by %.2f s",
                   pids[i], state, ppid, (g_get_monotonic_time () - killed_at) / 1e6);
        }
    }
  g_test_message ("all agents gone %.3f s after the master was killed",
                  (g_get_monotonic_time () - killed_at) / 1e6);

  test_assert_no_children (5.0);
}

/* ---------------------------------------------------------------------- */
/* Remote processes that will not end                                      */

typedef struct
{
  const char *name;
  const char *source;
} StuckCase;

static const StuckCase stuck_cases[] = {
  { "os-read",
    "import os, signal\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n"
    "channel.send(os.getpid())\n"
    "os.read(os.pipe()[0], 1)\n" },
  { "sleep-in-thread",
    "import os, signal, threading, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "def stuck():\n"
    "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})\n"
    "    time.sleep(3600)\n"
    "worker = threading.Thread(target=stuck)\n"
    "worker.start()\n"
    "channel.send(os.getpid())\n"
    "worker.join()\n" },
};

#define STUCK_TIMEOUT 0.5
#define STUCK_MARGIN 2.0

static void
test_terminate_stuck (gconstpointer data)
{
  const StuckCase *tc = data;
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) pid = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  gdouble elapsed;
  gint64 start;

  gateway = test_make_gateway (group, NULL);
  channel = test_remote_exec (gateway, tc->source);
  pid = test_receive (channel);
  g_assert_cmpint (g_variant_get_int64 (pid), ==, test_gateway_pid (gateway));

  start = g_get_monotonic_time ();
  g_assert_true (execnet_group_terminate (group, STUCK_TIMEOUT, &error));
  elapsed = (g_get_monotonic_time () - start) / 1e6;
  g_assert_no_error (error);
  g_test_message ("terminate (%.1f) returned after %.3f s", STUCK_TIMEOUT, elapsed);

  g_assert_cmpfloat (elapsed, <, STUCK_TIMEOUT + STUCK_MARGIN);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  /* Gone and reaped when terminate returns, not some time later. */
  g_assert_cmpint (test_process_state (g_variant_get_int64 (pid)), ==, 0);
  test_assert_no_children (0.0);
}

/* ---------------------------------------------------------------------- */
/* Many threads sending on one channel                                     */

#define N_SENDERS 8
#define N_SENDS 10000

typedef struct
{
  ExecnetChannel *channel;   /* (unowned) */
  gint32 index;

  /* The start line, shared: all threads begin together. */
  GMutex *lock;
  GCond *cond;
  gboolean *go;
} Sender;

/* Returns NULL, or the GError of the send that failed. */
static gpointer
sender_thread (gpointer data)
{
  Sender *sender = data;
  GError *error = NULL;

  g_mutex_lock (sender->lock);
  while (!*sender->go)
    g_cond_wait (sender->cond, sender->lock);
  g_mutex_unlock (sender->lock);

  for (gint32 seq = 0; seq < N_SENDS; seq++)
    if (!execnet_channel_send (sender->channel, g_variant_new ("(ii)", sender->index, seq), &error))
      return error;

  return NULL;
}

static void
test_concurrent_senders (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) report = NULL;
  g_autoptr(GVariant) counts = NULL;
  g_autofree char *source = NULL;
  g_autofree char *problems = NULL;
  Sender senders[N_SENDERS];
  GThread *threads[N_SENDERS];
  GMutex lock;
  GCond cond;
  gboolean go = FALSE;
  gint64 total;

  /* The remote counts per thread and checks that each thread's items come
   * in the order sent; None ends the stream. */
  source = g_strdup_printf (
    "expected = [0] * %d\n"
    "problems = []\n"
    "total = 0\n"
    "while True:\n"
    "    item = channel.receive()\n"
    "    if item is None:\n"
    "        break\n"
    "    thread, seq = item\n"
    "    if seq != expected[thread] and len(problems) < 5:\n"
    "        problems.append('thread %%d sent %%d after %%d' %% (thread, seq, expected[thread] - 1))\n"
    "    expected[thread] = seq + 1\n"
    "    total += 1\n"
    "channel.send((total, '; '.join(problems), expected))\n",
    N_SENDERS);

  channel = test_remote_exec (test_make_gateway (group, NULL), source);

  g_mutex_init (&lock);
  g_cond_init (&cond);
  for (gint32 i = 0; i < N_SENDERS; i++)
    {
      g_autofree char *name = g_strdup_printf ("sender-%d", i);

      senders[i] = (Sender) { channel, i, &lock, &cond, &go };
      threads[i] = g_thread_new (name, sender_thread, &senders[i]);
    }

  g_mutex_lock (&lock);
  go = TRUE;
  g_cond_broadcast (&cond);
  g_mutex_unlock (&lock);

  for (guint i = 0; i < N_SENDERS; i++)
    {
      g_autoptr(GError) error = g_thread_join (threads[i]);

      g_assert_no_error (error);
    }
  g_mutex_clear (&lock);
  g_cond_clear (&cond);

  test_send (channel, NULL);
  report = test_receive (channel);
  g_assert_cmpstr (g_variant_get_type_string (report), ==, "(xsav)");
  g_variant_get (report, "(xs@av)", &total, &problems, &counts);

  g_assert_cmpstr (problems, ==, "");
  g_assert_cmpint (total, ==, N_SENDERS * N_SENDS);
  g_assert_cmpuint (g_variant_n_children (counts), ==, N_SENDERS);
  for (guint i = 0; i < N_SENDERS; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (counts, i);
      g_autoptr(GVariant) count = g_variant_get_variant (boxed);

      g_assert_cmpint (g_variant_get_int64 (count), ==, N_SENDS);
    }

  test_wait_close (channel);
  test_terminate (group);
  test_assert_no_children (5.0);
}

/* ---------------------------------------------------------------------- */
/* Remote sides that break the protocol                                    */

typedef struct
{
  ExecnetGroup *group;          /* (owned) */
  ExecnetGateway *good;         /* (unowned) a normal gateway of group */
  ExecnetChannel *good_echo;    /* (owned) an echo loop on good, opened first */
  gint64 good_pid;
} EvilFixture;

static void
evil_setup (EvilFixture   *f,
            gconstpointer  data)
{
  f->group = execnet_group_new ();
  f->good = test_make_gateway (f->group, "id=good");
  f->good_pid = test_gateway_pid (f->good);
  f->good_echo = test_remote_exec (f->good,
                                   "for item in channel:\n"
                                   "    channel.send(item)\n");
}

static void
evil_teardown (EvilFixture   *f,
               gconstpointer  data)
{
  g_clear_object (&f->good_echo);
  test_terminate (f->group);
  test_assert_pid_gone (f->good_pid, 5.0);
  g_clear_object (&f->group);
  test_assert_no_children (5.0);
}

/* The good gateway still works: the channel opened before the trouble, and
 * a new one. */
static void
assert_good_gateway_works (EvilFixture *f,
                           gint64       n)
{
  g_autoptr(GVariant) echoed = NULL;
  g_autoptr(GVariant) doubled = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;

  g_assert_true (execnet_gateway_is_alive (f->good));

  test_send (f->good_echo, g_variant_new_int64 (n));
  echoed = test_receive (f->good_echo);
  g_assert_cmpint (g_variant_get_int64 (echoed), ==, n);

  channel = test_remote_exec (f->good, "channel.send(channel.receive() * 2)");
  test_send (channel, g_variant_new_int64 (n));
  doubled = test_receive (channel);
  g_assert_cmpint (g_variant_get_int64 (doubled), ==, 2 * n);
  test_wait_close (channel);
}

/* Makes a gateway whose interpreter is malicious-agent.py in @mode. */
static ExecnetGateway *
make_evil_gateway (ExecnetGroup *group,
                   const char   *mode)
{
  g_autofree char *script = NULL;
  g_autofree char *canonical = NULL;
  g_autofree char *quoted = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  script = g_test_build_filename (G_TEST_DIST, "malicious-agent.py", NULL);
  canonical = g_canonicalize_filename (script, NULL);
  g_assert_true (g_file_test (canonical, G_FILE_TEST_IS_REGULAR));
  /* A spec cannot hold "//", which separates its options. */
  g_assert_null (strstr (canonical, "//"));
  quoted = g_shell_quote (canonical);
  spec = g_strdup_printf ("popen//id=evil//python=%s %s %s", test_python (), quoted, mode);

  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  return gateway;
}

/* The interpreter's pid, from the transport's description "python3 pid N":
 * the malicious agent cannot answer remote_info. */
static gint64
evil_pid (ExecnetGateway *gateway)
{
  const char *address = execnet_gateway_get_remote_address (gateway);
  const char *pid;

  g_assert_nonnull (address);
  pid = g_strrstr (address, " pid ");
  g_assert_nonnull (pid);
  return g_ascii_strtoll (pid + 5, NULL, 10);
}

/* Whether process @pid is gone (neither running nor a zombie) within
 * @timeout seconds. */
static gboolean
wait_pid_gone (gint64  pid,
               gdouble timeout)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);

  while (test_process_state (pid) != 0)
    {
      if (g_get_monotonic_time () >= deadline)
        return FALSE;
      g_usleep (10 * 1000);
    }
  return TRUE;
}

/* Seconds within which a gateway fed garbage must report it. */
#define PROTOCOL_ERROR_BOUND 10.0

/* Any malicious agent may make the process allocate only this much more
 * virtual memory: far below the 1 GiB or 2 GiB its frames claim. */
#define EVIL_VM_GROWTH_LIMIT (256 * MIB)
#define EVIL_RSS_GROWTH_LIMIT (32 * MIB)

static void
test_evil_protocol_error (EvilFixture   *f,
                          gconstpointer  data)
{
  const char *mode = data;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *evil;
  gsize rss_before, vm_before;
  gint64 start, pid;
  gdouble elapsed;

  assert_good_gateway_works (f, 1);

  rss_before = resident_size ();
  vm_before = virtual_size ();
  evil = make_evil_gateway (f->group, mode);
  pid = evil_pid (evil);

  start = g_get_monotonic_time ();
  channel = test_remote_exec (evil, "channel.send(1)");
  item = execnet_channel_receive (channel, PROTOCOL_ERROR_BOUND, &error);
  elapsed = (g_get_monotonic_time () - start) / 1e6;

  g_assert_null (item);
  g_assert_nonnull (error);
  g_test_message ("after %.3f s: %s", elapsed, error->message);
  /* Half a frame and an exit is a lost connection, not garbage. */
  if (g_str_equal (mode, "truncated"))
    g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
  else
    g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_PROTOCOL);
  g_assert_false (execnet_gateway_is_alive (evil));

  g_test_message ("memory growth: RSS %" G_GSSIZE_FORMAT " KiB, virtual %" G_GSSIZE_FORMAT " KiB",
                  ((gssize) resident_size () - (gssize) rss_before) / 1024,
                  ((gssize) virtual_size () - (gssize) vm_before) / 1024);
  g_assert_cmpuint (resident_size (), <, rss_before + EVIL_RSS_GROWTH_LIMIT);
  g_assert_cmpuint (virtual_size (), <, vm_before + EVIL_VM_GROWTH_LIMIT);

  assert_good_gateway_works (f, 2);

  /* doc/protocol.md, "Corrupt input": the connection is closed and the
   * remote process terminated, without waiting for anyone's terminate().
   * A failure here is reported without aborting, so that the teardown
   * still checks what terminate() leaves and the other tests still run. */
  if (!wait_pid_gone (pid, 5.0))
    g_test_fail_printf ("the remote process %" G_GINT64_FORMAT " (state %c) is still "
                        "running 5 s after its gateway failed with a protocol error",
                        pid, test_process_state (pid));
}

/* ---------------------------------------------------------------------- */
/* Channels named in items nobody claims                                   */

#define N_CHANNEL_ITEMS 50
#define CHANNELS_PER_ITEM 20000

/* The number in "…, N active channels>". */
static guint
active_channels (ExecnetGateway *gateway)
{
  g_autofree char *text = execnet_gateway_to_string (gateway);
  const char *comma = strrchr (text, ',');

  g_assert_nonnull (comma);
  return (guint) g_ascii_strtoull (comma + 1, NULL, 10);
}

/* The remote side writes items that name new channels (ids it never
 * opened, so it never closes them), and nobody claims them: each channel
 * goes with its item, as in execnet, so memory does not grow with their
 * number. The remote waits for the master to be done with each item
 * before it sends the next, so what is measured is what stays behind,
 * not how many items were queued at once. */
#define UNCLAIMED_SOURCE \
  "import struct\n" \
  "for i in range(" G_STRINGIFY (N_CHANNEL_ITEMS) "):\n" \
  "    base = 1000000 + 2 * i * " G_STRINGIFY (CHANNELS_PER_ITEM) "\n" \
  "    parts = [b'K' + struct.pack('!i', " G_STRINGIFY (CHANNELS_PER_ITEM) ")]\n" \
  "    for k in range(" G_STRINGIFY (CHANNELS_PER_ITEM) "):\n" \
  "        parts.append(b'F' + struct.pack('!i', k) + b'B' + struct.pack('!i', base + 2 * k) + b'P')\n" \
  "    parts.append(b'Q')\n" \
  "    channel.gateway._send(4, channel.id, [b''.join(parts)])\n" \
  "    channel.receive()\n"

static void
test_unclaimed_channels (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  ExecnetGateway *gateway;
  gsize rss_before = 0;

  if (test_skip_unless_our_agent ("writes through our agent's protocol stream"))
    return;

  gateway = test_make_gateway (group, NULL);
  channel = test_remote_exec (gateway, UNCLAIMED_SOURCE);

  for (guint i = 0; i < N_CHANNEL_ITEMS; i++)
    {
      g_autoptr(GVariant) item = test_receive (channel);
      g_autoptr(GVariant) first = NULL;

      g_assert_cmpuint (g_variant_n_children (item), ==, CHANNELS_PER_ITEM);
      first = g_variant_get_child_value (item, 0);
      g_assert_true (g_variant_is_of_type (first, G_VARIANT_TYPE_VARIANT));
      /* While the item lives, its channels do. */
      g_assert_cmpuint (active_channels (gateway), >=, CHANNELS_PER_ITEM);
      g_clear_pointer (&first, g_variant_unref);
      g_clear_pointer (&item, g_variant_unref);
      if (i == 1)
        rss_before = resident_size ();
      test_send (channel, g_variant_new_boolean (TRUE));
    }
  test_wait_close (channel);
  g_clear_object (&channel);

  /* Only what is still open remains: nothing of the million. */
  g_assert_cmpuint (active_channels (gateway), <, 10);
  g_test_message ("RSS growth over %u items: %" G_GSSIZE_FORMAT " KiB", N_CHANNEL_ITEMS - 2,
                  ((gssize) resident_size () - (gssize) rss_before) / 1024);
  if (!UNDER_ASAN)
    g_assert_cmpuint (resident_size (), <, rss_before + 64 * MIB);

  test_terminate (group);
}

/* A channel named in an item stays alive while any part of the item does,
 * even after the item was serialized, and can be claimed and used. */
static void
test_claimed_channel_in_item (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(ExecnetChannel) claimed = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GVariant) inner = NULL;
  g_autoptr(GVariant) path = NULL;
  g_autoptr(GVariant) object_path = NULL;
  g_autoptr(GVariant) reply = NULL;
  ExecnetGateway *gateway;

  if (test_skip_unless_our_agent ("makes channels through our agent"))
    return;

  gateway = test_make_gateway (group, NULL);
  channel = test_remote_exec (gateway,
                              "c = channel.gateway.newchannel()\n"
                              "channel.send((1, [c]))\n"
                              "c.send(c.receive() + 1)\n");
  item = test_receive (channel);
  /* Take the channel's part alone, and let go of the rest. */
  inner = g_variant_get_child_value (item, 1);
  g_clear_pointer (&item, g_variant_unref);
  path = g_variant_get_child_value (inner, 0);
  g_clear_pointer (&inner, g_variant_unref);
  g_assert_cmpuint (g_variant_get_size (path), >, 0);

  object_path = g_variant_get_variant (path);
  claimed = execnet_gateway_channel_from_value (gateway, object_path);
  g_assert_nonnull (claimed);
  test_send (claimed, g_variant_new_int64 (41));
  reply = test_receive (claimed);
  g_assert_cmpint (g_variant_get_int64 (reply), ==, 42);
  test_wait_close (channel);

  test_terminate (group);
}

/* ---------------------------------------------------------------------- */
/* Items that decode to far more than they weigh                           */

/* Items the decode budget refuses: their receive fails, the channel and
 * the gateway go on, and memory grows far less than decoding would take
 * (the issue measured 758 MB for 10 MB of Nones). A set of 3 million ints
 * (15 MB on the wire), which a tree of GVariants would have taken 800 MB
 * for, arrives whole and costs little more than its serialized form. */
static void
test_decode_budget (void)
{
  static const char * const sources[] = {
    "channel.send((None,) * 4000000)",
    /* A million channel ids, which the master would make channels for. */
    "import struct\n"
    "n = 1000000\n"
    "channel.gateway._send(4, channel.id, [b''.join(\n"
    "    b'B' + struct.pack('!i', 1000000 + 2 * k) for k in range(n))\n"
    "    + b'@' + struct.pack('!i', n) + b'Q'])\n",
  };
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  ExecnetGateway *gateway;
  ExecnetGateway *other;

  if (test_skip_unless_our_agent ("writes through our agent's protocol stream"))
    return;

  gateway = test_make_gateway (group, NULL);
  other = test_make_gateway (group, NULL);

  /* First, while freed memory of the refused items cannot hide growth. */
  {
    g_autoptr(ExecnetChannel) channel = test_remote_exec (gateway, "channel.send(set(range(3000000)))");
    g_autoptr(GVariant) item = NULL;
    gsize rss_before = resident_size ();

    item = test_receive (channel);
    g_assert_cmpuint (g_variant_n_children (item), ==, 3000000);
    g_test_message ("a set of 3 million ints: RSS growth %" G_GSSIZE_FORMAT " KiB",
                    ((gssize) resident_size () - (gssize) rss_before) / 1024);
    if (!UNDER_ASAN)
      g_assert_cmpuint (resident_size (), <, rss_before + 200 * MIB);
    test_wait_close (channel);
  }

  for (gsize i = 0; i < G_N_ELEMENTS (sources); i++)
    {
      g_autofree char *source = g_strconcat (sources[i], "\nchannel.send('after')\n", NULL);
      g_autoptr(ExecnetChannel) channel = test_remote_exec (gateway, source);
      g_autoptr(ExecnetChannel) echo = NULL;
      g_autoptr(GVariant) item = NULL;
      g_autoptr(GVariant) after = NULL;
      g_autoptr(GVariant) pong = NULL;
      g_autoptr(GError) error = NULL;
      gsize rss_before = resident_size ();

      item = execnet_channel_receive (channel, TEST_TIMEOUT, &error);
      g_assert_null (item);
      g_test_message ("%s", error->message);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_UNSUPPORTED_VALUE);
      g_assert_nonnull (strstr (error->message, "smaller pieces"));
      g_test_message ("RSS growth: %" G_GSSIZE_FORMAT " KiB",
                      ((gssize) resident_size () - (gssize) rss_before) / 1024);
      if (!UNDER_ASAN)
        g_assert_cmpuint (resident_size (), <, rss_before + 400 * MIB);

      after = test_receive (channel);
      g_assert_cmpstr (g_variant_get_string (after, NULL), ==, "after");
      test_wait_close (channel);

      echo = test_remote_exec (other, "channel.send(channel.receive())");
      test_send (echo, g_variant_new_int64 (i));
      pong = test_receive (echo);
      g_assert_cmpint (g_variant_get_int64 (pong), ==, i);
    }

  test_terminate (group);
}

/* Asserts that @text is fit for an error message: valid UTF-8, no control
 * character but newline and tab, at most @max bytes. */
static void
assert_clean_text (const char *text,
                   gsize       max)
{
  g_assert_true (g_utf8_validate (text, -1, NULL));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c == '\n' || c == '\t')
        continue;
      if (g_unichar_iscntrl (c))
        g_error ("control character U+%04X in “%s”", c, text);
    }
  g_assert_cmpuint (strlen (text), <=, max);
}

/* Escapes and bytes that are not UTF-8, from the remote's stderr and its
 * refusal, reach the error escaped and bounded; a huge spec too. */
static void
test_evil_noisy (EvilFixture   *f,
                 gconstpointer  data)
{
  g_autofree char *script = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(GString) huge = g_string_new ("popen//python=");
  g_autoptr(GError) error = NULL;

  script = g_test_build_filename (G_TEST_DIST, "malicious-agent.py", NULL);
  spec = g_strdup_printf ("popen//python=%s %s noisy", test_python (), script);
  g_assert_null (execnet_group_make_gateway (f->group, spec, &error));
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  g_test_message ("%" G_GSIZE_FORMAT " bytes: %.300s", strlen (error->message), error->message);
  assert_clean_text (error->message, 16 * 1024);
  g_assert_nonnull (strstr (error->message, "\\x1b[2J"));
  g_assert_nonnull (strstr (error->message, "\\xff"));
  g_clear_error (&error);

  /* 500 KB of spec, with an escape in it. */
  for (guint i = 0; i < 50000; i++)
    g_string_append (huge, "\x1b[1mpython3");
  g_string_append (huge, "//nosuchkey=1//");
  g_assert_null (execnet_group_make_gateway (f->group, huge->str, &error));
  g_assert_nonnull (error);
  g_test_message ("%" G_GSIZE_FORMAT " bytes: %.300s", strlen (error->message), error->message);
  assert_clean_text (error->message, 16 * 1024);

  assert_good_gateway_works (f, 4);
}

/* A well-formed frame that claims nearly 1 GiB and never completes: no
 * error (it may yet arrive), but memory grows with what was received, not
 * with what was claimed, and terminate() still ends it all. */
static void
test_evil_trickle (EvilFixture   *f,
                   gconstpointer  data)
{
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *evil;
  gsize rss_before, vm_before;
  gint64 pid;

  rss_before = resident_size ();
  vm_before = virtual_size ();
  evil = make_evil_gateway (f->group, "trickle");
  pid = evil_pid (evil);

  channel = test_remote_exec (evil, "channel.send(1)");
  /* Gives the I/O thread time to take in the megabyte that was sent; a
   * slow run only makes the memory checks below weaker, not wrong. */
  item = execnet_channel_receive (channel, 2.0, &error);
  g_assert_null (item);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);

  g_test_message ("memory growth: RSS %" G_GSSIZE_FORMAT " KiB, virtual %" G_GSSIZE_FORMAT " KiB",
                  ((gssize) resident_size () - (gssize) rss_before) / 1024,
                  ((gssize) virtual_size () - (gssize) vm_before) / 1024);
  g_assert_cmpuint (resident_size (), <, rss_before + EVIL_RSS_GROWTH_LIMIT);
  g_assert_cmpuint (virtual_size (), <, vm_before + EVIL_VM_GROWTH_LIMIT);

  assert_good_gateway_works (f, 3);

  test_terminate (f->group);
  g_assert_cmpint (test_process_state (pid), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  static const char * const protocol_modes[] = {
    "garbage", "oversize", "badcode", "badvalue", "truncated",
  };

  if (argc == 2 && g_str_equal (argv[1], KILLED_MASTER_ARG))
    return run_killed_master ();

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/torture/cycles/make-terminate", test_cycles);
  g_test_add_func ("/torture/master-killed", test_master_killed);
  for (guint i = 0; i < G_N_ELEMENTS (stuck_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/torture/terminate-stuck/%s", stuck_cases[i].name);

      g_test_add_data_func (path, &stuck_cases[i], test_terminate_stuck);
    }
  g_test_add_func ("/torture/channel/concurrent-senders", test_concurrent_senders);
  g_test_add_func ("/torture/channel/unclaimed-in-items", test_unclaimed_channels);
  g_test_add_func ("/torture/channel/claimed-from-item", test_claimed_channel_in_item);
  g_test_add_func ("/torture/decode/budget", test_decode_budget);
  for (guint i = 0; i < G_N_ELEMENTS (protocol_modes); i++)
    {
      g_autofree char *path = g_strdup_printf ("/torture/malicious/%s", protocol_modes[i]);

      g_test_add (path, EvilFixture, protocol_modes[i], evil_setup,
                  test_evil_protocol_error, evil_teardown);
    }
  g_test_add ("/torture/malicious/trickle", EvilFixture, NULL, evil_setup,
              test_evil_trickle, evil_teardown);
  g_test_add ("/torture/malicious/noisy", EvilFixture, NULL, evil_setup,
              test_evil_noisy, evil_teardown);

  return g_test_run ();
}
