/* sshd-fixture.c: a private OpenSSH server on 127.0.0.1 for tests and benchmarks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * The fixture runs the distribution's own sshd, unmodified, as a child
 * process with a configuration generated in a fresh temporary directory:
 * its own host key, one authorized client key, a pid file and a log there,
 * listening on 127.0.0.1 only, on a port that was free a moment before.
 * Nothing outside that directory is touched except /run/sshd, the
 * privilege separation directory sshd insists on when started as root
 * (created if missing, never removed: it is a system directory).
 *
 * Readiness is decided by the server itself: the fixture connects until
 * sshd answers with its protocol banner, or sshd exits, or 10 s pass. The
 * port is chosen by binding port 0 and releasing it, so another process can
 * take it in between; then sshd exits at once ("Address already in use")
 * and the fixture starts over with a new port, a few times.
 */
#include "sshd-fixture.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <glib/gstdio.h>

#define SSHD_PATH "/usr/sbin/sshd"
#define SSH_KEYGEN_NAME "ssh-keygen"
#define PRIVSEP_DIR "/run/sshd"
#define READY_TIMEOUT_US (10 * G_USEC_PER_SEC)
#define STOP_TIMEOUT_MS 5000
#define START_ATTEMPTS 3

/**
 * sshd_fixture_prepare_environment:
 *
 * Removes what would let the user's own SSH setup leak into a test: the
 * agent socket (libssh and ssh would offer the agent's keys). Call it from
 * main() before any thread starts; setenv is not thread-safe.
 */
void
sshd_fixture_prepare_environment (void)
{
  g_unsetenv ("SSH_AUTH_SOCK");
  g_unsetenv ("SSH_AGENT_PID");
}

static gboolean
run_quietly (const char * const  *argv,
             GError             **error)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *err_text = NULL;

  proc = g_subprocess_newv (argv, G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                  G_SUBPROCESS_FLAGS_STDERR_PIPE, error);
  if (proc == NULL)
    return FALSE;
  if (!g_subprocess_communicate_utf8 (proc, NULL, NULL, NULL, &err_text, error))
    return FALSE;
  if (!g_subprocess_get_successful (proc))
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   "%s failed: %s", argv[0], err_text ? err_text : "");
      return FALSE;
    }
  return TRUE;
}

static char *
unique_path (SshdFixture *self,
             const char  *stem)
{
  g_autofree char *name = g_strdup_printf ("%s-%u", stem, ++self->n_files);

  return g_build_filename (self->dir, name, NULL);
}

static char *
generate_key (SshdFixture  *self,
              const char   *path,
              const char   *comment,
              GError      **error)
{
  const char *argv[] = {
    SSH_KEYGEN_NAME, "-q", "-t", "ed25519", "-N", "", "-C", comment,
    "-f", path, NULL
  };

  if (!run_quietly (argv, error))
    return NULL;
  return g_strdup (path);
}

/**
 * sshd_fixture_make_key:
 * @self: the fixture
 * @error: return location for an error
 *
 * Generates a fresh ed25519 key pair in the fixture's directory that the
 * server does not accept.
 *
 * Returns: (transfer full): the path of the private key
 */
char *
sshd_fixture_make_key (SshdFixture  *self,
                       GError      **error)
{
  g_autofree char *path = unique_path (self, "stranger-key");

  return generate_key (self, path, "execnet-test-stranger", error);
}

/**
 * sshd_fixture_write_file:
 * @self: the fixture
 * @contents: the text to write
 * @error: return location for an error
 *
 * Writes @contents to a new file in the fixture's directory.
 *
 * Returns: (transfer full): the path of the file
 */
char *
sshd_fixture_write_file (SshdFixture  *self,
                         const char   *contents,
                         GError      **error)
{
  g_autofree char *path = unique_path (self, "file");

  if (!g_file_set_contents (path, contents, -1, error))
    return NULL;
  return g_steal_pointer (&path);
}

static char *
client_config_text (SshdFixture *self,
                    const char  *identity_file,
                    const char  *known_hosts,
                    const char  *first_lines)
{
  /* ssh_config takes the first value it sees for most keywords, in OpenSSH
   * and in libssh alike, so lines put first override the defaults after
   * them. IdentityFile accumulates instead, hence its own parameter. */
  return g_strdup_printf ("Host localhost sshtest\n"
                          "%s"
                          "  HostName 127.0.0.1\n"
                          "  Port %u\n"
                          "  User %s\n"
                          "  IdentityFile %s\n"
                          "  IdentitiesOnly yes\n"
                          "  UserKnownHostsFile %s\n"
                          "  GlobalKnownHostsFile /dev/null\n"
                          "  StrictHostKeyChecking yes\n"
                          "  PasswordAuthentication no\n"
                          "  KbdInteractiveAuthentication no\n"
                          "  BatchMode yes\n",
                          first_lines ? first_lines : "",
                          self->port, self->user,
                          identity_file ? identity_file : self->client_key,
                          known_hosts ? known_hosts : self->known_hosts);
}

/**
 * sshd_fixture_write_client_config:
 * @self: the fixture
 * @identity_file: (nullable): the only key the client offers; %NULL for
 *   the key the server accepts
 * @known_hosts: (nullable): the known_hosts file; %NULL for the one that
 *   holds this server's key
 * @first_lines: (nullable): more ssh_config lines, each indented and
 *   ending in a newline, that take precedence over the fixture's defaults
 *   (for example `"  StrictHostKeyChecking no\n"`)
 * @error: return location for an error
 *
 * Writes a variant of the fixture's client config for `localhost` and
 * `sshtest`.
 *
 * Returns: (transfer full): the path of the new config
 */
char *
sshd_fixture_write_client_config (SshdFixture  *self,
                                  const char   *identity_file,
                                  const char   *known_hosts,
                                  const char   *first_lines,
                                  GError      **error)
{
  g_autofree char *text = client_config_text (self, identity_file,
                                              known_hosts, first_lines);

  return sshd_fixture_write_file (self, text, error);
}

static gboolean
pick_free_port (guint16  *port,
                GError  **error)
{
  g_autoptr(GSocket) sock = NULL;
  g_autoptr(GInetAddress) loopback = NULL;
  g_autoptr(GSocketAddress) any = NULL;
  g_autoptr(GSocketAddress) bound = NULL;

  sock = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                       G_SOCKET_PROTOCOL_TCP, error);
  if (sock == NULL)
    return FALSE;
  loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  any = g_inet_socket_address_new (loopback, 0);
  if (!g_socket_bind (sock, any, FALSE, error))
    return FALSE;
  bound = g_socket_get_local_address (sock, error);
  if (bound == NULL)
    return FALSE;
  *port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
  return g_socket_close (sock, error);
}

static gboolean
write_server_files (SshdFixture  *self,
                    const char   *server_lines,
                    GError      **error)
{
  g_autofree char *host_pub = NULL;
  g_autofree char *client_pub = NULL;
  g_autofree char *host_pub_path = NULL;
  g_autofree char *client_pub_path = NULL;
  g_autofree char *authorized = NULL;
  g_autofree char *known = NULL;
  g_autofree char *config = NULL;
  g_autofree char *pid_file = NULL;

  host_pub_path = g_strconcat (self->host_key, ".pub", NULL);
  client_pub_path = g_strconcat (self->client_key, ".pub", NULL);
  if (!g_file_get_contents (host_pub_path, &host_pub, NULL, error) ||
      !g_file_get_contents (client_pub_path, &client_pub, NULL, error))
    return FALSE;
  g_strstrip (host_pub);

  authorized = g_build_filename (self->dir, "authorized_keys", NULL);
  if (!g_file_set_contents (authorized, client_pub, -1, error))
    return FALSE;

  known = g_strdup_printf ("[127.0.0.1]:%u %s\n[localhost]:%u %s\n",
                           self->port, host_pub, self->port, host_pub);
  if (!g_file_set_contents (self->known_hosts, known, -1, error))
    return FALSE;

  pid_file = g_build_filename (self->dir, "sshd.pid", NULL);
  /* sshd, too, takes the first value it sees for a keyword. */
  config = g_strdup_printf ("%s"
                            "ListenAddress 127.0.0.1\n"
                            "Port %u\n"
                            "HostKey %s\n"
                            "PidFile %s\n"
                            "AuthorizedKeysFile %s\n"
                            "StrictModes no\n"
                            "UsePAM no\n"
                            "PubkeyAuthentication yes\n"
                            "PasswordAuthentication no\n"
                            "KbdInteractiveAuthentication no\n"
                            "PermitRootLogin prohibit-password\n"
                            "PermitUserEnvironment no\n"
                            "UseDNS no\n"
                            "PrintMotd no\n"
                            "X11Forwarding no\n"
                            "MaxStartups 200\n"
                            "MaxSessions 50\n"
                            "LogLevel VERBOSE\n",
                            server_lines ? server_lines : "",
                            self->port, self->host_key, pid_file, authorized);
  if (!g_file_set_contents (self->sshd_config, config, -1, error))
    return FALSE;

  g_free (self->client_config);
  self->client_config = g_build_filename (self->dir, "ssh_config", NULL);
  g_clear_pointer (&config, g_free);
  config = client_config_text (self, NULL, NULL, NULL);
  return g_file_set_contents (self->client_config, config, -1, error);
}

/* Runs in the forked child, before exec. */
static void
child_setup (gpointer user_data)
{
  /* Its own process group: nothing sshd signals "to its group" can reach
   * the test runner, and a ^C in a terminal does not race our SIGTERM. */
  setpgid (0, 0);
  /* A test that aborts never runs its teardown; sshd goes with it. (The
   * signal comes when the thread that started sshd ends: the fixture is
   * made in the main thread.) */
  prctl (PR_SET_PDEATHSIG, SIGTERM);
}

static GSubprocess *
spawn_sshd (SshdFixture  *self,
            GError      **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;

  g_unlink (self->log_path);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_set_stderr_file_path (launcher, self->log_path);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  return g_subprocess_launcher_spawn (launcher, error,
                                      SSHD_PATH, "-D", "-e",
                                      "-f", self->sshd_config, NULL);
}

/* Whether sshd answered with an SSH banner on its port. */
static gboolean
sshd_answers (guint16 port)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  GInputStream *in;
  char banner[8] = { 0, };
  gsize got = 0;

  g_socket_client_set_timeout (client, 2);
  conn = g_socket_client_connect_to_host (client, "127.0.0.1", port, NULL, NULL);
  if (conn == NULL)
    return FALSE;
  in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  if (!g_input_stream_read_all (in, banner, 4, &got, NULL, NULL) || got < 4)
    return FALSE;
  return memcmp (banner, "SSH-", 4) == 0;
}

static gboolean
wait_until_ready (SshdFixture  *self,
                  gboolean     *port_taken,
                  GError      **error)
{
  gint64 deadline = g_get_monotonic_time () + READY_TIMEOUT_US;

  *port_taken = FALSE;
  while (g_get_monotonic_time () < deadline)
    {
      if (g_subprocess_get_identifier (self->sshd) == NULL)
        {
          g_autofree char *log = sshd_fixture_get_log (self);

          *port_taken = log != NULL && strstr (log, "Address already in use") != NULL;
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                       "sshd exited before accepting connections; its log:\n%s",
                       log ? log : "");
          return FALSE;
        }
      if (sshd_answers (self->port))
        return TRUE;
      /* Polling readiness is the one place a pause belongs: sshd offers
       * no other signal that its listening socket is up. */
      g_usleep (10 * 1000);
    }

  g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
               "sshd did not accept connections on 127.0.0.1:%u within 10 s",
               self->port);
  return FALSE;
}

static void
on_sshd_exited (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  gboolean *done = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *done = TRUE;
}

static gboolean
on_stop_timeout (gpointer user_data)
{
  gboolean *timed_out = user_data;

  *timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

/* SIGTERM exactly our sshd, wait for it (SIGKILL after 5 s), in a private
 * main context so the caller's loops see nothing of it. */
static void
stop_sshd (SshdFixture *self)
{
  g_autoptr(GMainContext) context = NULL;
  g_autoptr(GSource) timeout = NULL;
  gboolean done = FALSE;
  gboolean timed_out = FALSE;

  if (self->sshd == NULL)
    return;

  context = g_main_context_new ();
  g_main_context_push_thread_default (context);

  g_subprocess_send_signal (self->sshd, SIGTERM);
  g_subprocess_wait_async (self->sshd, NULL, on_sshd_exited, &done);
  timeout = g_timeout_source_new (STOP_TIMEOUT_MS);
  g_source_set_callback (timeout, on_stop_timeout, &timed_out, NULL);
  g_source_attach (timeout, context);

  while (!done && !timed_out)
    g_main_context_iteration (context, TRUE);
  if (!done)
    {
      g_subprocess_force_exit (self->sshd);
      while (!done)
        g_main_context_iteration (context, TRUE);
    }
  g_source_destroy (timeout);

  g_main_context_pop_thread_default (context);
  g_clear_object (&self->sshd);
}

static gboolean
check_available (GError **error)
{
  g_autofree char *keygen = NULL;

  if (!g_file_test (SSHD_PATH, G_FILE_TEST_IS_EXECUTABLE))
    {
      g_set_error (error, G_IO_ERROR, SSHD_FIXTURE_ERROR_UNAVAILABLE,
                   SSHD_PATH " is not installed (Debian: apt-get install openssh-server)");
      return FALSE;
    }
  keygen = g_find_program_in_path (SSH_KEYGEN_NAME);
  if (keygen == NULL)
    {
      g_set_error (error, G_IO_ERROR, SSHD_FIXTURE_ERROR_UNAVAILABLE,
                   "ssh-keygen is not installed (Debian: apt-get install openssh-client)");
      return FALSE;
    }
  /* sshd started by root refuses to run without its privilege separation
   * directory; a package install creates it at boot, containers often lack it. */
  if (geteuid () == 0 && !g_file_test (PRIVSEP_DIR, G_FILE_TEST_IS_DIR) &&
      g_mkdir_with_parents (PRIVSEP_DIR, 0755) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, SSHD_FIXTURE_ERROR_UNAVAILABLE,
                   "cannot create %s, which sshd needs: %s",
                   PRIVSEP_DIR, g_strerror (saved_errno));
      return FALSE;
    }
  return TRUE;
}

/**
 * sshd_fixture_new:
 * @error: return location for an error; %SSHD_FIXTURE_ERROR_UNAVAILABLE in
 *   %G_IO_ERROR when sshd cannot run on this machine
 *
 * Generates keys and configuration in a new temporary directory, starts
 * sshd on 127.0.0.1 and returns once it answers.
 *
 * Returns: (transfer full) (nullable): the running fixture
 */
SshdFixture *
sshd_fixture_new (GError **error)
{
  return sshd_fixture_new_full (NULL, error);
}

/**
 * sshd_fixture_new_full:
 * @server_lines: (nullable): sshd_config lines, each ending in a newline,
 *   that take precedence over the fixture's own (`"SetEnv PATH=/x\n"`)
 * @error: return location for an error
 *
 * Like sshd_fixture_new(), with a server configured differently.
 *
 * Returns: (transfer full) (nullable): the running fixture
 */
SshdFixture *
sshd_fixture_new_full (const char  *server_lines,
                       GError     **error)
{
  g_autoptr(SshdFixture) self = NULL;
  g_autofree char *host_key = NULL;
  g_autofree char *client_key = NULL;
  int attempt;

  if (!check_available (error))
    return NULL;

  self = g_new0 (SshdFixture, 1);
  self->dir = g_dir_make_tmp ("execnet-sshd-XXXXXX", error);
  if (self->dir == NULL)
    return NULL;
  self->user = g_strdup (g_get_user_name ());
  self->known_hosts = g_build_filename (self->dir, "known_hosts", NULL);
  self->sshd_config = g_build_filename (self->dir, "sshd_config", NULL);
  self->log_path = g_build_filename (self->dir, "sshd.log", NULL);

  host_key = g_build_filename (self->dir, "host_ed25519", NULL);
  client_key = g_build_filename (self->dir, "client_ed25519", NULL);
  self->host_key = generate_key (self, host_key, "execnet-test-host", error);
  if (self->host_key == NULL)
    return NULL;
  self->client_key = generate_key (self, client_key, "execnet-test-client", error);
  if (self->client_key == NULL)
    return NULL;

  for (attempt = 1; ; attempt++)
    {
      g_autoptr(GError) local_error = NULL;
      gboolean port_taken = FALSE;

      if (!pick_free_port (&self->port, error) ||
          !write_server_files (self, server_lines, error))
        return NULL;
      self->sshd = spawn_sshd (self, error);
      if (self->sshd == NULL)
        return NULL;
      if (wait_until_ready (self, &port_taken, &local_error))
        break;
      stop_sshd (self);
      if (!port_taken || attempt == START_ATTEMPTS)
        {
          g_propagate_error (error, g_steal_pointer (&local_error));
          return NULL;
        }
    }

  return g_steal_pointer (&self);
}

/**
 * sshd_fixture_get_pid:
 * @self: the fixture
 *
 * Returns: the process id of the listening sshd, 0 once stopped
 */
GPid
sshd_fixture_get_pid (SshdFixture *self)
{
  const char *id = self->sshd ? g_subprocess_get_identifier (self->sshd) : NULL;

  return id ? (GPid) g_ascii_strtoll (id, NULL, 10) : 0;
}

/**
 * sshd_fixture_get_log:
 * @self: the fixture
 *
 * Returns: (transfer full) (nullable): what sshd has logged so far
 */
char *
sshd_fixture_get_log (SshdFixture *self)
{
  char *text = NULL;

  if (!g_file_get_contents (self->log_path, &text, NULL, NULL))
    return NULL;
  return text;
}

static void
remove_directory (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) &&
          !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        remove_directory (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

/**
 * sshd_fixture_free:
 * @self: (transfer full): the fixture
 *
 * Stops sshd (SIGTERM to that one process, then waits for it) and removes
 * the fixture's directory.
 */
void
sshd_fixture_free (SshdFixture *self)
{
  if (self == NULL)
    return;
  stop_sshd (self);
  if (self->dir != NULL && g_getenv ("EXECNET_KEEP_SSHD_DIR") == NULL)
    remove_directory (self->dir);
  g_free (self->dir);
  g_free (self->user);
  g_free (self->client_key);
  g_free (self->client_config);
  g_free (self->known_hosts);
  g_free (self->sshd_config);
  g_free (self->log_path);
  g_free (self->host_key);
  g_free (self);
}
