/* execnet-transport.c: the transport interface and the plugin registry
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <gmodule.h>

#include <execnet/execnet-error.h>
#include <execnet/execnet-group.h>
#include <execnet/execnet-transport.h>

#include "execnet-debug-private.h"

/**
 * ExecnetTransport:
 *
 * The interface a transport plugin implements.
 *
 * A transport turns an [struct@Execnet.XSpec] into an
 * [class@Execnet.Connection]: a stream to a Python interpreter waiting for
 * its bootstrap line. Transports live in plugins, one GIO module per scheme,
 * named `libexecnet-SCHEME.so`; the module registers its type on the
 * %EXECNET_TRANSPORT_EXTENSION_POINT_NAME extension point under the scheme.
 *
 * Plugins are searched for in every directory of the colon-separated
 * `EXECNET_TRANSPORT_PATH` environment variable, then in the installed
 * transport directory (`$libdir/execnet-1/transports`). Resolving a scheme
 * loads exactly the module of that scheme, so a `popen` gateway never loads
 * libssh; only listing the available schemes looks at all of them.
 *
 * A transport that reaches Python through a launcher program needs little
 * more than this (the whole plugin is in
 * [Transports, and how to write one](transports.html)):
 *
 * ```c
 * static void
 * wrap_open_async (ExecnetTransport *transport, ExecnetXSpec *xspec,
 *                  GCancellable *cancellable, GAsyncReadyCallback callback,
 *                  gpointer user_data)
 * {
 *   g_autoptr(GTask) task = g_task_new (transport, cancellable, callback, user_data);
 *   const char *launcher[] = { "nice", "-n", "5", NULL };
 *   GError *error = NULL;
 *   ExecnetConnection *connection = execnet_transport_spawn (xspec, launcher, cancellable, &error);
 *
 *   g_task_set_source_tag (task, wrap_open_async);
 *   if (connection == NULL)
 *     g_task_return_error (task, error);
 *   else
 *     g_task_return_pointer (task, connection, g_object_unref);
 * }
 *
 * static void
 * wrap_transport_iface_init (ExecnetTransportInterface *iface)
 * {
 *   iface->open_async = wrap_open_async;
 * }
 * ```
 *
 * Since: 1.0
 */

G_DEFINE_INTERFACE (ExecnetTransport, execnet_transport, G_TYPE_OBJECT)

/* The line the interpreter runs first: read one line, evaluate it to a
 * string, execute that. */
#define BOOTSTRAP_SNIPPET "import sys;exec(eval(sys.stdin.readline()))"

static ExecnetConnection *
execnet_transport_real_open_finish (ExecnetTransport  *self,
                                    GAsyncResult      *result,
                                    GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static const char * const *
execnet_transport_real_get_keys (ExecnetTransport *self)
{
  static const char * const none[] = { NULL };

  return none;
}

static void
execnet_transport_default_init (ExecnetTransportInterface *iface)
{
  iface->open_finish = execnet_transport_real_open_finish;
  iface->get_keys = execnet_transport_real_get_keys;
}

/**
 * execnet_transport_open_async:
 * @self: a transport
 * @xspec: the specification of the gateway to open
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the connection is made or failed
 * @user_data: data for @callback
 *
 * Starts or reaches a Python interpreter for @xspec.
 *
 * Since: 1.0
 */
void
execnet_transport_open_async (ExecnetTransport    *self,
                              ExecnetXSpec        *xspec,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (EXECNET_IS_TRANSPORT (self));
  g_return_if_fail (xspec != NULL);

  EXECNET_TRANSPORT_GET_IFACE (self)->open_async (self, xspec, cancellable, callback, user_data);
}

/**
 * execnet_transport_open_finish:
 * @self: a transport
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_transport_open_async().
 *
 * Returns: (transfer full): the connection, or %NULL on error
 *
 * Since: 1.0
 */
ExecnetConnection *
execnet_transport_open_finish (ExecnetTransport  *self,
                               GAsyncResult      *result,
                               GError           **error)
{
  g_return_val_if_fail (EXECNET_IS_TRANSPORT (self), NULL);

  return EXECNET_TRANSPORT_GET_IFACE (self)->open_finish (self, result, error);
}

/**
 * execnet_transport_get_keys:
 * @self: a transport
 *
 * Gets the spec keys that @self accepts besides its scheme and the general
 * options of [func@Execnet.XSpec.get_general_keys]: `ssh_config`,
 * `ssh_share` and `ssh_spawner` for `ssh`, `token_file`, `installvia` and
 * `keepalive` for `socket`.
 *
 * Returns: (transfer none) (array zero-terminated=1): the transport's own
 *   keys, possibly none
 *
 * Since: 1.0
 */
const char * const *
execnet_transport_get_keys (ExecnetTransport *self)
{
  const char * const *keys;

  g_return_val_if_fail (EXECNET_IS_TRANSPORT (self), NULL);

  keys = EXECNET_TRANSPORT_GET_IFACE (self)->get_keys (self);
  g_return_val_if_fail (keys != NULL, NULL);

  return keys;
}

/* The optimal string alignment distance: edits of one character, and
 * swaps of two neighbours ("chdri" is one swap away from "chdir"). */
static guint
edit_distance (const char *a,
               const char *b)
{
  gsize la = strlen (a), lb = strlen (b);
  g_autofree guint *d = g_new (guint, (la + 1) * (lb + 1));

#define D(i, j) d[(i) * (lb + 1) + (j)]
  for (gsize i = 0; i <= la; i++)
    D (i, 0) = i;
  for (gsize j = 0; j <= lb; j++)
    D (0, j) = j;
  for (gsize i = 1; i <= la; i++)
    for (gsize j = 1; j <= lb; j++)
      {
        guint cost = a[i - 1] == b[j - 1] ? 0 : 1;
        guint best = MIN (D (i - 1, j) + 1, D (i, j - 1) + 1);

        best = MIN (best, D (i - 1, j - 1) + cost);
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          best = MIN (best, D (i - 2, j - 2) + 1);
        D (i, j) = best;
      }

  {
    guint result = D (la, lb);
#undef D
    return result;
  }
}

/* The candidate closest to @word, if it is close enough to be a typing
 * mistake: at most a third of the word wrong, and at least one edit. */
static const char *
closest_word (const char  *word,
              GPtrArray   *candidates)
{
  const char *best = NULL;
  guint best_distance = G_MAXUINT;
  guint limit = MAX (1, strlen (word) / 3);

  for (guint i = 0; i < candidates->len; i++)
    {
      guint distance = edit_distance (word, g_ptr_array_index (candidates, i));

      if (distance < best_distance)
        {
          best = g_ptr_array_index (candidates, i);
          best_distance = distance;
        }
    }

  return best_distance <= limit ? best : NULL;
}

/* The scheme of the installed transport that accepts @key, if any: a
 * key put on the wrong scheme (popen//installvia=gw0) is named as the
 * other transport's. Only called on the error path: it loads every
 * transport. */
static char *
owning_scheme (const char *key)
{
  g_auto(GStrv) schemes = execnet_transport_list_schemes ();

  for (guint i = 0; schemes[i] != NULL; i++)
    {
      g_autoptr(ExecnetTransport) transport = execnet_transport_new_for_scheme (schemes[i], NULL);
      const char * const *own_keys;

      if (transport == NULL)
        continue;
      own_keys = EXECNET_TRANSPORT_GET_IFACE (transport)->get_keys (transport);
      if (own_keys != NULL && g_strv_contains (own_keys, key))
        return g_strdup (schemes[i]);
    }

  return NULL;
}

/**
 * execnet_transport_check_xspec:
 * @self: the transport that serves @xspec's scheme
 * @xspec: a gateway spec
 * @error: return location for a #GError
 *
 * Checks that @self accepts every key of @xspec: its scheme, the general
 * options ([func@Execnet.XSpec.get_general_keys] and `env:NAME`) and the
 * transport's own keys ([method@Execnet.Transport.get_keys]); then lets the
 * transport check the values. Making a gateway runs this first, so that no
 * key is ever accepted and ignored.
 *
 * An unknown key is %EXECNET_ERROR_INVALID_SPEC, naming the closest known
 * key when there is one: `popen//chdri=x` gives "did you mean chdir?".
 *
 * Returns: %TRUE if @self accepts @xspec
 *
 * Since: 1.0
 */
gboolean
execnet_transport_check_xspec (ExecnetTransport  *self,
                               ExecnetXSpec      *xspec,
                               GError           **error)
{
  ExecnetTransportInterface *iface;
  const char * const *own_keys;
  const char * const *keys;
  const char *scheme;

  g_return_val_if_fail (EXECNET_IS_TRANSPORT (self), FALSE);
  g_return_val_if_fail (xspec != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  iface = EXECNET_TRANSPORT_GET_IFACE (self);
  own_keys = execnet_transport_get_keys (self);
  scheme = execnet_xspec_get_scheme (xspec);
  keys = execnet_xspec_get_keys (xspec);

  for (guint i = 0; keys[i] != NULL; i++)
    {
      g_autoptr(GPtrArray) known = NULL;
      g_autoptr(GString) message = NULL;
      g_autofree char *valid_text = NULL;
      g_autofree char *owner = NULL;
      const char *suggestion;

      if (g_strcmp0 (keys[i], scheme) == 0 ||
          execnet_xspec_is_general_key (keys[i]) ||
          (own_keys != NULL && g_strv_contains (own_keys, keys[i])))
        continue;

      known = g_ptr_array_new ();
      for (const char * const *k = execnet_xspec_get_general_keys (); *k != NULL; k++)
        g_ptr_array_add (known, (gpointer) *k);
      for (guint j = 0; own_keys != NULL && own_keys[j] != NULL; j++)
        g_ptr_array_add (known, (gpointer) own_keys[j]);

      valid_text = g_utf8_make_valid (execnet_xspec_to_string (xspec), -1);
      message = g_string_new (NULL);
      g_string_append_printf (message,
                              "Invalid gateway spec “%s”: the %s transport does not know the key “%s”",
                              valid_text, scheme != NULL ? scheme : "", keys[i]);
      suggestion = closest_word (keys[i], known);
      owner = owning_scheme (keys[i]);
      if (owner != NULL)
        g_string_append_printf (message, "; it is a key of the %s transport, as in %s//%s=...",
                                owner, owner, keys[i]);
      else if (suggestion != NULL)
        g_string_append_printf (message, "; did you mean %s?", suggestion);
      else
        {
          g_string_append (message, "; it accepts ");
          if (scheme != NULL)
            g_string_append_printf (message, "%s, ", scheme);
          for (guint j = 0; j < known->len; j++)
            g_string_append_printf (message, "%s, ", (const char *) g_ptr_array_index (known, j));
          g_string_append (message, "and env:NAME");
        }

      g_set_error_literal (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC, message->str);
      return FALSE;
    }

  if (iface->check_xspec != NULL)
    return iface->check_xspec (self, xspec, error);

  return TRUE;
}

/**
 * execnet_transport_explain_failure:
 * @self: a transport
 * @xspec: the specification @connection was opened for
 * @connection: a connection whose interpreter did not acknowledge the bootstrap
 * @error: the error the core made of that
 *
 * Asks @self for a clearer error than @error: a launcher such as `sudo`
 * or `srun` knows what its own messages mean ("a password is required",
 * "queued and waiting for resources") and what the user should do.
 *
 * Returns: (transfer full) (nullable): the clearer error, or %NULL to keep
 *   @error
 *
 * Since: 1.0
 */
GError *
execnet_transport_explain_failure (ExecnetTransport  *self,
                                   ExecnetXSpec      *xspec,
                                   ExecnetConnection *connection,
                                   const GError      *error)
{
  ExecnetTransportInterface *iface;

  g_return_val_if_fail (EXECNET_IS_TRANSPORT (self), NULL);
  g_return_val_if_fail (xspec != NULL, NULL);
  g_return_val_if_fail (EXECNET_IS_CONNECTION (connection), NULL);
  g_return_val_if_fail (error != NULL, NULL);

  iface = EXECNET_TRANSPORT_GET_IFACE (self);
  if (iface->explain_failure == NULL)
    return NULL;
  return iface->explain_failure (self, xspec, connection, error);
}

static void
prepare_default (ExecnetTransport    *self,
                 ExecnetXSpec        *xspec,
                 GCancellable        *cancellable,
                 GAsyncReadyCallback  callback,
                 gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, prepare_default);
  g_task_return_pointer (task, execnet_xspec_ref (xspec), (GDestroyNotify) execnet_xspec_unref);
}

/**
 * execnet_transport_prepare_async:
 * @self: the transport that serves @xspec's scheme
 * @group: (nullable): the group the gateway is made in
 * @xspec: a checked gateway spec
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the spec to open
 * @user_data: data for @callback
 *
 * Lets @self do what @xspec needs done before it can be opened, and
 * produce the spec that [method@Execnet.Transport.open_async] then opens:
 * for `socket//installvia=ID`, the socket transport starts a one-shot
 * server through gateway ID of @group and answers with a spec naming it.
 * A transport without a prepare step answers with @xspec itself. Making a
 * gateway calls this after [method@Execnet.Transport.check_xspec], in the
 * thread that makes it; @callback runs in that thread's thread-default
 * main context.
 *
 * Since: 1.0
 */
void
execnet_transport_prepare_async (ExecnetTransport    *self,
                                 ExecnetGroup        *group,
                                 ExecnetXSpec        *xspec,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  ExecnetTransportInterface *iface;

  g_return_if_fail (EXECNET_IS_TRANSPORT (self));
  g_return_if_fail (group == NULL || EXECNET_IS_GROUP (group));
  g_return_if_fail (xspec != NULL);

  iface = EXECNET_TRANSPORT_GET_IFACE (self);
  if (iface->prepare_async == NULL)
    prepare_default (self, xspec, cancellable, callback, user_data);
  else
    iface->prepare_async (self, group, xspec, cancellable, callback, user_data);
}

/**
 * execnet_transport_prepare_finish:
 * @self: a transport
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_transport_prepare_async().
 *
 * Returns: (transfer full): the spec to open, or %NULL on error
 *
 * Since: 1.0
 */
ExecnetXSpec *
execnet_transport_prepare_finish (ExecnetTransport  *self,
                                  GAsyncResult      *result,
                                  GError           **error)
{
  ExecnetTransportInterface *iface;

  g_return_val_if_fail (EXECNET_IS_TRANSPORT (self), NULL);
  g_return_val_if_fail (G_IS_ASYNC_RESULT (result), NULL);

  iface = EXECNET_TRANSPORT_GET_IFACE (self);
  if (g_async_result_is_tagged (result, prepare_default) || iface->prepare_finish == NULL)
    return g_task_propagate_pointer (G_TASK (result), error);
  return iface->prepare_finish (self, result, error);
}

/**
 * execnet_transport_describe:
 * @self: the transport that serves @xspec's scheme
 * @xspec: a gateway spec that [method@Execnet.Transport.check_xspec]
 *   accepted
 * @error: return location for a #GError
 *
 * Tells what opening @xspec would do, resolved the way opening resolves
 * it, without starting or connecting anything: for `ssh`, the destination
 * after the ssh config files, the user, port, identity files and jump
 * hosts, as `ssh -G` shows them; for `socket`, the server's host and port
 * and the token file; for `popen`, the command it runs. This is what
 * `execnet-tool spec` prints.
 *
 * The keys are the transport's own, lower-case words as in `ssh -G`
 * (`hostname`, `user`, `port`, `identityfile`, `proxyjump`, ...); a value
 * is a string, a number, or an array of strings for a setting with several
 * values. A transport without a description gives an empty dictionary.
 *
 * Returns: (transfer full): a `a{sv}` dictionary, or %NULL if @xspec
 *   cannot be resolved (an unknown ssh option, an unreadable ssh config),
 *   with the error opening would give
 *
 * Since: 1.0
 */
GVariant *
execnet_transport_describe (ExecnetTransport  *self,
                            ExecnetXSpec      *xspec,
                            GError           **error)
{
  ExecnetTransportInterface *iface;
  GVariant *description;

  g_return_val_if_fail (EXECNET_IS_TRANSPORT (self), NULL);
  g_return_val_if_fail (xspec != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  iface = EXECNET_TRANSPORT_GET_IFACE (self);
  if (iface->describe == NULL)
    return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));

  description = iface->describe (self, xspec, error);
  if (description == NULL)
    return NULL;
  g_return_val_if_fail (g_variant_is_of_type (description, G_VARIANT_TYPE_VARDICT), NULL);

  return g_variant_take_ref (description);
}

/**
 * execnet_transport_build_python_argv:
 * @xspec: a gateway specification
 * @error: return location for a #GError
 *
 * Builds the command line that starts the interpreter of @xspec ready to
 * read its bootstrap line: the `python=` value split as a shell would
 * (default `python3`), `-B` with `dont_write_bytecode`, `-u`, then
 * `-c "import sys;exec(eval(sys.stdin.readline()))"`.
 *
 * Returns: (transfer full) (array zero-terminated=1): the argument vector,
 *   or %NULL if `python=` cannot be split
 *
 * Since: 1.0
 */
char **
execnet_transport_build_python_argv (ExecnetXSpec  *xspec,
                                     GError       **error)
{
  const char *python = execnet_xspec_get (xspec, "python");
  g_auto(GStrv) python_argv = NULL;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autoptr(GError) local_error = NULL;

  if (python == NULL || *python == '\0')
    python = "python3";

  if (!g_shell_parse_argv (python, NULL, &python_argv, &local_error))
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "cannot split python=%s into words: %s",
                   python, local_error->message);
      return NULL;
    }

  g_strv_builder_addv (builder, (const char **) python_argv);
  if (execnet_xspec_has (xspec, "dont_write_bytecode"))
    g_strv_builder_add (builder, "-B");
  g_strv_builder_add_many (builder, "-u", "-c", BOOTSTRAP_SNIPPET, NULL);

  return g_strv_builder_end (builder);
}

/**
 * execnet_transport_build_python_command:
 * @xspec: a gateway specification
 * @error: return location for a #GError
 *
 * Like execnet_transport_build_python_argv(), as one shell command line
 * (for transports that run a command through a remote shell).
 *
 * Returns: (transfer full): the command line, or %NULL on error
 *
 * Since: 1.0
 */
char *
execnet_transport_build_python_command (ExecnetXSpec  *xspec,
                                        GError       **error)
{
  g_auto(GStrv) argv = execnet_transport_build_python_argv (xspec, error);
  g_autoptr(GString) command = g_string_new (NULL);

  if (argv == NULL)
    return NULL;

  for (guint i = 0; argv[i] != NULL; i++)
    {
      g_autofree char *quoted = g_shell_quote (argv[i]);

      if (i > 0)
        g_string_append_c (command, ' ');
      g_string_append (command, quoted);
    }

  return g_string_free (g_steal_pointer (&command), FALSE);
}

/**
 * execnet_transport_register_extension_point:
 *
 * Registers the %EXECNET_TRANSPORT_EXTENSION_POINT_NAME extension point.
 * Safe to call any number of times; plugins call it from their load function.
 *
 * Since: 1.0
 */
void
execnet_transport_register_extension_point (void)
{
  static gsize registered = 0;

  if (g_once_init_enter (&registered))
    {
      GIOExtensionPoint *ep;

      ep = g_io_extension_point_register (EXECNET_TRANSPORT_EXTENSION_POINT_NAME);
      g_io_extension_point_set_required_type (ep, EXECNET_TYPE_TRANSPORT);
      g_once_init_leave (&registered, 1);
    }
}

/**
 * execnet_transport_get_search_path:
 *
 * The directories searched for transport plugins, in order: those of
 * `EXECNET_TRANSPORT_PATH`, then the installed transport directory.
 *
 * Returns: (transfer full) (array zero-terminated=1): the directories
 *
 * Since: 1.0
 */
char **
execnet_transport_get_search_path (void)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  const char *env = g_getenv ("EXECNET_TRANSPORT_PATH");

  if (env != NULL)
    {
      g_auto(GStrv) dirs = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (guint i = 0; dirs[i] != NULL; i++)
        if (*dirs[i] != '\0')
          g_strv_builder_add (builder, dirs[i]);
    }
  g_strv_builder_add (builder, EXECNET_TRANSPORT_DIR);

  return g_strv_builder_end (builder);
}

static char *
module_file_name (const char *scheme)
{
  return g_strdup_printf ("libexecnet-%s.%s", scheme, G_MODULE_SUFFIX);
}

/* The plugin file for @scheme and, in *@why, which entry of the search
 * path it was found through, for EXECNET_DEBUG=transport. */
static char *
find_module (const char  *scheme,
             char       **why)
{
  g_auto(GStrv) dirs = execnet_transport_get_search_path ();
  g_autofree char *name = module_file_name (scheme);

  for (guint i = 0; dirs[i] != NULL; i++)
    {
      g_autofree char *path = g_build_filename (dirs[i], name, NULL);

      if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
        {
          if (why != NULL)
            *why = dirs[i + 1] == NULL
                     ? g_strdup_printf ("the installed transport directory %s", dirs[i])
                     : g_strdup_printf ("entry %u of EXECNET_TRANSPORT_PATH, %s", i + 1, dirs[i]);
          return g_steal_pointer (&path);
        }
    }

  return NULL;
}

/**
 * execnet_transport_find_module:
 * @scheme: a transport scheme such as `ssh`
 *
 * Finds the plugin file that would serve @scheme, without loading it.
 *
 * Returns: (transfer full) (nullable): the file's path, or %NULL if no
 *   directory of the search path has it
 *
 * Since: 1.0
 */
char *
execnet_transport_find_module (const char *scheme)
{
  g_return_val_if_fail (scheme != NULL, NULL);

  return find_module (scheme, NULL);
}

static gboolean
scheme_is_valid (const char *scheme)
{
  if (*scheme == '\0')
    return FALSE;
  for (const char *p = scheme; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '_')
      return FALSE;
  return TRUE;
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/**
 * execnet_transport_list_schemes:
 *
 * Lists every scheme a transport is available for: those already registered
 * and those whose plugin file is on the search path.
 *
 * Returns: (transfer full) (array zero-terminated=1): the sorted schemes
 *
 * Since: 1.0
 */
char **
execnet_transport_list_schemes (void)
{
  g_auto(GStrv) dirs = execnet_transport_get_search_path ();
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  GIOExtensionPoint *ep;
  const char *prefix = "libexecnet-";
  g_autofree char *suffix = g_strconcat (".", G_MODULE_SUFFIX, NULL);

  execnet_transport_register_extension_point ();
  ep = g_io_extension_point_lookup (EXECNET_TRANSPORT_EXTENSION_POINT_NAME);
  for (GList *l = g_io_extension_point_get_extensions (ep); l != NULL; l = l->next)
    g_hash_table_add (seen, g_strdup (g_io_extension_get_name (l->data)));

  for (guint i = 0; dirs[i] != NULL; i++)
    {
      g_autoptr(GDir) dir = g_dir_open (dirs[i], 0, NULL);
      const char *entry;

      if (dir == NULL)
        continue;
      while ((entry = g_dir_read_name (dir)) != NULL)
        {
          if (g_str_has_prefix (entry, prefix) && g_str_has_suffix (entry, suffix))
            {
              g_autofree char *scheme = g_strndup (entry + strlen (prefix),
                                                   strlen (entry) - strlen (prefix) - strlen (suffix));
              if (scheme_is_valid (scheme))
                g_hash_table_add (seen, g_steal_pointer (&scheme));
            }
        }
    }

  {
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init (&iter, seen);
    while (g_hash_table_iter_next (&iter, &key, NULL))
      g_ptr_array_add (names, g_strdup (key));
  }
  g_ptr_array_sort (names, compare_names);
  g_ptr_array_add (names, NULL);

  return (char **) g_ptr_array_free (g_steal_pointer (&names), FALSE);
}

G_LOCK_DEFINE_STATIC (loading);

/* Loads the plugin at @path; returns FALSE with an error that says why when
 * it cannot be loaded. Called with the loading lock held. */
static gboolean
load_module_unlocked (const char  *path,
                      const char  *scheme,
                      GError     **error)
{
  static GHashTable *loaded = NULL;  /* (element-type filename GIOModule) (owned) */
  g_autofree char *symbol = NULL;
  g_autofree char *identifier = NULL;
  GModule *probe;
  gpointer load_func = NULL;
  GIOModule *module;

  if (loaded == NULL)
    loaded = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  if (g_hash_table_contains (loaded, path))
    return TRUE;

  /* GIOModule reports a failed dlopen() on stderr only; open the file
   * ourselves first so the reason reaches the caller as a GError. */
  probe = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  if (probe == NULL)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT,
                   "the %s transport plugin “%s” cannot be loaded: %s",
                   scheme, path, g_module_error ());
      return FALSE;
    }
  identifier = g_strdelimit (g_strdup_printf ("execnet_%s", scheme), "-", '_');
  symbol = g_strdup_printf ("g_io_%s_load", identifier);
  if (!g_module_symbol (probe, symbol, &load_func) || load_func == NULL)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT,
                   "“%s” is not an execnet transport plugin: it has no %s() function",
                   path, symbol);
      g_module_close (probe);
      return FALSE;
    }

  module = g_io_module_new (path);
  if (!g_type_module_use (G_TYPE_MODULE (module)))
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT,
                   "the %s transport plugin “%s” failed to initialise", scheme, path);
      g_object_unref (module);
      g_module_close (probe);
      return FALSE;
    }
  /* The plugin pins itself in its load function; this drops only our use.
   * The module object is kept forever, as GIO does with its own modules. */
  g_type_module_unuse (G_TYPE_MODULE (module));
  g_module_close (probe);
  g_hash_table_insert (loaded, g_strdup (path), module);

  return TRUE;
}

static GType
lookup_registered_type (const char *scheme)
{
  GIOExtensionPoint *ep = g_io_extension_point_lookup (EXECNET_TRANSPORT_EXTENSION_POINT_NAME);
  GIOExtension *extension = g_io_extension_point_get_extension_by_name (ep, scheme);

  return extension != NULL ? g_io_extension_get_type (extension) : G_TYPE_INVALID;
}

/**
 * execnet_transport_new_for_scheme:
 * @scheme: a transport scheme such as `popen`
 * @error: return location for a #GError
 *
 * Finds the transport for @scheme, loading its plugin if needed, and makes
 * a new instance of it. Thread-safe.
 *
 * Returns: (transfer full): the transport, or %NULL with
 *   %EXECNET_ERROR_UNKNOWN_TRANSPORT, whose message lists the available
 *   schemes
 *
 * Since: 1.0
 */
ExecnetTransport *
execnet_transport_new_for_scheme (const char  *scheme,
                                  GError     **error)
{
  GType type;

  g_return_val_if_fail (scheme != NULL, NULL);

  execnet_transport_register_extension_point ();

  G_LOCK (loading);
  type = lookup_registered_type (scheme);
  if (type != G_TYPE_INVALID)
    EXECNET_NOTE (TRANSPORT, NULL, "%s: served by %s, already registered", scheme, g_type_name (type));
  if (type == G_TYPE_INVALID && scheme_is_valid (scheme))
    {
      g_autofree char *why = NULL;
      g_autofree char *path = find_module (scheme, &why);

      if (path == NULL)
        EXECNET_NOTE (TRANSPORT, NULL, "%s: no libexecnet-%s.%s in the search path",
                      scheme, scheme, G_MODULE_SUFFIX);
      if (path != NULL)
        {
          EXECNET_NOTE (TRANSPORT, NULL, "%s: loading %s, found through %s", scheme, path, why);
          if (!load_module_unlocked (path, scheme, error))
            {
              G_UNLOCK (loading);
              return NULL;
            }
          type = lookup_registered_type (scheme);
          if (type == G_TYPE_INVALID)
            {
              G_UNLOCK (loading);
              g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT,
                           "the plugin “%s” loaded but registered no transport for “%s”",
                           path, scheme);
              return NULL;
            }
        }
    }
  G_UNLOCK (loading);

  if (type == G_TYPE_INVALID)
    {
      g_auto(GStrv) schemes = execnet_transport_list_schemes ();
      g_autofree char *known = g_strjoinv (", ", schemes);
      g_auto(GStrv) dirs = execnet_transport_get_search_path ();
      g_autofree char *searched = g_strjoinv (G_SEARCHPATH_SEPARATOR_S, dirs);

      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_UNKNOWN_TRANSPORT,
                   "no transport for “%s”: available transports are %s "
                   "(plugins are searched in %s; set EXECNET_TRANSPORT_PATH to add directories)",
                   scheme, *known != '\0' ? known : "none", searched);
      return NULL;
    }

  return g_object_new (type, NULL);
}

/**
 * execnet_transport_debug_enabled:
 * @key: a debug key such as `ssh`
 *
 * Whether the `EXECNET_DEBUG` environment variable names @key (or `all`),
 * for a transport that can make its own output more verbose, as the ssh
 * transport does with libssh's log.
 *
 * Returns: %TRUE if @key is asked for
 *
 * Since: 1.0
 */
gboolean
execnet_transport_debug_enabled (const char *key)
{
  guint flag;

  g_return_val_if_fail (key != NULL, FALSE);

  flag = _execnet_debug_flag_for_key (key);
  return flag != 0 && (_execnet_debug_named_flags () & flag) != 0;
}

/**
 * execnet_transport_log: (skip)
 * @xspec: the spec of the gateway the message is about
 * @key: the `EXECNET_DEBUG` key of the message, such as `ssh` or
 *   `transport`
 * @format: printf()-style format of the message
 * @...: its arguments
 *
 * Logs a debug message of a transport the way the library logs its own:
 * through GLib's structured log, in the domain `Execnet` at debug level,
 * with the fields `EXECNET_DEBUG_KEY` (@key) and `EXECNET_GATEWAY` (the
 * id of @xspec). `G_MESSAGES_DEBUG=Execnet` shows it; so does
 * `EXECNET_DEBUG` naming @key. A transport never writes on stderr itself.
 *
 * Since: 1.0
 */
void
execnet_transport_log (ExecnetXSpec *xspec,
                       const char   *key,
                       const char   *format,
                       ...)
{
  va_list args;
  guint flag;

  g_return_if_fail (xspec != NULL);
  g_return_if_fail (key != NULL);

  flag = _execnet_debug_flag_for_key (key);
  if (flag == 0)
    flag = EXECNET_DEBUG_TRANSPORT;
  if ((_execnet_debug_flags () & flag) == 0)
    return;

  va_start (args, format);
  _execnet_debug_logv (flag, execnet_xspec_get_id (xspec), NULL,
                       __FILE__, G_STRINGIFY (__LINE__), G_STRFUNC, format, args);
  va_end (args);
}

/**
 * execnet_transport_log_phase: (skip)
 * @xspec: the spec of the gateway being started
 * @phase: the phase that begins: `resolving`, `connecting`,
 *   `authenticating` or `starting-python` (the core reports `bootstrap`
 *   and `ready` itself)
 * @format: printf()-style format of what is done, such as
 *   `"connecting to %s port %u"`
 * @...: its arguments
 *
 * Reports that starting the gateway of @xspec enters @phase, for
 * `execnet-tool -v` and anyone who wants to see where a start spends its
 * time or where it hangs. The report is a debug message of the key `phase`
 * (see execnet_transport_log()) with the extra field `EXECNET_PHASE`.
 *
 * Since: 1.0
 */
void
execnet_transport_log_phase (ExecnetXSpec *xspec,
                             const char   *phase,
                             const char   *format,
                             ...)
{
  va_list args;

  g_return_if_fail (xspec != NULL);
  g_return_if_fail (phase != NULL);

  va_start (args, format);
  _execnet_debug_logv (EXECNET_DEBUG_PHASE, execnet_xspec_get_id (xspec), phase,
                       __FILE__, G_STRINGIFY (__LINE__), G_STRFUNC, format, args);
  va_end (args);
}

/* Any thread, inside the client's connect: GSocketClient's progress as
 * start phases. */
static void
on_socket_client_event (GSocketClient      *client,
                        GSocketClientEvent  event,
                        GSocketConnectable *connectable,
                        GIOStream          *connection,
                        gpointer            user_data)
{
  ExecnetXSpec *xspec = user_data;
  g_autofree char *target = NULL;

  if (event != G_SOCKET_CLIENT_RESOLVING && event != G_SOCKET_CLIENT_CONNECTING)
    return;

  target = g_socket_connectable_to_string (connectable);
  if (event == G_SOCKET_CLIENT_RESOLVING)
    execnet_transport_log_phase (xspec, "resolving", "resolving %s", target);
  else
    execnet_transport_log_phase (xspec, "connecting", "connecting to %s", target);
}

/**
 * execnet_transport_log_socket_client_phases:
 * @xspec: the spec of the gateway being started
 * @client: the client that will connect for it
 *
 * Reports the `resolving` and `connecting` phases of @client's next
 * connections with execnet_transport_log_phase(), for transports that
 * connect with a #GSocketClient.
 *
 * Since: 1.0
 */
void
execnet_transport_log_socket_client_phases (ExecnetXSpec  *xspec,
                                            GSocketClient *client)
{
  g_return_if_fail (xspec != NULL);
  g_return_if_fail (G_IS_SOCKET_CLIENT (client));

  g_signal_connect_data (client, "event", G_CALLBACK (on_socket_client_event),
                         execnet_xspec_ref (xspec), (GClosureNotify) (void (*) (void)) execnet_xspec_unref, 0);
}
