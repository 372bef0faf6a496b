/* execnet-bootstrap.c: starting the agent on the remote side
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <glib/gstdio.h>

#include <execnet/execnet-error.h>

#include "execnet-bootstrap-private.h"
#include "execnet-connection-private.h"
#include "execnet-debug-private.h"
#include "execnet-inbox-private.h"
#include "execnet-util-private.h"
#include "execnet-xspec-private.h"

/* The remote interpreter reads one line, evaluates it to a string and
 * executes that string (see doc/protocol.md). The line we send is a Python
 * string literal holding the agent's source followed by a call of its
 * execnet_agent_serve() with this gateway's settings, all escaped to pure
 * ASCII so that no locale or encoding on the remote side can garble it.
 *
 * The agent applies chdir=, nice= and env: before it answers, so one round
 * trip starts a gateway fully set up. It answers the single byte "1", or
 * "E" and a one-line reason when it cannot do what the spec asks. */

#define AGENT_RESOURCE "/org/execnet/remote/agent.py"

/* How much of an answer that is not the agent's is read, to be quoted. */
#define FOREIGN_ANSWER_MAX 128

/* Appends @text as the inside of a single-quoted Python literal, pure ASCII. */
static void
append_escaped (GString    *out,
                const char *text,
                gssize      length)
{
  const char *end = text + (length < 0 ? (gssize) strlen (text) : length);
  const char *p = text;

  while (p < end)
    {
      const char *plain = p;
      gunichar c;

      /* Printable ASCII but the quote and the backslash goes as it is, a
       * run at a time: most of a line is base64 or the agent's source. */
      while (p < end && *p >= 0x20 && *p < 0x7f && *p != '\\' && *p != '\'')
        p++;
      g_string_append_len (out, plain, p - plain);
      if (p == end)
        break;

      c = g_utf8_get_char_validated (p, end - p);

      if (c == (gunichar) -1 || c == (gunichar) -2)
        {
          /* Not UTF-8: keep the byte's value as a code point, as
           * Python's latin-1 would; the agent's text is ASCII anyway. */
          c = (guchar) *p;
          p++;
        }
      else
        p = g_utf8_next_char (p);

      switch (c)
        {
        case '\\': g_string_append (out, "\\\\"); break;
        case '\'': g_string_append (out, "\\'"); break;
        case '\n': g_string_append (out, "\\n"); break;
        case '\r': g_string_append (out, "\\r"); break;
        case '\t': g_string_append (out, "\\t"); break;
        default:
          if (c >= 0x20 && c < 0x7f)
            g_string_append_c (out, (char) c);
          else if (c < 0x100)
            g_string_append_printf (out, "\\x%02x", c);
          else if (c < 0x10000)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_printf (out, "\\U%08x", c);
        }
    }
}

/* Appends a complete single-quoted Python literal for @text. */
void
_execnet_append_python_string (GString    *out,
                               const char *text,
                               gssize      length)
{
  g_string_append_c (out, '\'');
  append_escaped (out, text, length);
  g_string_append_c (out, '\'');
}

/* The agent's source, escaped once for all gateways. */
static const GString *
escaped_agent (void)
{
  static GString *escaped = NULL;

  if (g_once_init_enter (&escaped))
    {
      g_autoptr(GBytes) source = NULL;
      GString *text = g_string_new (NULL);
      gsize size;
      const char *data;

      source = _execnet_remote_lookup (AGENT_RESOURCE);
      g_assert (source != NULL);
      data = g_bytes_get_data (source, &size);
      append_escaped (text, data, size);
      append_escaped (text, "\n", 1);
      g_once_init_leave (&escaped, text);
    }

  return escaped;
}

/* agent=execnet: the remote side's own execnet serves instead of our
 * agent, for hosts that have it installed. It answers "1" like ours, but
 * applies nothing of the spec: the gateway sets chdir, nice and env:
 * afterwards with ordinary remote code (_execnet_bootstrap_setup_source). */
static GBytes *
build_execnet_line (ExecnetXSpec          *xspec,
                    const char            *gateway_id,
                    ExecnetBootstrapMode   mode,
                    GError               **error)
{
  const char *execmodel = execnet_xspec_get (xspec, "execmodel");
  g_autoptr(GString) source = g_string_new (NULL);
  g_autoptr(GString) line = g_string_new (NULL);
  g_autofree char *worker_id = g_strconcat (gateway_id, "-worker", NULL);

  if (mode != EXECNET_BOOTSTRAP_STDIO)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: agent=execnet works with transports that start the "
                   "interpreter (popen, ssh), not with socket servers",
                   execnet_xspec_to_string (xspec));
      return NULL;
    }

  g_string_append (source,
                   "import sys\n"
                   "try:\n"
                   "    from execnet.gateway_base import serve, init_popen_io, get_execmodel\n"
                   "except ImportError as e:\n"
                   "    sys.stdout.write('Eexecnet is not installed for %s: %s\\n' % (sys.executable, e))\n"
                   "    sys.stdout.flush()\n"
                   "    raise SystemExit(1)\n"
                   "try:\n"
                   "    execmodel = get_execmodel(");
  _execnet_append_python_string (source, execmodel != NULL && *execmodel != '\0' ? execmodel : "thread", -1);
  g_string_append (source, ")\n"
                   "except Exception as e:\n"
                   "    sys.stdout.write('Ethe remote execnet has no such execmodel: %s\\n' % (e,))\n"
                   "    sys.stdout.flush()\n"
                   "    raise SystemExit(1)\n"
                   "sys.stdout.write('1')\n"
                   "sys.stdout.flush()\n"
                   "serve(init_popen_io(execmodel), id=");
  _execnet_append_python_string (source, worker_id, -1);
  g_string_append (source, ")\n");

  _execnet_append_python_string (line, source->str, source->len);
  g_string_append_c (line, '\n');

  return g_string_free_to_bytes (g_steal_pointer (&line));
}

/* Linux keeps a niceness per thread, and os.nice() changes only the
 * calling one. Our agent applies nice= in its main thread before it starts
 * any other, so every thread inherits it; execnet's worker runs the setup
 * code below in one thread of a pool that already has several (its
 * receiver among them, which starts the threads of later tasks). So the
 * setup renices every thread of the process, again until no new one shows
 * up, and threads started later inherit it from whichever thread starts
 * them. Without /proc (not Linux), niceness is per process: os.nice(). */
#define RENICE_ALL_THREADS \
  "def renice(increment):\n" \
  "    try:\n" \
  "        os.listdir('/proc/self/task')\n" \
  "    except OSError:\n" \
  "        os.nice(increment)\n" \
  "        return\n" \
  "    done = set()\n" \
  "    while True:\n" \
  "        tids = set(int(t) for t in os.listdir('/proc/self/task')) - done\n" \
  "        if not tids:\n" \
  "            break\n" \
  "        for tid in tids:\n" \
  "            done.add(tid)\n" \
  "            try:\n" \
  "                level = os.getpriority(os.PRIO_PROCESS, tid) + increment\n" \
  "                os.setpriority(os.PRIO_PROCESS, tid, max(-20, min(19, level)))\n" \
  "            except ProcessLookupError:\n" \
  "                pass\n"

/* With agent=execnet: the remote code that applies chdir, nice and env:,
 * or NULL when the spec has none of them. */
char *
_execnet_bootstrap_setup_source (ExecnetXSpec *xspec)
{
  const char *chdir = execnet_xspec_get (xspec, "chdir");
  const char *nice = execnet_xspec_get (xspec, "nice");
  GHashTable *env = execnet_xspec_get_env (xspec);
  g_autoptr(GString) source = NULL;
  GHashTableIter iter;
  gpointer key, value;

  if ((chdir == NULL || *chdir == '\0') && nice == NULL && (env == NULL || g_hash_table_size (env) == 0))
    return NULL;

  source = g_string_new ("import os\n");
  if (chdir != NULL && *chdir != '\0')
    {
      g_string_append (source, "path = ");
      _execnet_append_python_string (source, chdir, -1);
      g_string_append (source, "\nos.makedirs(path, exist_ok=True)\nos.chdir(path)\n");
    }
  if (nice != NULL)
    {
      g_string_append (source, RENICE_ALL_THREADS);
      g_string_append_printf (source, "renice(%" G_GINT64_FORMAT ")\n", g_ascii_strtoll (nice, NULL, 10));
    }
  if (env != NULL)
    {
      g_hash_table_iter_init (&iter, env);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          g_string_append (source, "os.environ[");
          _execnet_append_python_string (source, key, -1);
          g_string_append (source, "] = ");
          _execnet_append_python_string (source, value, -1);
          g_string_append_c (source, '\n');
        }
    }
  g_string_append (source, "channel.send(None)\n");

  return g_string_free (g_steal_pointer (&source), FALSE);
}

/* The call of execnet_agent_serve() with this gateway's settings and
 * @extra_arguments (", name=value..." or ""), or NULL for agent=execnet
 * (*execnet_line is then its line) or a bad spec. */
static GString *
build_serve_call (ExecnetXSpec          *xspec,
                  const char            *gateway_id,
                  ExecnetBootstrapMode   mode,
                  const char            *extra_arguments,
                  GBytes               **execnet_line,
                  GError               **error)
{
  g_autoptr(GString) call = g_string_new ("execnet_agent_serve(mode=");
  g_autofree char *worker_id = g_strconcat (gateway_id, "-worker", NULL);
  const char *execmodel = execnet_xspec_get (xspec, "execmodel");
  const char *chdir = execnet_xspec_get (xspec, "chdir");
  const char *nice = execnet_xspec_get (xspec, "nice");
  gint64 nice_value = 0;
  GHashTable *env = execnet_xspec_get_env (xspec);
  const char *agent = execnet_xspec_get (xspec, "agent");

  *execnet_line = NULL;
  if (nice != NULL && !g_ascii_string_to_signed (nice, 10, -40, 40, &nice_value, NULL))
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: nice=%s is not a niceness increment (a whole number)",
                   execnet_xspec_to_string (xspec), nice);
      return NULL;
    }

  if (agent != NULL && g_str_equal (agent, "execnet"))
    {
      *execnet_line = build_execnet_line (xspec, gateway_id, mode, error);
      return NULL;
    }
  if (agent != NULL && !g_str_equal (agent, "") && !g_str_equal (agent, "default"))
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: agent=%s is unknown; use agent=execnet to drive the "
                   "remote host's own execnet, or leave it out for ours",
                   execnet_xspec_to_string (xspec), agent);
      return NULL;
    }

  if (mode == EXECNET_BOOTSTRAP_SOCKET)
    g_string_append (call, "'socket', sock=clientsock");
  else
    g_string_append (call, "'stdio'");

  /* The remote side names itself as execnet's worker does. */
  g_string_append (call, ", gateway_id=");
  _execnet_append_python_string (call, worker_id, -1);
  g_string_append (call, ", execmodel=");
  _execnet_append_python_string (call, execmodel != NULL && *execmodel != '\0' ? execmodel : "thread", -1);
  g_string_append (call, ", chdir=");
  if (chdir != NULL && *chdir != '\0')
    _execnet_append_python_string (call, chdir, -1);
  else
    g_string_append (call, "None");
  g_string_append_printf (call, ", nice=%" G_GINT64_FORMAT ", env={", nice_value);
  if (env != NULL)
    {
      GHashTableIter iter;
      gpointer key, value;
      gboolean first = TRUE;

      g_hash_table_iter_init (&iter, env);
      while (g_hash_table_iter_next (&iter, &key, &value))
        {
          if (!first)
            g_string_append (call, ", ");
          first = FALSE;
          _execnet_append_python_string (call, key, -1);
          g_string_append (call, ": ");
          _execnet_append_python_string (call, value, -1);
        }
    }
  /* Remote output comes back as items on channel -1 (doc/protocol.md). */
  g_string_append_printf (call, "}, output=True%s)\n", extra_arguments);

  return g_steal_pointer (&call);
}

/* @code as one line: a Python string literal, newline included. */
static GBytes *
line_of (const char *code,
         gsize       length)
{
  GString *line = g_string_sized_new (length + length / 8 + 4);

  g_string_append_c (line, '\'');
  append_escaped (line, code, length);
  g_string_append (line, "'\n");
  return g_string_free_to_bytes (line);
}

/* Builds the line, newline included. */
GBytes *
_execnet_bootstrap_build_line (ExecnetXSpec          *xspec,
                               const char            *gateway_id,
                               ExecnetBootstrapMode   mode,
                               GError               **error)
{
  g_autoptr(GString) call = NULL;
  g_autoptr(GString) line = NULL;
  const GString *agent_source = escaped_agent ();
  GBytes *execnet_line = NULL;

  call = build_serve_call (xspec, gateway_id, mode, "", &execnet_line, error);
  if (call == NULL)
    return execnet_line;

  line = g_string_sized_new (agent_source->len + call->len * 2 + 4);
  g_string_append_c (line, '\'');
  g_string_append_len (line, agent_source->str, agent_source->len);
  append_escaped (line, call->str, call->len);
  g_string_append (line, "'\n");

  return g_string_free_to_bytes (g_steal_pointer (&line));
}

/* The compiled agent, cached on the master's side.
 *
 * Compiling the agent's source is most of what a start-up costs on top of
 * a bare interpreter. So the first time a python= starts, the line asks
 * the agent to send back its compiled form, which the agent answers
 * before its "1": "C", the 4-byte bytecode magic number of that Python,
 * a big-endian int32 length, and the marshalled module code. The master
 * keeps it in memory and in the user's cache directory (a file per magic
 * number, named after the agent's SHA-256, so a new agent never meets an
 * old cache), and sends it on later starts instead of the source: the
 * line then checks the remote's magic number and runs the code, or, when
 * it differs or the code does not load, answers "S" and reads the
 * source line from the master. Nothing is written on remote hosts.
 *
 * Only for our agent over stdio: agent=execnet and socket servers get the
 * line they always got. */

#define COMPILED_MAX_SIZE (4 << 20)

G_LOCK_DEFINE_STATIC (compiled);
static GHashTable *compiled_by_magic = NULL;  /* (owned) magic hex -> GBytes; guarded by compiled */
static GHashTable *magic_by_python = NULL;    /* (owned) python key -> magic hex; guarded by compiled */

static const char *
agent_digest (void)
{
  static char *digest = NULL;

  if (g_once_init_enter (&digest))
    {
      g_autoptr(GBytes) source = _execnet_remote_lookup (AGENT_RESOURCE);
      g_once_init_leave (&digest, g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, source));
    }
  return digest;
}

static char *
compiled_dir (void)
{
  return g_build_filename (g_get_user_cache_dir (), "execnet-glib", NULL);
}

/* The file for @magic_hex, or with @magic_hex NULL, the prefix of them all. */
static char *
compiled_path (const char *magic_hex)
{
  g_autofree char *dir = compiled_dir ();
  g_autofree char *name = g_strdup_printf ("agent-%.16s-%s", agent_digest (),
                                           magic_hex != NULL ? magic_hex : "");

  return g_build_filename (dir, name, NULL);
}

/* With the lock: the newest cached file's magic number, or NULL. */
static char *
newest_cached_magic_unlocked (void)
{
  g_autofree char *dir_path = compiled_dir ();
  g_autofree char *all = compiled_path (NULL);
  g_autofree char *prefix = g_path_get_basename (all);
  g_autoptr(GDir) dir = g_dir_open (dir_path, 0, NULL);
  g_autofree char *best = NULL;
  gint64 best_time = G_MININT64;
  const char *name;

  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = NULL;
      GStatBuf st;

      if (!g_str_has_prefix (name, prefix) || strlen (name) != strlen (prefix) + 8)
        continue;
      path = g_build_filename (dir_path, name, NULL);
      if (g_stat (path, &st) == 0 && (gint64) st.st_mtime > best_time)
        {
          best_time = st.st_mtime;
          g_free (best);
          best = g_strdup (name + strlen (prefix));
        }
    }
  return g_steal_pointer (&best);
}

/* The line's form of marshalled @code: zlib-compressed, then base64. */
static GBytes *
encode_compiled (GBytes *code)
{
  g_autoptr(GConverter) compressor = G_CONVERTER (g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_ZLIB, 9));
  g_autoptr(GOutputStream) memory = g_memory_output_stream_new_resizable ();
  g_autoptr(GOutputStream) output = g_converter_output_stream_new (memory, compressor);
  gsize size;
  const guchar *data = g_bytes_get_data (code, &size);
  char *text;

  if (!g_output_stream_write_all (output, data, size, NULL, NULL, NULL) ||
      !g_output_stream_close (output, NULL, NULL))
    return NULL;
  text = g_base64_encode (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (memory)),
                          g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (memory)));
  return g_bytes_new_take (text, strlen (text));
}

/* The cached code to try for @python_key, and its magic number as 8 hex
 * digits, or NULL. */
static GBytes *
compiled_lookup (const char  *python_key,
                 char       **magic_hex)
{
  g_autofree char *magic = NULL;
  GBytes *code = NULL;

  G_LOCK (compiled);
  if (compiled_by_magic == NULL)
    {
      compiled_by_magic = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) g_bytes_unref);
      magic_by_python = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
    }
  magic = g_strdup (g_hash_table_lookup (magic_by_python, python_key));
  if (magic == NULL)
    magic = newest_cached_magic_unlocked ();
  if (magic != NULL)
    {
      code = g_hash_table_lookup (compiled_by_magic, magic);
      if (code != NULL)
        g_bytes_ref (code);
      else
        {
          g_autofree char *path = compiled_path (magic);
          char *contents = NULL;
          gsize length = 0;

          if (g_file_get_contents (path, &contents, &length, NULL) &&
              length > 0 && length <= COMPILED_MAX_SIZE)
            {
              g_autoptr(GBytes) raw = g_bytes_new_take (g_steal_pointer (&contents), length);

              code = encode_compiled (raw);
              if (code != NULL)
                g_hash_table_insert (compiled_by_magic, g_strdup (magic), g_bytes_ref (code));
            }
          g_free (contents);
        }
    }
  G_UNLOCK (compiled);

  *magic_hex = code != NULL ? g_steal_pointer (&magic) : NULL;
  return code;
}

/* Remembers @code, compiled by a Python with @magic_hex, for @python_key. */
static void
compiled_store (const char *python_key,
                const char *magic_hex,
                GBytes     *code)
{
  g_autofree char *dir = compiled_dir ();
  g_autofree char *path = compiled_path (magic_hex);
  gsize size;
  const char *data = g_bytes_get_data (code, &size);

  g_autoptr(GBytes) encoded = encode_compiled (code);

  G_LOCK (compiled);
  if (encoded != NULL)
    g_hash_table_replace (compiled_by_magic, g_strdup (magic_hex), g_bytes_ref (encoded));
  g_hash_table_replace (magic_by_python, g_strdup (python_key), g_strdup (magic_hex));
  G_UNLOCK (compiled);

  /* A cache: when it cannot be written, the next start sends source. */
  if (g_mkdir_with_parents (dir, 0700) == 0)
    g_file_set_contents_full (path, data, size, G_FILE_SET_CONTENTS_CONSISTENT, 0600, NULL);
}

/* Which interpreter a spec starts, as far as the master can tell. */
static char *
python_key_of (ExecnetXSpec *xspec)
{
  const char *scheme = execnet_xspec_get_scheme (xspec);
  const char *python = execnet_xspec_get (xspec, "python");

  return g_strdup_printf ("%s=%s//python=%s", scheme, execnet_xspec_get (xspec, scheme),
                          python != NULL ? python : "");
}

/* The line that compiles the agent's source and asks for the result. */
static GBytes *
build_compiling_line (const GString *call)
{
  const GString *agent_source = escaped_agent ();
  g_autoptr(GString) code = g_string_sized_new (agent_source->len + call->len + 128);

  g_string_append (code, "import marshal as _m\n_c = compile('");
  g_string_append_len (code, agent_source->str, agent_source->len);
  g_string_append (code, "', '<string>', 'exec')\nexec(_c)\n");
  g_string_append_len (code, call->str, call->len);
  return line_of (code->str, code->len);
}

/* The line that runs @compiled (see encode_compiled()) if the remote's
 * magic number is @magic_hex, and otherwise asks for the source line
 * with "S". The base64 follows on a line of its own, which the first one
 * reads: inside the literal, Python would parse it twice (once as part of
 * the line, once as a literal in the code the line holds). */
static GBytes *
build_compiled_line (const GString *call,
                     const char    *magic_hex,
                     GBytes        *compiled)
{
  gsize size;
  const char *base64 = g_bytes_get_data (compiled, &size);
  g_autoptr(GString) code = g_string_sized_new (call->len + 512);
  g_autoptr(GBytes) line = NULL;
  const char *line_data;
  gsize line_size;
  GString *lines;

  g_string_append (code,
                   "import sys\n"
                   "_p = sys.stdin.readline()\n"
                   "try:\n"
                   "    import _frozen_importlib_external as _e, marshal as _m, binascii as _b, zlib as _z\n"
                   "    _c = _e.MAGIC_NUMBER == b'");
  for (int i = 0; i < 8; i += 2)
    g_string_append_printf (code, "\\x%.2s", magic_hex + i);
  g_string_append (code,
                   "' and _m.loads(_z.decompress(_b.a2b_base64(_p)))\n"
                   "except Exception:\n"
                   "    _c = None\n"
                   "del _p\n"
                   "if _c:\n"
                   "    exec(_c)\n"
                   "    ");
  g_string_append_len (code, call->str, call->len);
  g_string_append (code,
                   "else:\n"
                   "    sys.stdout.write('S')\n"
                   "    sys.stdout.flush()\n"
                   "    exec(eval(sys.stdin.readline()))\n");

  line = line_of (code->str, code->len);
  line_data = g_bytes_get_data (line, &line_size);
  lines = g_string_sized_new (line_size + size + 1);
  g_string_append_len (lines, line_data, line_size);
  g_string_append_len (lines, base64, size);
  g_string_append_c (lines, '\n');
  return g_string_free_to_bytes (lines);
}

/* The state of one bootstrap, in the I/O thread. */
typedef struct
{
  GBytes *line;               /* (owned) */
  GString *fallback_call;    /* (owned) (nullable) the call of the source line sent
                               * when the remote answers "S" */
  char *python_key;           /* (owned) (nullable) set while the compiled agent may come */
  guint8 *compiled;           /* (owned) (nullable) the compiled agent being read */
  gsize compiled_len;
  guint8 ack[512];            /* what the remote answered */
  gsize ack_len;
  GSource *timeout_source;    /* (owned) (nullable) */
  GCancellable *cancellable;  /* (owned) ours: cancelled by the caller's or the timeout */
  gulong cancelled_id;
  GCancellable *caller_cancellable; /* (owned) (nullable) */
  gdouble timeout;
  gboolean timed_out;
  gboolean eof;
} Bootstrap;

static void
bootstrap_free (gpointer data)
{
  Bootstrap *bootstrap = data;

  if (bootstrap->timeout_source != NULL)
    {
      g_source_destroy (bootstrap->timeout_source);
      g_source_unref (bootstrap->timeout_source);
    }
  if (bootstrap->caller_cancellable != NULL)
    {
      g_cancellable_disconnect (bootstrap->caller_cancellable, bootstrap->cancelled_id);
      g_object_unref (bootstrap->caller_cancellable);
    }
  g_clear_object (&bootstrap->cancellable);
  if (bootstrap->fallback_call != NULL)
    g_string_free (bootstrap->fallback_call, TRUE);
  g_free (bootstrap->python_key);
  g_free (bootstrap->compiled);
  g_bytes_unref (bootstrap->line);
  g_free (bootstrap);
}

static void read_ack (GTask *task);

/* I/O thread: after the remote ended without acknowledging. */
static void
on_waited_after_eof (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetConnection *connection = EXECNET_CONNECTION (source);
  g_autofree char *how = NULL;
  g_autofree char *output = NULL;
  g_autoptr(GString) message = g_string_new (NULL);

  execnet_connection_wait_finish (connection, result, NULL);
  how = _execnet_describe_exit_status (execnet_connection_get_exit_status (connection));
  output = execnet_connection_dup_error_output (connection);

  if (execnet_connection_get_bootstrap_mode (connection) == EXECNET_BOOTSTRAP_SOCKET)
    {
      _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                                      "the socket server at %s closed the connection before its "
                                      "Python acknowledged the bootstrap: the server may be at its "
                                      "connection limit, or may have failed to start Python (see its log)",
                                      execnet_connection_get_remote_address (connection));
      return;
    }

  g_string_printf (message, "the remote Python (%s) %s before acknowledging the bootstrap",
                   execnet_connection_get_remote_address (connection), how);
  if (WIFEXITED (execnet_connection_get_exit_status (connection)) &&
      WEXITSTATUS (execnet_connection_get_exit_status (connection)) == 127)
    g_string_append (message, ": the interpreter was not found; name an installed Python 3 with python=");
  else
    g_string_append (message, "; is it Python 3.8 or newer, and can it start?");
  if (output != NULL)
    g_string_append_printf (message, "; its error output ends with: %s", g_strstrip (output));

  _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP, "%s", message->str);
}

static gboolean
on_wait_deadline (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
on_ack_read (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Bootstrap *bootstrap = g_task_get_task_data (task);
  ExecnetConnection *connection = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n < 0)
    {
      if (bootstrap->timed_out)
        _execnet_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                        "the remote Python (%s) did not acknowledge the bootstrap "
                                        "within %g seconds; raise connect_timeout= if it is just slow",
                                        execnet_connection_get_remote_address (connection),
                                        bootstrap->timeout);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        _execnet_task_return_error (task, g_steal_pointer (&error));
      else
        _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                                        "cannot read the bootstrap answer of %s: %s",
                                        execnet_connection_get_remote_address (connection),
                                        error->message);
      return;
    }

  if (n == 0)
    {
      bootstrap->eof = TRUE;
      /* An error line, or a line that is not the agent's: quoted. */
      if (bootstrap->ack_len >= 1 && bootstrap->ack[0] != 'C' && bootstrap->ack[0] != 'S')
        {
          read_ack (g_steal_pointer (&task));  /* reports the message */
          return;
        }
      else
        {
          /* Learn how it ended, but don't wait long for it. */
          g_autoptr(GCancellable) deadline = g_cancellable_new ();
          GSource *timer = g_timeout_source_new (2000);

          g_source_set_callback (timer, on_wait_deadline, g_object_ref (deadline), g_object_unref);
          g_source_attach (timer, g_main_context_get_thread_default ());
          g_source_unref (timer);
          execnet_connection_wait_async (connection, deadline, on_waited_after_eof,
                                         g_steal_pointer (&task));
          return;
        }
    }

  bootstrap->ack_len += n;
  read_ack (g_steal_pointer (&task));
}

static void on_line_written (GObject      *source,
                             GAsyncResult *result,
                             gpointer      user_data);

/* I/O thread: the compiled agent has been read. */
static void
on_compiled_read (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Bootstrap *bootstrap = g_task_get_task_data (task);
  ExecnetConnection *connection = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) compiled = NULL;
  gsize n = 0;
  char magic_hex[9];

  if (!g_input_stream_read_all_finish (G_INPUT_STREAM (source), result, &n, &error) ||
      n != bootstrap->compiled_len)
    {
      if (bootstrap->timed_out)
        _execnet_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                        "the remote Python (%s) did not finish starting within %g "
                                        "seconds; raise connect_timeout= if it is just slow",
                                        execnet_connection_get_remote_address (connection),
                                        bootstrap->timeout);
      else if (error != NULL && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        _execnet_task_return_error (task, g_steal_pointer (&error));
      else
        _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                                        "the remote Python (%s) stopped while answering the bootstrap: %s",
                                        execnet_connection_get_remote_address (connection),
                                        error != NULL ? error->message : "the connection was closed");
      return;
    }

  for (int i = 0; i < 4; i++)
    g_snprintf (magic_hex + 2 * i, 3, "%02x", bootstrap->ack[1 + i]);
  compiled = g_bytes_new_take (g_steal_pointer (&bootstrap->compiled), bootstrap->compiled_len);
  EXECNET_NOTE (GATEWAY, NULL, "%s: cached the compiled agent for bytecode magic number %s",
                execnet_connection_get_remote_address (connection), magic_hex);
  compiled_store (bootstrap->python_key, magic_hex, compiled);
  g_clear_pointer (&bootstrap->python_key, g_free);
  bootstrap->ack_len = 0;
  read_ack (g_steal_pointer (&task));
}

/* I/O thread: the answer began with "C": reads the compiled agent that
 * follows once the header is complete. Returns FALSE to read on. */
static gboolean
read_compiled_agent (GTask *task)
{
  Bootstrap *bootstrap = g_task_get_task_data (task);
  ExecnetConnection *connection = g_task_get_source_object (task);
  GInputStream *input = g_io_stream_get_input_stream (execnet_connection_get_stream (connection));
  gint32 length;

  if (bootstrap->ack_len < 9 && !bootstrap->eof)
    return FALSE;

  memcpy (&length, bootstrap->ack + 5, sizeof length);
  length = GINT32_FROM_BE (length);
  /* A bytecode magic number ends with "\r\n". */
  if (bootstrap->ack_len < 9 || bootstrap->ack[3] != '\r' || bootstrap->ack[4] != '\n' ||
      length <= 0 || length > COMPILED_MAX_SIZE)
    {
      _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                                      "the remote side (%s) answered the bootstrap with something that "
                                      "is not our agent's compiled code: does the remote shell print "
                                      "anything at login?",
                                      execnet_connection_get_remote_address (connection));
      g_object_unref (task);
      return TRUE;
    }

  bootstrap->compiled_len = length;
  bootstrap->compiled = g_malloc (length);
  g_input_stream_read_all_async (input, bootstrap->compiled, length, G_PRIORITY_DEFAULT,
                                 bootstrap->cancellable, on_compiled_read, task);
  return TRUE;
}

/* Whether an answer that is not the agent's has been read far enough to
 * quote: the first byte, if it is not text; else its line, up to
 * FOREIGN_ANSWER_MAX bytes, or what came before the end of the stream. */
static gboolean
foreign_answer_complete (Bootstrap *bootstrap)
{
  guint8 last = bootstrap->ack[bootstrap->ack_len - 1];

  return bootstrap->eof || bootstrap->ack_len >= FOREIGN_ANSWER_MAX ||
         last < 0x20 || last > 0x7e;
}

/* I/O thread: reads the answer one byte at a time until it is complete, so
 * that nothing after the "1" is consumed. */
static void
read_ack (GTask *task)
{
  Bootstrap *bootstrap = g_task_get_task_data (task);
  ExecnetConnection *connection = g_task_get_source_object (task);
  GInputStream *input = g_io_stream_get_input_stream (execnet_connection_get_stream (connection));

  /* The cached compiled agent does not suit that Python: send source. */
  if (bootstrap->ack_len == 1 && bootstrap->ack[0] == 'S' && bootstrap->fallback_call != NULL)
    {
      GOutputStream *output = g_io_stream_get_output_stream (execnet_connection_get_stream (connection));
      gsize size;
      const char *data;

      EXECNET_NOTE (GATEWAY, NULL, "%s: its Python cannot run the cached compiled agent, sending source",
                    execnet_connection_get_remote_address (connection));
      g_bytes_unref (bootstrap->line);
      bootstrap->line = build_compiling_line (bootstrap->fallback_call);
      g_string_free (g_steal_pointer (&bootstrap->fallback_call), TRUE);
      bootstrap->ack_len = 0;
      data = g_bytes_get_data (bootstrap->line, &size);
      g_output_stream_write_all_async (output, data, size, G_PRIORITY_DEFAULT,
                                       bootstrap->cancellable, on_line_written, task);
      return;
    }

  if (bootstrap->ack_len >= 1 && bootstrap->ack[0] == 'C' && bootstrap->python_key != NULL)
    {
      if (read_compiled_agent (task))
        return;
    }
  else if (bootstrap->ack_len >= 1 && bootstrap->ack[0] == '1')
    {
      _execnet_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  else if (bootstrap->ack_len >= 1 && bootstrap->ack[0] == 'E' &&
           (bootstrap->ack[bootstrap->ack_len - 1] == '\n' ||
            bootstrap->ack_len == sizeof bootstrap->ack ||
            bootstrap->eof))
    {
      g_autofree char *reason = g_strndup ((const char *) bootstrap->ack + 1, bootstrap->ack_len - 1);

      _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                                      "the remote Python (%s) refused to start: %s",
                                      execnet_connection_get_remote_address (connection),
                                      g_strstrip (reason));
      g_object_unref (task);
      return;
    }
  /* Not the agent's answer: a line of text is read to its end, so that
   * the error quotes it and the transport's explain_failure can read it
   * (execnet_connection_dup_bootstrap_answer()); a socket server that
   * wants a token greets with such a line. */
  else if (bootstrap->ack_len >= 1 && bootstrap->ack[0] != 'E' && foreign_answer_complete (bootstrap))
    {
      g_autofree char *line = g_strndup ((const char *) bootstrap->ack, bootstrap->ack_len);
      g_autoptr(GBytes) answer = g_bytes_new (bootstrap->ack, bootstrap->ack_len);
      g_autofree char *seen = NULL;

      _execnet_connection_set_bootstrap_answer (connection, answer);
      seen = g_strescape (g_strchomp (line), NULL);
      _execnet_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                                      "the remote side (%s) answered the bootstrap with “%.40s” "
                                      "instead of “1”: is the spec's python= a Python interpreter, "
                                      "and does the remote shell print anything at login?",
                                      execnet_connection_get_remote_address (connection), seen);
      g_object_unref (task);
      return;
    }

  g_input_stream_read_async (input, bootstrap->ack + bootstrap->ack_len, 1,
                             G_PRIORITY_DEFAULT, bootstrap->cancellable,
                             on_ack_read, task);
}

static void
on_line_written (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Bootstrap *bootstrap = g_task_get_task_data (task);
  ExecnetConnection *connection = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      if (bootstrap->timed_out)
        _execnet_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                        "the remote Python (%s) did not read the bootstrap within %g seconds",
                                        execnet_connection_get_remote_address (connection), bootstrap->timeout);
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        _execnet_task_return_error (task, g_steal_pointer (&error));
      else
        {
          /* Most likely the interpreter is already gone: reading tells why. */
          read_ack (g_steal_pointer (&task));
        }
      return;
    }

  read_ack (g_steal_pointer (&task));
}

/* The line to send first, and with our agent over stdio, the source line
 * to fall back on (see “The compiled agent” above). */
static gboolean
build_lines (Bootstrap             *bootstrap,
             ExecnetXSpec          *xspec,
             const char            *gateway_id,
             ExecnetBootstrapMode   mode,
             GError               **error)
{
  g_autoptr(GString) call = NULL;
  g_autoptr(GString) compiling_call = NULL;
  g_autoptr(GBytes) compiled = NULL;
  g_autofree char *magic_hex = NULL;
  GBytes *execnet_line = NULL;

  if (mode != EXECNET_BOOTSTRAP_STDIO)
    {
      bootstrap->line = _execnet_bootstrap_build_line (xspec, gateway_id, mode, error);
      return bootstrap->line != NULL;
    }

  compiling_call = build_serve_call (xspec, gateway_id, mode, ", code=_m.dumps(_c)",
                                     &execnet_line, error);
  if (compiling_call == NULL)
    {
      bootstrap->line = execnet_line;  /* agent=execnet, or NULL: a bad spec */
      return bootstrap->line != NULL;
    }

  bootstrap->python_key = python_key_of (xspec);
  compiled = compiled_lookup (bootstrap->python_key, &magic_hex);
  if (compiled == NULL)
    {
      EXECNET_NOTE (GATEWAY, gateway_id, "%s: sending the agent's source, asking for its compiled form", gateway_id);
      bootstrap->line = build_compiling_line (compiling_call);
      return TRUE;
    }

  EXECNET_NOTE (GATEWAY, gateway_id, "%s: sending the compiled agent for bytecode magic number %s", gateway_id, magic_hex);

  call = build_serve_call (xspec, gateway_id, mode, "", &execnet_line, error);
  g_assert (call != NULL);
  bootstrap->line = build_compiled_line (call, magic_hex, compiled);
  /* Built only when needed: it is larger than the line itself. */
  bootstrap->fallback_call = g_steal_pointer (&compiling_call);
  return TRUE;
}

static gboolean
on_bootstrap_timeout (gpointer data)
{
  Bootstrap *bootstrap = data;

  bootstrap->timed_out = TRUE;
  g_cancellable_cancel (bootstrap->cancellable);

  return G_SOURCE_REMOVE;
}

static void
on_caller_cancelled (GCancellable *cancellable,
                     gpointer      data)
{
  g_cancellable_cancel (data);
}

/* I/O thread. */
void
_execnet_bootstrap_async (ExecnetConnection   *connection,
                          ExecnetXSpec        *xspec,
                          const char          *gateway_id,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GTask *task = g_task_new (connection, cancellable, callback, user_data);
  Bootstrap *bootstrap = g_new0 (Bootstrap, 1);
  GOutputStream *output = g_io_stream_get_output_stream (execnet_connection_get_stream (connection));
  GError *error = NULL;
  gsize size;
  const char *data;

  g_task_set_source_tag (task, _execnet_bootstrap_async);
  g_task_set_task_data (task, bootstrap, bootstrap_free);
  bootstrap->cancellable = g_cancellable_new ();

  if (!_execnet_xspec_get_double (xspec, "connect_timeout", EXECNET_BOOTSTRAP_DEFAULT_TIMEOUT,
                                  &bootstrap->timeout, &error))
    {
      _execnet_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  if (!build_lines (bootstrap, xspec, gateway_id,
                    execnet_connection_get_bootstrap_mode (connection), &error))
    {
      _execnet_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  if (cancellable != NULL)
    {
      bootstrap->caller_cancellable = g_object_ref (cancellable);
      bootstrap->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (on_caller_cancelled),
                                                       g_object_ref (bootstrap->cancellable),
                                                       g_object_unref);
    }

  bootstrap->timeout_source = g_timeout_source_new ((guint) MIN (bootstrap->timeout * 1000.0, G_MAXUINT));
  g_source_set_callback (bootstrap->timeout_source, on_bootstrap_timeout, bootstrap, NULL);
  g_source_attach (bootstrap->timeout_source, g_main_context_get_thread_default ());

  data = g_bytes_get_data (bootstrap->line, &size);
  g_output_stream_write_all_async (output, data, size, G_PRIORITY_DEFAULT,
                                   bootstrap->cancellable, on_line_written, task);
}

gboolean
_execnet_bootstrap_finish (ExecnetConnection  *connection,
                           GAsyncResult       *result,
                           GError            **error)
{
  g_return_val_if_fail (g_task_is_valid (result, connection), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
