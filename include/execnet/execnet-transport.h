/* execnet-transport.h: the interface transport plugins implement
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <gio/gio.h>
#include <execnet/execnet-version.h>
#include <execnet/execnet-types.h>
#include <execnet/execnet-connection.h>
#include <execnet/execnet-xspec.h>

G_BEGIN_DECLS

/**
 * EXECNET_TRANSPORT_EXTENSION_POINT_NAME:
 *
 * The name of the #GIOExtensionPoint on which transport plugins register
 * their [iface@Execnet.Transport] implementation, under the scheme they serve
 * (`popen`, `ssh`, `socket`, ...).
 *
 * Since: 1.0
 */
#define EXECNET_TRANSPORT_EXTENSION_POINT_NAME "execnet-transport"

#define EXECNET_TYPE_TRANSPORT (execnet_transport_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_INTERFACE (ExecnetTransport, execnet_transport, EXECNET, TRANSPORT, GObject)

/**
 * ExecnetTransportInterface:
 * @g_iface: the parent interface
 * @open_async: start a Python interpreter for @xspec (or connect to one) and
 *   produce an [class@Execnet.Connection] to it. Called in the library's I/O
 *   thread; it must not block that thread (run blocking work with
 *   g_task_run_in_thread()). The core writes the bootstrap line and does all
 *   the rest.
 * @open_finish: finish @open_async. The default returns the connection that
 *   @open_async passed to g_task_return_pointer() on a #GTask whose source
 *   object is the transport.
 * @get_keys: the spec keys the transport accepts besides its scheme and the
 *   general ones of [func@Execnet.XSpec.get_general_keys], as a static
 *   %NULL-terminated array. The default accepts none.
 * @check_xspec: check the values of @xspec beyond its keys (called after
 *   the keys were checked, before @open_async). The default accepts any.
 * @explain_failure: (nullable): turn the core's @error about a connection
 *   whose interpreter never acknowledged the bootstrap (it ended, or
 *   `connect_timeout=` passed) into a clearer one, from what the launcher
 *   wrote on stderr ([method@Execnet.Connection.dup_error_output]) and its
 *   exit status; return %NULL to keep @error. Called in the I/O thread; it
 *   must not block.
 * @prepare_async: (nullable): before @open_async, do what the spec needs
 *   done first and produce the spec to open, for a spec whose interpreter
 *   is not there yet (`socket//installvia=ID` starts a one-shot server
 *   through another gateway of @group). Called in the thread that makes
 *   the gateway, after @check_xspec; it may use other gateways of @group.
 *   The same transport instance then opens the spec @prepare_finish
 *   returned, so it may keep what it prepared (and clean it up in its
 *   finalize). The default opens @xspec itself.
 * @prepare_finish: (nullable): finish @prepare_async, returning the spec
 *   to open.
 * @describe: (nullable): what opening @xspec would do, resolved as
 *   @open_async resolves it but without starting or connecting anything,
 *   as a `a{sv}` dictionary (see [method@Execnet.Transport.describe]).
 *   Called after @check_xspec accepted @xspec, in any thread; it may read
 *   local files such as an ssh config.
 *
 * The interface a transport plugin implements. See
 * [Transports, and how to write one](transports.html).
 *
 * Since: 1.0
 */
struct _ExecnetTransportInterface
{
  GTypeInterface g_iface;

  void                (*open_async)  (ExecnetTransport     *self,
                                      ExecnetXSpec         *xspec,
                                      GCancellable         *cancellable,
                                      GAsyncReadyCallback   callback,
                                      gpointer              user_data);
  ExecnetConnection  *(*open_finish) (ExecnetTransport     *self,
                                      GAsyncResult         *result,
                                      GError              **error);
  const char * const *(*get_keys)    (ExecnetTransport     *self);
  gboolean            (*check_xspec) (ExecnetTransport     *self,
                                      ExecnetXSpec         *xspec,
                                      GError              **error);
  GError             *(*explain_failure) (ExecnetTransport  *self,
                                          ExecnetXSpec      *xspec,
                                          ExecnetConnection *connection,
                                          const GError      *error);
  void                (*prepare_async)  (ExecnetTransport     *self,
                                         ExecnetGroup         *group,
                                         ExecnetXSpec         *xspec,
                                         GCancellable         *cancellable,
                                         GAsyncReadyCallback   callback,
                                         gpointer              user_data);
  ExecnetXSpec       *(*prepare_finish) (ExecnetTransport     *self,
                                         GAsyncResult         *result,
                                         GError              **error);
  GVariant           *(*describe)    (ExecnetTransport     *self,
                                      ExecnetXSpec         *xspec,
                                      GError              **error);

  /*< private >*/
  gpointer padding[6];
};

EXECNET_AVAILABLE_IN_1_0
void               execnet_transport_open_async  (ExecnetTransport     *self,
                                                  ExecnetXSpec         *xspec,
                                                  GCancellable         *cancellable,
                                                  GAsyncReadyCallback   callback,
                                                  gpointer              user_data);
EXECNET_AVAILABLE_IN_1_0
ExecnetConnection *execnet_transport_open_finish (ExecnetTransport     *self,
                                                  GAsyncResult         *result,
                                                  GError              **error);

EXECNET_AVAILABLE_IN_1_0
const char * const *execnet_transport_get_keys   (ExecnetTransport     *self);
EXECNET_AVAILABLE_IN_1_0
gboolean           execnet_transport_check_xspec (ExecnetTransport     *self,
                                                  ExecnetXSpec         *xspec,
                                                  GError              **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetConnection *execnet_transport_spawn       (ExecnetXSpec         *xspec,
                                                  const char * const   *launcher_argv,
                                                  GCancellable         *cancellable,
                                                  GError              **error);
EXECNET_AVAILABLE_IN_1_0
void               execnet_transport_prepare_async   (ExecnetTransport    *self,
                                                      ExecnetGroup        *group,
                                                      ExecnetXSpec        *xspec,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
EXECNET_AVAILABLE_IN_1_0
ExecnetXSpec      *execnet_transport_prepare_finish  (ExecnetTransport    *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);
EXECNET_AVAILABLE_IN_1_0
GError            *execnet_transport_explain_failure (ExecnetTransport  *self,
                                                      ExecnetXSpec      *xspec,
                                                      ExecnetConnection *connection,
                                                      const GError      *error);

EXECNET_AVAILABLE_IN_1_0
void               execnet_transport_write_stderr    (const char          *data,
                                                      gsize                length);

EXECNET_AVAILABLE_IN_1_0
GVariant          *execnet_transport_describe    (ExecnetTransport     *self,
                                                  ExecnetXSpec         *xspec,
                                                  GError              **error);

EXECNET_AVAILABLE_IN_1_0
char  **execnet_transport_build_python_argv    (ExecnetXSpec  *xspec,
                                                GError       **error);
EXECNET_AVAILABLE_IN_1_0
char   *execnet_transport_build_python_command (ExecnetXSpec  *xspec,
                                                GError       **error);
EXECNET_AVAILABLE_IN_1_0
void    execnet_transport_register_extension_point (void);
EXECNET_AVAILABLE_IN_1_0
char  **execnet_transport_list_schemes         (void);
EXECNET_AVAILABLE_IN_1_0
char  **execnet_transport_get_search_path      (void);
EXECNET_AVAILABLE_IN_1_0
char   *execnet_transport_find_module          (const char    *scheme);
EXECNET_AVAILABLE_IN_1_0
ExecnetTransport *execnet_transport_new_for_scheme (const char *scheme,
                                                    GError    **error);

EXECNET_AVAILABLE_IN_1_0
gboolean execnet_transport_debug_enabled (const char   *key);
EXECNET_AVAILABLE_IN_1_0
void     execnet_transport_log           (ExecnetXSpec *xspec,
                                          const char   *key,
                                          const char   *format,
                                          ...) G_GNUC_PRINTF (3, 4);
EXECNET_AVAILABLE_IN_1_0
void     execnet_transport_log_phase     (ExecnetXSpec *xspec,
                                          const char   *phase,
                                          const char   *format,
                                          ...) G_GNUC_PRINTF (3, 4);
EXECNET_AVAILABLE_IN_1_0
void     execnet_transport_log_socket_client_phases (ExecnetXSpec  *xspec,
                                                     GSocketClient *client);

/**
 * EXECNET_DEFINE_TRANSPORT_MODULE:
 * @scheme: the scheme the plugin serves, as a bare C identifier (`sudo`,
 *   `vagrant_ssh`); the plugin file must be `libexecnet-SCHEME.so`
 * @transport_type: the #GType of the plugin's [iface@Execnet.Transport]
 *   implementation, such as `EXAMPLE_TYPE_SUDO_TRANSPORT`
 *
 * Defines the entry points of a transport plugin: the
 * `g_io_execnet_SCHEME_load()`, `_unload()` and `_query()` functions that
 * the library looks for, which pin the module and register @transport_type
 * on %EXECNET_TRANSPORT_EXTENSION_POINT_NAME under @scheme. Write it once,
 * at the end of the plugin's source file:
 *
 * ```c
 * EXECNET_DEFINE_TRANSPORT_MODULE (sudo, EXAMPLE_TYPE_SUDO_TRANSPORT)
 * ```
 *
 * The module is never unloaded, so the plugin's types may be defined with
 * the plain G_DEFINE_TYPE() family.
 *
 * Since: 1.0
 */
#define EXECNET_DEFINE_TRANSPORT_MODULE(scheme, transport_type)                  \
  G_MODULE_EXPORT void g_io_execnet_##scheme##_load (GIOModule *module);         \
  G_MODULE_EXPORT void g_io_execnet_##scheme##_unload (GIOModule *module);       \
  G_MODULE_EXPORT char **g_io_execnet_##scheme##_query (void);                   \
  G_MODULE_EXPORT void                                                           \
  g_io_execnet_##scheme##_load (GIOModule *module)                               \
  {                                                                              \
    g_type_module_use (G_TYPE_MODULE (module));                                  \
    execnet_transport_register_extension_point ();                               \
    g_io_extension_point_implement (EXECNET_TRANSPORT_EXTENSION_POINT_NAME,      \
                                    (transport_type), #scheme, 0);               \
  }                                                                              \
  G_MODULE_EXPORT void                                                           \
  g_io_execnet_##scheme##_unload (GIOModule *module)                             \
  {                                                                              \
  }                                                                              \
  G_MODULE_EXPORT char **                                                        \
  g_io_execnet_##scheme##_query (void)                                           \
  {                                                                              \
    return g_strsplit (EXECNET_TRANSPORT_EXTENSION_POINT_NAME, "!", 0);          \
  }

G_END_DECLS
