/* test-launchers.c: the launcher transports against real engines
 *
 * sudo, podman and srun run for real: sudo as root running Python as
 * `nobody`, a private rootful podman (tests/podman-fixture.sh) and a
 * private single-node Slurm (tests/slurm-fixture.sh), each started by the
 * first test that needs it and stopped at the end. docker is tested with
 * podman's docker-compatible command line under the name `docker`.
 * kubectl and vagrant have no cluster or virtual machine here: they run
 * the stand-ins of tests/standins/, which accept only the exact command
 * lines the transports build and then run the local interpreter (vagrant's
 * through the private sshd of the ssh tests).
 *
 * Every transport gets the same tests (a round trip, chdir/env/nice, a
 * remote that dies, terminate leaving nothing, a missing engine), plus the
 * errors of its own engine.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <grp.h>
#include <signal.h>
#include <sys/wait.h>

#include <gio/gio.h>
#include <glib/gstdio.h>

#include "sshd-fixture.h"
#include "test-helpers.h"

/* A gateway over a container engine or Slurm takes longer than a local
 * one, more so on a loaded machine. */
#define START_TIMEOUT 120.0

static char *work_dir;        /* (owned) private directory: TMPDIR, chdir targets, stand-in state */
static char *standin_log;     /* (owned) what the stand-ins were called with */

/* An engine the tests start once, on first use. */
typedef struct
{
  gboolean tried;
  char *skip;                 /* (owned) (nullable) why the tests of this engine skip */
  char *state_dir;            /* (owned) */
} Engine;

static Engine podman_engine, slurm_engine;
static SshdFixture *sshd;     /* (owned) (nullable) */
static GError *sshd_error;    /* (owned) (nullable) */

#define EXEC_CONTAINER "execnet-test-exec"
#define IMAGE "execnet-test-python"

/* Runs @argv, returns its stdout; fails the test unless it succeeds.
 * g_spawn_sync(), not GSubprocess: the fixtures run before the first
 * thread, and GSubprocess starts one. */
static char *
run (const char * const *argv)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *err = NULL;
  char *out = NULL;
  int status;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s %s failed: %s", argv[0], argv[1], err);
  return out;
}

/* Runs a fixture script: `sh SCRIPT up STATE_DIR`, and takes the
 * NAME=VALUE lines it prints into our environment. Exit status 77 means
 * the machine cannot run the engine: its stderr becomes the skip reason. */
static void
engine_start (Engine     *engine,
              const char *script,
              const char *state_name)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, script, NULL);
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto(GStrv) lines = NULL;
  const char *argv[] = { "sh", path, "up", NULL, NULL };
  int status;

  if (engine->tried)
    return;
  engine->tried = TRUE;
  engine->state_dir = g_test_build_filename (G_TEST_BUILT, state_name, NULL);
  argv[3] = engine->state_dir;

  g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, &out, &err, &status, &error);
  g_assert_no_error (error);
  if (WIFEXITED (status) && WEXITSTATUS (status) == 77)
    {
      engine->skip = g_strdup (g_strstrip (err));
      return;
    }
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("%s up failed: %s", script, err);

  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) pair = g_strsplit (lines[i], "=", 2);

      if (pair[0] != NULL && pair[1] != NULL)
        g_setenv (pair[0], pair[1], TRUE);
    }
}

static void
engine_stop (Engine     *engine,
             const char *script)
{
  g_autofree char *path = g_test_build_filename (G_TEST_DIST, script, NULL);
  const char *argv[] = { "sh", path, "down", engine->state_dir, NULL };

  if (!engine->tried || engine->skip != NULL)
    return;
  g_free (run (argv));
}

/* podman, with one long-running container to exec into, and `docker` on
 * PATH running podman. Called from main(), before any thread starts. */
static void
start_podman (void)
{
  if (!podman_engine.tried)
    {
      const char *argv[] = { "podman", "run", "--detach", "--interactive", "--rm", "--name", EXEC_CONTAINER,
                             IMAGE, "python3", "-c", "import signal; signal.pause()", NULL };
      const char *rm_argv[] = { "podman", "rm", "--force", "--ignore", "--time", "0", EXEC_CONTAINER, NULL };

      engine_start (&podman_engine, "podman-fixture.sh", "podman-store");
      if (podman_engine.skip != NULL)
        return;
      g_free (run (rm_argv));
      g_free (run (argv));
    }
}

static const char *
engine_skip (Engine *engine)
{
  if (!engine->tried)
    return "the engine was not started: run this test with -p naming it";
  return engine->skip;
}

static const char *
ensure_podman (void)
{
  return engine_skip (&podman_engine);
}

static const char *
ensure_slurm (void)
{
  return engine_skip (&slurm_engine);
}

static const char *
ensure_sudo (void)
{
  g_autofree char *sudo = g_find_program_in_path ("sudo");

  if (getuid () != 0)
    return "the sudo tests run as root (sudo=nobody needs no password then)";
  if (sudo == NULL)
    return "sudo is not installed (scripts/install-deps.sh installs it)";
  return NULL;
}

static const char *
ensure_sshd (void)
{
  if (sshd == NULL && sshd_error == NULL)
    sshd = sshd_fixture_new (&sshd_error);
  if (sshd_error != NULL)
    {
      if (!g_error_matches (sshd_error, G_IO_ERROR, SSHD_FIXTURE_ERROR_UNAVAILABLE))
        g_error ("cannot start the test sshd: %s", sshd_error->message);
      return sshd_error->message;
    }
  return NULL;
}

static const char *
ensure_nothing (void)
{
  return NULL;
}

/* The vagrant stand-in prints NAME.ssh-config: like `vagrant ssh-config`'s
 * output, it points at the private sshd. */
static void
write_vagrant_machine (const char *name,
                       guint16     port)
{
  g_autofree char *path = g_strdup_printf ("%s/vagrant/%s.ssh-config", work_dir, name);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;

  text = g_strdup_printf ("Host %s\n"
                          "  HostName 127.0.0.1\n"
                          "  User %s\n"
                          "  Port %u\n"
                          "  UserKnownHostsFile %s\n"
                          "  StrictHostKeyChecking yes\n"
                          "  PasswordAuthentication no\n"
                          "  IdentityFile %s\n"
                          "  IdentitiesOnly yes\n"
                          "  LogLevel FATAL\n"
                          "\n",
                          name, sshd->user, port, sshd->known_hosts, sshd->client_key);
  g_file_set_contents (path, text, -1, &error);
  g_assert_no_error (error);
}

static const char *
ensure_vagrant (void)
{
  const char *skip = ensure_sshd ();

  if (skip == NULL)
    write_vagrant_machine ("default", sshd->port);
  return skip;
}

/* Names of containers other than the one the exec tests use. */
static char *
list_other_containers (void)
{
  const char *argv[] = { "podman", "ps", "--all", "--format", "{{.Names}}", NULL };
  g_autofree char *out = run (argv);
  g_auto(GStrv) names = g_strsplit (out, "\n", -1);
  g_autoptr(GString) others = g_string_new (NULL);

  for (guint i = 0; names[i] != NULL; i++)
    if (*names[i] != '\0' && strcmp (names[i], EXEC_CONTAINER) != 0)
      g_string_append_printf (others, " %s", names[i]);
  return g_string_free (g_steal_pointer (&others), FALSE);
}

static char *
list_jobs (void)
{
  const char *argv[] = { "squeue", "--noheader", "--format=%i %j %T", NULL };

  return g_strstrip (run (argv));
}

/* Waits until @list returns "", failing after @timeout seconds: the
 * engines remove containers and jobs on their own time after the gateway
 * has ended, and offer no way to wait for that here. */
static void
assert_eventually_empty (char       *(*list) (void),
                         const char  *what)
{
  gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

  for (;;)
    {
      g_autofree char *left = list ();

      if (*left == '\0')
        return;
      if (g_get_monotonic_time () > deadline)
        g_error ("%s left behind: %s", what, left);
      g_usleep (100 * 1000);
    }
}

static void
assert_no_containers (void)
{
  assert_eventually_empty (list_other_containers, "containers");
}

static void
assert_no_jobs (void)
{
  assert_eventually_empty (list_jobs, "Slurm jobs");
}

static void
assert_nothing (void)
{
}

/* Like test_assert_no_children(), but the private sshd is a child too. */
static void
assert_no_children (void)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (TEST_TIMEOUT * G_USEC_PER_SEC);
  GPid sshd_pid = sshd != NULL ? sshd_fixture_get_pid (sshd) : 0;

  for (;;)
    {
      g_autoptr(GArray) children = test_list_children ();
      guint left = 0;

      for (guint i = 0; i < children->len; i++)
        if (g_array_index (children, gint64, i) != sshd_pid)
          left++;
      if (left == 0)
        return;
      if (g_get_monotonic_time () > deadline)
        break;
      g_usleep (10 * 1000);
    }
  if (sshd_pid == 0)
    test_assert_no_children (0);
  g_error ("child processes left behind besides the sshd");
}

typedef struct
{
  const char *name;                  /* in the test paths */
  const char *(*ensure) (void);      /* starts the engine; the reason to skip, or NULL */
  const char *spec;                  /* the spec, before the options each test adds */
  const char *python;                /* python= for it; NULL: test_python () */
  const char *engine;                /* the program whose absence /missing-engine checks */
  const char *where;                 /* remote expression: where the gateway is ... */
  const char *expected_where;        /* ... and what it must be */
  gboolean local_pid;                /* the remote pid is one of this machine's */
  void (*assert_nothing_left) (void);
} Target;

static const Target targets[] = {
  { "sudo", ensure_sudo, "sudo=nobody", NULL, "sudo",
    "str(os.getuid())", "65534", TRUE, assert_nothing },
  { "container/podman-exec", ensure_podman, "podman=" EXEC_CONTAINER, "python3", "podman",
    "str(os.path.exists('/run/.containerenv'))", "True", FALSE, assert_no_containers },
  { "container/podman-image", ensure_podman, "podman//image=" IMAGE, "python3", "podman",
    "str(os.path.exists('/run/.containerenv'))", "True", FALSE, assert_no_containers },
  { "container/docker-exec", ensure_podman, "docker=" EXEC_CONTAINER, "python3", "docker",
    "str(os.path.exists('/run/.containerenv'))", "True", FALSE, assert_no_containers },
  { "container/docker-image", ensure_podman, "docker//image=" IMAGE, "python3", "docker",
    "str(os.path.exists('/run/.containerenv'))", "True", FALSE, assert_no_containers },
  { "kubectl", ensure_nothing, "kubectl=web-0", NULL, "kubectl",
    "os.environ['KUBECTL_STANDIN']", "standin/default/web-0/main", TRUE, assert_nothing },
  { "vagrant_ssh", ensure_vagrant, "vagrant_ssh=default", NULL, "vagrant",
    "str('SSH_CONNECTION' in os.environ)", "True", TRUE, assert_nothing },
  { "srun", ensure_slurm, "srun", NULL, "srun",
    "os.environ['SLURM_JOB_NAME']", "execnet", TRUE, assert_no_jobs },
};

/* Skips the test if the engine of @target cannot run here. */
static gboolean
skip_without (const Target *target)
{
  const char *skip = target->ensure ();

  if (skip == NULL)
    return FALSE;
  g_test_skip (skip);
  return TRUE;
}

static char *
target_spec (const Target *target,
             const char   *extra)
{
  return g_strdup_printf ("%s//python=%s//connect_timeout=%g%s%s", target->spec,
                          target->python != NULL ? target->python : test_python (),
                          START_TIMEOUT, extra != NULL ? "//" : "", extra != NULL ? extra : "");
}

static ExecnetGateway *
make_gateway (ExecnetGroup *group,
              const Target *target,
              const char   *extra)
{
  g_autofree char *spec = target_spec (target, extra);
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  return gateway;
}

/* The error of making a gateway from @spec, which must fail. */
static GError *
make_gateway_error (const char *spec)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  GError *error = NULL;

  g_assert_null (execnet_group_make_gateway (group, spec, &error));
  g_assert_nonnull (error);
  g_test_message ("%s: %s", spec, error->message);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  return error;
}

static char *
remote_string (ExecnetGateway *gateway,
               const char     *source)
{
  g_autoptr(ExecnetChannel) channel = test_remote_exec (gateway, source);
  g_autoptr(GVariant) value = test_receive (channel);
  char *text = NULL;

  g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING));
  text = g_variant_dup_string (value, NULL);
  test_wait_close (channel);
  return text;
}

static void
test_round_trip (gconstpointer data)
{
  const Target *target = data;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *source = NULL;
  g_autofree char *where = NULL;
  ExecnetGateway *gateway;

  if (skip_without (target))
    return;
  group = execnet_group_new ();
  gateway = make_gateway (group, target, NULL);

  channel = test_remote_exec (gateway, "for item in channel:\n    channel.send(item * 2)\n");
  for (gint64 i = 1; i <= 3; i++)
    {
      g_autoptr(GVariant) item = NULL;

      test_send (channel, g_variant_new_int64 (i * 21));
      item = test_receive (channel);
      g_assert_cmpint (g_variant_get_int64 (item), ==, i * 42);
    }
  test_send (channel, g_variant_new_string ("x"));
  value = test_receive (channel);
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "xx");
  g_assert_true (execnet_channel_close (channel, NULL, NULL));

  source = g_strdup_printf ("import os\nchannel.send(%s)\n", target->where);
  where = remote_string (gateway, source);
  g_assert_cmpstr (where, ==, target->expected_where);

  test_terminate (group);
  target->assert_nothing_left ();
}

static void
test_options (gconstpointer data)
{
  const Target *target = data;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *extra = NULL;
  g_autofree char *got = NULL;
  g_autofree char *expected = NULL;
  ExecnetGateway *gateway;

  if (skip_without (target))
    return;
  /* A directory that does not exist yet; the remote creates it, as the
   * target user for sudo. In containers, a path inside the container. */
  dir = target->local_pid ? g_strdup_printf ("%s/chdir-%s", work_dir, target->name)
                          : g_strdup ("/tmp/execnet-chdir");
  extra = g_strdup_printf ("chdir=%s//env:EXECNET_TEST_VALUE=a b//nice=3", dir);
  group = execnet_group_new ();
  gateway = make_gateway (group, target, extra);

  got = remote_string (gateway, "import os\n"
                                "channel.send('%s|%s|%s' % (os.getcwd(), os.environ['EXECNET_TEST_VALUE'],\n"
                                "                           os.nice(0) >= 3))\n");
  expected = g_strdup_printf ("%s|a b|True", dir);
  g_assert_cmpstr (got, ==, expected);

  test_terminate (group);
  target->assert_nothing_left ();
}

static void
test_remote_dies (gconstpointer data)
{
  const Target *target = data;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  gint64 pid = 0;

  if (skip_without (target))
    return;
  group = execnet_group_new ();
  gateway = make_gateway (group, target, NULL);
  if (target->local_pid)
    pid = test_gateway_pid (gateway);

  channel = test_remote_exec (gateway, "import os\nos._exit(3)\n");
  g_assert_null (execnet_channel_receive (channel, START_TIMEOUT, &error));
  g_test_message ("%s", error->message);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
  if (pid != 0)
    test_assert_pid_gone (pid, TEST_TIMEOUT);

  test_terminate (group);
  target->assert_nothing_left ();
  assert_no_children ();
}

static void
test_terminate_nothing_left (gconstpointer data)
{
  const Target *target = data;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(ExecnetChannel) busy = NULL;
  g_autoptr(GVariant) child = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  gint64 pid = 0;

  if (skip_without (target))
    return;
  group = execnet_group_new ();
  gateway = make_gateway (group, target, NULL);
  if (target->local_pid)
    pid = test_gateway_pid (gateway);

  /* Remote code that never ends, with a child process of its own: the
   * group's terminate must end both, and the launcher in between. */
  busy = test_remote_exec (gateway, "import subprocess, sys\n"
                                    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                                    "channel.send(child.pid)\n"
                                    "child.wait()\n");
  child = test_receive (busy);

  execnet_group_terminate (group, 2.0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 0);
  if (pid != 0)
    {
      test_assert_pid_gone (pid, TEST_TIMEOUT);
      test_assert_pid_gone (g_variant_get_int64 (child), TEST_TIMEOUT);
    }
  target->assert_nothing_left ();
  assert_no_children ();
}

/* Without the engine's program on PATH, a clear error at once. */
static void
test_missing_engine (gconstpointer data)
{
  const Target *target = data;

  if (g_test_subprocess ())
    {
      g_autofree char *spec = target_spec (target, NULL);
      g_autoptr(GError) error = NULL;
      g_autofree char *expected = g_strdup_printf ("“%s” is not installed", target->engine);

      g_setenv ("PATH", work_dir, TRUE);
      error = make_gateway_error (spec);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
      g_assert_nonnull (strstr (error->message, expected));
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

/* sudo: a rule that wants a password is an authentication error that says
 * what to do, at once; run as `nobody`, who may not sudo at all. */
static void
test_sudo_password (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *spec = g_strdup_printf ("sudo=root//python=%s", test_python ());

      if (setgroups (0, NULL) != 0 || setgid (65534) != 0 || setuid (65534) != 0)
        g_error ("cannot become nobody: %s", g_strerror (errno));
      error = make_gateway_error (spec);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION);
      g_assert_nonnull (strstr (error->message, "NOPASSWD"));
      g_assert_nonnull (strstr (error->message, "a password is required"));
      return;
    }
  if (skip_without (&targets[0]))
    return;
  g_test_trap_subprocess (NULL, 60 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
}

static void
test_sudo_unknown_user (void)
{
  g_autoptr(GError) error = NULL;

  if (skip_without (&targets[0]))
    return;
  error = make_gateway_error ("sudo=execnet-no-such-user");
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION);
  g_assert_nonnull (strstr (error->message, "no user “execnet-no-such-user”"));
}

static void
test_container_errors (gconstpointer data)
{
  const char *engine = data;
  g_autofree char *no_container = g_strdup_printf ("%s=execnet-no-such-container", engine);
  g_autofree char *no_image = g_strdup_printf ("%s//image=localhost/execnet-no-such-image:1", engine);
  g_autofree char *both = g_strdup_printf ("%s=x//image=y", engine);
  g_autofree char *neither = g_strdup_printf ("%s", engine);
  GError *error;

  if (skip_without (&targets[1]))
    return;

  error = make_gateway_error (no_container);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no container “execnet-no-such-container”"));
  g_clear_error (&error);

  /* Not here, and the registry "localhost" refuses at once. */
  error = make_gateway_error (no_image);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no image “localhost/execnet-no-such-image:1”"));
  g_clear_error (&error);

  error = make_gateway_error (both);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_clear_error (&error);
  error = make_gateway_error (neither);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_clear_error (&error);

  assert_no_containers ();
}

/* A master that is killed leaves no container behind: the engine client
 * dies with it (PR_SET_PDEATHSIG), Python's stdin ends, and --rm removes
 * the container. */
static void
test_container_master_killed (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(ExecnetGroup) group = execnet_group_new ();
      ExecnetGateway *gateway = make_gateway (group, &targets[2], NULL);
      g_autoptr(ExecnetChannel) channel = test_remote_exec (gateway, "channel.send(1)\n");

      g_variant_unref (test_receive (channel));
      raise (SIGKILL);
    }
  if (skip_without (&targets[2]))
    return;
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_failed ();
  assert_no_containers ();
}

static void
assert_standin_called (const char *expected_line)
{
  g_autofree char *log = NULL;
  g_autoptr(GError) error = NULL;

  g_file_get_contents (standin_log, &log, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("stand-in calls:\n%s", log);
  g_assert_nonnull (strstr (log, expected_line));
  g_assert_no_errno (truncate (standin_log, 0));
}

static void
test_kubectl_words (void)
{
  g_autoptr(ExecnetGroup) group = execnet_group_new ();
  g_autofree char *spec = g_strdup_printf ("kubectl=api-1//namespace=prod//container=app//context=east"
                                           "//python=%s", test_python ());
  g_autoptr(GError) error = NULL;
  g_autofree char *where = NULL;
  ExecnetGateway *gateway;

  g_assert_no_errno (truncate (standin_log, 0));
  gateway = execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  where = remote_string (gateway, "import os\nchannel.send(os.environ['KUBECTL_STANDIN'])\n");
  g_assert_cmpstr (where, ==, "east/prod/api-1/app");
  assert_standin_called ("['kubectl', '--context', 'east', '--namespace', 'prod', 'exec', '-i', "
                         "'api-1', '--container', 'app', '--']\n");
  test_terminate (group);
}

static void
test_kubectl_errors (void)
{
  static const struct {
    const char *spec;
    int code;
    const char *text;
  } cases[] = {
    { "kubectl=nosuch-0", EXECNET_ERROR_HOST_NOT_FOUND, "no pod “nosuch-0” in the default namespace" },
    { "kubectl=web-0//namespace=nosuch", EXECNET_ERROR_HOST_NOT_FOUND, "no namespace “nosuch”" },
    { "kubectl=web-0//context=nosuch", EXECNET_ERROR_HOST_NOT_FOUND, "no context “nosuch”" },
    { "kubectl=web-0//container=nosuch", EXECNET_ERROR_HOST_NOT_FOUND, "no container “nosuch”" },
    { "kubectl=-x", EXECNET_ERROR_INVALID_SPEC, "not a valid name" },
    { "kubectl", EXECNET_ERROR_INVALID_SPEC, "kubectl= is empty" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = make_gateway_error (cases[i].spec);

      g_assert_error (error, EXECNET_ERROR, cases[i].code);
      if (strstr (error->message, cases[i].text) == NULL)
        g_error ("%s: “%s” does not say “%s”", cases[i].spec, error->message, cases[i].text);
    }

  assert_no_children ();
}

/* The cluster's API server does not answer. */
static void
test_kubectl_down (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;

      g_setenv ("EXECNET_TEST_KUBECTL_DOWN", "1", TRUE);
      error = make_gateway_error ("kubectl=web-0");
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED);
      g_assert_nonnull (strstr (error->message, "cannot reach the cluster"));
      return;
    }
  g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
  g_test_trap_assert_passed ();
  assert_no_children ();
}

/* The ssh configuration written for the ssh transport is gone afterwards,
 * whether the gateway started or not. */
static void
assert_no_temporary_files (void)
{
  g_autoptr(GDir) dir = g_dir_open (work_dir, 0, NULL);
  const char *name;

  while ((name = g_dir_read_name (dir)) != NULL)
    if (g_str_has_prefix (name, "execnet-vagrant-"))
      g_error ("%s/%s was left behind", work_dir, name);
}

static void
test_vagrant_words (void)
{
  g_autoptr(ExecnetGroup) group = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without (&targets[6]))
    return;
  g_assert_no_errno (truncate (standin_log, 0));
  group = execnet_group_new ();
  spec = target_spec (&targets[6], NULL);
  execnet_group_make_gateway (group, spec, &error);
  g_assert_no_error (error);
  assert_standin_called ("vagrant ssh-config default\n");
  assert_no_temporary_files ();
  test_terminate (group);
}

static void
test_vagrant_errors (void)
{
  GError *error;

  if (skip_without (&targets[6]))
    return;

  error = make_gateway_error ("vagrant_ssh=nosuch");
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "was not found configured"));
  g_clear_error (&error);

  /* A machine that is down: ssh's own error, as for any ssh gateway. */
  write_vagrant_machine ("halted", 1);
  error = make_gateway_error ("vagrant_ssh=halted//connect_timeout=30");
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED);
  g_clear_error (&error);

  error = make_gateway_error ("vagrant_ssh=default//ssh_config=/dev/null");
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_clear_error (&error);

  assert_no_temporary_files ();
}

/* A job that Slurm does not start within connect_timeout= (its partition
 * is down) is a timeout that says so, and the job is cancelled. */
static void
test_srun_not_scheduled (void)
{
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;
  gint64 start;

  if (skip_without (&targets[7]))
    return;
  spec = g_strdup_printf ("srun=held//python=%s//connect_timeout=3", test_python ());
  start = g_get_monotonic_time ();
  error = make_gateway_error (spec);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_nonnull (strstr (error->message, "did not start job"));
  g_assert_nonnull (strstr (error->message, "cancelled"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, 60 * G_USEC_PER_SEC);
  assert_no_jobs ();
  assert_no_children ();
}

static void
test_srun_errors (void)
{
  GError *error;

  if (skip_without (&targets[7]))
    return;
  error = make_gateway_error ("srun=nosuch//connect_timeout=30");
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "no partition “nosuch”"));
  g_clear_error (&error);

  error = make_gateway_error ("srun//time=soon//connect_timeout=30");
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_clear_error (&error);
  assert_no_jobs ();
}

/* N*srun: N gateways, each its own job. */
static void
test_srun_many (void)
{
  g_autofree char *one = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) jobs = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  const char *specs[] = { NULL, NULL };

  if (skip_without (&targets[7]))
    return;
  one = target_spec (&targets[7], NULL);
  spec = g_strdup_printf ("3*%s", one);
  specs[0] = spec;
  group = execnet_group_new_with_specs (specs, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (execnet_group_get_size (group), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_hash_table_add (jobs, remote_string (execnet_group_get_gateway (group, i),
                                           "import os\nchannel.send(os.environ['SLURM_JOB_ID'])\n"));
  g_assert_cmpuint (g_hash_table_size (jobs), ==, 3);
  test_terminate (group);
  assert_no_jobs ();
}

/* Inside an allocation (SLURM_JOB_ID set, as in a batch script), each
 * gateway is a step of that job, and srun_args= and time= reach srun. */
static void
test_srun_in_allocation (void)
{
  if (g_test_subprocess ())
    {
      g_autoptr(ExecnetGroup) group = execnet_group_new ();
      g_autofree char *spec = g_strdup_printf ("srun//python=%s//time=5//srun_args=--cpus-per-task=2",
                                               test_python ());
      g_autoptr(GError) error = NULL;
      g_autofree char *job = NULL;
      g_autofree char *job_file = g_build_filename (work_dir, "allocation", NULL);
      ExecnetGateway *gateway;
      g_autofree char *got = NULL;

      /* Before any thread: as in a batch script. */
      g_file_get_contents (job_file, &job, NULL, &error);
      g_assert_no_error (error);
      g_setenv ("SLURM_JOB_ID", job, TRUE);
      gateway = execnet_group_make_gateway (group, spec, &error);
      g_assert_no_error (error);
      got = remote_string (gateway, "import os\n"
                                    "channel.send(os.environ['SLURM_JOB_ID'] + ' ' +\n"
                                    "             os.environ['SLURM_CPUS_PER_TASK'])\n");
      g_print ("%s\n", got);
      test_terminate (group);
      return;
    }
  if (skip_without (&targets[7]))
    return;
  {
    const char *argv[] = { "salloc", "--no-shell", "--job-name=execnet-allocation", "--cpus-per-task=2", NULL };
    const char *cancel_argv[] = { "scancel", "--name=execnet-allocation", NULL };
    g_autoptr(GSubprocess) salloc = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    g_autofree char *expected = NULL;
    const char *granted;
    guint64 job;

    salloc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
    g_assert_no_error (error);
    g_subprocess_communicate_utf8 (salloc, NULL, NULL, NULL, &err, &error);
    g_assert_no_error (error);
    granted = strstr (err, "Granted job allocation ");
    g_assert_nonnull (granted);
    job = g_ascii_strtoull (granted + strlen ("Granted job allocation "), NULL, 10);
    g_assert_cmpuint (job, >, 0);

    {
      g_autofree char *value = g_strdup_printf ("%" G_GUINT64_FORMAT, job);
      g_autofree char *job_file = g_build_filename (work_dir, "allocation", NULL);

      g_file_set_contents (job_file, value, -1, &error);
      g_assert_no_error (error);
      g_test_trap_subprocess (NULL, 0, G_TEST_SUBPROCESS_INHERIT_STDERR);
    }
    g_free (run (cancel_argv));
    g_test_trap_assert_passed ();
    expected = g_strdup_printf ("%" G_GUINT64_FORMAT " 2\n", job);
    g_test_trap_assert_stdout (expected);
    assert_no_jobs ();
  }
}

/* /launchers/sudo/round-trip, /launchers/container/podman-exec-round-trip:
 * three levels, as GLib's -p selects no deeper test. */
static void
add_target_test (const Target  *target,
                 const char    *name,
                 GTestDataFunc  func)
{
  g_autofree char *path = strchr (target->name, '/') != NULL
                            ? g_strdup_printf ("/launchers/%s-%s", target->name, name)
                            : g_strdup_printf ("/launchers/%s/%s", target->name, name);

  g_test_add_data_func (path, target, func);
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GError) error = NULL;
  int result;

  gboolean chosen = FALSE, want_podman = FALSE, want_slurm = FALSE;

  sshd_fixture_prepare_environment ();
  signal (SIGPIPE, SIG_IGN);

  /* The engines start only for the tests that use them (-p), and before
   * any thread: their fixtures set environment variables. */
  for (int i = 1; i + 1 < argc; i++)
    if (strcmp (argv[i], "-p") == 0)
      {
        chosen = TRUE;
        want_podman |= g_str_has_prefix (argv[i + 1], "/launchers/container") ||
                       strcmp (argv[i + 1], "/launchers") == 0;
        want_slurm |= g_str_has_prefix (argv[i + 1], "/launchers/srun") ||
                      strcmp (argv[i + 1], "/launchers") == 0;
      }
  if (!chosen)
    want_podman = want_slurm = TRUE;
  g_test_init (&argc, &argv, NULL);

  /* Set up before any thread starts: setenv is not thread-safe. A test's
   * child process inherits it all. The stand-ins and `docker` (podman
   * under that name) come first on PATH. */
  if (g_test_subprocess ())
    {
      work_dir = g_strdup (g_getenv ("EXECNET_TEST_WORK_DIR"));
      standin_log = g_strdup (g_getenv ("EXECNET_TEST_STANDIN_LOG"));
      g_assert_nonnull (work_dir);
    }
  else
    {
      g_autofree char *standins = g_test_build_filename (G_TEST_DIST, "standins", NULL);
      g_autofree char *bin = NULL;
      g_autofree char *docker = NULL;
      g_autofree char *vagrant = NULL;
      g_autofree char *path = NULL;

      work_dir = g_dir_make_tmp ("execnet-launchers-XXXXXX", &error);
      g_assert_no_error (error);
      g_assert_no_errno (chmod (work_dir, 0777));
      g_setenv ("EXECNET_TEST_WORK_DIR", work_dir, TRUE);
      g_setenv ("TMPDIR", work_dir, TRUE);

      standin_log = g_build_filename (work_dir, "standin.log", NULL);
      g_file_set_contents (standin_log, "", 0, &error);
      g_assert_no_error (error);
      g_setenv ("EXECNET_TEST_STANDIN_LOG", standin_log, TRUE);
      vagrant = g_build_filename (work_dir, "vagrant", NULL);
      g_assert_no_errno (g_mkdir (vagrant, 0755));
      g_setenv ("EXECNET_TEST_VAGRANT_DIR", vagrant, TRUE);
      g_setenv ("EXECNET_TEST_KUBECTL_PODS", "default/web-0,prod/api-1:init:app", TRUE);
      g_setenv ("EXECNET_TEST_KUBECTL_CONTEXTS", "standin,east", TRUE);

      bin = g_build_filename (work_dir, "bin", NULL);
      g_assert_no_errno (g_mkdir (bin, 0755));
      docker = g_build_filename (bin, "docker", NULL);
      g_file_set_contents (docker, "#!/bin/sh\nexec podman \"$@\"\n", -1, &error);
      g_assert_no_error (error);
      g_assert_no_errno (chmod (docker, 0755));
      path = g_strdup_printf ("%s:%s:%s", standins, bin, g_getenv ("PATH"));
      g_setenv ("PATH", path, TRUE);

      if (want_podman)
        start_podman ();
      if (want_slurm)
        engine_start (&slurm_engine, "slurm-fixture.sh", "slurm-state");
    }

  for (gsize i = 0; i < G_N_ELEMENTS (targets); i++)
    {
      add_target_test (&targets[i], "round-trip", test_round_trip);
      add_target_test (&targets[i], "chdir-env-nice", test_options);
      add_target_test (&targets[i], "remote-dies", test_remote_dies);
      add_target_test (&targets[i], "terminate", test_terminate_nothing_left);
      add_target_test (&targets[i], "missing-engine", test_missing_engine);
    }
  g_test_add_func ("/launchers/sudo/password", test_sudo_password);
  g_test_add_func ("/launchers/sudo/unknown-user", test_sudo_unknown_user);
  g_test_add_data_func ("/launchers/container/podman-image-errors", "podman", test_container_errors);
  g_test_add_data_func ("/launchers/container/docker-image-errors", "docker", test_container_errors);
  g_test_add_func ("/launchers/container/podman-image-master-killed", test_container_master_killed);
  g_test_add_func ("/launchers/kubectl/words", test_kubectl_words);
  g_test_add_func ("/launchers/kubectl/errors", test_kubectl_errors);
  g_test_add_func ("/launchers/kubectl/down", test_kubectl_down);
  g_test_add_func ("/launchers/vagrant_ssh/words", test_vagrant_words);
  g_test_add_func ("/launchers/vagrant_ssh/errors", test_vagrant_errors);
  g_test_add_func ("/launchers/srun/not-scheduled", test_srun_not_scheduled);
  g_test_add_func ("/launchers/srun/errors", test_srun_errors);
  g_test_add_func ("/launchers/srun/in-allocation", test_srun_in_allocation);
  g_test_add_func ("/launchers/srun/many", test_srun_many);

  result = g_test_run ();

  engine_stop (&podman_engine, "podman-fixture.sh");
  engine_stop (&slurm_engine, "slurm-fixture.sh");
  g_clear_pointer (&sshd, sshd_fixture_free);
  g_clear_error (&sshd_error);
  if (!g_test_subprocess ())
    test_remove_tree (work_dir);
  g_free (work_dir);
  g_free (standin_log);
  return result;
}
