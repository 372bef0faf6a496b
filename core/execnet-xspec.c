/* execnet-xspec.c: gateway specifications
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <execnet/execnet-xspec.h>
#include <execnet/execnet-error.h>

#include "execnet-xspec-private.h"

/**
 * ExecnetXSpec:
 *
 * A parsed gateway specification: the text that says how to start or reach
 * a remote Python interpreter and how to prepare it.
 *
 * An XSpec is written as options separated by `//`. Each option is either
 * `key=value` or a bare `key`, which is a flag:
 * [method@Execnet.XSpec.get] returns an empty string for it. Only the first
 * `=` of an option separates the key from the value, so values may contain
 * `=` and spaces, though never `//`:
 *
 * ```
 * popen
 * popen//id=sub1//python=python3 -X dev
 * ssh=-p 5000 user@host//chdir=work//nice=20
 * socket=192.168.1.4:8888
 * popen//env:LANG=C.UTF-8//dont_write_bytecode
 * ```
 *
 * Keys are made of ASCII letters, digits, `_`, `:`, `.` and `-`; they must
 * not begin with `_` and must not repeat. A spec has to be valid UTF-8.
 *
 * The **scheme** of a spec ([method@Execnet.XSpec.get_scheme]) is its first
 * key that is not one of the general options below. It names the transport
 * plugin that starts the interpreter (`popen`, `ssh`, `socket`, or any
 * third-party one), and its value is that transport's argument: the host and
 * ssh options for `ssh`, `host:port` for `socket`, nothing for `popen`.
 *
 * The general options, which any transport accepts:
 *
 * | Key | Meaning |
 * |---|---|
 * | `id=NAME` | The gateway's id in its [class@Execnet.Group]; without one the group assigns `gw0`, `gw1`, ... |
 * | `python=COMMAND` | The remote interpreter, split like a shell command line (`python=python3 -X dev`); `python3` by default. |
 * | `chdir=DIR` | The remote working directory, created if missing. |
 * | `nice=N` | Increment the niceness of the remote process (all its threads) by N. |
 * | `dont_write_bytecode` | Run the remote interpreter with `-B`, so it writes no `.pyc` files. |
 * | `execmodel=MODEL` | How the remote runs `remote_exec` tasks: `thread` (the first task in the main thread, concurrent ones in threads) or `main_thread_only` (all tasks, one after the other, in the main thread). |
 * | `env:NAME=VALUE` | Set the environment variable NAME on the remote side; may be repeated with different names (see [method@Execnet.XSpec.get_env]). A bare `env:NAME` sets it to the empty string. |
 * | `connect_timeout=SECONDS` | How long to wait for the transport to connect and the interpreter to acknowledge the bootstrap. |
 * | `via=ID` | Start this gateway through the gateway ID of the same group, which relays the traffic. |
 * | `agent=NAME` | Which remote agent the bootstrap sends; the library's own agent by default. |
 *
 * Each transport adds options of its own ([method@Execnet.Transport.get_keys]):
 * `ssh_config=FILE` for `ssh`, `token_file=FILE`, `installvia=ID` and `keepalive=SECONDS` for
 * `socket`, and so on; write them after the scheme.
 *
 * Parsing checks only the syntax. Whether the scheme has a transport and
 * whether it accepts every key and value is checked when a gateway is made
 * from the spec ([method@Execnet.Transport.check_xspec]), so a spec without
 * a scheme, such as `python=python3`, parses.
 *
 * An XSpec is an immutable value, with one exception: its id, which a group
 * assigns to specs that have none ([method@Execnet.Group.allocate_id]).
 * XSpecs are reference counted and may be shared between threads.
 *
 * Since: 1.0
 */

struct _ExecnetXSpec
{
  gatomicrefcount ref_count;

  char *text;              /* (owned) the spec exactly as given */
  char **keys;             /* (owned) the keys in the order written */
  char **values;           /* (owned) values[i] belongs to keys[i]; "" for a flag */
  GHashTable *options;     /* (owned) keys[i] -> values[i], both borrowed */
  GHashTable *env;         /* (owned) NAME of each env:NAME -> its value, both borrowed */
  const char *scheme;      /* (nullable) (unowned) one of keys */

  /* The id is the only mutable part. get_id() hands out a borrowed string,
   * so a replaced id cannot be freed while another thread might still read
   * it: it is kept in @retired_ids until the spec itself is freed. Ids are
   * replaced rarely (a group sets each spec's id at most once), so this
   * costs next to nothing. */
  GMutex id_lock;
  char *id;                /* (owned) (nullable) guarded by id_lock */
  GPtrArray *retired_ids;  /* (owned) (nullable) (element-type utf8) guarded by id_lock */
};

G_DEFINE_BOXED_TYPE (ExecnetXSpec, execnet_xspec,
                     execnet_xspec_ref, execnet_xspec_unref)

/* The options every transport understands, applied by the core; the first
 * key not in this list (nor an env:NAME key) is the scheme. Options of one
 * transport (ssh_config=, token_file=, ...) are declared by that transport
 * (see ExecnetTransportInterface.get_keys) and checked when a gateway is
 * made, not here. */
static const char * const general_keys[] = {
  "id",
  "python",
  "chdir",
  "nice",
  "dont_write_bytecode",
  "execmodel",
  "via",
  "connect_timeout",
  "agent",
  NULL
};

#define ENV_PREFIX "env:"
#define ENV_PREFIX_LEN (sizeof (ENV_PREFIX) - 1)

/**
 * execnet_xspec_is_general_key:
 * @key: a spec key
 *
 * Checks whether @key is a general option, one that the core applies for
 * every transport: one of [func@Execnet.XSpec.get_general_keys], or an
 * `env:NAME` key.
 *
 * Returns: %TRUE if @key is a general option
 *
 * Since: 1.0
 */
gboolean
execnet_xspec_is_general_key (const char *key)
{
  g_return_val_if_fail (key != NULL, FALSE);

  if (g_str_has_prefix (key, ENV_PREFIX))
    return TRUE;

  return g_strv_contains (general_keys, key);
}

/**
 * execnet_xspec_get_general_keys:
 *
 * Gets the general options, which the core applies whatever the transport:
 * `id`, `python`, `chdir`, `nice`, `dont_write_bytecode`, `execmodel`,
 * `via`, `connect_timeout` and `agent`. `env:NAME` keys are general too.
 * A transport accepts these, its scheme, and the keys it declares
 * ([method@Execnet.Transport.get_keys]).
 *
 * Returns: (transfer none) (array zero-terminated=1): the general keys
 *
 * Since: 1.0
 */
const char * const *
execnet_xspec_get_general_keys (void)
{
  return general_keys;
}

static gboolean
is_key_char (char c)
{
  return g_ascii_isalnum (c) || c == '_' || c == ':' || c == '.' || c == '-';
}

/* Returns the first byte of @key that may not appear in a key, or NULL. */
static const char *
find_bad_key_char (const char *key)
{
  for (const char *p = key; *p != '\0'; p++)
    if (!is_key_char (*p))
      return p;

  return NULL;
}

/* Error messages quote the spec, escaped (it may hold control characters
 * or invalid UTF-8) and cut to its start and end: a spec can be any size. */
#define SPEC_TEXT_SHOWN_MAX 512

G_GNUC_PRINTF (3, 4)
static void
set_spec_error (GError     **error,
                const char  *text,
                const char  *format,
                ...)
{
  g_autofree char *shown = execnet_error_escape_text (text, -1, SPEC_TEXT_SHOWN_MAX);
  g_autofree char *reason = NULL;
  g_autofree char *shown_reason = NULL;
  va_list args;

  va_start (args, format);
  reason = g_strdup_vprintf (format, args);
  va_end (args);
  /* The reason may quote a key or a value of the spec. */
  shown_reason = execnet_error_escape_text (reason, -1, SPEC_TEXT_SHOWN_MAX);

  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
               "Invalid gateway spec “%s”: %s", shown, shown_reason);
}

static gboolean
check_key (const char  *text,
           guint        part_number,
           const char  *part,
           const char  *key,
           GError     **error)
{
  const char *bad;

  if (*key == '\0')
    {
      set_spec_error (error, text,
                      "option %u (“%s”) has no key before “=”; "
                      "write options as key=value or as a bare key",
                      part_number, part);
      return FALSE;
    }

  bad = find_bad_key_char (key);
  if (bad != NULL && g_unichar_isspace (g_utf8_get_char (bad)))
    {
      set_spec_error (error, text,
                      "key “%s” contains whitespace; write options without "
                      "spaces around “//” and “=”", key);
      return FALSE;
    }
  else if (bad != NULL && *bad == '/')
    {
      set_spec_error (error, text,
                      "key “%s” contains “/”; separate options with exactly "
                      "two slashes", key);
      return FALSE;
    }
  else if (bad != NULL)
    {
      set_spec_error (error, text,
                      "key “%s” contains “%.*s”; keys may contain only ASCII "
                      "letters, digits, “_”, “:”, “.” and “-”",
                      key, (int) (g_utf8_next_char (bad) - bad), bad);
      return FALSE;
    }

  if (key[0] == '_')
    {
      set_spec_error (error, text,
                      "key “%s” starts with “_”, which is reserved; "
                      "rename the key", key);
      return FALSE;
    }

  if (g_str_has_prefix (key, ENV_PREFIX) && key[ENV_PREFIX_LEN] == '\0')
    {
      set_spec_error (error, text,
                      "option %u (“%s”) names no environment variable; "
                      "write env:NAME=value", part_number, part);
      return FALSE;
    }

  return TRUE;
}

/* Fills @self's keys, values, tables, scheme and id from @text. On failure
 * @self is left half-filled and must be freed. */
static gboolean
parse (ExecnetXSpec  *self,
       const char    *text,
       GError       **error)
{
  g_auto(GStrv) parts = NULL;
  g_autoptr(GPtrArray) keys = NULL;
  g_autoptr(GPtrArray) values = NULL;
  guint n_parts;

  if (*text == '\0')
    {
      g_set_error_literal (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                           "Invalid gateway spec: the spec is empty; "
                           "give at least a transport, such as “popen”");
      return FALSE;
    }

  if (!g_utf8_validate (text, -1, NULL))
    {
      set_spec_error (error, text, "the spec is not valid UTF-8");
      return FALSE;
    }

  parts = g_strsplit (text, "//", -1);
  n_parts = g_strv_length (parts);
  keys = g_ptr_array_new_full (n_parts + 1, g_free);
  values = g_ptr_array_new_full (n_parts + 1, g_free);

  for (guint i = 0; i < n_parts; i++)
    {
      const char *part = parts[i];
      const char *eq = strchr (part, '=');
      char *key;
      const char *value;

      if (*part == '\0')
        {
          set_spec_error (error, text,
                          "option %u of %u is empty; separate options with a "
                          "single “//” and do not end the spec with one",
                          i + 1, n_parts);
          return FALSE;
        }

      if (eq != NULL)
        {
          key = g_strndup (part, eq - part);
          value = eq + 1;
        }
      else
        {
          key = g_strdup (part);
          value = "";
        }
      /* The array owns the key from here on; @options borrows it. */
      g_ptr_array_add (keys, key);

      if (!check_key (text, i + 1, part, key, error))
        return FALSE;

      if (g_hash_table_contains (self->options, key))
        {
          set_spec_error (error, text,
                          "key “%s” is given more than once; "
                          "keep only one of them", key);
          return FALSE;
        }

      if (strcmp (key, "id") == 0 && *value == '\0')
        {
          set_spec_error (error, text,
                          "key “id” has an empty value; write id=NAME, or "
                          "leave the id out to have the group assign one");
          return FALSE;
        }

      g_ptr_array_add (values, g_strdup (value));
      g_hash_table_insert (self->options, key, values->pdata[values->len - 1]);

      if (g_str_has_prefix (key, ENV_PREFIX))
        g_hash_table_insert (self->env, key + ENV_PREFIX_LEN,
                             values->pdata[values->len - 1]);
      else if (self->scheme == NULL && !execnet_xspec_is_general_key (key))
        self->scheme = key;

      if (strcmp (key, "id") == 0)
        self->id = g_strdup (value);
    }

  g_ptr_array_add (keys, NULL);
  g_ptr_array_add (values, NULL);
  self->keys = (char **) g_ptr_array_free (g_steal_pointer (&keys), FALSE);
  self->values = (char **) g_ptr_array_free (g_steal_pointer (&values), FALSE);

  return TRUE;
}

static ExecnetXSpec *
xspec_alloc (void)
{
  ExecnetXSpec *self = g_new0 (ExecnetXSpec, 1);

  g_atomic_ref_count_init (&self->ref_count);
  self->options = g_hash_table_new (g_str_hash, g_str_equal);
  self->env = g_hash_table_new (g_str_hash, g_str_equal);
  g_mutex_init (&self->id_lock);

  return self;
}

static void
xspec_free (ExecnetXSpec *self)
{
  g_clear_pointer (&self->options, g_hash_table_unref);
  g_clear_pointer (&self->env, g_hash_table_unref);
  g_clear_pointer (&self->keys, g_strfreev);
  g_clear_pointer (&self->values, g_strfreev);
  g_clear_pointer (&self->text, g_free);
  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->retired_ids, g_ptr_array_unref);
  g_mutex_clear (&self->id_lock);
  g_free (self);
}

/**
 * execnet_xspec_new:
 * @spec: the specification text, such as `ssh=host//chdir=work`
 * @error: return location for a #GError
 *
 * Parses @spec into a new [struct@Execnet.XSpec].
 *
 * Fails with %EXECNET_ERROR_INVALID_SPEC if @spec is empty or not valid
 * UTF-8, has an empty option (as in `popen////id=x` or a trailing `//`), a
 * key that is empty, repeated, begins with `_` or holds characters other
 * than ASCII letters, digits, `_`, `:`, `.` and `-`, an `env:` key without
 * a variable name, or an empty `id`. A spec without a scheme is not an
 * error here (see [method@Execnet.XSpec.get_scheme]).
 *
 * Returns: (transfer full) (nullable): the new spec, or %NULL with @error
 *   set
 *
 * Since: 1.0
 */
ExecnetXSpec *
execnet_xspec_new (const char  *spec,
                   GError     **error)
{
  g_autoptr(ExecnetXSpec) self = NULL;

  g_return_val_if_fail (spec != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = xspec_alloc ();
  self->text = g_strdup (spec);

  if (!parse (self, spec, error))
    return NULL;

  return g_steal_pointer (&self);
}

/**
 * execnet_xspec_ref:
 * @self: a spec
 *
 * Increases the reference count of @self. Safe to call from any thread.
 *
 * Returns: (transfer full): @self
 *
 * Since: 1.0
 */
ExecnetXSpec *
execnet_xspec_ref (ExecnetXSpec *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  g_atomic_ref_count_inc (&self->ref_count);

  return self;
}

/**
 * execnet_xspec_unref:
 * @self: (transfer full): a spec
 *
 * Decreases the reference count of @self, freeing it when the count reaches
 * zero. Safe to call from any thread.
 *
 * Since: 1.0
 */
void
execnet_xspec_unref (ExecnetXSpec *self)
{
  g_return_if_fail (self != NULL);

  if (g_atomic_ref_count_dec (&self->ref_count))
    xspec_free (self);
}

/**
 * execnet_xspec_copy:
 * @self: a spec
 *
 * Makes a new, independent spec with the same text and the same current id
 * as @self. Changing the id of one afterwards does not affect the other.
 *
 * Returns: (transfer full): the copy
 *
 * Since: 1.0
 */
ExecnetXSpec *
execnet_xspec_copy (ExecnetXSpec *self)
{
  g_autoptr(ExecnetXSpec) copy = NULL;

  g_return_val_if_fail (self != NULL, NULL);

  copy = xspec_alloc ();
  copy->text = g_strdup (self->text);

  /* The text parsed once, so it parses again. */
  if (!parse (copy, copy->text, NULL))
    g_assert_not_reached ();

  g_mutex_lock (&self->id_lock);
  g_free (copy->id);
  copy->id = g_strdup (self->id);
  g_mutex_unlock (&self->id_lock);

  return g_steal_pointer (&copy);
}

/**
 * execnet_xspec_get_scheme:
 * @self: a spec
 *
 * Gets the scheme of @self: its first key that is not a general option
 * (see [func@Execnet.XSpec.is_general_key]). It names the transport that serves the
 * spec: `popen` for `popen//nice=20`, `ssh` for `ssh=host//chdir=work`.
 *
 * Returns: (nullable): the scheme, or %NULL if the spec has none
 *
 * Since: 1.0
 */
const char *
execnet_xspec_get_scheme (ExecnetXSpec *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->scheme;
}

/**
 * execnet_xspec_get:
 * @self: a spec
 * @key: an option key, such as `chdir`, `ssh` or `env:PATH`
 *
 * Gets the value of the option @key. A key given as a bare flag, such as
 * `dont_write_bytecode`, has the empty string as its value. For `id` this
 * is the current id, as from [method@Execnet.XSpec.get_id].
 *
 * Returns: (nullable): the value, or %NULL if @self has no option @key
 *
 * Since: 1.0
 */
const char *
execnet_xspec_get (ExecnetXSpec *self,
                   const char   *key)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_return_val_if_fail (key != NULL, NULL);

  if (strcmp (key, "id") == 0)
    return execnet_xspec_get_id (self);

  return g_hash_table_lookup (self->options, key);
}

/**
 * execnet_xspec_has:
 * @self: a spec
 * @key: an option key
 *
 * Checks whether @self has the option @key, with a value or as a flag. For
 * `id` this checks whether the spec currently has an id.
 *
 * Returns: %TRUE if the option is present
 *
 * Since: 1.0
 */
gboolean
execnet_xspec_has (ExecnetXSpec *self,
                   const char   *key)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (key != NULL, FALSE);

  return execnet_xspec_get (self, key) != NULL;
}

/**
 * execnet_xspec_get_keys:
 * @self: a spec
 *
 * Gets the keys written in the spec text, in the order they appear,
 * including `env:NAME` keys. An id set later with
 * [method@Execnet.XSpec.set_id] does not add a key.
 *
 * Returns: (transfer none) (array zero-terminated=1): the keys
 *
 * Since: 1.0
 */
const char * const *
execnet_xspec_get_keys (ExecnetXSpec *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return (const char * const *) self->keys;
}

/**
 * execnet_xspec_get_id:
 * @self: a spec
 *
 * Gets the gateway id of @self: the value of its `id` option, or the id set
 * last with [method@Execnet.XSpec.set_id].
 *
 * The string stays valid as long as @self does, even if the id is replaced
 * meanwhile, so it may be read while another thread sets a new id.
 *
 * Returns: (nullable): the id, or %NULL if there is none yet
 *
 * Since: 1.0
 */
const char *
execnet_xspec_get_id (ExecnetXSpec *self)
{
  const char *id;

  g_return_val_if_fail (self != NULL, NULL);

  g_mutex_lock (&self->id_lock);
  id = self->id;
  g_mutex_unlock (&self->id_lock);

  return id;
}

/**
 * execnet_xspec_set_id:
 * @self: a spec
 * @id: (nullable): the new id, or %NULL to remove it
 *
 * Replaces the gateway id of @self. This is the only part of a spec that
 * can change; [method@Execnet.XSpec.to_string] keeps returning the original
 * text. A group calls this to give an id to a spec that has none.
 *
 * Safe to call from any thread. Strings returned earlier by
 * [method@Execnet.XSpec.get_id] stay valid until @self is freed.
 *
 * Since: 1.0
 */
void
execnet_xspec_set_id (ExecnetXSpec *self,
                      const char   *id)
{
  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->id_lock);

  if (g_strcmp0 (self->id, id) != 0)
    {
      if (self->id != NULL)
        {
          if (self->retired_ids == NULL)
            self->retired_ids = g_ptr_array_new_with_free_func (g_free);
          g_ptr_array_add (self->retired_ids, g_steal_pointer (&self->id));
        }
      self->id = g_strdup (id);
    }

  g_mutex_unlock (&self->id_lock);
}

/**
 * execnet_xspec_get_env:
 * @self: a spec
 *
 * Gets the environment variables that the `env:NAME=value` options of
 * @self set on the remote side, as a table from each NAME to its value.
 * The table is empty if there are none. Do not modify it.
 *
 * Returns: (transfer none) (element-type utf8 utf8): the environment table
 *
 * Since: 1.0
 */
GHashTable *
execnet_xspec_get_env (ExecnetXSpec *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->env;
}

/**
 * execnet_xspec_to_string:
 * @self: a spec
 *
 * Gets the text @self was parsed from, exactly as it was given. A changed
 * id does not show here.
 *
 * Returns: the spec text
 *
 * Since: 1.0
 */
const char *
execnet_xspec_to_string (ExecnetXSpec *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return self->text;
}

gboolean
_execnet_xspec_get_double (ExecnetXSpec  *xspec,
                           const char    *key,
                           gdouble        default_value,
                           gdouble       *value,
                           GError       **error)
{
  const char *text = execnet_xspec_get (xspec, key);
  char *end = NULL;
  gdouble parsed;

  if (text == NULL)
    {
      *value = default_value;
      return TRUE;
    }

  parsed = g_ascii_strtod (text, &end);
  if (*text == '\0' || end == NULL || *end != '\0' || parsed < 0)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "invalid spec “%s”: %s=%s is not a number of seconds",
                   execnet_xspec_to_string (xspec), key, text);
      return FALSE;
    }

  *value = parsed;
  return TRUE;
}
