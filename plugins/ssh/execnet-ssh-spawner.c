/* execnet-ssh-spawner.c: what the master says to the remote spawner and reads from it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "execnet-ssh-args.h"

/* The spawner (spawner.py, started by execnet-ssh-session.c) starts the
 * interpreters of further gateways on a shared connection. Its protocol
 * is described at the top of spawner.py; here are the master's halves of
 * it, pure so that tests can feed them anything: the command that starts
 * it, the request that opens each forwarded channel, and the reader of
 * its reports, which must take any bytes a remote sends without harm. */

/* A report line is short; an err frame carries at most one read of a
 * pipe (64 KiB). Anything longer is not our spawner talking. */
#define MAX_LINE 4096
#define MAX_ERR_DATA (1024 * 1024)

struct _ExecnetSshSpawnerReader
{
  GByteArray *buffer;     /* (owned) bytes not yet taken */
  gboolean broken;        /* saw bytes that are not a report */
};

/**
 * _execnet_ssh_spawner_python:
 * @xspec: the spec of the gateway that starts the spawner
 *
 * The interpreter the spawner runs in, and forks for every gateway that
 * names the same one: @xspec's python= when it is a single word (a
 * command with arguments may be a wrapper, which the spawner's other
 * children should not inherit), else %NULL for the default.
 *
 * Returns: (transfer full) (nullable): the python= word, or %NULL
 */
char *
_execnet_ssh_spawner_python (ExecnetXSpec *xspec)
{
  const char *python = execnet_xspec_get (xspec, "python");
  g_auto(GStrv) words = NULL;

  if (python == NULL || *python == '\0' ||
      !g_shell_parse_argv (python, NULL, &words, NULL) || g_strv_length (words) != 1)
    return NULL;
  return g_strdup (python);
}

/* What the spawner's command line runs: it reads the spawner's source,
 * @length bytes, from the start of its input, and runs it. The source is
 * not on the command line, so that ps and the server's logs show a few
 * lines that name it instead of its whole text. */
static const char loader[] =
  "# execnet-ssh spawner: runs the source that its input starts with\n"
  "import os\n"
  "source = b''\n"
  "while len(source) < %" G_GSIZE_FORMAT ":\n"
  "    more = os.read(0, %" G_GSIZE_FORMAT " - len(source))\n"
  "    if not more:\n"
  "        raise SystemExit('execnet-ssh spawner: the input ended within the source')\n"
  "    source += more\n"
  "exec(compile(source, '<execnet-ssh spawner>', 'exec'))\n";

/**
 * _execnet_ssh_build_spawner_command:
 * @length: the size of the spawner's source, which the master sends
 *   first on the command's input
 * @python: (nullable): from _execnet_ssh_spawner_python()
 *
 * The command that runs the spawner: @python, or the remote's default
 * Python (python3, or python where there is no python3), unbuffered as
 * gateways' interpreters are, through sh whatever the login shell is.
 *
 * Returns: (transfer full): the command
 */
char *
_execnet_ssh_build_spawner_command (gsize       length,
                                    const char *python)
{
  g_autofree char *code = g_strdup_printf (loader, length, length);
  g_autofree char *quoted = g_shell_quote (code);
  g_auto(GStrv) words = NULL;

  if (python != NULL && g_shell_parse_argv (python, NULL, &words, NULL) &&
      g_strv_length (words) == 1)
    {
      g_autofree char *quoted_python = g_shell_quote (words[0]);

      return g_strdup_printf ("exec %s -u -c %s", quoted_python, quoted);
    }
  return g_strdup_printf ("exec sh -c 'if command -v python3 >/dev/null 2>&1; "
                          "then exec python3 -u -c \"$1\"; else exec python -u -c \"$1\"; fi' "
                          "execnet-ssh-spawner %s", quoted);
}

/**
 * _execnet_ssh_build_spawner_request:
 * @xspec: the gateway's spec (its python= and dont_write_bytecode)
 * @id: the number the spawner reports the child under
 * @spawner_python: (nullable): the spawner's own python=, from
 *   _execnet_ssh_spawner_python()
 * @error: return location for an %EXECNET_ERROR_INVALID_SPEC error
 *
 * The request that starts @xspec's interpreter on a channel forwarded to
 * the spawner's socket: "spawn ID LENGTH\n" with both numbers in ten
 * columns, then NUL-separated words: how ("fork" when @xspec names the
 * spawner's own interpreter, "default" for the default python3-or-python,
 * "exec" for any other), then the interpreter's command line.
 *
 * Returns: (transfer full): the request
 */
GBytes *
_execnet_ssh_build_spawner_request (ExecnetXSpec  *xspec,
                                    guint          id,
                                    const char    *spawner_python,
                                    GError       **error)
{
  const char *python = execnet_xspec_get (xspec, "python");
  g_auto(GStrv) argv = execnet_transport_build_python_argv (xspec, error);
  g_autoptr(GString) words = NULL;
  g_autoptr(GString) request = NULL;

  if (argv == NULL)
    return NULL;
  if (python != NULL && *python == '\0')
    python = NULL;
  if (g_strcmp0 (python, spawner_python) == 0)
    words = g_string_new ("fork");
  else
    words = g_string_new (python == NULL ? "default" : "exec");
  for (guint i = 0; argv[i] != NULL; i++)
    {
      g_string_append_c (words, '\0');
      g_string_append (words, argv[i]);
    }

  request = g_string_sized_new (32 + words->len);
  g_string_printf (request, "spawn %10u %10u\n", id, (guint) words->len);
  g_string_append_len (request, words->str, words->len);
  return g_string_free_to_bytes (g_steal_pointer (&request));
}

ExecnetSshSpawnerReader *
_execnet_ssh_spawner_reader_new (void)
{
  ExecnetSshSpawnerReader *reader = g_new0 (ExecnetSshSpawnerReader, 1);

  reader->buffer = g_byte_array_new ();
  return reader;
}

void
_execnet_ssh_spawner_reader_free (ExecnetSshSpawnerReader *reader)
{
  g_byte_array_unref (reader->buffer);
  g_free (reader);
}

/* Parses a decimal number that fills @word, within @max. */
static gboolean
parse_number (const char *word,
              guint64     max,
              guint64    *number)
{
  return word != NULL &&
         g_ascii_string_to_unsigned (word, 10, 0, max, number, NULL);
}

/* One complete report at the start of the buffer: returns how many bytes
 * it took, 0 if more are needed, -1 if it is not a report. */
static gssize
take_report (ExecnetSshSpawnerReader  *reader,
             ExecnetSshSpawnerFunc     func,
             gpointer                  user_data)
{
  const char *data = (const char *) reader->buffer->data;
  const char *newline = memchr (data, '\n', MIN (reader->buffer->len, MAX_LINE));
  g_autofree char *line = NULL;
  g_auto(GStrv) words = NULL;
  guint64 id, value;
  gsize line_len;

  if (newline == NULL)
    return reader->buffer->len >= MAX_LINE ? -1 : 0;
  line_len = newline - data;
  line = g_strndup (data, line_len);
  if (strlen (line) != line_len)
    return -1;   /* a NUL byte */

  if (g_str_has_prefix (line, "ready /"))
    {
      func (EXECNET_SSH_SPAWNER_READY, 0, 0, line + 6, line_len - 6, user_data);
      return line_len + 1;
    }
  if (g_str_has_prefix (line, "fail "))
    {
      func (EXECNET_SSH_SPAWNER_FAIL, 0, 0, line + 5, line_len - 5, user_data);
      return line_len + 1;
    }

  words = g_strsplit (line, " ", 0);
  if (g_strv_length (words) != 3 ||
      !parse_number (words[1], G_MAXUINT, &id) ||
      !parse_number (words[2], g_str_equal (words[0], "err") ? MAX_ERR_DATA : G_MAXINT, &value))
    return -1;

  if (g_str_equal (words[0], "exit"))
    {
      func (EXECNET_SSH_SPAWNER_EXIT, (guint) id, (int) value, NULL, 0, user_data);
      return line_len + 1;
    }
  if (g_str_equal (words[0], "err"))
    {
      if (reader->buffer->len - (line_len + 1) < value)
        return 0;
      func (EXECNET_SSH_SPAWNER_ERR, (guint) id, 0, newline + 1, (gsize) value, user_data);
      return line_len + 1 + value;
    }
  return -1;
}

/**
 * _execnet_ssh_spawner_reader_feed:
 * @reader: a reader
 * @data: (array length=len): bytes from the spawner's stdout
 * @func: called for each complete report, in order
 *
 * Returns: %FALSE once the spawner has sent something that is not a
 *   report; nothing after it is read
 */
gboolean
_execnet_ssh_spawner_reader_feed (ExecnetSshSpawnerReader *reader,
                                  const void              *data,
                                  gsize                    len,
                                  ExecnetSshSpawnerFunc    func,
                                  gpointer                 user_data)
{
  if (reader->broken)
    return FALSE;
  g_byte_array_append (reader->buffer, data, len);
  while (reader->buffer->len > 0)
    {
      gssize n = take_report (reader, func, user_data);

      if (n < 0)
        {
          reader->broken = TRUE;
          g_byte_array_set_size (reader->buffer, 0);
          return FALSE;
        }
      if (n == 0)
        break;
      g_byte_array_remove_range (reader->buffer, 0, n);
    }
  return TRUE;
}
