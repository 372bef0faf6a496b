/* execnet-connection.h: what a transport hands to the core
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

G_BEGIN_DECLS

/**
 * ExecnetBootstrapMode:
 * @EXECNET_BOOTSTRAP_STDIO: the stream is the standard input and output of a
 *   Python interpreter started with the command line from
 *   [func@Execnet.Transport.build_python_argv]; the agent keeps talking over
 *   the same file descriptors.
 * @EXECNET_BOOTSTRAP_SOCKET: the stream is a socket accepted by a socket
 *   server that executes the first line it reads with the connected socket
 *   bound to the name `clientsock` (execnet's socket server contract); the
 *   agent talks over that socket.
 *
 * How the remote interpreter at the other end of an [class@Execnet.Connection]
 * reads the bootstrap line and where its agent then talks.
 *
 * Since: 1.0
 */
typedef enum {
  EXECNET_BOOTSTRAP_STDIO,
  EXECNET_BOOTSTRAP_SOCKET,
} ExecnetBootstrapMode;

#define EXECNET_TYPE_CONNECTION (execnet_connection_get_type ())
EXECNET_AVAILABLE_IN_1_0
G_DECLARE_DERIVABLE_TYPE (ExecnetConnection, execnet_connection, EXECNET, CONNECTION, GObject)

/**
 * ExecnetConnectionClass:
 * @parent_class: the parent class
 * @close_write: signal end-of-file to the remote side while still reading
 *   from it. The default closes the output half of the stream.
 * @terminate: end the remote interpreter: politely (for example SIGTERM)
 *   when @force is %FALSE, at once (SIGKILL) when %TRUE. Must not block.
 *   The default closes the stream.
 * @wait_async: complete when the remote interpreter has ended, after calling
 *   [method@Execnet.Connection.set_exit_status] if the status is known.
 *   The default completes at once.
 * @wait_finish: finish @wait_async.
 *
 * The virtual methods of a connection made by a transport.
 *
 * Since: 1.0
 */
struct _ExecnetConnectionClass
{
  GObjectClass parent_class;

  gboolean (*close_write) (ExecnetConnection    *self,
                           GError              **error);
  void     (*terminate)   (ExecnetConnection    *self,
                           gboolean              force);
  void     (*wait_async)  (ExecnetConnection    *self,
                           GCancellable         *cancellable,
                           GAsyncReadyCallback   callback,
                           gpointer              user_data);
  gboolean (*wait_finish) (ExecnetConnection    *self,
                           GAsyncResult         *result,
                           GError              **error);

  /*< private >*/
  gpointer padding[12];
};

EXECNET_AVAILABLE_IN_1_0
GIOStream            *execnet_connection_get_stream         (ExecnetConnection    *self);
EXECNET_AVAILABLE_IN_1_0
const char           *execnet_connection_get_remote_address (ExecnetConnection    *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetBootstrapMode  execnet_connection_get_bootstrap_mode (ExecnetConnection    *self);
EXECNET_AVAILABLE_IN_1_0
gboolean              execnet_connection_close_write        (ExecnetConnection    *self,
                                                             GError              **error);
EXECNET_AVAILABLE_IN_1_0
void                  execnet_connection_terminate          (ExecnetConnection    *self,
                                                             gboolean              force);
EXECNET_AVAILABLE_IN_1_0
void                  execnet_connection_wait_async         (ExecnetConnection    *self,
                                                             GCancellable         *cancellable,
                                                             GAsyncReadyCallback   callback,
                                                             gpointer              user_data);
EXECNET_AVAILABLE_IN_1_0
gboolean              execnet_connection_wait_finish        (ExecnetConnection    *self,
                                                             GAsyncResult         *result,
                                                             GError              **error);
EXECNET_AVAILABLE_IN_1_0
void                  execnet_connection_set_exit_status    (ExecnetConnection    *self,
                                                             int                   wait_status);
EXECNET_AVAILABLE_IN_1_0
int                   execnet_connection_get_exit_status    (ExecnetConnection    *self);
EXECNET_AVAILABLE_IN_1_0
void                  execnet_connection_append_error_output (ExecnetConnection   *self,
                                                              const char          *data,
                                                              gsize                length);
EXECNET_AVAILABLE_IN_1_0
char                 *execnet_connection_dup_error_output   (ExecnetConnection    *self);
EXECNET_AVAILABLE_IN_1_0
GBytes               *execnet_connection_dup_bootstrap_answer (ExecnetConnection  *self);

G_END_DECLS
