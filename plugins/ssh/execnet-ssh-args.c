/* execnet-ssh-args.c: the ssh words of an `ssh=` spec and the remote command (pure)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <execnet/execnet.h>

#include "execnet-ssh-args.h"

/* Pure: GLib and the spec helpers of libexecnet, no I/O, so that
 * tests/test-ssh.c can link its static library (execnet_ssh_args_dep) and
 * table-test it.
 *
 * execnet passes the value of `ssh=` to the ssh program as its first
 * arguments, so users write there what they would type after `ssh`:
 * `host`, `user@host`, `-p 5000 host`, `-F cfg -o Port=2222 host`. We read
 * the same words, the way OpenSSH's own option parser does (options may
 * come before and after the destination, values attached or separate,
 * `-o Key=Value` or `-o "Key Value"`), and keep only what libssh can act
 * on. An option we cannot honour is an error naming it rather than
 * something silently ignored, except for the few whose effect we always
 * have anyway (no tty, no X11 or agent forwarding, batch mode). */

#define SUPPORTED_FLAGS \
  "-p PORT, -l USER, -i IDENTITY, -F CONFIG, -J JUMP, -o KEY=VALUE, -C " \
  "(and -q, -T, -x, -a, which change nothing here)"

#define SUPPORTED_KEYS \
  "Port, User, IdentityFile, UserKnownHostsFile, GlobalKnownHostsFile, " \
  "StrictHostKeyChecking, ConnectTimeout, ProxyJump, ProxyCommand, " \
  "Compression, BatchMode, IdentitiesOnly"

static ExecnetSshArgs *
args_new (void)
{
  ExecnetSshArgs *args = g_new0 (ExecnetSshArgs, 1);

  args->identity_files = g_ptr_array_new_with_free_func (g_free);
  args->strict_host_key_checking = EXECNET_SSH_HOST_KEY_UNSET;
  args->connect_timeout = -1;
  args->compression = EXECNET_SSH_UNSET;
  return args;
}

void
_execnet_ssh_args_free (ExecnetSshArgs *args)
{
  if (args == NULL)
    return;
  g_free (args->destination);
  g_free (args->user);
  g_free (args->config_file);
  g_ptr_array_unref (args->identity_files);
  g_free (args->known_hosts);
  g_free (args->global_known_hosts);
  g_free (args->proxy_command);
  g_free (args->proxy_jump);
  g_free (args);
}

static gboolean
set_error (GError     **error,
           const char  *words,
           const char  *format,
           ...) G_GNUC_PRINTF (3, 4);

static gboolean
set_error (GError     **error,
           const char  *words,
           const char  *format,
           ...)
{
  g_autofree char *detail = NULL;
  va_list ap;

  va_start (ap, format);
  detail = g_strdup_vprintf (format, ap);
  va_end (ap);

  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
               "ssh=%s: %s", words, detail);
  return FALSE;
}

static gboolean
parse_port (const char  *text,
            guint16     *port,
            const char  *words,
            GError     **error)
{
  guint64 value;

  if (!g_ascii_string_to_unsigned (text, 10, 1, G_MAXUINT16, &value, NULL))
    return set_error (error, words, "“%s” is not a port number (1-65535)", text);
  *port = (guint16) value;
  return TRUE;
}

static gboolean
parse_yes_no (const char          *text,
              ExecnetSshTristate  *out)
{
  if (g_ascii_strcasecmp (text, "yes") == 0 || g_ascii_strcasecmp (text, "true") == 0)
    *out = EXECNET_SSH_YES;
  else if (g_ascii_strcasecmp (text, "no") == 0 || g_ascii_strcasecmp (text, "false") == 0)
    *out = EXECNET_SSH_NO;
  else
    return FALSE;
  return TRUE;
}

static void
replace_string (char       **field,
                const char  *value)
{
  g_free (*field);
  *field = g_strdup (value);
}

/* `user@host`, `host`, or OpenSSH's `ssh://[user@]host[:port]`. */
static gboolean
set_destination (ExecnetSshArgs  *args,
                 const char      *word,
                 const char      *words,
                 GError         **error)
{
  g_autofree char *rest = NULL;
  const char *at;

  if (g_str_has_prefix (word, "ssh://"))
    {
      const char *bracket;
      char *colon;

      rest = g_strdup (word + strlen ("ssh://"));
      if (*rest != '\0' && rest[strlen (rest) - 1] == '/')
        rest[strlen (rest) - 1] = '\0';
      at = strrchr (rest, '@');
      colon = strrchr (at ? at : rest, ':');
      bracket = strchr (rest, ']');
      if (colon != NULL && (bracket == NULL || bracket < colon))
        {
          if (!parse_port (colon + 1, &args->port, words, error))
            return FALSE;
          *colon = '\0';
        }
    }
  else
    rest = g_strdup (word);

  at = strrchr (rest, '@');
  if (at != NULL)
    {
      if (args->user == NULL)
        args->user = g_strndup (rest, at - rest);
      args->destination = g_strdup (at + 1);
    }
  else
    args->destination = g_strdup (rest);

  if (args->destination[0] == '[')
    {
      size_t len = strlen (args->destination);

      if (len > 2 && args->destination[len - 1] == ']')
        {
          memmove (args->destination, args->destination + 1, len - 2);
          args->destination[len - 2] = '\0';
        }
    }

  if (*args->destination == '\0' || (args->user != NULL && *args->user == '\0'))
    return set_error (error, words, "“%s” is not a destination ([user@]host)", word);
  return TRUE;
}

static gboolean
apply_option (ExecnetSshArgs  *args,
              const char      *option,
              const char      *words,
              GError         **error)
{
  g_autofree char *key = NULL;
  const char *value;
  size_t key_len;

  key_len = strcspn (option, "= \t");
  if (option[key_len] == '\0')
    return set_error (error, words, "-o %s has no value (write -o Key=Value)", option);
  key = g_strndup (option, key_len);
  value = option + key_len;
  while (*value == ' ' || *value == '\t')
    value++;
  if (*value == '=')
    value++;
  while (*value == ' ' || *value == '\t')
    value++;
  if (*value == '\0')
    return set_error (error, words, "-o %s has no value (write -o Key=Value)", option);

  if (g_ascii_strcasecmp (key, "Port") == 0)
    return parse_port (value, &args->port, words, error);
  if (g_ascii_strcasecmp (key, "User") == 0)
    {
      if (args->user == NULL)
        args->user = g_strdup (value);
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "IdentityFile") == 0)
    {
      g_ptr_array_add (args->identity_files, g_strdup (value));
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "UserKnownHostsFile") == 0)
    {
      /* OpenSSH allows several files here; libssh reads one. */
      g_auto(GStrv) files = g_strsplit_set (value, " \t", 2);

      replace_string (&args->known_hosts, files[0]);
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "GlobalKnownHostsFile") == 0)
    {
      g_auto(GStrv) files = g_strsplit_set (value, " \t", 2);

      replace_string (&args->global_known_hosts, files[0]);
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "StrictHostKeyChecking") == 0)
    {
      ExecnetSshTristate yes_no;

      if (g_ascii_strcasecmp (value, "accept-new") == 0)
        args->strict_host_key_checking = EXECNET_SSH_HOST_KEY_ACCEPT_NEW;
      else if (g_ascii_strcasecmp (value, "off") == 0)
        args->strict_host_key_checking = EXECNET_SSH_HOST_KEY_NO;
      else if (g_ascii_strcasecmp (value, "ask") == 0)
        args->strict_host_key_checking = EXECNET_SSH_HOST_KEY_YES;
      else if (parse_yes_no (value, &yes_no))
        args->strict_host_key_checking = yes_no == EXECNET_SSH_YES
                                           ? EXECNET_SSH_HOST_KEY_YES
                                           : EXECNET_SSH_HOST_KEY_NO;
      else
        return set_error (error, words,
                          "StrictHostKeyChecking must be yes, no, accept-new or ask, not “%s”",
                          value);
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "ConnectTimeout") == 0)
    {
      guint64 seconds;

      if (!g_ascii_string_to_unsigned (value, 10, 0, G_MAXINT32, &seconds, NULL))
        return set_error (error, words, "ConnectTimeout must be a number of seconds, not “%s”", value);
      args->connect_timeout = seconds > 0 ? (gdouble) seconds : -1;
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "ProxyJump") == 0)
    {
      replace_string (&args->proxy_jump, value);
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "ProxyCommand") == 0)
    {
      replace_string (&args->proxy_command, value);
      return TRUE;
    }
  if (g_ascii_strcasecmp (key, "Compression") == 0)
    {
      if (!parse_yes_no (value, &args->compression))
        return set_error (error, words, "Compression must be yes or no, not “%s”", value);
      return TRUE;
    }
  /* We never prompt, and libssh cannot restrict itself to the named
   * identities (it also offers the agent's and the default ones); both are
   * accepted so that specs written for OpenSSH keep working. */
  if (g_ascii_strcasecmp (key, "BatchMode") == 0 ||
      g_ascii_strcasecmp (key, "IdentitiesOnly") == 0)
    return TRUE;

  return set_error (error, words,
                    "-o %s is not supported by the libssh-based ssh transport "
                    "(supported: " SUPPORTED_KEYS "); put it in an ssh config "
                    "file if libssh understands it there",
                    key);
}

/**
 * _execnet_ssh_args_parse:
 * @words: the value of `ssh=`
 * @error: return location for an %EXECNET_ERROR_INVALID_SPEC error
 *
 * Reads ssh command-line words.
 *
 * Returns: (transfer full) (nullable): what they ask for
 */
ExecnetSshArgs *
_execnet_ssh_args_parse (const char  *words,
                         GError     **error)
{
  g_autoptr(ExecnetSshArgs) args = args_new ();
  g_autoptr(GError) local_error = NULL;
  g_auto(GStrv) argv = NULL;
  int argc = 0;

  if (words == NULL || *words == '\0')
    {
      set_error (error, "", "no destination (write ssh=host or ssh=user@host)");
      return NULL;
    }
  if (!g_shell_parse_argv (words, &argc, &argv, &local_error))
    {
      set_error (error, words, "cannot split into words: %s", local_error->message);
      return NULL;
    }

  for (int i = 0; i < argc; i++)
    {
      const char *word = argv[i];
      char flag;
      const char *value;

      if (word[0] != '-' || word[1] == '\0')
        {
          if (args->destination != NULL)
            {
              set_error (error, words,
                         "unexpected “%s” after the destination “%s”: a remote "
                         "command cannot be given here, the transport runs the "
                         "Python interpreter itself (use python= to choose it)",
                         word, args->destination);
              return NULL;
            }
          if (!set_destination (args, word, words, error))
            return NULL;
          continue;
        }

      /* Flags without a value, alone or grouped (-qT, -C). */
      if (strspn (word + 1, "qTxaC") == strlen (word + 1))
        {
          if (strchr (word, 'C') != NULL)
            args->compression = EXECNET_SSH_YES;
          continue;
        }

      flag = word[1];
      switch (flag)
        {
        case 'p': case 'l': case 'i': case 'F': case 'o': case 'J':
          break;
        default:
          set_error (error, words, "option %s is not supported (supported: "
                     SUPPORTED_FLAGS ")", word);
          return NULL;
        }

      if (word[2] != '\0')
        value = word + 2;
      else if (i + 1 < argc)
        value = argv[++i];
      else
        {
          set_error (error, words, "option -%c needs a value", flag);
          return NULL;
        }

      switch (flag)
        {
        case 'p':
          if (!parse_port (value, &args->port, words, error))
            return NULL;
          break;
        case 'l':
          /* As in OpenSSH, the first user named wins: -l or user@. */
          if (args->user == NULL)
            args->user = g_strdup (value);
          break;
        case 'i':
          g_ptr_array_add (args->identity_files, g_strdup (value));
          break;
        case 'F':
          replace_string (&args->config_file, value);
          break;
        case 'J':
          replace_string (&args->proxy_jump, value);
          break;
        case 'o':
          if (!apply_option (args, value, words, error))
            return NULL;
          break;
        default:
          g_assert_not_reached ();
        }
    }

  if (args->destination == NULL)
    {
      set_error (error, words, "no destination (write ssh=host or ssh=user@host)");
      return NULL;
    }

  return g_steal_pointer (&args);
}

/**
 * _execnet_ssh_args_proxy_jump_command:
 * @jump: a ProxyJump value: `[user@]host[:port]`, comma-separated hops
 * @config_file: (nullable): the ssh config in use, passed on with -F as
 *   OpenSSH does
 *
 * libssh 0.10 has no jump-host support of its own; for ProxyJump in a
 * config file it runs OpenSSH's `ssh -W` to the first hop as a proxy
 * command, passing the other hops on with `-J`. We do the same for `-J`
 * and `-o ProxyJump` on the spec, with BatchMode so that the jump never
 * prompts either.
 *
 * Returns: (transfer full) (nullable): the proxy command, or %NULL for
 *   `none` or a malformed value
 */
char *
_execnet_ssh_args_proxy_jump_command (const char *jump,
                                      const char *config_file)
{
  g_autofree char *first = NULL;
  g_autofree char *user = NULL;
  g_autofree char *port = NULL;
  g_autoptr(GString) command = NULL;
  const char *comma;
  char *host;
  char *at;

  if (jump == NULL || *jump == '\0' || g_ascii_strcasecmp (jump, "none") == 0)
    return NULL;

  comma = strchr (jump, ',');
  first = comma ? g_strndup (jump, comma - jump) : g_strdup (jump);
  if (g_str_has_prefix (first, "ssh://"))
    memmove (first, first + strlen ("ssh://"), strlen (first) - strlen ("ssh://") + 1);

  host = first;
  at = strrchr (first, '@');
  if (at != NULL)
    {
      user = g_strndup (first, at - first);
      host = at + 1;
    }
  if (host[0] == '[')
    {
      char *close = strchr (host, ']');

      if (close == NULL)
        return NULL;
      *close = '\0';
      if (close[1] == ':')
        port = g_strdup (close + 2);
      host++;
    }
  else
    {
      char *colon = strchr (host, ':');

      if (colon != NULL && strchr (colon + 1, ':') == NULL)
        {
          *colon = '\0';
          port = g_strdup (colon + 1);
        }
    }
  if (*host == '\0')
    return NULL;

  command = g_string_new ("ssh -o BatchMode=yes");
  if (config_file != NULL)
    {
      g_autofree char *quoted = g_shell_quote (config_file);
      g_string_append_printf (command, " -F %s", quoted);
    }
  if (user != NULL)
    {
      g_autofree char *quoted = g_shell_quote (user);
      g_string_append_printf (command, " -l %s", quoted);
    }
  if (port != NULL)
    {
      g_autofree char *quoted = g_shell_quote (port);
      g_string_append_printf (command, " -p %s", quoted);
    }
  if (comma != NULL && comma[1] != '\0')
    {
      g_autofree char *quoted = g_shell_quote (comma + 1);
      g_string_append_printf (command, " -J %s", quoted);
    }
  {
    g_autofree char *quoted = g_shell_quote (host);
    /* %h and %p are expanded by libssh to the final destination. */
    g_string_append_printf (command, " -W '[%%h]:%%p' %s", quoted);
  }

  return g_string_free (g_steal_pointer (&command), FALSE);
}

static char *
quote_argv (char **argv)
{
  g_autoptr(GString) command = g_string_new (NULL);

  for (guint i = 0; argv[i] != NULL; i++)
    {
      g_autofree char *quoted = g_shell_quote (argv[i]);

      g_string_append_printf (command, "%s%s", i > 0 ? " " : "", quoted);
    }
  return g_string_free (g_steal_pointer (&command), FALSE);
}

/**
 * _execnet_ssh_build_remote_command:
 * @xspec: the gateway's spec (its python= and dont_write_bytecode)
 * @error: return location for an %EXECNET_ERROR_INVALID_SPEC error
 *
 * The remote command: a small sh script, whatever the login shell is, that
 *
 *  - runs the interpreter: the python= command, or by default python3, or
 *    python where there is no python3 (some systems name Python 3 that);
 *  - when it has ended, however it ended, sends SIGTERM to the rest of its
 *    process group: processes the remote code started and left behind
 *    would otherwise outlive the gateway (sshd starts the command in a
 *    process group of its own; a process that wants to outlive the gateway
 *    must leave the group, with setsid);
 *  - ends like the interpreter did, dying of the same signal if it died of
 *    one, so that sshd reports exit-signal rather than a shell's 128+N.
 *
 * sh stays the parent of the interpreter, in the same process group, so
 * the TERM and KILL requests of terminate(), which sshd delivers to the
 * whole group, reach both. */
char *
_execnet_ssh_build_remote_command (ExecnetXSpec  *xspec,
                                   GError       **error)
{
  g_auto(GStrv) argv = NULL;
  g_autofree char *python = NULL;
  g_autofree char *run = NULL;
  g_autofree char *script = NULL;
  g_autofree char *quoted_script = NULL;

  argv = execnet_transport_build_python_argv (xspec, error);
  if (argv == NULL)
    return NULL;
  python = quote_argv (argv);

  if (execnet_xspec_get (xspec, "python") != NULL)
    run = g_strdup (python);
  else
    {
      g_autofree char *fallback = NULL;

      g_free (argv[0]);
      argv[0] = g_strdup ("python");
      fallback = quote_argv (argv);
      run = g_strdup_printf ("if command -v python3 >/dev/null 2>&1; then %s; else %s; fi",
                             python, fallback);
    }

  script = g_strdup_printf ("%s\n"
                            "st=$?\n"
                            "trap '' TERM\n"
                            "kill -TERM 0 2>/dev/null\n"
                            "trap - TERM\n"
                            "if [ $st -gt 128 ]; then kill -$((st - 128)) $$; fi\n"
                            "exit $st\n",
                            run);
  quoted_script = g_shell_quote (script);
  return g_strdup_printf ("exec sh -c %s", quoted_script);
}
