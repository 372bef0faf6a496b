/* execnet-ssh-connect.c: from an `ssh=` spec to a running remote command
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "execnet-ssh-args.h"
#include "execnet-ssh-private.h"

/* Everything here runs in the thread the transport starts for each open,
 * and blocks: libssh in blocking mode, with its per-call timeout set to
 * what is left of the connect_timeout= budget before each step. Cancelling
 * the open shuts the socket down under libssh, which ends the step at once.
 *
 * Steps, each with its own error:
 *   1. options: the spec's words over the ssh config files (-F / ssh_config=,
 *      else ~/.ssh/config and /etc/ssh/ssh_config), the way OpenSSH ranks
 *      them: command line first, then the first value found in the files;
 *   2. TCP: we resolve and connect ourselves with GIO, unless a proxy
 *      command is configured, so that "no such host", "refused" and
 *      "timed out" are told apart from GIO's errors rather than from
 *      libssh's message text; libssh gets the socket (SSH_OPTIONS_FD);
 *   3. SSH handshake and host key check against known_hosts;
 *   4. authentication without prompts: ssh-agent, then key files;
 *   5. a session channel running the interpreter command.
 * A gateway whose ssh words match those of a connection already made (or
 * being made) skips steps 2 to 4: its channel is opened on that one. */

#define DEFAULT_CONNECT_TIMEOUT 30.0

typedef struct
{
  ExecnetXSpec *xspec;         /* (unowned) */
  ExecnetSshArgs *args;        /* (owned) */
  ssh_session session;         /* (owned) (nullable) */
  int socket_fd;               /* (owned) -1 if none */
  gint64 deadline;             /* monotonic, in microseconds */
  gdouble timeout;             /* the budget, for messages */
  gboolean may_spawn;          /* ssh_spawner= is not no */
  char *host;                  /* (owned) the host after the config's HostName */
  char *user;                  /* (owned) */
  guint port;
  char *address;               /* (owned) user@destination:port */
  char *proxy;                 /* (owned) (nullable) the proxy command libssh runs */
  char *config_identity;       /* (owned) (nullable) the first identity the config gives */
  GCancellable *cancellable;   /* (unowned) (nullable) */
  gulong cancelled_id;         /* on_cancelled() connected to @cancellable */
} Connect;

/* Any thread, when the open is cancelled: libssh cannot be interrupted,
 * but a socket shut down under it ends whatever it waits for at once. */
static void
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  shutdown (GPOINTER_TO_INT (user_data), SHUT_RDWR);
}

static void
connect_clear (Connect *c)
{
  if (c->cancelled_id != 0)
    g_cancellable_disconnect (c->cancellable, c->cancelled_id);
  if (c->session != NULL)
    {
      ssh_disconnect (c->session);
      ssh_free (c->session);
    }
  if (c->socket_fd >= 0)
    close (c->socket_fd);
  g_clear_pointer (&c->args, _execnet_ssh_args_free);
  g_free (c->host);
  g_free (c->user);
  g_free (c->address);
  g_free (c->proxy);
  g_free (c->config_identity);
}

static char *
libssh_string (ssh_session              session,
               enum ssh_options_e       option)
{
  char *value = NULL;
  char *copy;

  if (ssh_options_get (session, option, &value) != SSH_OK || value == NULL)
    return NULL;
  copy = g_strdup (value);
  ssh_string_free_char (value);
  return copy;
}

static char *
expand_home (const char *path)
{
  if (path[0] == '~' && (path[1] == '/' || path[1] == '\0'))
    return g_build_filename (g_get_home_dir (), path + 1, NULL);
  return g_strdup (path);
}

/* What is left of the budget, in microseconds, at least 1 ms. */
static gint64
remaining_us (Connect *c)
{
  gint64 left = c->deadline - g_get_monotonic_time ();

  return MAX (left, 1000);
}

static gboolean
deadline_passed (Connect *c)
{
  /* libssh's timers and ours differ by a little; a step that failed within
   * 50 ms of the deadline failed because of it. */
  return g_get_monotonic_time () >= c->deadline - 50 * 1000;
}

/* Gives libssh's next blocking step what is left of the budget. */
static void
set_step_timeout (Connect *c)
{
  gint64 left = remaining_us (c);
  long seconds = (long) (left / G_USEC_PER_SEC);
  long usec = (long) (left % G_USEC_PER_SEC);

  ssh_options_set (c->session, SSH_OPTIONS_TIMEOUT, &seconds);
  ssh_options_set (c->session, SSH_OPTIONS_TIMEOUT_USEC, &usec);
}

/* Any thread. */
void
_execnet_ssh_set_timed_out (GError     **error,
                            const char  *during,
                            const char  *address,
                            gdouble      timeout)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
               "ssh: %s %s did not complete within %g s; the host may be down, "
               "filtered by a firewall, or not an SSH server (raise the limit "
               "with connect_timeout=SECONDS in the spec)",
               during, address, timeout);
}

static void
set_timed_out (Connect     *c,
               const char  *during,
               GError     **error)
{
  _execnet_ssh_set_timed_out (error, during, c->address, c->timeout);
}

static gboolean
read_timeout_key (ExecnetXSpec  *xspec,
                  Connect       *c,
                  GError       **error)
{
  const char *text = execnet_xspec_get (xspec, "connect_timeout");
  gdouble value;
  char *end = NULL;

  c->timeout = c->args->connect_timeout > 0 ? c->args->connect_timeout
                                            : DEFAULT_CONNECT_TIMEOUT;
  if (text == NULL)
    return TRUE;

  value = g_ascii_strtod (text, &end);
  if (end == text || *end != '\0' || !isfinite (value) || value <= 0)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "connect_timeout=%s: expected a positive number of seconds", text);
      return FALSE;
    }
  c->timeout = value;
  return TRUE;
}

/* A private key named with -i must exist, and, as OpenSSH insists, must
 * not be accessible to anyone but its owner: libssh would use it anyway. */
static gboolean
check_identity_file (const char  *path,
                     GError     **error)
{
  g_autofree char *expanded = expand_home (path);
  struct stat st;

  if (stat (expanded, &st) != 0)
    {
      int saved_errno = errno;

      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                   "ssh: cannot use the identity file “%s” given with -i: %s",
                   expanded, saved_errno == ENOENT ? "no such file" : g_strerror (saved_errno));
      return FALSE;
    }
  if (st.st_uid == getuid () && (st.st_mode & 077) != 0)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                   "ssh: the private key “%s” is accessible by other users (permissions "
                   "%04o), so it is not used, as ssh would not use it; make it private "
                   "with “chmod 600 %s”",
                   expanded, (guint) (st.st_mode & 07777), expanded);
      return FALSE;
    }

  return TRUE;
}

/* Step 1. */
static gboolean
apply_options (ExecnetXSpec  *xspec,
               Connect       *c,
               GError       **error)
{
  ExecnetSshArgs *args = c->args;
  const char *config = args->config_file ? args->config_file
                                         : execnet_xspec_get (xspec, "ssh_config");
  g_autofree char *config_path = NULL;
  int yes = 1;
  int no = 0;

  _execnet_ssh_log_set_verbosity (c->session);

  if (ssh_options_set (c->session, SSH_OPTIONS_HOST, args->destination) != SSH_OK)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "ssh: “%s” is not a valid host name", args->destination);
      return FALSE;
    }
  /* Set before the config is read: the first User wins, as in OpenSSH. */
  if (args->user != NULL)
    ssh_options_set (c->session, SSH_OPTIONS_USER, args->user);

  if (config != NULL && *config != '\0')
    {
      /* Only this file, as with ssh -F (/dev/null: no config at all). */
      config_path = expand_home (config);
      if (!g_file_test (config_path, G_FILE_TEST_EXISTS))
        {
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                       "ssh: the ssh config file “%s” does not exist", config_path);
          return FALSE;
        }
      if (ssh_options_parse_config (c->session, config_path) < 0)
        {
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                       "ssh: cannot use the ssh config file “%s”: %s",
                       config_path, ssh_get_error (c->session));
          return FALSE;
        }
    }
  else if (ssh_options_parse_config (c->session, NULL) < 0)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "ssh: cannot use ~/.ssh/config or the system ssh_config: %s",
                   ssh_get_error (c->session));
      return FALSE;
    }

  /* Before the spec's -i joins them, for _execnet_ssh_describe(). */
  c->config_identity = libssh_string (c->session, SSH_OPTIONS_IDENTITY);

  /* The spec's own options override the files. */
  if (args->port != 0)
    {
      unsigned int port = args->port;
      ssh_options_set (c->session, SSH_OPTIONS_PORT, &port);
    }
  for (guint i = 0; i < args->identity_files->len; i++)
    {
      if (!check_identity_file (args->identity_files->pdata[i], error))
        return FALSE;
      ssh_options_set (c->session, SSH_OPTIONS_ADD_IDENTITY, args->identity_files->pdata[i]);
    }
  if (args->known_hosts != NULL)
    ssh_options_set (c->session, SSH_OPTIONS_KNOWNHOSTS, args->known_hosts);
  if (args->global_known_hosts != NULL)
    ssh_options_set (c->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, args->global_known_hosts);
  if (args->strict_host_key_checking != EXECNET_SSH_HOST_KEY_UNSET)
    ssh_options_set (c->session, SSH_OPTIONS_STRICTHOSTKEYCHECK,
                     args->strict_host_key_checking == EXECNET_SSH_HOST_KEY_NO ? &no : &yes);
  if (args->compression != EXECNET_SSH_UNSET)
    ssh_options_set (c->session, SSH_OPTIONS_COMPRESSION,
                     args->compression == EXECNET_SSH_YES ? "yes" : "no");
  if (args->proxy_jump != NULL)
    {
      g_autofree char *command = _execnet_ssh_args_proxy_jump_command (args->proxy_jump,
                                                                          config_path);

      if (command == NULL && g_ascii_strcasecmp (args->proxy_jump, "none") != 0)
        {
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                       "ssh: ProxyJump “%s” is not [user@]host[:port][,...]",
                       args->proxy_jump);
          return FALSE;
        }
      ssh_options_set (c->session, SSH_OPTIONS_PROXYCOMMAND, command ? command : "none");
    }
  else if (args->proxy_command != NULL)
    ssh_options_set (c->session, SSH_OPTIONS_PROXYCOMMAND, args->proxy_command);

  /* libssh fills in the defaults (user, known_hosts paths) when asked to
   * apply its options; then we can name everything in messages. */
  {
    unsigned int port = 22;

    c->host = libssh_string (c->session, SSH_OPTIONS_HOST);
    c->user = libssh_string (c->session, SSH_OPTIONS_USER);
    if (c->user == NULL)
      c->user = g_strdup (g_get_user_name ());
    ssh_options_get_port (c->session, &port);
    c->port = port;
    c->proxy = libssh_string (c->session, SSH_OPTIONS_PROXYCOMMAND);
    if (c->proxy != NULL && (*c->proxy == '\0' || g_ascii_strcasecmp (c->proxy, "none") == 0))
      g_clear_pointer (&c->proxy, g_free);
  }
  c->address = g_strdup_printf ("%s@%s:%u", c->user, args->destination, c->port);

  return TRUE;
}

/* A new libssh session in @c, configured by apply_options(). What an
 * earlier session of @c filled in goes first: a gateway whose session the
 * server refused comes back here to make a connection of its own. */
static gboolean
make_session (ExecnetXSpec  *xspec,
              Connect       *c,
              GError       **error)
{
  g_assert (c->session == NULL);
  g_clear_pointer (&c->host, g_free);
  g_clear_pointer (&c->user, g_free);
  g_clear_pointer (&c->address, g_free);
  g_clear_pointer (&c->proxy, g_free);
  g_clear_pointer (&c->config_identity, g_free);

  c->session = ssh_new ();
  if (c->session == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "ssh: libssh cannot create a session");
      return FALSE;
    }
  return apply_options (xspec, c, error);
}

/* Step 2, without a proxy command. */
static gboolean
connect_socket (Connect       *c,
                GCancellable  *cancellable,
                GError       **error)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) local_error = NULL;
  GSocket *socket;
  int fd;
  int flags;

  g_socket_client_set_timeout (client, (guint) MAX (1, ceil (remaining_us (c) / (gdouble) G_USEC_PER_SEC)));
  execnet_transport_log_socket_client_phases (c->xspec, client);
  connection = g_socket_client_connect_to_host (client, c->host, c->port,
                                                cancellable, &local_error);
  if (connection == NULL)
    {
      if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_propagate_error (error, g_steal_pointer (&local_error));
      else if (local_error->domain == G_RESOLVER_ERROR)
        g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                     "ssh: cannot resolve the host name “%s” (%s): check the "
                     "spelling, the HostName for it in your ssh config, and "
                     "DNS", c->host, local_error->message);
      else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT) ||
               deadline_passed (c))
        set_timed_out (c, "connecting to", error);
      else if (g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
        g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                     "ssh: %s refused the connection on port %u: no SSH server "
                     "listens there; check the port (-p PORT in ssh=, or Port "
                     "in your ssh config) and that sshd runs on %s",
                     c->host, c->port, c->host);
      else
        g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                     "ssh: cannot connect to %s port %u: %s; check the network "
                     "path to the host", c->host, c->port, local_error->message);
      return FALSE;
    }

  socket = g_socket_connection_get_socket (connection);
  /* One bootstrap line, then many small messages: do not wait for
   * Nagle's algorithm. */
  g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);

  /* libssh takes a plain blocking descriptor that it owns from here on
   * (see ExecnetSshSession for who closes it); GIO closes its own. */
  fd = fcntl (g_socket_get_fd (socket), F_DUPFD_CLOEXEC, 3);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "ssh: cannot duplicate the socket to %s: %s",
                   c->address, g_strerror (saved_errno));
      return FALSE;
    }
  flags = fcntl (fd, F_GETFL);
  if (flags >= 0)
    fcntl (fd, F_SETFL, flags & ~O_NONBLOCK);
  c->socket_fd = fd;
  ssh_options_set (c->session, SSH_OPTIONS_FD, &fd);
  if (cancellable != NULL)
    {
      c->cancellable = cancellable;
      c->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (on_cancelled),
                                               GINT_TO_POINTER (fd), NULL);
    }

  return TRUE;
}

/* Step 2 (with a proxy) and the SSH handshake. */
static gboolean
handshake (Connect       *c,
           GCancellable  *cancellable,
           GError       **error)
{
  if (c->proxy != NULL)
    execnet_transport_log_phase (c->xspec, "connecting", "connecting to %s through the proxy command “%s”",
                                 c->address, c->proxy);
  if (c->proxy == NULL && !connect_socket (c, cancellable, error))
    return FALSE;
  if (g_cancellable_set_error_if_cancelled (cancellable, error))
    return FALSE;

  set_step_timeout (c);
  if (ssh_connect (c->session) == SSH_OK)
    return TRUE;

  if (deadline_passed (c))
    set_timed_out (c, c->proxy ? "connecting through the proxy command to"
                               : "the SSH handshake with", error);
  else if (c->proxy != NULL)
    g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                 "ssh: cannot reach %s through the proxy command “%s”: %s; "
                 "try the same ProxyCommand/ProxyJump with the ssh program",
                 c->address, c->proxy, ssh_get_error (c->session));
  else
    g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                 "ssh: the SSH handshake with %s failed: %s; is an SSH server "
                 "listening on port %u of %s?",
                 c->address, ssh_get_error (c->session), c->port, c->host);
  return FALSE;
}

static char *
known_hosts_files (Connect *c)
{
  g_autofree char *user_file = libssh_string (c->session, SSH_OPTIONS_KNOWNHOSTS);
  g_autofree char *global_file = libssh_string (c->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS);

  return g_strdup_printf ("%s%s%s",
                          user_file ? user_file : "~/.ssh/known_hosts",
                          global_file ? " and " : "",
                          global_file ? global_file : "");
}

/* libssh has no getter for StrictHostKeyChecking, which the config files
 * may have set; but its lookup honours it: a host found in no file counts
 * as known when checking is off. Ask it about a host absent from
 * everywhere (/dev/null as both files), then put the files back. */
static gboolean
libssh_checks_strictly (Connect *c)
{
  g_autofree char *user_file = libssh_string (c->session, SSH_OPTIONS_KNOWNHOSTS);
  g_autofree char *global_file = libssh_string (c->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS);
  enum ssh_known_hosts_e verdict;

  ssh_options_set (c->session, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
  ssh_options_set (c->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
  verdict = ssh_session_is_known_server (c->session);
  if (user_file != NULL)
    ssh_options_set (c->session, SSH_OPTIONS_KNOWNHOSTS, user_file);
  if (global_file != NULL)
    ssh_options_set (c->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, global_file);

  return verdict != SSH_KNOWN_HOSTS_OK;
}

static char *
known_hosts_name (Connect *c)
{
  if (c->port == 22)
    return g_strdup (c->host);
  return g_strdup_printf ("[%s]:%u", c->host, c->port);
}

typedef enum
{
  HOST_NOT_MATCHED,
  HOST_MATCHED,
  HOST_EXCLUDED,     /* a `!` pattern matched: the line does not apply */
} HostMatch;

/* Whether the known_hosts host pattern list @patterns matches @name:
 * comma-separated patterns with `*` and `?`, `!` to exclude, and hashed
 * names (`|1|SALT|HASH`, an HMAC-SHA1 of the name keyed with the salt). */
static HostMatch
host_patterns_match (const char *patterns,
                     const char *name)
{
  g_auto(GStrv) list = g_strsplit (patterns, ",", -1);
  g_autofree char *lower = g_ascii_strdown (name, -1);
  gboolean matched = FALSE;

  for (guint i = 0; list[i] != NULL; i++)
    {
      const char *pattern = list[i];
      gboolean negated = pattern[0] == '!';
      gboolean hit;

      if (negated)
        pattern++;

      if (g_str_has_prefix (pattern, "|1|"))
        {
          g_auto(GStrv) parts = g_strsplit (pattern + 3, "|", 2);
          g_autofree guchar *salt = NULL;
          g_autofree char *expected = NULL;
          gsize salt_len = 0;
          guint8 digest[20];
          gsize digest_len = sizeof digest;
          g_autoptr(GHmac) hmac = NULL;

          if (g_strv_length (parts) != 2)
            continue;
          salt = g_base64_decode (parts[0], &salt_len);
          hmac = g_hmac_new (G_CHECKSUM_SHA1, salt, salt_len);
          g_hmac_update (hmac, (const guchar *) name, -1);
          g_hmac_get_digest (hmac, digest, &digest_len);
          expected = g_base64_encode (digest, digest_len);
          hit = g_str_equal (expected, parts[1]);
        }
      else
        {
          g_autofree char *lower_pattern = g_ascii_strdown (pattern, -1);

          hit = g_pattern_match_simple (lower_pattern, lower);
        }

      if (hit && negated)
        return HOST_EXCLUDED;
      matched = matched || hit;
    }

  return matched ? HOST_MATCHED : HOST_NOT_MATCHED;
}

/* How the lines of known_hosts file @path that list @key_base64 (with
 * @marker, such as `@revoked`; without one if %NULL) stand to @name: the
 * strongest of HOST_MATCHED (one applies), HOST_EXCLUDED (one excludes it
 * with `!`), HOST_NOT_MATCHED. libssh skips marker lines and reads `!`
 * patterns one at a time, so we read the files ourselves for those. */
static HostMatch
file_lists_key (const char *path,
                const char *marker,
                const char *name,
                const char *key_base64)
{
  g_autofree char *expanded = expand_home (path);
  g_autofree char *contents = NULL;
  g_auto(GStrv) lines = NULL;
  HostMatch found = HOST_NOT_MATCHED;
  guint first = marker != NULL ? 1 : 0;

  if (!g_file_get_contents (expanded, &contents, NULL, NULL))
    return HOST_NOT_MATCHED;

  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL && found != HOST_MATCHED; i++)
    {
      g_auto(GStrv) fields = NULL;
      const char *words[4];
      guint n = 0;
      const char *line = g_strchug (lines[i]);

      if (marker != NULL ? !g_str_has_prefix (line, marker) : (*line == '@' || *line == '#'))
        continue;
      fields = g_strsplit_set (line, " \t\r", -1);
      for (guint j = 0; fields[j] != NULL && n < G_N_ELEMENTS (words); j++)
        if (*fields[j] != '\0')
          words[n++] = fields[j];
      /* "[MARKER] PATTERNS TYPE BASE64 [comment]"; the base64 blob names
       * the key type itself. */
      if (n >= first + 3 && (marker == NULL || g_str_equal (words[0], marker)) &&
          g_str_equal (words[first + 2], key_base64))
        {
          HostMatch match = host_patterns_match (words[first], name);

          if (match == HOST_MATCHED || (match == HOST_EXCLUDED && found == HOST_NOT_MATCHED))
            found = match;
        }
    }

  return found;
}

/* Refuses a host key that a known_hosts file marks @revoked for this
 * host, as OpenSSH does: before anything else, whatever the policy. Sets
 * @excluded when the key is listed for this host only on lines that a `!`
 * pattern keeps from applying to it: libssh counts those as known. */
static gboolean
check_key_lines (Connect   *c,
                 gboolean  *excluded,
                 GError   **error)
{
  g_autofree char *user_file = libssh_string (c->session, SSH_OPTIONS_KNOWNHOSTS);
  g_autofree char *global_file = libssh_string (c->session, SSH_OPTIONS_GLOBAL_KNOWNHOSTS);
  g_autofree char *name = known_hosts_name (c);
  const char *files[] = { user_file, global_file };
  ssh_key key = NULL;
  char *base64 = NULL;
  gboolean ok = TRUE;
  HostMatch plain = HOST_NOT_MATCHED;

  *excluded = FALSE;
  if (ssh_get_server_publickey (c->session, &key) != SSH_OK)
    return TRUE;  /* the known_hosts check reports it */
  if (ssh_pki_export_pubkey_base64 (key, &base64) != SSH_OK)
    {
      ssh_key_free (key);
      return TRUE;
    }

  for (gsize i = 0; i < G_N_ELEMENTS (files) && ok; i++)
    if (files[i] != NULL && file_lists_key (files[i], "@revoked", name, base64) == HOST_MATCHED)
      {
        g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                     "ssh: the host key of %s is REVOKED: the server offered its %s key "
                     "that %s marks @revoked for %s. Do not connect until you know "
                     "why; ask the host's administrator for its current key",
                     c->address, ssh_key_type_to_char (ssh_key_type (key)), files[i], name);
        ok = FALSE;
      }

  for (gsize i = 0; i < G_N_ELEMENTS (files) && plain != HOST_MATCHED; i++)
    if (files[i] != NULL)
      {
        HostMatch match = file_lists_key (files[i], NULL, name, base64);

        if (match != HOST_NOT_MATCHED)
          plain = match;
      }
  *excluded = plain == HOST_EXCLUDED;

  ssh_string_free_char (base64);
  ssh_key_free (key);
  return ok;
}

/* Step 3, after the handshake. */
static gboolean
check_host_key (Connect  *c,
                GError  **error)
{
  ExecnetSshHostKeyPolicy policy = c->args->strict_host_key_checking;
  enum ssh_known_hosts_e verdict;
  ssh_key key = NULL;
  unsigned char *hash = NULL;
  size_t hash_len = 0;
  g_autofree char *fingerprint = NULL;
  g_autofree char *files = NULL;
  g_autofree char *name = NULL;
  const char *key_type = "unknown";
  gboolean excluded;

  if (!check_key_lines (c, &excluded, error))
    return FALSE;

  verdict = ssh_session_is_known_server (c->session);
  /* The line libssh found excludes this host with a `!` pattern. */
  if (verdict == SSH_KNOWN_HOSTS_OK && excluded)
    verdict = SSH_KNOWN_HOSTS_NOT_FOUND;
  if (verdict == SSH_KNOWN_HOSTS_OK)
    return TRUE;

  if (policy == EXECNET_SSH_HOST_KEY_UNSET)
    policy = libssh_checks_strictly (c) ? EXECNET_SSH_HOST_KEY_YES : EXECNET_SSH_HOST_KEY_NO;

  switch (verdict)
    {
    case SSH_KNOWN_HOSTS_UNKNOWN:
    case SSH_KNOWN_HOSTS_NOT_FOUND:
      if (policy == EXECNET_SSH_HOST_KEY_NO)
        return TRUE;
      if (policy == EXECNET_SSH_HOST_KEY_ACCEPT_NEW)
        {
          g_autofree char *user_file = NULL;

          if (ssh_session_update_known_hosts (c->session) == SSH_OK)
            return TRUE;
          user_file = libssh_string (c->session, SSH_OPTIONS_KNOWNHOSTS);
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                       "ssh: the host key of %s is new, and StrictHostKeyChecking="
                       "accept-new cannot record it in %s: %s",
                       c->address, user_file ? user_file : "the known_hosts file",
                       ssh_get_error (c->session));
          return FALSE;
        }
      break;
    case SSH_KNOWN_HOSTS_CHANGED:
    case SSH_KNOWN_HOSTS_OTHER:
      if (policy == EXECNET_SSH_HOST_KEY_NO)
        return TRUE;
      break;
    case SSH_KNOWN_HOSTS_ERROR:
    default:
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                   "ssh: cannot check the host key of %s: %s",
                   c->address, ssh_get_error (c->session));
      return FALSE;
    case SSH_KNOWN_HOSTS_OK:
      g_assert_not_reached ();
    }

  if (ssh_get_server_publickey (c->session, &key) == SSH_OK)
    {
      key_type = ssh_key_type_to_char (ssh_key_type (key));
      if (ssh_get_publickey_hash (key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hash_len) == 0)
        {
          char *text = ssh_get_fingerprint_hash (SSH_PUBLICKEY_HASH_SHA256, hash, hash_len);

          fingerprint = g_strdup (text);
          ssh_string_free_char (text);
          ssh_clean_pubkey_hash (&hash);
        }
    }
  files = known_hosts_files (c);
  name = known_hosts_name (c);

  if (verdict == SSH_KNOWN_HOSTS_UNKNOWN || verdict == SSH_KNOWN_HOSTS_NOT_FOUND)
    g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                 "ssh: the host key of %s is not known: the server offered %s "
                 "key %s, and %s is in none of %s. If that is the right key, "
                 "add it with “ssh-keyscan -p %u %s >> ~/.ssh/known_hosts” "
                 "(or to the UserKnownHostsFile in use), or connect with "
                 "StrictHostKeyChecking=accept-new (ssh=-o StrictHostKeyChecking=accept-new ...)",
                 c->address, key_type, fingerprint ? fingerprint : "(no fingerprint)",
                 name, files, c->port, c->host);
  else
    g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                 "ssh: the host key of %s has CHANGED: the server offered %s key "
                 "%s, which does not match what %s holds for %s. Someone may be "
                 "intercepting the connection, or the host was reinstalled; if "
                 "you know the new key is right, remove the old one with "
                 "“ssh-keygen -R '%s'” and add the new one",
                 c->address, key_type, fingerprint ? fingerprint : "(no fingerprint)",
                 files, name, name);

  ssh_key_free (key);
  return FALSE;
}

static void
append_methods (GString      *text,
                unsigned int  methods)
{
  static const struct { unsigned int bit; const char *name; } names[] = {
    { SSH_AUTH_METHOD_PUBLICKEY, "publickey" },
    { SSH_AUTH_METHOD_PASSWORD, "password" },
    { SSH_AUTH_METHOD_INTERACTIVE, "keyboard-interactive" },
    { SSH_AUTH_METHOD_HOSTBASED, "hostbased" },
    { SSH_AUTH_METHOD_GSSAPI_MIC, "gssapi-with-mic" },
  };
  gboolean first = TRUE;

  for (gsize i = 0; i < G_N_ELEMENTS (names); i++)
    if (methods & names[i].bit)
      {
        g_string_append_printf (text, "%s%s", first ? "" : ", ", names[i].name);
        first = FALSE;
      }
  if (first)
    g_string_append (text, "none");
}

/* Step 4. */
static gboolean
authenticate (Connect       *c,
              GCancellable  *cancellable,
              GError       **error)
{
  g_autoptr(GString) tried = g_string_new (NULL);
  g_autoptr(GString) accepted = g_string_new (NULL);
  g_autofree char *first_identity = NULL;
  gboolean agent = g_getenv ("SSH_AUTH_SOCK") != NULL;
  unsigned int methods;
  int rc;

  execnet_transport_log_phase (c->xspec, "authenticating", "authenticating as %s", c->user);
  set_step_timeout (c);
  rc = ssh_userauth_none (c->session, NULL);
  if (rc == SSH_AUTH_SUCCESS)
    return TRUE;
  if (rc == SSH_AUTH_ERROR)
    goto failed;

  methods = ssh_userauth_list (c->session, NULL);
  if (methods & SSH_AUTH_METHOD_PUBLICKEY)
    {
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      /* Tries ssh-agent's keys first if SSH_AUTH_SOCK is set, then each
       * identity file: -i, IdentityFile, else ~/.ssh/id_{ed25519,ecdsa,rsa}.
       * Without a passphrase callback, encrypted keys are skipped, never
       * prompted for. */
      set_step_timeout (c);
      rc = ssh_userauth_publickey_auto (c->session, NULL, NULL);
      if (rc == SSH_AUTH_SUCCESS)
        return TRUE;
      if (rc == SSH_AUTH_ERROR)
        goto failed;
      first_identity = libssh_string (c->session, SSH_OPTIONS_IDENTITY);
      g_string_append_printf (tried, "public keys from %s%s%s%s",
                              agent ? "ssh-agent (SSH_AUTH_SOCK) and " : "",
                              "the identity files",
                              first_identity ? ", first " : "",
                              first_identity ? first_identity : "");
      if (rc == SSH_AUTH_PARTIAL)
        methods = ssh_userauth_list (c->session, NULL);
    }
  else
    g_string_append (tried, "nothing (the server takes no public keys)");

  append_methods (accepted, methods);
  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
               "ssh: %s refused authentication as “%s”: tried %s; the server "
               "accepts %s%s. The ssh transport never prompts: put your public "
               "key in ~%s/.ssh/authorized_keys on %s (ssh-copy-id), then "
               "name the private key with -i or IdentityFile, or load it into "
               "ssh-agent (the only way to use a passphrase-protected key)",
               c->address, c->user, tried->str, accepted->str,
               rc == SSH_AUTH_PARTIAL ? " (more than one method is required)" : "",
               c->user, c->host);
  return FALSE;

failed:
  if (deadline_passed (c))
    set_timed_out (c, "authenticating with", error);
  else
    g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                 "ssh: authentication with %s failed: %s",
                 c->address, ssh_get_error (c->session));
  return FALSE;
}

/* Sharing: gateways whose specs have the same ssh words (and ssh_config=)
 * share one connection. The first to come makes it (the "attempt"); the
 * others wait for its outcome, then open their channels on it, or fail
 * with its error. The table holds a reference to each link; a link that
 * has closed is dropped the next time its key is looked up. Lock order:
 * registry_lock, then a link's lock. */

typedef struct
{
  guint refs;                  /* under registry_lock: the maker and each waiter */
  gboolean done;
  GError *error;               /* (owned) (nullable) why it failed */
} Attempt;

static GMutex registry_lock;
static GCond registry_cond;
static GHashTable *registry_links;     /* (element-type utf8 ExecnetSshLink) (owned) */
static GHashTable *registry_attempts;  /* (element-type utf8 Attempt) (owned keys) */

/* registry_lock held. */
static void
attempt_unref_locked (Attempt *attempt)
{
  if (--attempt->refs > 0)
    return;
  g_clear_error (&attempt->error);
  g_free (attempt);
}

/* A yes/no key of the spec, yes when absent or empty; @meaning_no says
 * what no does, for the error message. */
static gboolean
read_yes_no (ExecnetXSpec  *xspec,
             const char    *key,
             const char    *meaning_no,
             gboolean      *yes,
             GError       **error)
{
  const char *value = execnet_xspec_get (xspec, key);

  *yes = TRUE;
  if (value == NULL || *value == '\0' || g_ascii_strcasecmp (value, "yes") == 0 ||
      g_str_equal (value, "1") || g_ascii_strcasecmp (value, "true") == 0)
    return TRUE;
  *yes = FALSE;
  if (g_ascii_strcasecmp (value, "no") == 0 || g_str_equal (value, "0") ||
      g_ascii_strcasecmp (value, "false") == 0)
    return TRUE;
  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
               "%s=%s: expected yes or no (no: %s)", key, value, meaning_no);
  return FALSE;
}

/* Whether the spec asks for a connection of its own; the key its
 * connection is shared under otherwise. */
static gboolean
read_share_key (ExecnetXSpec  *xspec,
                char         **key,
                GError       **error)
{
  const char *config = execnet_xspec_get (xspec, "ssh_config");
  gboolean share;

  *key = NULL;
  if (!read_yes_no (xspec, "ssh_share", "this gateway gets an SSH connection of its own",
                    &share, error))
    return FALSE;
  if (!share)
    return TRUE;
  *key = g_strdup_printf ("%s%c%s", execnet_xspec_get (xspec, "ssh"), 0x1f,
                          config ? config : "");
  return TRUE;
}

/* Finds the link for @key with a channel promised to the caller, or makes
 * the caller the maker of it (@attempt set), or fails (the maker's error,
 * or our own deadline or cancellation while waiting for it). */
static ExecnetSshLink *
join_link (Connect       *c,
           const char    *key,
           GCancellable  *cancellable,
           Attempt      **attempt,
           GError       **error)
{
  *attempt = NULL;

  g_mutex_lock (&registry_lock);
  if (registry_links == NULL)
    {
      registry_links = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                              (GDestroyNotify) _execnet_ssh_link_unref);
      registry_attempts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    }

  for (;;)
    {
      ExecnetSshLink *link = g_hash_table_lookup (registry_links, key);
      Attempt *other;
      gboolean done;

      if (link != NULL)
        {
          if (_execnet_ssh_link_reserve (link, c->may_spawn))
            {
              link = _execnet_ssh_link_ref (link);
              g_mutex_unlock (&registry_lock);
              execnet_transport_log_phase (c->xspec, "connecting",
                                           "sharing the connection to %s", c->address);
              return link;
            }
          g_hash_table_remove (registry_links, key);   /* closed: make a new one */
        }

      other = g_hash_table_lookup (registry_attempts, key);
      if (other == NULL)
        {
          *attempt = g_new0 (Attempt, 1);
          (*attempt)->refs = 1;
          g_hash_table_insert (registry_attempts, g_strdup (key), *attempt);
          g_mutex_unlock (&registry_lock);
          return NULL;
        }

      /* Another gateway is connecting: wait for it, in slices, so that our
       * own cancellation and deadline are seen. */
      other->refs++;
      while (!other->done && !g_cancellable_is_cancelled (cancellable) &&
             g_get_monotonic_time () < c->deadline)
        g_cond_wait_until (&registry_cond, &registry_lock,
                           MIN (c->deadline, g_get_monotonic_time () + 50 * 1000));
      done = other->done;
      if (done && other->error != NULL &&
          !g_error_matches (other->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_propagate_error (error, g_error_copy (other->error));
          attempt_unref_locked (other);
          g_mutex_unlock (&registry_lock);
          return NULL;
        }
      attempt_unref_locked (other);
      if (!done)
        {
          g_mutex_unlock (&registry_lock);
          if (!g_cancellable_set_error_if_cancelled (cancellable, error))
            set_timed_out (c, "connecting to", error);
          return NULL;
        }
      /* Made, or its maker was cancelled: look again. */
    }
}

/* Ends the caller's attempt: publishes @link (if not %NULL) under @key,
 * or @error to the waiters. */
static void
finish_attempt (const char     *key,
                Attempt        *attempt,
                ExecnetSshLink *link,
                const GError   *error)
{
  g_mutex_lock (&registry_lock);
  if (link != NULL)
    g_hash_table_replace (registry_links, g_strdup (key), _execnet_ssh_link_ref (link));
  g_hash_table_remove (registry_attempts, key);
  attempt->done = TRUE;
  if (link == NULL)
    attempt->error = error != NULL ? g_error_copy (error)
                                   : g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                          "ssh: the connection was not made");
  g_cond_broadcast (&registry_cond);
  attempt_unref_locked (attempt);
  g_mutex_unlock (&registry_lock);
}

/* Step 5: the interpreter in a channel of its own on @link. */
static ExecnetSshSession *
start_command (ExecnetXSpec    *xspec,
               Connect         *c,
               ExecnetSshLink  *link,
               GCancellable    *cancellable,
               gboolean        *refused,
               GError         **error)
{
  g_autofree char *command = NULL;

  *refused = FALSE;
  command = _execnet_ssh_build_remote_command (xspec, error);
  if (command == NULL)
    {
      _execnet_ssh_link_release (link);
      return NULL;
    }
  execnet_transport_log_phase (xspec, "starting-python", "starting the interpreter on %s", c->address);
  return _execnet_ssh_session_open (link, xspec, command, c->may_spawn, c->deadline, c->timeout,
                                    cancellable, refused, error);
}

/**
 * _execnet_ssh_connect:
 * @xspec: an `ssh=` spec
 * @cancellable: (nullable): checked between the steps
 * @error: return location for an error
 *
 * Connects, authenticates and starts the remote interpreter. Blocks for up
 * to the spec's connect_timeout; runs in a worker thread.
 *
 * Returns: (transfer full) (nullable): the session, in non-blocking mode
 */
ExecnetSshSession *
_execnet_ssh_connect (ExecnetXSpec  *xspec,
                      GCancellable  *cancellable,
                      GError       **error)
{
  Connect c = { .xspec = xspec, .socket_fd = -1 };
  g_autoptr(ExecnetSshLink) link = NULL;
  g_autofree char *key = NULL;
  ExecnetSshSession *session = NULL;
  Attempt *attempt = NULL;
  gboolean refused = FALSE;

  c.args = _execnet_ssh_args_parse (execnet_xspec_get (xspec, "ssh"), error);
  if (c.args == NULL)
    goto out;
  if (!read_timeout_key (xspec, &c, error) || !read_share_key (xspec, &key, error) ||
      !read_yes_no (xspec, "ssh_spawner", "this gateway's interpreter gets an SSH session "
                    "of its own even when its connection has a spawner", &c.may_spawn, error))
    goto out;
  c.deadline = g_get_monotonic_time () + (gint64) (c.timeout * G_USEC_PER_SEC);

  _execnet_ssh_log_attach (xspec);

new_session:
  if (!make_session (xspec, &c, error))
    goto out;

join:
  if (key != NULL)
    {
      link = join_link (&c, key, cancellable, &attempt, error);
      if (link == NULL && attempt == NULL)
        goto out;
    }

  if (link == NULL)
    {
      if (!handshake (&c, cancellable, error) ||
          !check_host_key (&c, error) ||
          g_cancellable_set_error_if_cancelled (cancellable, error) ||
          !authenticate (&c, cancellable, error) ||
          g_cancellable_set_error_if_cancelled (cancellable, error))
        goto out;

      /* The link owns the socket from here: the cancel handler must not
       * touch it any more. */
      if (c.cancelled_id != 0)
        {
          g_cancellable_disconnect (c.cancellable, c.cancelled_id);
          c.cancelled_id = 0;
        }
      link = _execnet_ssh_link_new (g_steal_pointer (&c.session), c.socket_fd, c.address, xspec);
      c.socket_fd = -1;
      if (attempt != NULL)
        {
          finish_attempt (key, attempt, link, NULL);
          attempt = NULL;
        }
    }

  session = start_command (xspec, &c, link, cancellable, &refused, error);
  if (session == NULL && refused)
    {
      /* The server allows fewer sessions per connection than the others
       * on it use: this gateway makes a connection of its own (the
       * refused link takes no more). */
      g_clear_error (error);
      g_clear_pointer (&link, _execnet_ssh_link_unref);
      if (c.session != NULL)
        goto join;
      /* We made the refused link: its session is gone with it. */
      goto new_session;
    }

out:
  connect_clear (&c);
  _execnet_ssh_log_attach (NULL);
  /* Whatever a cancelled step reported, the cause was the cancellation. */
  if (session == NULL && g_cancellable_is_cancelled (cancellable) && error != NULL &&
      *error != NULL && !g_error_matches (*error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      g_clear_error (error);
      g_cancellable_set_error_if_cancelled (cancellable, error);
    }
  if (attempt != NULL)
    finish_attempt (key, attempt, NULL, error != NULL ? *error : NULL);
  return session;
}

/* The hops of the ProxyJump behind @proxy, the proxy command libssh 0.10
 * makes of a ProxyJump it reads in an ssh config:
 * "ssh [-l USER] [-p PORT] [-J REST] -W '[%h]:%p' HOST". NULL for any
 * other command. */
static GStrv
proxy_jump_from_command (const char *proxy)
{
  g_auto(GStrv) words = NULL;
  g_autoptr(GStrvBuilder) hops = NULL;
  g_autoptr(GString) first = NULL;
  const char *user = NULL, *port = NULL, *rest = NULL, *host = NULL;
  gboolean forwards = FALSE;
  int n;

  if (proxy == NULL || !g_shell_parse_argv (proxy, &n, &words, NULL) ||
      g_strcmp0 (words[0], "ssh") != 0)
    return NULL;

  for (int i = 1; i < n; i++)
    {
      const char **slot = NULL;

      if (g_str_equal (words[i], "-l"))
        slot = &user;
      else if (g_str_equal (words[i], "-p"))
        slot = &port;
      else if (g_str_equal (words[i], "-J"))
        slot = &rest;
      else if (g_str_equal (words[i], "-W") && i + 1 < n && g_str_equal (words[i + 1], "[%h]:%p"))
        {
          forwards = TRUE;
          i++;
          continue;
        }
      else if (i == n - 1 && words[i][0] != '-')
        {
          host = words[i];
          continue;
        }
      else
        return NULL;

      if (i + 1 >= n)
        return NULL;
      *slot = words[++i];
    }
  if (!forwards || host == NULL)
    return NULL;

  first = g_string_new (NULL);
  if (user != NULL)
    g_string_append_printf (first, "%s@", user);
  g_string_append (first, host);
  if (port != NULL)
    g_string_append_printf (first, ":%s", port);
  hops = g_strv_builder_new ();
  g_strv_builder_add (hops, first->str);
  if (rest != NULL)
    {
      g_auto(GStrv) more = g_strsplit (rest, ",", -1);

      g_strv_builder_addv (hops, (const char **) more);
    }
  return g_strv_builder_end (hops);
}

/* Any thread; blocks only on reading the ssh config files. What
 * _execnet_ssh_connect() would connect to, from the same options: the
 * spec's words over the config files, resolved by libssh. */
GVariant *
_execnet_ssh_describe (ExecnetXSpec  *xspec,
                       GError       **error)
{
  Connect c = { .xspec = xspec, .socket_fd = -1 };
  g_auto(GVariantBuilder) description = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GStrvBuilder) identities = g_strv_builder_new ();
  g_auto(GStrv) jumps = NULL;
  const char *config;
  GVariant *result = NULL;

  c.args = _execnet_ssh_args_parse (execnet_xspec_get (xspec, "ssh"), error);
  if (c.args == NULL || !read_timeout_key (xspec, &c, error))
    goto out;

  _execnet_ssh_log_attach (xspec);
  if (!make_session (xspec, &c, error))
    goto out;

  config = c.args->config_file ? c.args->config_file : execnet_xspec_get (xspec, "ssh_config");
  g_variant_builder_add (&description, "{sv}", "destination", g_variant_new ("s", c.args->destination));
  g_variant_builder_add (&description, "{sv}", "hostname", g_variant_new ("s", c.host));
  g_variant_builder_add (&description, "{sv}", "user", g_variant_new ("s", c.user));
  g_variant_builder_add (&description, "{sv}", "port", g_variant_new ("u", c.port));

  /* libssh tries the config's identities first, then the spec's -i and
   * -o IdentityFile. Of the config's, libssh 0.10 shows only the first it
   * tries: the host's last IdentityFile, else ~/.ssh/id_ed25519. */
  if (c.config_identity != NULL)
    g_strv_builder_add (identities, c.config_identity);
  for (guint i = 0; i < c.args->identity_files->len; i++)
    g_strv_builder_add (identities, g_ptr_array_index (c.args->identity_files, i));
  {
    g_auto(GStrv) files = g_strv_builder_end (identities);

    for (guint i = 0; files[i] != NULL; i++)
      {
        char *expanded = g_str_has_prefix (files[i], "%d/")
                           ? g_build_filename (g_get_home_dir (), ".ssh", files[i] + 3, NULL)
                           : expand_home (files[i]);

        g_free (files[i]);
        files[i] = expanded;
      }
    g_variant_builder_add (&description, "{sv}", "identityfile",
                           g_variant_new_strv ((const char * const *) files, -1));
  }

  if (c.args->proxy_jump != NULL && g_ascii_strcasecmp (c.args->proxy_jump, "none") != 0)
    jumps = g_strsplit (c.args->proxy_jump, ",", -1);
  else if (c.args->proxy_jump == NULL)
    jumps = proxy_jump_from_command (c.proxy);
  if (jumps != NULL)
    g_variant_builder_add (&description, "{sv}", "proxyjump",
                           g_variant_new_strv ((const char * const *) jumps, -1));
  if (c.proxy != NULL)
    g_variant_builder_add (&description, "{sv}", "proxycommand", g_variant_new ("s", c.proxy));
  g_variant_builder_add (&description, "{sv}", "connecttimeout", g_variant_new ("d", c.timeout));
  g_variant_builder_add (&description, "{sv}", "configfile",
                         g_variant_new_string (config != NULL && *config != '\0'
                                                 ? config : "~/.ssh/config, /etc/ssh/ssh_config"));
  result = g_variant_builder_end (&description);

out:
  connect_clear (&c);
  _execnet_ssh_log_attach (NULL);
  return result;
}
