/* test-ssh.c: ssh gateways against a private sshd, and the ssh spec words
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * One sshd (tests/fixtures/sshd-fixture.c) serves the whole program; it starts with
 * the first test that needs it. Every test that needs it is skipped, with
 * the reason, when this machine cannot run sshd at all.
 */
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include <execnet/execnet.h>

#include "execnet-ssh-args.h"
#include "sshd-fixture.h"
#include "test-helpers.h"

/* A failing connection must fail within this, whatever the cause. */
#define ERROR_DEADLINE 20.0

static SshdFixture *shared_sshd = NULL;
static GError *shared_sshd_error = NULL;
/* The shared sshd's sessions' TMPDIR, where spawners make their sockets:
 * one killed with the connection (/ssh/share/connection-lost) cannot
 * remove its directory, so the tests do, at the end. */
static char *shared_tmpdir = NULL;

typedef struct
{
  SshdFixture *sshd;      /* (unowned) (nullable) NULL: skip */
  ExecnetGroup *group;    /* (owned) */
} Fixture;

static void
fixture_setup (Fixture       *f,
               gconstpointer  data)
{
  if (shared_sshd == NULL && shared_sshd_error == NULL)
    {
      g_autofree char *lines = NULL;

      shared_tmpdir = g_dir_make_tmp ("execnet-ssh-tests-XXXXXX", &shared_sshd_error);
      g_assert_no_error (shared_sshd_error);
      lines = g_strdup_printf ("SetEnv TMPDIR=%s\n", shared_tmpdir);
      shared_sshd = sshd_fixture_new_full (lines, &shared_sshd_error);
    }
  if (shared_sshd_error != NULL &&
      !g_error_matches (shared_sshd_error, G_IO_ERROR, SSHD_FIXTURE_ERROR_UNAVAILABLE))
    g_error ("cannot start the test sshd: %s", shared_sshd_error->message);

  f->sshd = shared_sshd;
  f->group = execnet_group_new ();
}

static void
fixture_teardown (Fixture       *f,
                  gconstpointer  data)
{
  if (f->group != NULL)
    test_terminate (f->group);
  g_clear_object (&f->group);
}

#define REQUIRE_SSHD(f)                                                    \
  G_STMT_START {                                                           \
    if ((f)->sshd == NULL)                                                 \
      {                                                                    \
        g_test_skip (shared_sshd_error->message);                          \
        return;                                                            \
      }                                                                    \
  } G_STMT_END

/* The spec of a gateway to the fixture's sshd through its client config,
 * with @extra options appended if not %NULL. */
static char *
ssh_spec (Fixture    *f,
          const char *extra)
{
  return g_strdup_printf ("ssh=localhost//ssh_config=%s//python=%s%s%s",
                          f->sshd->client_config, test_python (),
                          extra ? "//" : "", extra ? extra : "");
}

static ExecnetGateway *
make_gateway (Fixture    *f,
              const char *spec)
{
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  gateway = execnet_group_make_gateway (f->group, spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (gateway);
  return gateway;
}

/* Runs @source, which sends one item, and returns that item. */
static GVariant *
remote_value (ExecnetGateway *gateway,
              const char     *source)
{
  g_autoptr(ExecnetChannel) channel = test_remote_exec (gateway, source);
  GVariant *item = test_receive (channel);

  test_wait_close (channel);
  return item;
}

static gint64
remote_int (ExecnetGateway *gateway,
            const char     *source)
{
  g_autoptr(GVariant) item = remote_value (gateway, source);

  g_assert_true (g_variant_is_of_type (item, G_VARIANT_TYPE_INT64));
  return g_variant_get_int64 (item);
}

/* Tries to make a gateway that must fail; returns the error and checks it
 * came within ERROR_DEADLINE. */
static GError *
expect_failure (Fixture    *f,
                const char *spec)
{
  GError *error = NULL;
  gint64 start = g_get_monotonic_time ();
  ExecnetGateway *gateway;
  gdouble elapsed;

  gateway = execnet_group_make_gateway (f->group, spec, &error);
  elapsed = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
  g_assert_null (gateway);
  g_assert_nonnull (error);
  g_test_message ("%s → %s (%.2f s)", spec, error->message, elapsed);
  g_assert_cmpfloat (elapsed, <, ERROR_DEADLINE);
  g_assert_cmpuint (execnet_group_get_size (f->group), ==, 0);
  return error;
}

/* /ssh/args: the spec's ssh words, without any server */

typedef struct
{
  const char *words;
  const char *destination;
  const char *user;
  guint16 port;
  const char *config_file;
  const char *identities;   /* comma-separated */
  ExecnetSshHostKeyPolicy strict;
  const char *proxy_jump;
} ArgsCase;

static const ArgsCase args_cases[] = {
  { "host", "host", NULL, 0, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "user@host", "host", "user", 0, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "-p 5000 myhost", "myhost", NULL, 5000, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "-p5000 -l bob myhost", "myhost", "bob", 5000, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "-l bob alice@myhost", "myhost", "bob", 0, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "myhost -p 22 -i k1 -i k2", "myhost", NULL, 22, NULL, "k1,k2", EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "-F '/a b/config' -o Port=2222 -oUser=carol h", "h", "carol", 2222, "/a b/config", "",
    EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "-o 'StrictHostKeyChecking no' -o IdentityFile=/k h", "h", NULL, 0, NULL, "/k",
    EXECNET_SSH_HOST_KEY_NO, NULL },
  { "-o StrictHostKeyChecking=accept-new h", "h", NULL, 0, NULL, "", EXECNET_SSH_HOST_KEY_ACCEPT_NEW, NULL },
  { "-o stricthostkeychecking=ask h", "h", NULL, 0, NULL, "", EXECNET_SSH_HOST_KEY_YES, NULL },
  { "-J jump@gw:2200 h", "h", NULL, 0, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, "jump@gw:2200" },
  { "ssh://dave@[::1]:2022", "::1", "dave", 2022, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, NULL },
  { "-qTC -x -a -o BatchMode=yes h", "h", NULL, 0, NULL, "", EXECNET_SSH_HOST_KEY_UNSET, NULL },
};

static void
test_args_parse (gconstpointer data)
{
  const ArgsCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetSshArgs) args = _execnet_ssh_args_parse (c->words, &error);
  g_autoptr(GString) identities = g_string_new (NULL);

  g_assert_no_error (error);
  g_assert_nonnull (args);
  g_assert_cmpstr (args->destination, ==, c->destination);
  g_assert_cmpstr (args->user, ==, c->user);
  g_assert_cmpuint (args->port, ==, c->port);
  g_assert_cmpstr (args->config_file, ==, c->config_file);
  for (guint i = 0; i < args->identity_files->len; i++)
    g_string_append_printf (identities, "%s%s", i ? "," : "",
                            (const char *) args->identity_files->pdata[i]);
  g_assert_cmpstr (identities->str, ==, c->identities);
  g_assert_cmpint (args->strict_host_key_checking, ==, c->strict);
  g_assert_cmpstr (args->proxy_jump, ==, c->proxy_jump);
}

static const char *args_bad_cases[] = {
  "",
  "-p",
  "-p 70000 host",
  "-X host",
  "-4 host",
  "host uptime",
  "-o Bogus=1 host",
  "-o Port host",
  "-o StrictHostKeyChecking=maybe host",
  "-l bob",
  "'unterminated",
};

static void
test_args_bad (gconstpointer data)
{
  const char *words = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetSshArgs) args = _execnet_ssh_args_parse (words, &error);

  g_assert_null (args);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_test_message ("ssh=%s → %s", words, error->message);
}

static void
test_args_proxy_jump (void)
{
  static const struct { const char *jump, *config, *command; } cases[] = {
    { "gw", NULL, "ssh -o BatchMode=yes -W '[%h]:%p' 'gw'" },
    { "me@gw:2200", NULL, "ssh -o BatchMode=yes -l 'me' -p '2200' -W '[%h]:%p' 'gw'" },
    { "a,b@c:3", "/cfg", "ssh -o BatchMode=yes -F '/cfg' -J 'b@c:3' -W '[%h]:%p' 'a'" },
    { "[fe80::1]:22", NULL, "ssh -o BatchMode=yes -p '22' -W '[%h]:%p' 'fe80::1'" },
    { "none", NULL, NULL },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *command = _execnet_ssh_args_proxy_jump_command (cases[i].jump,
                                                                       cases[i].config);

      g_assert_cmpstr (command, ==, cases[i].command);
    }
}

/* /ssh/command: the remote command, run here by sh as sshd would run it,
 * with a PATH that holds only what the case provides */

typedef struct
{
  const char *spec;
  const char *programs;   /* comma-separated names linked to the test Python */
  const char *code;       /* the bootstrap line's Python code (no single quotes) */
  const char *output;     /* expected stdout, or NULL */
  int exit_code;          /* expected, or -1 */
  int signal;             /* expected terminating signal, or 0 */
} CommandCase;

static const CommandCase command_cases[] = {
  { "ssh=h", "python3,python", "import os, sys; print(os.path.basename(sys.executable))", "python3\n", 0, 0 },
  { "ssh=h", "python", "import os, sys; print(os.path.basename(sys.executable))", "python\n", 0, 0 },
  { "ssh=h//python=python -X utf8_mode=1", "python3,python",
    "import os, sys; print(os.path.basename(sys.executable), sys.flags.utf8_mode)", "python 1\n", 0, 0 },
  { "ssh=h", "python3", "import sys; sys.exit(7)", "", 7, 0 },
  { "ssh=h", "python3", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "", -1, SIGKILL },
  { "ssh=h", "nothing", "pass", NULL, 127, 0 },
};

/* Runs in the forked child: its own process group, as sshd gives every
 * session, so that the script's `kill 0` stays inside it. */
static void
new_process_group (gpointer user_data)
{
  setpgid (0, 0);
}

static GSubprocess *
spawn_remote_command (const char  *spec,
                      const char  *programs,
                      char       **bin_out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new (spec, &error);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autofree char *command = NULL;
  g_autofree char *python = g_find_program_in_path (test_python ());
  g_autofree char *sh_link = NULL;
  g_autofree char *path = NULL;
  g_auto(GStrv) names = g_strsplit (programs, ",", -1);
  char *bin;
  GSubprocess *process;

  g_assert_no_error (error);
  g_assert_nonnull (python);
  bin = g_dir_make_tmp ("execnet-ssh-bin-XXXXXX", &error);
  g_assert_no_error (error);
  sh_link = g_build_filename (bin, "sh", NULL);
  g_assert_cmpint (symlink ("/bin/sh", sh_link), ==, 0);
  for (guint i = 0; names[i] != NULL; i++)
    {
      g_autofree char *link = g_build_filename (bin, names[i], NULL);

      g_assert_cmpint (symlink (python, link), ==, 0);
    }

  command = _execnet_ssh_build_remote_command (xspec, &error);
  g_assert_no_error (error);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  path = g_strconcat ("PATH=", bin, NULL);
  g_subprocess_launcher_set_environ (launcher, (char *[]) { path, NULL });
  g_subprocess_launcher_set_child_setup (launcher, new_process_group, NULL, NULL);
  process = g_subprocess_launcher_spawn (launcher, &error, "/bin/sh", "-c", command, NULL);
  g_assert_no_error (error);

  *bin_out = bin;
  return process;
}

static void
remove_bin (char *bin)
{
  g_autoptr(GDir) dir = g_dir_open (bin, 0, NULL);
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (bin, name, NULL);

      g_unlink (path);
    }
  g_rmdir (bin);
  g_free (bin);
}

static void
test_command_case (gconstpointer data)
{
  const CommandCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *bin = NULL;
  g_autofree char *line = g_strdup_printf ("'%s'\n", c->code);
  g_autofree char *output = NULL;

  process = spawn_remote_command (c->spec, c->programs, &bin);
  if (!g_subprocess_communicate_utf8 (process, line, NULL, &output, NULL, &error))
    {
      /* The command may end before it reads its input (no interpreter). */
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
      g_assert_null (c->output);
      g_assert_true (g_subprocess_wait (process, NULL, NULL));
    }
  remove_bin (g_steal_pointer (&bin));

  if (c->output != NULL)
    g_assert_cmpstr (output, ==, c->output);
  if (c->signal != 0)
    {
      g_assert_true (g_subprocess_get_if_signaled (process));
      g_assert_cmpint (g_subprocess_get_term_sig (process), ==, c->signal);
    }
  else
    {
      g_assert_true (g_subprocess_get_if_exited (process));
      g_assert_cmpint (g_subprocess_get_exit_status (process), ==, c->exit_code);
    }
}

/* What the remote code leaves running in its process group is ended with
 * the interpreter. */
static void
test_command_group_cleanup (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *bin = NULL;
  g_autofree char *output = NULL;
  const char *line =
    "'import subprocess, sys; "
    "child = subprocess.Popen([sys.executable, \"-c\", \"import time; time.sleep(60)\"]); "
    "print(child.pid)'\n";

  process = spawn_remote_command ("ssh=h", "python3", &bin);
  g_assert_true (g_subprocess_communicate_utf8 (process, line, NULL, &output, NULL, &error));
  g_assert_no_error (error);
  remove_bin (g_steal_pointer (&bin));
  g_assert_true (g_subprocess_get_if_exited (process));
  g_assert_cmpint (g_subprocess_get_exit_status (process), ==, 0);
  test_assert_pid_gone (g_ascii_strtoll (output, NULL, 10), 10.0);
}

/* /ssh/gateway */

/* The seed example: the group's default spec names `localhost`,
 * which the client config maps to the test sshd. chdir is absolute (in the
 * fixture's directory) so that the test leaves nothing in the home
 * directory; its last component is still `mytmp`. */
static void
test_gateway_seed (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autofree char *mytmp = NULL;
  g_autoptr(GVariant) cwd = NULL;
  ExecnetGateway *gateway;
  int base_nice;
  gint64 remote_nice;

  REQUIRE_SSHD (f);

  mytmp = g_build_filename (f->sshd->dir, "mytmp", NULL);
  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//chdir=%s//nice=20",
                          f->sshd->client_config, mytmp);
  execnet_group_set_default_spec (f->group, spec);
  gateway = make_gateway (f, NULL);

  cwd = remote_value (gateway, "import os\nchannel.send(os.path.basename(os.getcwd()))");
  g_assert_cmpstr (g_variant_get_string (cwd, NULL), ==, "mytmp");
  g_assert_true (g_file_test (mytmp, G_FILE_TEST_IS_DIR));

  /* The remote starts at sshd's niceness; niceness stops at 19. */
  errno = 0;
  base_nice = getpriority (PRIO_PROCESS, (id_t) sshd_fixture_get_pid (f->sshd));
  g_assert_cmpint (errno, ==, 0);
  remote_nice = remote_int (gateway, "import os\nchannel.send(os.nice(0))");
  g_assert_cmpint (remote_nice, ==, MIN (19, base_nice + 20));
}

/* `-F PATH` in the value, the `sshtest` alias, and the default interpreter
 * (python3, else python), which no other test uses. */
/* An ssh_config with LogLevel ERROR turns libssh's own logging on; none
 * of it may reach the application's stderr: it goes to GLib's log, at
 * debug level, which the default writer drops. Run in a subprocess whose
 * stderr is checked; the subprocess starts its own sshd. */
static void
test_gateway_quiet_stderr (Fixture       *f,
                           gconstpointer  data)
{
  REQUIRE_SSHD (f);

  if (g_test_subprocess ())
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *config = NULL;
      g_autofree char *spec = NULL;
      ExecnetGateway *gateway;

      config = sshd_fixture_write_client_config (f->sshd, NULL, NULL, "  LogLevel ERROR\n", &error);
      g_assert_no_error (error);
      spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=%s", config, test_python ());
      gateway = make_gateway (f, spec);
      g_assert_cmpint (remote_int (gateway, "channel.send(6 * 7)"), ==, 42);
      return;
    }

  g_test_trap_subprocess (NULL, (guint64) 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("");

  /* Asked for, libssh's log is there, with the gateway's phases. */
  g_setenv ("EXECNET_DEBUG", "ssh,phase", TRUE);
  g_test_trap_subprocess (NULL, (guint64) 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_unsetenv ("EXECNET_DEBUG");
  g_test_trap_assert_passed ();
  g_test_trap_assert_stderr ("*phase: gw0: resolving: resolving *"
                             "*phase: gw0: connecting: connecting to 127.0.0.1:*"
                             "*ssh: libssh: *"
                             "*phase: gw0: authenticating: authenticating as *"
                             "*phase: gw0: starting-python: *"
                             "*phase: gw0: bootstrap: *"
                             "*phase: gw0: ready: *");
}

static void
test_gateway_config_flag (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(GVariant) version = NULL;
  g_autoptr(GVariant) expected = g_variant_ref_sink (g_variant_new ("(xs)", (gint64) 3, "python3"));
  ExecnetGateway *gateway;

  REQUIRE_SSHD (f);

  spec = g_strdup_printf ("ssh=-F %s sshtest", f->sshd->client_config);
  gateway = make_gateway (f, spec);
  g_assert_nonnull (strstr (execnet_gateway_get_remote_address (gateway), "sshtest"));
  version = remote_value (gateway, "import os, sys\n"
                                   "channel.send((sys.version_info[0], os.path.basename(sys.executable)))");
  g_assert_true (g_variant_equal (version, expected));
  test_gateway_pid (gateway);
}

/* Every option on the command line, no config file at all. */
static void
test_gateway_options (Fixture       *f,
                      gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autofree char *address = NULL;
  ExecnetGateway *gateway;

  REQUIRE_SSHD (f);

  spec = g_strdup_printf ("ssh=-F /dev/null -p %u -i %s -o UserKnownHostsFile=%s "
                          "-o StrictHostKeyChecking=yes -o ConnectTimeout=20 "
                          "-o BatchMode=yes %s@127.0.0.1//python=%s",
                          f->sshd->port, f->sshd->client_key, f->sshd->known_hosts,
                          f->sshd->user, test_python ());
  gateway = make_gateway (f, spec);
  address = g_strdup_printf ("%s@127.0.0.1:%u", f->sshd->user, f->sshd->port);
  g_assert_cmpstr (execnet_gateway_get_remote_address (gateway), ==, address);
  test_gateway_pid (gateway);
}

/* A ProxyCommand and a ProxyJump through the system ssh client. */
static void
test_gateway_proxy (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *ssh = g_find_program_in_path ("ssh");
  g_autofree char *command_spec = NULL;
  g_autofree char *jump_spec = NULL;

  REQUIRE_SSHD (f);
  if (ssh == NULL)
    {
      g_test_skip ("no ssh client program to run as the proxy");
      return;
    }

  command_spec = g_strdup_printf ("ssh=-F %s -o ProxyCommand=ssh\\ -F\\ %s\\ -W\\ %%h:%%p\\ sshtest "
                                  "sshtest//python=%s",
                                  f->sshd->client_config, f->sshd->client_config, test_python ());
  test_gateway_pid (make_gateway (f, command_spec));

  jump_spec = g_strdup_printf ("ssh=-F %s -J sshtest sshtest//python=%s",
                               f->sshd->client_config, test_python ());
  test_gateway_pid (make_gateway (f, jump_spec));
}

/* /ssh/values */

typedef struct
{
  const char *sent;       /* GVariant text */
  const char *received;   /* GVariant text, or NULL: the same */
} ValueCase;

static const ValueCase value_cases[] = {
  { "@mv nothing", NULL },
  { "true", NULL },
  { "false", NULL },
  { "int32 42", "int64 42" },
  { "byte 0xff", "int64 255" },
  { "int64 -9223372036854775808", NULL },
  { "uint64 18446744073709551615", NULL },
  { "3.25", NULL },
  { "-0.0", NULL },
  { "'h\u00e9llo \u2713 w\u00f6rld'", NULL },
  { "''", NULL },
  { "b'\\x00\\x01binary\\xff'", NULL },
  { "@ay []", NULL },
  { "['a', 'b']", "[<'a'>, <'b'>]" },
  { "@av []", NULL },
  { "(int32 1, 'two', 3.0)", "(int64 1, 'two', 3.0)" },
  { "()", NULL },
  { "{'k': <int64 1>, 'l': <'v'>}", NULL },
  { "{int64 1: <true>}", NULL },
  { "[<{'nested': <[<int64 1>, <(int64 2, b'x')>]>}>]", NULL },
};

/* Remote output reaches ::remote-output over ssh as over popen. */
static void
test_remote_output (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  spec = ssh_spec (f, NULL);
  test_assert_remote_output (make_gateway (f, spec));
}

static void
test_values_roundtrip (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) complex_value = NULL;
  g_autoptr(GVariant) complex_expected = g_variant_ref_sink (g_variant_new ("(dd)", 1.5, -2.0));
  g_autoptr(GVariant) set_value = NULL;
  ExecnetGateway *gateway;

  REQUIRE_SSHD (f);

  spec = ssh_spec (f, NULL);
  gateway = make_gateway (f, spec);
  channel = test_remote_exec (gateway,
                              "n = channel.receive()\n"
                              "for i in range(n):\n"
                              "    channel.send(channel.receive())\n");
  test_send (channel, g_variant_new_int64 (G_N_ELEMENTS (value_cases)));

  for (gsize i = 0; i < G_N_ELEMENTS (value_cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) sent = g_variant_parse (NULL, value_cases[i].sent, NULL, NULL, &error);
      g_autoptr(GVariant) expected = NULL;
      g_autoptr(GVariant) received = NULL;

      g_assert_no_error (error);
      expected = value_cases[i].received
                   ? g_variant_parse (NULL, value_cases[i].received, NULL, NULL, &error)
                   : g_variant_ref (sent);
      g_assert_no_error (error);

      test_send (channel, sent);
      received = test_receive (channel);
      if (!g_variant_equal (received, expected))
        {
          g_autofree char *got = g_variant_print (received, TRUE);
          g_autofree char *want = g_variant_print (expected, TRUE);

          g_error ("sent %s, received %s, expected %s", value_cases[i].sent, got, want);
        }
    }
  test_wait_close (channel);

  /* Kinds only the remote side can make. */
  complex_value = remote_value (gateway, "channel.send(complex(1.5, -2))");
  g_assert_true (g_variant_equal (complex_value, complex_expected));
  set_value = remote_value (gateway, "channel.send({7})");
  g_assert_true (g_variant_is_of_type (set_value, G_VARIANT_TYPE ("av")));
  g_assert_cmpuint (g_variant_n_children (set_value), ==, 1);
}

/* /ssh/transfer: 64 MiB each way, as one bytes item */

#define TRANSFER_SIZE (64 * 1024 * 1024)

static GBytes *
pattern_bytes (gsize size)
{
  guint8 *data = g_malloc (size);

  /* bytes(range(256)) repeated, which the remote makes the same way */
  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) i;
  return g_bytes_new_take (data, size);
}

static char *
sha256_hex (const guint8 *data,
            gsize         size)
{
  return g_compute_checksum_for_data (G_CHECKSUM_SHA256, data, size);
}

static void
test_transfer_64mib (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(GBytes) blob = pattern_bytes (TRANSFER_SIZE);
  g_autofree char *blob_hash = sha256_hex (g_bytes_get_data (blob, NULL), TRANSFER_SIZE);
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) summary = NULL;
  g_autoptr(GVariant) back = NULL;
  g_autofree char *back_hash = NULL;
  const char *remote_hash;
  gint64 remote_len;
  gint64 start;
  ExecnetGateway *gateway;

  REQUIRE_SSHD (f);

  spec = ssh_spec (f, NULL);
  gateway = make_gateway (f, spec);
  channel = test_remote_exec (gateway,
                              "import hashlib\n"
                              "data = channel.receive()\n"
                              "channel.send((len(data), hashlib.sha256(data).hexdigest()))\n"
                              "del data\n"
                              "size = channel.receive()\n"
                              "channel.send(bytes(range(256)) * (size // 256))\n");

  start = g_get_monotonic_time ();
  test_send (channel, g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, blob, TRUE));
  summary = test_receive (channel);
  g_test_message ("64 MiB up: %.2f s", (g_get_monotonic_time () - start) / 1e6);
  g_variant_get (summary, "(x&s)", &remote_len, &remote_hash);
  g_assert_cmpint (remote_len, ==, TRANSFER_SIZE);
  g_assert_cmpstr (remote_hash, ==, blob_hash);

  start = g_get_monotonic_time ();
  test_send (channel, g_variant_new_int64 (TRANSFER_SIZE));
  back = test_receive (channel);
  g_test_message ("64 MiB down: %.2f s", (g_get_monotonic_time () - start) / 1e6);
  g_assert_true (g_variant_is_of_type (back, G_VARIANT_TYPE_BYTESTRING));
  g_assert_cmpuint (g_variant_get_size (back), ==, TRANSFER_SIZE);
  back_hash = sha256_hex (g_variant_get_data (back), g_variant_get_size (back));
  g_assert_cmpstr (back_hash, ==, blob_hash);
  test_wait_close (channel);
}

/* The server re-keys every MiB: libssh must carry on through dozens of
 * key exchanges in the middle of non-blocking transfers. */
static void
test_transfer_rekey (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(SshdFixture) rekeying = NULL;
  g_autoptr(GBytes) blob = pattern_bytes (16 * 1024 * 1024);
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  rekeying = sshd_fixture_new_full ("RekeyLimit 1M\n", &error);
  g_assert_no_error (error);
  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=%s",
                          rekeying->client_config, test_python ());
  channel = test_remote_exec (make_gateway (f, spec),
                              "for i in range(2):\n"
                              "    channel.send(channel.receive())\n");
  for (int i = 0; i < 2; i++)
    {
      g_autoptr(GVariant) back = NULL;

      test_send (channel, g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, blob, TRUE));
      back = test_receive (channel);
      g_assert_cmpmem (g_variant_get_data (back), g_variant_get_size (back),
                       g_bytes_get_data (blob, NULL), g_bytes_get_size (blob));
    }
  test_wait_close (channel);
  test_terminate (f->group);
}

/* /ssh/gateway/concurrent: 8 gateways started at once */

#define N_CONCURRENT 8

/* The most gateways make_together() makes. */
#define MAX_TOGETHER 12

typedef struct
{
  ExecnetGroup *group;
  ExecnetGateway *gateways[MAX_TOGETHER];  /* (owned) */
  guint done;
  guint wanted;
} Concurrent;

static void
on_gateway_made (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Concurrent *c = user_data;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;

  gateway = execnet_group_make_gateway_for_xspec_finish (EXECNET_GROUP (source), result, &error);
  g_assert_no_error (error);
  c->gateways[c->done++] = gateway;
}

static gboolean
all_made (gpointer data)
{
  Concurrent *c = data;

  return c->done == c->wanted;
}

static void
test_gateway_concurrent (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(GHashTable) pids = g_hash_table_new (g_int64_hash, g_int64_equal);
  g_autoptr(GMainContext) context = g_main_context_new ();
  gint64 pid_values[N_CONCURRENT];
  Concurrent c = { .group = f->group, .wanted = N_CONCURRENT };
  gint64 start;

  REQUIRE_SSHD (f);

  spec = ssh_spec (f, NULL);
  g_main_context_push_thread_default (context);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new (spec, NULL);

      execnet_group_make_gateway_for_xspec_async (f->group, xspec, NULL, on_gateway_made, &c);
    }
  test_iterate_until (context, all_made, &c, 2 * TEST_TIMEOUT);
  g_main_context_pop_thread_default (context);
  g_test_message ("%d ssh gateways in %.2f s", N_CONCURRENT,
                  (g_get_monotonic_time () - start) / 1e6);

  g_assert_cmpuint (execnet_group_get_size (f->group), ==, N_CONCURRENT);
  for (guint i = 0; i < N_CONCURRENT; i++)
    {
      pid_values[i] = remote_int (c.gateways[i], "import os\nchannel.send(os.getpid())");
      g_hash_table_add (pids, &pid_values[i]);
    }
  g_assert_cmpuint (g_hash_table_size (pids), ==, N_CONCURRENT);
}

/* /ssh/errors: each failure for real, with its own code */

static void
test_errors_wrong_key (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) key_error = NULL;
  g_autofree char *key = NULL;
  g_autofree char *config = NULL;
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  key = sshd_fixture_make_key (f->sshd, &key_error);
  g_assert_no_error (key_error);
  config = sshd_fixture_write_client_config (f->sshd, key, NULL, NULL, &key_error);
  g_assert_no_error (key_error);
  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s", config);

  error = expect_failure (f, spec);
  test_assert_error_contains (error, EXECNET_ERROR_AUTHENTICATION, "refused authentication");
  g_assert_nonnull (strstr (error->message, "publickey"));
  g_assert_nonnull (strstr (error->message, f->sshd->user));
}

static void
test_errors_unknown_host_key (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) file_error = NULL;
  g_autofree char *known_hosts = NULL;
  g_autofree char *config = NULL;
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  known_hosts = sshd_fixture_write_file (f->sshd, "", &file_error);
  g_assert_no_error (file_error);
  config = sshd_fixture_write_client_config (f->sshd, NULL, known_hosts, NULL, &file_error);
  g_assert_no_error (file_error);
  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s", config);

  error = expect_failure (f, spec);
  test_assert_error_contains (error, EXECNET_ERROR_AUTHENTICATION, "is not known");
  g_assert_nonnull (strstr (error->message, "ssh-ed25519"));
  g_assert_nonnull (strstr (error->message, "SHA256:"));
  g_assert_nonnull (strstr (error->message, "ssh-keyscan -p"));
}

static void
test_errors_changed_host_key (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) file_error = NULL;
  g_autofree char *other_key = NULL;
  g_autofree char *other_pub_path = NULL;
  g_autofree char *other_pub = NULL;
  g_autofree char *line = NULL;
  g_autofree char *known_hosts = NULL;
  g_autofree char *config = NULL;
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  other_key = sshd_fixture_make_key (f->sshd, &file_error);
  g_assert_no_error (file_error);
  other_pub_path = g_strconcat (other_key, ".pub", NULL);
  g_assert_true (g_file_get_contents (other_pub_path, &other_pub, NULL, NULL));
  line = g_strdup_printf ("[127.0.0.1]:%u %s", f->sshd->port, g_strstrip (other_pub));
  known_hosts = sshd_fixture_write_file (f->sshd, line, &file_error);
  g_assert_no_error (file_error);
  config = sshd_fixture_write_client_config (f->sshd, NULL, known_hosts, NULL, &file_error);
  g_assert_no_error (file_error);
  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s", config);

  error = expect_failure (f, spec);
  test_assert_error_contains (error, EXECNET_ERROR_AUTHENTICATION, "CHANGED");
  g_assert_nonnull (strstr (error->message, "SHA256:"));
}

/* A known_hosts file of @lines, one per line. */
static char *
write_known_hosts (Fixture            *f,
                   const char * const *lines)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_strjoinv ("\n", (char **) lines);
  char *path = sshd_fixture_write_file (f->sshd, text, &error);

  g_assert_no_error (error);
  return path;
}

/* A host key marked @revoked is refused, as OpenSSH refuses it: with any
 * policy, also when another line lists it plainly, and accept-new does not
 * record it. */
static void
test_errors_revoked_host_key (Fixture       *f,
                              gconstpointer  data)
{
  g_autoptr(GError) file_error = NULL;
  g_autofree char *plain = NULL;
  g_autofree char *revoked = NULL;
  g_autofree char *revoked_any = NULL;
  g_autofree char *revoked_hashed = NULL;
  const char *policies[] = { "yes", "accept-new", "no" };

  REQUIRE_SSHD (f);

  g_assert_true (g_file_get_contents (f->sshd->known_hosts, &plain, NULL, NULL));
  g_strstrip (plain);
  revoked = g_strconcat ("@revoked ", plain, NULL);
  /* Any host: the pattern is "*", and the key follows it. */
  revoked_any = g_strconcat ("@revoked * ", strchr (plain, ' ') + 1, NULL);
  /* The host's name hashed, as HashKnownHosts writes it. */
  {
    static const guchar salt[20] = "execnet-test-salt!!";
    g_autofree char *name = g_strndup (plain, strchr (plain, ' ') - plain);
    g_autoptr(GHmac) hmac = g_hmac_new (G_CHECKSUM_SHA1, salt, sizeof salt);
    guint8 digest[20];
    gsize digest_len = sizeof digest;
    g_autofree char *salt64 = g_base64_encode (salt, sizeof salt);
    g_autofree char *digest64 = NULL;

    g_hmac_update (hmac, (const guchar *) name, -1);
    g_hmac_get_digest (hmac, digest, &digest_len);
    digest64 = g_base64_encode (digest, digest_len);
    revoked_hashed = g_strdup_printf ("@revoked |1|%s|%s %s", salt64, digest64,
                                      strchr (plain, ' ') + 1);
  }

  for (gsize i = 0; i < G_N_ELEMENTS (policies); i++)
    {
      const char *only[] = { revoked, NULL };
      const char *both[] = { plain, revoked, NULL };
      const char *wildcard[] = { "# a comment", revoked_any, NULL };
      const char *hashed[] = { plain, revoked_hashed, NULL };
      const char * const *files[] = { only, both, wildcard, hashed };

      for (gsize j = 0; j < G_N_ELEMENTS (files); j++)
        {
          g_autofree char *known_hosts = write_known_hosts (f, files[j]);
          g_autofree char *before = NULL;
          g_autofree char *after = NULL;
          g_autofree char *config = NULL;
          g_autofree char *spec = NULL;
          g_autoptr(GError) error = NULL;

          g_assert_true (g_file_get_contents (known_hosts, &before, NULL, NULL));
          config = sshd_fixture_write_client_config (f->sshd, NULL, known_hosts, NULL, &file_error);
          g_assert_no_error (file_error);
          spec = g_strdup_printf ("ssh=-F %s -o StrictHostKeyChecking=%s localhost//python=%s",
                                  config, policies[i], test_python ());

          error = expect_failure (f, spec);
          test_assert_error_contains (error, EXECNET_ERROR_AUTHENTICATION, "REVOKED");
          g_assert_null (strstr (error->message, "ssh-keyscan"));
          g_assert_true (g_file_get_contents (known_hosts, &after, NULL, NULL));
          g_assert_cmpstr (after, ==, before);
        }
    }
}

/* known_hosts host patterns with `!`, as OpenSSH reads them: a line whose
 * negated pattern matches the host does not apply to it, whatever else on
 * the line matches; a negated pattern that does not match changes nothing. */
static void
test_errors_negated_host_pattern (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GError) file_error = NULL;
  g_autofree char *plain = NULL;
  g_autofree char *name = NULL;
  const char *key;
  struct {
    const char *patterns;          /* HOST: the host's name in known_hosts */
    gboolean applies;
  } cases[] = {
    { "*,!HOST", FALSE },
    { "!HOST,HOST", FALSE },
    { "127.0.0.*,[127.0.0.1]:*,!HOST", FALSE },
    { "*,!other.example", TRUE },
    { "!other.example,HOST", TRUE },
  };

  REQUIRE_SSHD (f);

  g_assert_true (g_file_get_contents (f->sshd->known_hosts, &plain, NULL, NULL));
  g_strstrip (plain);
  name = g_strndup (plain, strchr (plain, ' ') - plain);
  key = strchr (plain, ' ') + 1;

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto(GStrv) parts = g_strsplit (cases[i].patterns, "HOST", -1);
      g_autofree char *patterns = g_strjoinv (name, parts);
      g_autofree char *line = g_strdup_printf ("%s %s", patterns, key);
      const char *lines[] = { line, NULL };
      g_autofree char *known_hosts = write_known_hosts (f, lines);
      g_autofree char *config = NULL;
      g_autofree char *spec = NULL;

      config = sshd_fixture_write_client_config (f->sshd, NULL, known_hosts, NULL, &file_error);
      g_assert_no_error (file_error);
      spec = g_strdup_printf ("ssh=-F %s -o StrictHostKeyChecking=yes localhost//python=%s",
                              config, test_python ());
      g_test_message ("known_hosts line: %s", line);
      if (cases[i].applies)
        test_gateway_pid (make_gateway (f, spec));
      else
        {
          g_autoptr(GError) error = expect_failure (f, spec);

          test_assert_error_contains (error, EXECNET_ERROR_AUTHENTICATION, "is not known");
        }
    }
}

/* A private key file named with -i must exist and be private. */
static void
test_errors_identity_file (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(GError) file_error = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *missing = NULL;
  g_autofree char *key = NULL;
  g_autofree char *config = NULL;
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  config = sshd_fixture_write_client_config (f->sshd, NULL, f->sshd->known_hosts, NULL, &file_error);
  g_assert_no_error (file_error);

  missing = g_build_filename (g_get_tmp_dir (), "execnet-no-such-key", NULL);
  spec = g_strdup_printf ("ssh=-F %s -i %s localhost", config, missing);
  error = expect_failure (f, spec);
  test_assert_error_contains (error, EXECNET_ERROR_AUTHENTICATION, "no such file");
  g_assert_nonnull (strstr (error->message, missing));
  g_clear_error (&error);
  g_clear_pointer (&spec, g_free);

  key = sshd_fixture_make_key (f->sshd, &file_error);
  g_assert_no_error (file_error);
  g_assert_no_errno (chmod (key, 0644));
  spec = g_strdup_printf ("ssh=-F %s -i %s localhost", config, key);
  error = expect_failure (f, spec);
  test_assert_error_contains (error, EXECNET_ERROR_AUTHENTICATION, "chmod 600");
}

/* The relaxed policies: accept-new records the key, "no" (from the config
 * file, which libssh has no getter for) lets an unknown key in. */
static void
test_errors_host_key_policies (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(GError) file_error = NULL;
  g_autofree char *known_hosts = NULL;
  g_autofree char *recorded = NULL;
  g_autofree char *config = NULL;
  g_autofree char *lax_config = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *lax_spec = NULL;

  REQUIRE_SSHD (f);

  known_hosts = sshd_fixture_write_file (f->sshd, "", &file_error);
  g_assert_no_error (file_error);
  config = sshd_fixture_write_client_config (f->sshd, NULL, known_hosts, NULL, &file_error);
  g_assert_no_error (file_error);

  spec = g_strdup_printf ("ssh=-F %s -o StrictHostKeyChecking=accept-new localhost//python=%s",
                          config, test_python ());
  test_gateway_pid (make_gateway (f, spec));
  g_assert_true (g_file_get_contents (known_hosts, &recorded, NULL, NULL));
  g_assert_nonnull (strstr (recorded, "ssh-ed25519"));

  g_clear_pointer (&known_hosts, g_free);
  known_hosts = sshd_fixture_write_file (f->sshd, "", &file_error);
  g_assert_no_error (file_error);
  lax_config = sshd_fixture_write_client_config (f->sshd, NULL, known_hosts,
                                                 "  StrictHostKeyChecking no\n", &file_error);
  g_assert_no_error (file_error);
  lax_spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=%s", lax_config, test_python ());
  test_gateway_pid (make_gateway (f, lax_spec));
}

/* A port nothing listens on: bound, then released. */
static guint16
closed_port (void)
{
  g_autoptr(GSocket) socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                            G_SOCKET_PROTOCOL_TCP, NULL);
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  guint16 port;

  g_assert_true (g_socket_bind (socket, address, FALSE, NULL));
  bound = g_socket_get_local_address (socket, NULL);
  port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  g_assert_true (g_socket_close (socket, NULL));
  return port;
}

static void
test_errors_closed_port (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;

  spec = g_strdup_printf ("ssh=-F /dev/null -p %u 127.0.0.1", closed_port ());
  error = expect_failure (f, spec);
  test_assert_error_contains (error, EXECNET_ERROR_CONNECTION_REFUSED, "127.0.0.1");
}

static void
test_errors_unresolvable (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  error = expect_failure (f, "ssh=nonexistent.invalid//ssh_config=/dev/null");
  test_assert_error_contains (error, EXECNET_ERROR_HOST_NOT_FOUND, "nonexistent.invalid");
}

static void
test_errors_no_python (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=/nonexistent",
                          f->sshd->client_config);
  error = expect_failure (f, spec);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP);
  /* What the remote shell said reached the message. */
  g_assert_nonnull (strstr (error->message, "/nonexistent"));
}

/* A server that accepts TCP connections and never says a word: the
 * listener's backlog completes the handshake, nobody ever accepts. */
static void
test_errors_connect_timeout (Fixture       *f,
                             gconstpointer  data)
{
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  gint64 start;
  gdouble elapsed;

  g_assert_true (g_socket_listener_add_address (listener, address, G_SOCKET_TYPE_STREAM,
                                                G_SOCKET_PROTOCOL_TCP, NULL, &bound, &error));
  g_assert_no_error (error);

  spec = g_strdup_printf ("ssh=-F /dev/null -p %u 127.0.0.1//connect_timeout=1",
                          g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  start = g_get_monotonic_time ();
  g_assert_null (execnet_group_make_gateway (f->group, spec, &error));
  elapsed = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
  g_test_message ("%s → %s (%.2f s)", spec, error ? error->message : "", elapsed);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
  g_assert_cmpfloat (elapsed, >=, 0.9);
  g_assert_cmpfloat (elapsed, <, 5.0);
}

static void
test_errors_bad_words (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  error = expect_failure (f, "ssh=-X somehost");
  test_assert_error_contains (error, EXECNET_ERROR_INVALID_SPEC, "-X");
}

/* /ssh/terminate: nothing the gateway started survives */

/* The processes whose parent is @parent, from /proc. */
static GArray *
child_pids (gint64 parent)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  GArray *children = g_array_new (FALSE, FALSE, sizeof (gint64));
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      g_autofree char *contents = NULL;
      const char *paren;
      gint64 ppid;
      char state;

      if (!g_ascii_isdigit (name[0]))
        continue;
      path = g_strdup_printf ("/proc/%s/stat", name);
      if (!g_file_get_contents (path, &contents, NULL, NULL))
        continue;
      paren = strrchr (contents, ')');
      if (paren != NULL &&
          sscanf (paren + 1, " %c %" G_GINT64_FORMAT, &state, &ppid) == 2 &&
          ppid == parent)
        {
          gint64 pid = g_ascii_strtoll (name, NULL, 10);

          g_array_append_val (children, pid);
        }
    }
  return children;
}

/* The per-connection processes of the fixture's sshd (its children). */
static guint
count_sshd_children (SshdFixture *sshd)
{
  g_autoptr(GArray) children = child_pids (sshd_fixture_get_pid (sshd));

  return children->len;
}

static void
assert_no_sshd_children (SshdFixture *sshd,
                         gdouble      timeout)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);
  guint count;

  while ((count = count_sshd_children (sshd)) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (count, ==, 0);
}

static void
test_terminate_no_leftovers (Fixture       *f,
                             gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;
  gint64 pids[3];
  gint64 grandchild;
  ExecnetGateway *idle;
  ExecnetGateway *busy;
  ExecnetGateway *stubborn;
  g_autoptr(ExecnetChannel) busy_channel = NULL;
  g_autoptr(ExecnetChannel) stubborn_channel = NULL;
  g_autoptr(GVariant) item = NULL;
  gint64 start;

  REQUIRE_SSHD (f);

  /* @data: the three share one connection, or each has its own */
  assert_no_sshd_children (f->sshd, 10.0);
  spec = ssh_spec (f, data != NULL ? NULL : "ssh_share=no");
  idle = make_gateway (f, spec);
  busy = make_gateway (f, spec);
  stubborn = make_gateway (f, spec);
  pids[0] = test_gateway_pid (idle);
  pids[1] = test_gateway_pid (busy);
  pids[2] = test_gateway_pid (stubborn);
  if (data != NULL)
    g_assert_cmpuint (count_sshd_children (f->sshd), ==, 1);
  else
    g_assert_cmpuint (count_sshd_children (f->sshd), >=, 3);

  /* Busy in its main thread, with a child process of its own. */
  busy_channel = test_remote_exec (busy,
                                   "import subprocess, time\n"
                                   "child = subprocess.Popen(['sleep', '1000'])\n"
                                   "channel.send(child.pid)\n"
                                   "time.sleep(1000)\n");
  item = test_receive (busy_channel);
  grandchild = g_variant_get_int64 (item);

  /* Deaf to SIGTERM: only the forced end gets it. */
  stubborn_channel = test_remote_exec (stubborn,
                                       "import signal, time\n"
                                       "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                       "channel.send(1)\n"
                                       "while True:\n"
                                       "    time.sleep(0.05)\n");
  g_clear_pointer (&item, g_variant_unref);
  item = test_receive (stubborn_channel);

  g_test_message ("interpreters %" G_GINT64_FORMAT " (idle), %" G_GINT64_FORMAT
                  " (busy), %" G_GINT64_FORMAT " (deaf to SIGTERM), child %" G_GINT64_FORMAT,
                  pids[0], pids[1], pids[2], grandchild);
  start = g_get_monotonic_time ();
  execnet_group_terminate (f->group, 2.0, &error);
  g_test_message ("terminate: %.2f s (%s)", (g_get_monotonic_time () - start) / 1e6,
                  error ? error->message : "clean");
  g_assert_cmpfloat ((g_get_monotonic_time () - start) / 1e6, <, 15.0);
  g_assert_cmpuint (execnet_group_get_size (f->group), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
    test_assert_pid_gone (pids[i], 10.0);
  test_assert_pid_gone (grandchild, 10.0);
  assert_no_sshd_children (f->sshd, 10.0);
}

/* A gateway that exits on its own closes its SSH connection too. */
static void
test_terminate_exit (Fixture       *f,
                     gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateway;
  gint64 pid;

  REQUIRE_SSHD (f);

  spec = ssh_spec (f, NULL);
  gateway = make_gateway (f, spec);
  pid = test_gateway_pid (gateway);
  execnet_gateway_exit (gateway);
  g_assert_true (execnet_gateway_join (gateway, TEST_TIMEOUT, &error));
  g_assert_no_error (error);
  test_assert_pid_gone (pid, 10.0);
  assert_no_sshd_children (f->sshd, 10.0);
}

static void
test_killed_mid_frame (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *spec = NULL;

  REQUIRE_SSHD (f);

  spec = ssh_spec (f, NULL);
  test_assert_killed_mid_frame (make_gateway (f, spec));
}

/* /ssh/via: ssh= from a relay gateway, with the system ssh client there */

/* The parent of process @pid, or -1 when it is gone. */
static gint64
parent_pid (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/stat", pid);
  g_autofree char *contents = NULL;
  const char *paren;
  gint64 ppid;
  char state;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return -1;
  paren = strrchr (contents, ')');
  if (paren == NULL || sscanf (paren + 1, " %c %" G_GINT64_FORMAT, &state, &ppid) != 2)
    return -1;
  return ppid;
}

/* The gateway's interpreter runs under the fixture's sshd; the ssh client
 * that carries it is a child of the relay's interpreter, not of us. */
static void
test_via_relay (Fixture       *f,
                gconstpointer  data)
{
  g_autofree char *ssh = g_find_program_in_path ("ssh");
  g_autofree char *relay_spec = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *address = NULL;
  g_autoptr(GVariant) clients = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *relay, *gateway;
  gint64 relay_pid, pid, client;

  REQUIRE_SSHD (f);
  if (ssh == NULL)
    {
      g_test_skip ("no ssh client program for the relay to run");
      return;
    }

  relay_spec = g_strdup_printf ("popen//id=relay//python=%s", test_python ());
  relay = make_gateway (f, relay_spec);
  relay_pid = test_gateway_pid (relay);
  spec = ssh_spec (f, "id=far//via=relay");
  gateway = make_gateway (f, spec);
  address = g_strdup_printf ("%s via relay", spec);
  g_assert_nonnull (strstr (execnet_gateway_get_remote_address (gateway), "via relay"));

  pid = test_gateway_pid (gateway);
  g_assert_cmpint (parent_pid (pid), !=, (gint64) getpid ());
  g_assert_cmpint (parent_pid (pid), !=, relay_pid);
  g_assert_cmpint (parent_pid (parent_pid (pid)), ==, (gint64) sshd_fixture_get_pid (f->sshd));

  /* Exactly one ssh client runs under the relay. */
  clients = remote_value (relay,
                          "import os\n"
                          "me = str(os.getpid())\n"
                          "found = []\n"
                          "for p in os.listdir('/proc'):\n"
                          "    try:\n"
                          "        stat = open('/proc/%s/stat' % p).read()\n"
                          "    except (OSError, ValueError):\n"
                          "        continue\n"
                          "    fields = stat.rsplit(')', 1)[1].split()\n"
                          "    if fields[1] == me and stat.split(' (', 1)[1].startswith('ssh)'):\n"
                          "        found.append(int(p))\n"
                          "channel.send(found)\n");
  g_assert_cmpuint (g_variant_n_children (clients), ==, 1);
  {
    g_autoptr(GVariant) boxed = g_variant_get_child_value (clients, 0);
    g_autoptr(GVariant) value = g_variant_get_variant (boxed);

    client = g_variant_get_int64 (value);
  }

  /* Values cross both hops intact. */
  test_assert_remote_output (gateway);
  g_assert_cmpint (remote_int (gateway, "channel.send(6 * 7)"), ==, 42);

  execnet_group_terminate (f->group, 2.0, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (execnet_group_get_size (f->group), ==, 0);
  test_assert_pid_gone (pid, 10.0);
  test_assert_pid_gone (client, 10.0);
  test_assert_pid_gone (relay_pid, 10.0);
  assert_no_sshd_children (f->sshd, 10.0);
}

/* A failing ssh through a relay: the error says what ssh said, in bounded
 * time; the relay lives on and keeps nothing of the attempt. */
static void
test_via_relay_errors (Fixture       *f,
                       gconstpointer  data)
{
  g_autofree char *ssh = g_find_program_in_path ("ssh");
  g_autofree char *relay_spec = NULL;
  g_autofree char *refused = NULL;
  g_autofree char *wrong_key = NULL;
  g_autofree char *key = NULL;
  g_autofree char *config = NULL;
  g_autoptr(GError) file_error = NULL;
  const char *specs[2];
  ExecnetGateway *relay;
  gint64 relay_pid;

  REQUIRE_SSHD (f);
  if (ssh == NULL)
    {
      g_test_skip ("no ssh client program for the relay to run");
      return;
    }

  relay_spec = g_strdup_printf ("popen//id=relay//python=%s", test_python ());
  relay = make_gateway (f, relay_spec);
  relay_pid = test_gateway_pid (relay);

  refused = g_strdup_printf ("ssh=-F /dev/null -o BatchMode=yes -p %u 127.0.0.1//via=relay",
                             closed_port ());
  key = sshd_fixture_make_key (f->sshd, &file_error);
  g_assert_no_error (file_error);
  config = sshd_fixture_write_client_config (f->sshd, key, NULL, NULL, &file_error);
  g_assert_no_error (file_error);
  wrong_key = g_strdup_printf ("ssh=localhost//ssh_config=%s//via=relay", config);
  specs[0] = refused;
  specs[1] = wrong_key;

  for (guint i = 0; i < G_N_ELEMENTS (specs); i++)
    {
      g_autoptr(GError) error = NULL;
      gint64 start = g_get_monotonic_time ();
      gdouble elapsed;

      g_assert_null (execnet_group_make_gateway (f->group, specs[i], &error));
      elapsed = (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC;
      g_assert_nonnull (error);
      g_test_message ("%s → %s (%.2f s)", specs[i], error->message, elapsed);
      g_assert_cmpfloat (elapsed, <, ERROR_DEADLINE);
      g_assert_nonnull (strstr (error->message, "via=relay"));
      g_assert_nonnull (strstr (error->message, i == 0 ? "refused" : "ermission denied"));
      g_assert_cmpuint (execnet_group_get_size (f->group), ==, 1);
      /* The relay is still of use. */
      g_assert_cmpint (remote_int (relay, "channel.send(1)"), ==, 1);
    }

  test_terminate (f->group);
  test_assert_pid_gone (relay_pid, 10.0);
  assert_no_sshd_children (f->sshd, 10.0);
}

/* /ssh/share: gateways with the same ssh words share one connection */

/* Makes @n gateways of @spec in @group at once. */
static void
make_together (ExecnetGroup    *group,
               const char      *spec,
               guint            n,
               ExecnetGateway **gateways)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  Concurrent c = { .group = group, .wanted = n };

  g_assert_cmpuint (n, <=, MAX_TOGETHER);
  g_main_context_push_thread_default (context);
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new (spec, NULL);

      execnet_group_make_gateway_for_xspec_async (group, xspec, NULL, on_gateway_made, &c);
    }
  test_iterate_until (context, all_made, &c, 2 * TEST_TIMEOUT);
  g_main_context_pop_thread_default (context);
  memcpy (gateways, c.gateways, n * sizeof (ExecnetGateway *));
}

/* The processes below @pid, @pid included. */
static GArray *
process_tree (gint64 pid)
{
  GArray *tree = g_array_new (FALSE, FALSE, sizeof (gint64));

  g_array_append_val (tree, pid);
  for (guint i = 0; i < tree->len; i++)
    {
      g_autoptr(GArray) children = child_pids (g_array_index (tree, gint64, i));

      g_array_append_vals (tree, children->data, children->len);
    }
  return tree;
}

/* The per-connection process of the fixture's sshd; there must be one. */
static gint64
sshd_connection_pid (SshdFixture *sshd)
{
  g_autoptr(GArray) children = child_pids (sshd_fixture_get_pid (sshd));

  g_assert_cmpuint (children->len, ==, 1);
  return g_array_index (children, gint64, 0);
}

static void
test_share_one_connection (Fixture       *f,
                           gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(GHashTable) pids = g_hash_table_new (g_int64_hash, g_int64_equal);
  ExecnetGateway *gateways[4];
  gint64 pid_values[G_N_ELEMENTS (gateways)];
  g_autoptr(GError) error = NULL;

  REQUIRE_SSHD (f);
  assert_no_sshd_children (f->sshd, 10.0);

  spec = ssh_spec (f, NULL);
  make_together (f->group, spec, G_N_ELEMENTS (gateways), gateways);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    {
      pid_values[i] = remote_int (gateways[i], "import os\nchannel.send(os.getpid())");
      g_hash_table_add (pids, &pid_values[i]);
    }
  /* Four interpreters, one connection, one login. */
  g_assert_cmpuint (g_hash_table_size (pids), ==, G_N_ELEMENTS (gateways));
  g_assert_cmpuint (count_sshd_children (f->sshd), ==, 1);

  /* The connection closes with the last gateway on it. */
  execnet_group_terminate (f->group, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    test_assert_pid_gone (pid_values[i], 10.0);
  assert_no_sshd_children (f->sshd, 10.0);
}

/* Ending one gateway, politely and by force, leaves the others working. */
static void
test_share_terminate_one (Fixture       *f,
                          gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(ExecnetGroup) other = execnet_group_new ();
  g_autoptr(ExecnetChannel) channel = NULL;
  g_autoptr(GVariant) item = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateways[2];
  ExecnetGateway *polite;
  ExecnetGateway *stubborn;
  gint64 polite_pid;
  gint64 stubborn_pid;

  REQUIRE_SSHD (f);
  assert_no_sshd_children (f->sshd, 10.0);

  spec = ssh_spec (f, NULL);
  make_together (f->group, spec, G_N_ELEMENTS (gateways), gateways);
  polite = make_gateway (f, spec);
  polite_pid = test_gateway_pid (polite);
  stubborn = execnet_group_make_gateway (other, spec, &error);
  g_assert_no_error (error);
  stubborn_pid = test_gateway_pid (stubborn);
  g_assert_cmpuint (count_sshd_children (f->sshd), ==, 1);

  execnet_gateway_exit (polite);
  g_assert_true (execnet_gateway_join (polite, TEST_TIMEOUT, &error));
  g_assert_no_error (error);
  test_assert_pid_gone (polite_pid, 10.0);

  /* Deaf to SIGTERM and busy: only the forced end gets it. */
  channel = test_remote_exec (stubborn,
                              "import signal, time\n"
                              "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                              "channel.send(1)\n"
                              "while True:\n"
                              "    time.sleep(0.05)\n");
  item = test_receive (channel);
  execnet_group_terminate (other, 0.5, NULL);
  g_assert_cmpuint (execnet_group_get_size (other), ==, 0);
  test_assert_pid_gone (stubborn_pid, 10.0);

  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    g_assert_cmpint (remote_int (gateways[i], "channel.send(6 * 7)"), ==, 42);
  g_assert_cmpuint (count_sshd_children (f->sshd), ==, 1);
}

/* A gateway whose interpreter dies fails alone. */
static void
test_share_sibling_dies (Fixture       *f,
                         gconstpointer  data)
{
  g_autofree char *spec = NULL;
  ExecnetGateway *gateways[3];

  REQUIRE_SSHD (f);
  assert_no_sshd_children (f->sshd, 10.0);

  spec = ssh_spec (f, NULL);
  make_together (f->group, spec, G_N_ELEMENTS (gateways), gateways);
  test_assert_killed_mid_frame (gateways[1]);
  g_assert_true (execnet_gateway_is_alive (gateways[0]));
  g_assert_true (execnet_gateway_is_alive (gateways[2]));
  g_assert_cmpint (remote_int (gateways[0], "channel.send(1)"), ==, 1);
  g_assert_cmpint (remote_int (gateways[2], "channel.send(2)"), ==, 2);
  g_assert_cmpuint (count_sshd_children (f->sshd), ==, 1);
}

/* A connection that dies takes all its gateways, each with an error that
 * says so. */
static void
test_share_connection_lost (Fixture       *f,
                            gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autoptr(GArray) tree = NULL;
  ExecnetGateway *gateways[3];
  ExecnetChannel *channels[G_N_ELEMENTS (gateways)];

  REQUIRE_SSHD (f);
  assert_no_sshd_children (f->sshd, 10.0);

  spec = ssh_spec (f, NULL);
  make_together (f->group, spec, G_N_ELEMENTS (gateways), gateways);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    {
      g_autoptr(GVariant) item = NULL;

      channels[i] = test_remote_exec (gateways[i], "channel.send(1)\nchannel.receive()");
      item = test_receive (channels[i]);
    }

  /* The server's side of the connection, and everything under it. */
  tree = process_tree (sshd_connection_pid (f->sshd));
  for (guint i = 0; i < tree->len; i++)
    kill ((pid_t) g_array_index (tree, gint64, i), SIGKILL);

  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) item = NULL;

      item = execnet_channel_receive (channels[i], TEST_TIMEOUT, &error);
      g_assert_null (item);
      g_test_message ("gateway %u: %s", i, error->message);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_GATEWAY_CLOSED);
      g_assert_false (execnet_gateway_is_alive (gateways[i]));
      g_object_unref (channels[i]);
    }
  assert_no_sshd_children (f->sshd, 10.0);
}

/* A server that allows fewer sessions per connection than are asked for:
 * without the spawner (@data), the gateway it refuses makes a connection
 * of its own; with it, one session and the spawner's serve them all. A
 * server that allows one session, taken by a first gateway alone,
 * refuses the spawner's. */
static void
test_share_max_sessions (Fixture       *f,
                         gconstpointer  data)
{
  const char *variant = data;
  g_autoptr(SshdFixture) strict = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *spec = NULL;
  ExecnetGateway *gateways[3];
  guint connections;

  REQUIRE_SSHD (f);

  strict = sshd_fixture_new_full (g_str_equal (variant, "one-session") ? "MaxSessions 1\n"
                                                                       : "MaxSessions 2\n",
                                  &error);
  g_assert_no_error (error);
  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=%s%s",
                          strict->client_config, test_python (),
                          g_str_equal (variant, "no-spawner") ? "//ssh_spawner=no" : "");
  if (g_str_equal (variant, "one-session"))
    {
      gateways[0] = make_gateway (f, spec);
      make_together (f->group, spec, G_N_ELEMENTS (gateways) - 1, gateways + 1);
    }
  else
    make_together (f->group, spec, G_N_ELEMENTS (gateways), gateways);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    g_assert_cmpint (remote_int (gateways[i], "channel.send(5)"), ==, 5);
  connections = count_sshd_children (strict);
  g_test_message ("%u connections", connections);
  if (g_str_equal (variant, "spawner"))
    g_assert_cmpuint (connections, ==, 1);
  else
    g_assert_cmpuint (connections, >=, 2);

  execnet_group_terminate (f->group, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  assert_no_sshd_children (strict, 10.0);
}

/* Sends @signal to the sshd processes serving the fixture's one
 * connection (not to the interpreters below them). */
static void
signal_sshd_connection (SshdFixture *sshd,
                        int          signal)
{
  g_autoptr(GArray) tree = process_tree (sshd_connection_pid (sshd));

  for (guint i = 0; i < tree->len; i++)
    {
      gint64 pid = g_array_index (tree, gint64, i);
      g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/comm", pid);
      g_autofree char *comm = NULL;

      if (g_file_get_contents (path, &comm, NULL, NULL) && g_str_has_prefix (comm, "sshd"))
        kill ((pid_t) pid, signal);
    }
}

typedef struct
{
  gboolean  done;
  GError   *error;
} Made;

static void
on_made_expecting_error (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  Made *made = user_data;
  g_autoptr(ExecnetGateway) gateway = NULL;

  gateway = execnet_group_make_gateway_for_xspec_finish (EXECNET_GROUP (source), result,
                                                         &made->error);
  g_assert_null (gateway);
  made->done = TRUE;
}

static gboolean
is_made (gpointer data)
{
  return ((Made *) data)->done;
}

/* Cancelling a gateway whose session is still opening on a shared
 * connection: the wait ends at once, though the server does not answer,
 * and the connection, its other gateway and later ones are unharmed. The
 * server allows two sessions per connection: the one given up on must be
 * closed once the server opens it, or the later gateway finds no room. */
static void
test_share_cancel_opening (Fixture       *f,
                           gconstpointer  data)
{
  g_autoptr(SshdFixture) strict = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(GMainContext) context = g_main_context_new ();
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GSource) cancel = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *first;
  ExecnetGateway *later;
  Made made = { FALSE, NULL };
  gint64 started;

  REQUIRE_SSHD (f);

  strict = sshd_fixture_new_full ("MaxSessions 2\n", &error);
  g_assert_no_error (error);
  spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=%s",
                          strict->client_config, test_python ());
  first = make_gateway (f, spec);
  g_assert_cmpint (remote_int (first, "channel.send(1)"), ==, 1);

  /* A server that reads nothing: the session cannot open until it goes on. */
  signal_sshd_connection (strict, SIGSTOP);
  g_main_context_push_thread_default (context);
  xspec = execnet_xspec_new (spec, NULL);
  started = g_get_monotonic_time ();
  execnet_group_make_gateway_for_xspec_async (f->group, xspec, cancellable,
                                              on_made_expecting_error, &made);
  cancel = g_timeout_source_new (300);
  g_source_set_callback (cancel, test_cancel_soon, cancellable, NULL);
  g_source_attach (cancel, context);
  test_iterate_until (context, is_made, &made, TEST_TIMEOUT);
  g_main_context_pop_thread_default (context);
  g_test_message ("cancelled after %.2f s: %s",
                  (g_get_monotonic_time () - started) / (gdouble) G_USEC_PER_SEC,
                  made.error->message);
  g_assert_error (made.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&made.error);
  signal_sshd_connection (strict, SIGCONT);

  /* The connection goes on serving the first gateway and a new one. */
  g_assert_cmpuint (execnet_group_get_size (f->group), ==, 1);
  g_assert_cmpint (remote_int (first, "channel.send(2)"), ==, 2);
  later = make_gateway (f, spec);
  g_assert_cmpint (remote_int (later, "channel.send(3)"), ==, 3);
  g_assert_cmpuint (count_sshd_children (strict), ==, 1);

  execnet_group_terminate (f->group, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  assert_no_sshd_children (strict, 10.0);
}

/* ssh_share=no: a connection of its own. */
static void
test_share_opt_out (Fixture       *f,
                    gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autofree char *bad = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateways[2];

  REQUIRE_SSHD (f);
  assert_no_sshd_children (f->sshd, 10.0);

  spec = ssh_spec (f, "ssh_share=no");
  make_together (f->group, spec, G_N_ELEMENTS (gateways), gateways);
  g_assert_cmpint (remote_int (gateways[0], "channel.send(1)"), ==, 1);
  g_assert_cmpint (remote_int (gateways[1], "channel.send(2)"), ==, 2);
  g_assert_cmpuint (count_sshd_children (f->sshd), ==, 2);

  bad = ssh_spec (f, "ssh_share=maybe");
  g_assert_null (execnet_group_make_gateway (f->group, bad, &error));
  test_assert_error_contains (error, EXECNET_ERROR_INVALID_SPEC, "ssh_share=maybe");
}

/* /ssh/spawner: further gateways on a connection started by its spawner */

static void
on_report (ExecnetSshSpawnerReport  report,
           guint                    id,
           int                      status,
           const char              *data,
           gsize                    len,
           gpointer                 user_data)
{
  GString *log = user_data;

  g_string_append_printf (log, "%d/%u/%d/", report, id, status);
  g_string_append_len (log, data, len);
  g_string_append_c (log, ';');
}

/* What the master says to the spawner, and how it reads any bytes back. */
static void
test_spawner_protocol (void)
{
  static const char reports[] =
    "ready /tmp/execnet-ssh-1/s\n"
    "err 3 5\nab\ncd"
    "exit 3 768\n"
    "err 4 0\n"
    "fail no room here\n";
  static const char expected[] =
    "0/0/0//tmp/execnet-ssh-1/s;2/3/0/ab\ncd;3/3/768/;2/4/0/;1/0/0/no room here;";
  static const char *garbage[] = {
    "hello\n", "exit 3\n", "exit x 1\n", "exit 3 1 2\n", "err 3 99999999\n",
    "exit 3 -1\n", "ready relative\n", "exit 99999999999 0\n",
  };
  static const char words[] = "fork\0/opt/py3\0-B\0-u\0-c\0import sys;exec(eval(sys.stdin.readline()))";
  g_autofree char *header = g_strdup_printf ("spawn %10u %10u\n", 7, (guint) sizeof words - 1);
  g_autoptr(ExecnetXSpec) plain = execnet_xspec_new ("ssh=h", NULL);
  g_autoptr(ExecnetXSpec) named = execnet_xspec_new ("ssh=h//python=/opt/py3//dont_write_bytecode", NULL);
  g_autoptr(ExecnetXSpec) wrapped = execnet_xspec_new ("ssh=h//python=env X=1 python3", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) request = NULL;
  g_autofree char *python = NULL;
  const char *data;
  gsize len;

  /* The spawner runs a single-word python=, else the default. */
  g_assert_null (_execnet_ssh_spawner_python (plain));
  g_assert_null (_execnet_ssh_spawner_python (wrapped));
  python = _execnet_ssh_spawner_python (named);
  g_assert_cmpstr (python, ==, "/opt/py3");

  /* fork for its own interpreter, default or exec for the others */
  request = _execnet_ssh_build_spawner_request (named, 7, python, &error);
  g_assert_no_error (error);
  data = g_bytes_get_data (request, &len);
  g_assert_cmpuint (strlen (header), ==, 28);
  g_assert_cmpuint (len, >, 28);
  g_assert_cmpmem (data, 28, header, 28);
  g_assert_cmpmem (data + 28, len - 28, words, sizeof words - 1);
  g_clear_pointer (&request, g_bytes_unref);
  request = _execnet_ssh_build_spawner_request (plain, 8, python, &error);
  data = g_bytes_get_data (request, &len);
  g_assert_true (g_str_has_prefix (data + 28, "default"));
  g_assert_cmpstr (data + 28 + 8, ==, "python3");
  g_clear_pointer (&request, g_bytes_unref);
  request = _execnet_ssh_build_spawner_request (plain, 8, NULL, &error);
  g_assert_true (g_str_has_prefix ((const char *) g_bytes_get_data (request, NULL) + 28, "fork"));
  g_clear_pointer (&request, g_bytes_unref);
  request = _execnet_ssh_build_spawner_request (wrapped, 9, NULL, &error);
  data = g_bytes_get_data (request, &len);
  g_assert_cmpstr (data + 28, ==, "exec");
  g_assert_cmpstr (data + 28 + 5, ==, "env");

  /* Whole, and a byte at a time: the same reports. */
  for (gsize step = 1; step <= sizeof reports; step += sizeof reports - 2)
    {
      g_autoptr(ExecnetSshSpawnerReader) reader = _execnet_ssh_spawner_reader_new ();
      g_autoptr(GString) log = g_string_new (NULL);

      for (gsize at = 0; at < sizeof reports - 1; at += step)
        g_assert_true (_execnet_ssh_spawner_reader_feed (reader, reports + at,
                                                         MIN (step, sizeof reports - 1 - at),
                                                         on_report, log));
      g_assert_cmpstr (log->str, ==, expected);
    }

  /* Anything else ends the reading, after the reports before it. */
  for (gsize i = 0; i < G_N_ELEMENTS (garbage); i++)
    {
      g_autoptr(ExecnetSshSpawnerReader) reader = _execnet_ssh_spawner_reader_new ();
      g_autoptr(GString) log = g_string_new (NULL);
      g_autofree char *bytes = g_strconcat ("exit 1 0\n", garbage[i], NULL);

      g_assert_false (_execnet_ssh_spawner_reader_feed (reader, bytes, strlen (bytes),
                                                        on_report, log));
      g_assert_cmpstr (log->str, ==, "3/1/0/;");
      g_assert_false (_execnet_ssh_spawner_reader_feed (reader, "exit 2 0\n", 9, on_report, log));
      g_assert_cmpstr (log->str, ==, "3/1/0/;");
    }
  {
    g_autoptr(ExecnetSshSpawnerReader) reader = _execnet_ssh_spawner_reader_new ();
    static const char nul[] = "exit 1\0 0\n";

    g_assert_false (_execnet_ssh_spawner_reader_feed (reader, nul, sizeof nul - 1, on_report, NULL));
  }
  {
    g_autoptr(ExecnetSshSpawnerReader) reader = _execnet_ssh_spawner_reader_new ();
    g_autofree char *endless = g_strnfill (8192, 'x');

    g_assert_false (_execnet_ssh_spawner_reader_feed (reader, endless, 8192, on_report, NULL));
  }
}

/* A fixture whose sessions have TMPDIR set to a directory of the test's,
 * where the spawner makes its socket's directory; %NULL (the test
 * skipped) where no sshd can run. */
static SshdFixture *
spawner_sshd (const char  *extra_lines,
              char       **tmpdir,
              char       **spec)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *lines = NULL;
  SshdFixture *sshd;

  *tmpdir = g_dir_make_tmp ("execnet-spawner-XXXXXX", &error);
  g_assert_no_error (error);
  lines = g_strdup_printf ("SetEnv TMPDIR=%s\n%s", *tmpdir, extra_lines ? extra_lines : "");
  sshd = sshd_fixture_new_full (lines, &error);
  if (g_error_matches (error, G_IO_ERROR, SSHD_FIXTURE_ERROR_UNAVAILABLE))
    {
      g_test_skip (error->message);
      g_rmdir (*tmpdir);
      return NULL;
    }
  g_assert_no_error (error);
  *spec = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=%s",
                           sshd->client_config, test_python ());
  return sshd;
}

/* Removes @tmpdir and the spawner directories left in it; returns
 * whether all of it is gone. */
static gboolean
remove_spawner_dirs (const char *tmpdir)
{
  g_autoptr(GDir) handle = g_dir_open (tmpdir, 0, NULL);
  const char *name;

  while (handle != NULL && (name = g_dir_read_name (handle)) != NULL)
    {
      g_autofree char *dir = g_build_filename (tmpdir, name, NULL);
      g_autofree char *socket = g_build_filename (dir, "s", NULL);

      g_unlink (socket);
      g_rmdir (dir);
    }
  return g_rmdir (tmpdir) == 0;
}

static guint
count_entries (const char *dir)
{
  g_autoptr(GDir) handle = g_dir_open (dir, 0, NULL);
  guint n = 0;

  g_assert_nonnull (handle);
  while (g_dir_read_name (handle) != NULL)
    n++;
  return n;
}

static void
assert_dir_empties (const char *dir,
                    gdouble     timeout)
{
  gint64 deadline = g_get_monotonic_time () + (gint64) (timeout * G_USEC_PER_SEC);

  while (count_entries (dir) > 0 && g_get_monotonic_time () < deadline)
    g_usleep (10 * 1000);
  g_assert_cmpuint (count_entries (dir), ==, 0);
}

static gboolean
is_spawner (gint64 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/cmdline", pid);
  g_autofree char *cmdline = NULL;
  gsize len;

  if (!g_file_get_contents (path, &cmdline, &len, NULL))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (cmdline[i] == '\0')
      cmdline[i] = ' ';
  return strstr (cmdline, "execnet-ssh spawner") != NULL;
}

/* pid, parent and process group of each gateway's interpreter */
typedef struct
{
  gint64 pid;
  gint64 ppid;
  gint64 pgid;
} Interpreter;

static void
describe_interpreter (ExecnetGateway *gateway,
                      Interpreter    *interpreter)
{
  g_autoptr(GVariant) item = remote_value (gateway,
                                           "import os\n"
                                           "channel.send((os.getpid(), os.getppid(), os.getpgid(0)))");

  g_variant_get (item, "(xxx)", &interpreter->pid, &interpreter->ppid, &interpreter->pgid);
}

/* Makes @n gateways of @spec together in @group and describes their
 * interpreters; returns the pid of the spawner that started any of them,
 * 0 if none did. */
static gint64
make_described (ExecnetGroup    *group,
                const char      *spec,
                guint            n,
                ExecnetGateway **gateways,
                Interpreter     *interpreters)
{
  gint64 spawner = 0;

  make_together (group, spec, n, gateways);
  for (guint i = 0; i < n; i++)
    {
      describe_interpreter (gateways[i], &interpreters[i]);
      if (is_spawner (interpreters[i].ppid))
        {
          g_assert_true (spawner == 0 || spawner == interpreters[i].ppid);
          spawner = interpreters[i].ppid;
          g_assert_cmpint (interpreters[i].pgid, ==, interpreters[i].pid);
        }
    }
  return spawner;
}

/* Gateways made together on one connection: all but perhaps the first are
 * children of the spawner, each in a process group of its own; all of it
 * ends with the gateways, the socket's directory included. */
static void
test_spawner_starts_others (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(SshdFixture) sshd = NULL;
  g_autofree char *tmpdir = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateways[4];
  Interpreter interpreters[G_N_ELEMENTS (gateways)];
  gint64 spawner = 0;
  guint spawned = 0;

  REQUIRE_SSHD (f);
  sshd = spawner_sshd (NULL, &tmpdir, &spec);
  if (sshd == NULL)
    return;
  spawner = make_described (f->group, spec, G_N_ELEMENTS (gateways), gateways, interpreters);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    if (interpreters[i].ppid == spawner)
      spawned++;
  g_test_message ("%u of %u gateways started by the spawner (pid %" G_GINT64_FORMAT ")",
                  spawned, (guint) G_N_ELEMENTS (gateways), spawner);
  g_assert_cmpuint (spawned, >=, G_N_ELEMENTS (gateways) - 1);
  {
    /* Its command line is a loader; the source came on its input. */
    g_autofree char *path = g_strdup_printf ("/proc/%" G_GINT64_FORMAT "/cmdline", spawner);
    g_autofree char *cmdline = NULL;
    gsize len;

    g_assert_true (g_file_get_contents (path, &cmdline, &len, NULL));
    g_assert_cmpuint (len, <, 1024);
  }
  g_assert_cmpuint (count_sshd_children (sshd), ==, 1);
  g_assert_cmpuint (count_entries (tmpdir), ==, 1);

  /* Still a gateway like any other. */
  g_assert_cmpint (remote_int (gateways[G_N_ELEMENTS (gateways) - 1],
                               "channel.send(sum(range(100)))"), ==, 4950);

  execnet_group_terminate (f->group, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    test_assert_pid_gone (interpreters[i].pid, 10.0);
  test_assert_pid_gone (spawner, 10.0);
  assert_no_sshd_children (sshd, 10.0);
  assert_dir_empties (tmpdir, 10.0);
  g_assert_true (remove_spawner_dirs (tmpdir));
}

/* A server that does not forward to Unix sockets: every gateway gets a
 * session, and the spawner started for nothing ends. ssh_spawner=no: the
 * same, by choice. */
static void
test_spawner_unavailable (Fixture       *f,
                          gconstpointer  data)
{
  gboolean opt_out = g_str_equal (data, "opt-out");
  g_autoptr(SshdFixture) sshd = NULL;
  g_autofree char *tmpdir = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *base = NULL;
  g_autofree char *bad = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateways[3];
  Interpreter interpreters[G_N_ELEMENTS (gateways)];

  REQUIRE_SSHD (f);
  sshd = spawner_sshd (opt_out ? NULL : "AllowStreamLocalForwarding no\n", &tmpdir, &base);
  if (sshd == NULL)
    return;
  spec = g_strconcat (base, opt_out ? "//ssh_spawner=no" : "", NULL);
  g_assert_cmpint (make_described (f->group, spec, G_N_ELEMENTS (gateways), gateways,
                                   interpreters), ==, 0);
  g_assert_cmpuint (count_sshd_children (sshd), ==, 1);
  assert_dir_empties (tmpdir, 10.0);

  bad = g_strdup_printf ("%s//ssh_spawner=maybe", spec);
  g_assert_null (execnet_group_make_gateway (f->group, bad, &error));
  test_assert_error_contains (error, EXECNET_ERROR_INVALID_SPEC, "ssh_spawner=maybe");

  g_clear_error (&error);
  execnet_group_terminate (f->group, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  assert_no_sshd_children (sshd, 10.0);
  g_rmdir (tmpdir);
}

/* More gateways than the server allows sessions on one connection: with
 * the spawner they all share one; each with a session of its own
 * (ssh_spawner=no), a connection takes 10, and the rest make another. */
static void
test_spawner_many (Fixture       *f,
                   gconstpointer  data)
{
  gboolean opt_out = g_str_equal (data, "opt-out");
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateways[MAX_TOGETHER];
  Interpreter interpreters[G_N_ELEMENTS (gateways)];
  gint64 spawner;
  guint spawned = 0;

  REQUIRE_SSHD (f);
  assert_no_sshd_children (f->sshd, 10.0);
  spec = ssh_spec (f, opt_out ? "ssh_spawner=no" : NULL);
  spawner = make_described (f->group, spec, G_N_ELEMENTS (gateways), gateways, interpreters);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    if (spawner != 0 && interpreters[i].ppid == spawner)
      spawned++;
  g_test_message ("%u gateways, %u started by the spawner, %u connections",
                  (guint) G_N_ELEMENTS (gateways), spawned, count_sshd_children (f->sshd));
  if (opt_out)
    {
      g_assert_cmpint (spawner, ==, 0);
      g_assert_cmpuint (count_sshd_children (f->sshd), ==, 2);
    }
  else
    {
      g_assert_cmpuint (spawned, >=, G_N_ELEMENTS (gateways) - 1);
      g_assert_cmpuint (count_sshd_children (f->sshd), ==, 1);
    }

  execnet_group_terminate (f->group, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    test_assert_pid_gone (interpreters[i].pid, 10.0);
  assert_no_sshd_children (f->sshd, 10.0);
}

/* A gateway that names another interpreter than the spawner's: the
 * spawner runs that one, or says why it cannot. */
static void
test_spawner_other_python (Fixture       *f,
                           gconstpointer  data)
{
  g_autofree char *spec = NULL;
  g_autofree char *wrapped = NULL;
  g_autofree char *missing = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateways[2];
  Interpreter interpreter;
  gint64 start;

  REQUIRE_SSHD (f);
  assert_no_sshd_children (f->sshd, 10.0);
  spec = ssh_spec (f, NULL);
  make_together (f->group, spec, G_N_ELEMENTS (gateways), gateways);

  wrapped = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=env EXECNET_TEST_MARK=1 %s",
                             f->sshd->client_config, test_python ());
  describe_interpreter (make_gateway (f, wrapped), &interpreter);
  g_assert_true (is_spawner (interpreter.ppid));   /* env replaced itself */

  missing = g_strdup_printf ("ssh=localhost//ssh_config=%s//python=/nonexistent/python3",
                             f->sshd->client_config);
  start = g_get_monotonic_time ();
  g_assert_null (execnet_group_make_gateway (f->group, missing, &error));
  g_test_message ("%s (%.2f s)", error->message,
                  (g_get_monotonic_time () - start) / (gdouble) G_USEC_PER_SEC);
  test_assert_error_contains (error, EXECNET_ERROR_BOOTSTRAP, "interpreter was not found");
  test_assert_error_contains (error, EXECNET_ERROR_BOOTSTRAP, "/nonexistent/python3");
  g_assert_cmpuint (count_sshd_children (f->sshd), ==, 1);
  g_assert_cmpint (remote_int (gateways[0], "channel.send(1)"), ==, 1);
}

/* The spawner killed: the gateways it started go on, later ones get
 * sessions, and terminating still ends everything. */
static void
test_spawner_dies (Fixture       *f,
                   gconstpointer  data)
{
  g_autoptr(SshdFixture) sshd = NULL;
  g_autofree char *tmpdir = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(GError) error = NULL;
  ExecnetGateway *gateways[3];
  Interpreter interpreters[G_N_ELEMENTS (gateways)];
  Interpreter later;
  gint64 spawner = 0;

  REQUIRE_SSHD (f);
  sshd = spawner_sshd (NULL, &tmpdir, &spec);
  if (sshd == NULL)
    return;
  spawner = make_described (f->group, spec, G_N_ELEMENTS (gateways), gateways, interpreters);
  g_assert_cmpint (spawner, >, 0);
  kill ((pid_t) spawner, SIGKILL);
  test_assert_pid_gone (spawner, 10.0);

  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    g_assert_cmpint (remote_int (gateways[i], "channel.send(7)"), ==, 7);
  describe_interpreter (make_gateway (f, spec), &later);
  g_assert_false (is_spawner (later.ppid));
  g_assert_cmpuint (count_sshd_children (sshd), ==, 1);

  execnet_group_terminate (f->group, TEST_TIMEOUT, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
    test_assert_pid_gone (interpreters[i].pid, 10.0);
  test_assert_pid_gone (later.pid, 10.0);
  assert_no_sshd_children (sshd, 10.0);
  /* Killed, the spawner could not clean up after itself. */
  g_assert_cmpuint (count_entries (tmpdir), ==, 1);
  g_assert_true (remove_spawner_dirs (tmpdir));
}

/* The master killed: the spawner and everything it started end. */
static void
test_spawner_master_dies (void)
{
  g_autoptr(SshdFixture) sshd = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *tmpdir = NULL;
  g_autofree char *spec = NULL;
  g_autofree char *pids_path = NULL;
  g_autofree char *pids = NULL;
  g_auto(GStrv) lines = NULL;

  if (g_test_subprocess ())
    {
      ExecnetGroup *group = execnet_group_new ();
      ExecnetGateway *gateways[3];
      Interpreter interpreters[G_N_ELEMENTS (gateways)];
      g_autoptr(GString) list = g_string_new (NULL);

      g_assert_cmpint (make_described (group, g_getenv ("EXECNET_TEST_SPEC"), G_N_ELEMENTS (gateways),
                                       gateways, interpreters), >, 0);
      for (guint i = 0; i < G_N_ELEMENTS (gateways); i++)
        g_string_append_printf (list, "%" G_GINT64_FORMAT "\n%" G_GINT64_FORMAT "\n",
                                interpreters[i].pid, interpreters[i].ppid);
      g_assert_true (g_file_set_contents (g_getenv ("EXECNET_TEST_PIDS"), list->str, -1, NULL));
      raise (SIGKILL);
    }

  sshd = spawner_sshd (NULL, &tmpdir, &spec);
  if (sshd == NULL)
    return;
  pids_path = g_build_filename (sshd->dir, "pids", NULL);
  g_setenv ("EXECNET_TEST_SPEC", spec, TRUE);
  g_setenv ("EXECNET_TEST_PIDS", pids_path, TRUE);
  g_test_trap_subprocess (NULL, (guint64) 120 * G_USEC_PER_SEC, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_assert_true (g_file_get_contents (pids_path, &pids, NULL, &error));
  g_assert_no_error (error);
  lines = g_strsplit (g_strstrip (pids), "\n", 0);
  g_assert_cmpuint (g_strv_length (lines), ==, 6);
  for (guint i = 0; lines[i] != NULL; i++)
    test_assert_pid_gone (g_ascii_strtoll (lines[i], NULL, 10), 20.0);
  assert_no_sshd_children (sshd, 20.0);
  assert_dir_empties (tmpdir, 20.0);
  g_assert_true (remove_spawner_dirs (tmpdir));
}

/* Writes @size bytes of a pattern that starts at @seed into @dir/@name. */
static void
write_pattern_file (const char *dir,
                    const char *name,
                    gsize       size,
                    guint8      seed,
                    mode_t      mode)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  g_autofree guint8 *data = g_malloc (size + 1);
  g_autoptr(GError) error = NULL;

  for (gsize i = 0; i < size; i++)
    data[i] = (guint8) (seed + i * 7);
  g_assert_cmpint (g_mkdir_with_parents (parent, 0755), ==, 0);
  g_file_set_contents (path, (const char *) data, size, &error);
  g_assert_no_error (error);
  g_assert_cmpint (chmod (path, mode), ==, 0);
}

/* Asserts that @a and @b are files of the same contents and mode. */
static void
assert_same_file (const char *a,
                  const char *b)
{
  g_autofree char *ca = NULL, *cb = NULL;
  gsize na = 0, nb = 0;
  struct stat sa, sb;

  g_assert_true (g_file_get_contents (a, &ca, &na, NULL));
  g_assert_true (g_file_get_contents (b, &cb, &nb, NULL));
  g_assert_cmpmem (ca, na, cb, nb);
  g_assert_cmpint (stat (a, &sa), ==, 0);
  g_assert_cmpint (stat (b, &sb), ==, 0);
  g_assert_cmpuint (sa.st_mode, ==, sb.st_mode);
  g_assert_cmpint (sa.st_mtim.tv_sec, ==, sb.st_mtim.tv_sec);
}

static void
count_done (ExecnetRSync   *rsync,
            ExecnetGateway *gateway,
            const char     *path,
            guint64         done,
            guint64         total,
            guint          *files)
{
  if (done == total)
    (*files)++;
}

/* RSync to an ssh gateway: a file larger than one chunk, modes, a
 * symlink; then only the changed file goes again, and DELETE removes what
 * the source lost. The sshd runs on this machine, so the target is read
 * back directly. */
static void
test_rsync_tree (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *base = NULL;
  g_autofree char *src = NULL;
  g_autofree char *dst = NULL;
  g_autofree char *spec = NULL;
  g_autoptr(ExecnetRSync) rsync = NULL;
  ExecnetGateway *gateway;
  guint files = 0;
  const char *names[] = { "big.bin", "sub/run.sh", "sub/empty" };

  REQUIRE_SSHD (f);

  base = g_dir_make_tmp ("execnet-ssh-rsync-XXXXXX", &error);
  g_assert_no_error (error);
  src = g_build_filename (base, "src", NULL);
  dst = g_build_filename (base, "dst", NULL);
  write_pattern_file (src, "big.bin", 3 * 1024 * 1024 + 17, 1, 0640);
  write_pattern_file (src, "sub/run.sh", 100, 2, 0755);
  write_pattern_file (src, "sub/empty", 0, 3, 0600);
  {
    g_autofree char *link = g_build_filename (src, "sub", "to-big", NULL);

    g_assert_cmpint (symlink ("../big.bin", link), ==, 0);
  }

  spec = ssh_spec (f, NULL);
  gateway = make_gateway (f, spec);
  rsync = execnet_rsync_new (src);
  g_signal_connect (rsync, "progress", G_CALLBACK (count_done), &files);
  g_assert_true (execnet_rsync_add_target (rsync, gateway, dst, EXECNET_RSYNC_DELETE, &error));
  g_assert_no_error (error);

  g_assert_true (execnet_rsync_send (rsync, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (files, ==, G_N_ELEMENTS (names));
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    {
      g_autofree char *a = g_build_filename (src, names[i], NULL);
      g_autofree char *b = g_build_filename (dst, names[i], NULL);

      assert_same_file (a, b);
    }
  {
    g_autofree char *link = g_build_filename (dst, "sub", "to-big", NULL);
    g_autofree char *text = g_file_read_link (link, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (text, ==, "../big.bin");
  }

  /* One file changes (same size, other bytes and time), one goes away. */
  write_pattern_file (src, "sub/run.sh", 100, 9, 0700);
  {
    g_autofree char *empty = g_build_filename (src, "sub", "empty", NULL);
    g_autofree char *changed = g_build_filename (src, "sub", "run.sh", NULL);
    struct timespec times[2] = { { 1500000000, 0 }, { 1500000000, 0 } };

    g_assert_cmpint (g_unlink (empty), ==, 0);
    g_assert_cmpint (utimensat (AT_FDCWD, changed, times, 0), ==, 0);
  }
  files = 0;
  g_assert_true (execnet_rsync_send (rsync, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (files, ==, 1);
  {
    g_autofree char *a = g_build_filename (src, "sub", "run.sh", NULL);
    g_autofree char *b = g_build_filename (dst, "sub", "run.sh", NULL);
    g_autofree char *gone = g_build_filename (dst, "sub", "empty", NULL);

    assert_same_file (a, b);
    g_assert_false (g_file_test (gone, G_FILE_TEST_EXISTS));
  }

  test_remove_tree (base);
}

int
main (int    argc,
      char **argv)
{
  int result;

  sshd_fixture_prepare_environment ();
  /* A command case may exit before reading the line written to it. */
  signal (SIGPIPE, SIG_IGN);
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (args_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ssh/args/parse/%" G_GSIZE_FORMAT, i);
      g_test_add_data_func (path, &args_cases[i], test_args_parse);
    }
  for (gsize i = 0; i < G_N_ELEMENTS (args_bad_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ssh/args/bad/%" G_GSIZE_FORMAT, i);
      g_test_add_data_func (path, args_bad_cases[i], test_args_bad);
    }
  g_test_add_func ("/ssh/args/proxy-jump", test_args_proxy_jump);
  for (gsize i = 0; i < G_N_ELEMENTS (command_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/ssh/command/%" G_GSIZE_FORMAT, i);
      g_test_add_data_func (path, &command_cases[i], test_command_case);
    }
  g_test_add_func ("/ssh/command/group-cleanup", test_command_group_cleanup);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/ssh/gateway/seed", test_gateway_seed);
  ADD ("/ssh/gateway/config-flag", test_gateway_config_flag);
  ADD ("/ssh/gateway/quiet-stderr", test_gateway_quiet_stderr);
  ADD ("/ssh/gateway/options", test_gateway_options);
  ADD ("/ssh/gateway/proxy", test_gateway_proxy);
  ADD ("/ssh/gateway/concurrent", test_gateway_concurrent);
  ADD ("/ssh/values/roundtrip", test_values_roundtrip);
  ADD ("/ssh/remote-output", test_remote_output);
  ADD ("/ssh/transfer/64mib", test_transfer_64mib);
  ADD ("/ssh/transfer/rekey", test_transfer_rekey);
  ADD ("/ssh/errors/wrong-key", test_errors_wrong_key);
  ADD ("/ssh/errors/unknown-host-key", test_errors_unknown_host_key);
  ADD ("/ssh/errors/changed-host-key", test_errors_changed_host_key);
  ADD ("/ssh/errors/host-key-policies", test_errors_host_key_policies);
  ADD ("/ssh/errors/revoked-host-key", test_errors_revoked_host_key);
  ADD ("/ssh/errors/negated-host-pattern", test_errors_negated_host_pattern);
  ADD ("/ssh/errors/identity-file", test_errors_identity_file);
  ADD ("/ssh/errors/closed-port", test_errors_closed_port);
  ADD ("/ssh/errors/unresolvable", test_errors_unresolvable);
  ADD ("/ssh/errors/no-python", test_errors_no_python);
  ADD ("/ssh/errors/connect-timeout", test_errors_connect_timeout);
  ADD ("/ssh/errors/bad-words", test_errors_bad_words);
  g_test_add ("/ssh/terminate/no-leftovers", Fixture, NULL, fixture_setup,
              test_terminate_no_leftovers, fixture_teardown);
  g_test_add ("/ssh/terminate/no-leftovers-shared", Fixture, "shared", fixture_setup,
              test_terminate_no_leftovers, fixture_teardown);
  ADD ("/ssh/share/one-connection", test_share_one_connection);
  ADD ("/ssh/share/terminate-one", test_share_terminate_one);
  ADD ("/ssh/share/sibling-dies", test_share_sibling_dies);
  ADD ("/ssh/share/connection-lost", test_share_connection_lost);
  ADD ("/ssh/share/opt-out", test_share_opt_out);
  g_test_add ("/ssh/share/max-sessions", Fixture, "spawner", fixture_setup,
              test_share_max_sessions, fixture_teardown);
  g_test_add ("/ssh/share/max-sessions-no-spawner", Fixture, "no-spawner", fixture_setup,
              test_share_max_sessions, fixture_teardown);
  g_test_add ("/ssh/share/max-sessions-one", Fixture, "one-session", fixture_setup,
              test_share_max_sessions, fixture_teardown);
  ADD ("/ssh/share/cancel-opening", test_share_cancel_opening);
  ADD ("/ssh/terminate/exit", test_terminate_exit);
  g_test_add_func ("/ssh/spawner/protocol", test_spawner_protocol);
  ADD ("/ssh/spawner/starts-others", test_spawner_starts_others);
  g_test_add ("/ssh/spawner/forwarding-refused", Fixture, "refused", fixture_setup,
              test_spawner_unavailable, fixture_teardown);
  g_test_add ("/ssh/spawner/opt-out", Fixture, "opt-out", fixture_setup,
              test_spawner_unavailable, fixture_teardown);
  ADD ("/ssh/spawner/other-python", test_spawner_other_python);
  g_test_add ("/ssh/spawner/many", Fixture, "spawner", fixture_setup,
              test_spawner_many, fixture_teardown);
  g_test_add ("/ssh/spawner/many-opt-out", Fixture, "opt-out", fixture_setup,
              test_spawner_many, fixture_teardown);
  ADD ("/ssh/spawner/dies", test_spawner_dies);
  g_test_add_func ("/ssh/spawner/master-dies", test_spawner_master_dies);
  ADD ("/ssh/lost/killed-mid-frame", test_killed_mid_frame);
  ADD ("/ssh/via/relay", test_via_relay);
  ADD ("/ssh/via/errors", test_via_relay_errors);
  ADD ("/ssh/rsync/tree", test_rsync_tree);

#undef ADD

  result = g_test_run ();

  g_clear_pointer (&shared_sshd, sshd_fixture_free);
  /* Best effort: a spawner may still be ending. */
  if (shared_tmpdir != NULL)
    remove_spawner_dirs (shared_tmpdir);
  g_free (shared_tmpdir);
  g_clear_error (&shared_sshd_error);
  return result;
}
