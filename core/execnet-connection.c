/* execnet-connection.c: what a transport hands to the core
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <sys/wait.h>

#include <execnet/execnet-enum-types.h>
#include <execnet/execnet-connection.h>
#include <execnet/execnet-error.h>

#include "execnet-connection-private.h"

/**
 * ExecnetConnection:
 *
 * A live connection to a Python interpreter, made by a transport plugin.
 *
 * A connection is a [class@Gio.IOStream] whose other end is an interpreter
 * that will read one bootstrap line (see [enum@Execnet.BootstrapMode]), plus
 * the means to end that interpreter and to learn how it ended. The core does
 * everything else: the bootstrap, framing, channels and termination policy.
 *
 * The core reads and writes the stream asynchronously in its I/O thread, so
 * the stream must implement asynchronous I/O that does not block (streams that
 * implement [iface@Gio.PollableInputStream] and
 * [iface@Gio.PollableOutputStream] get this from GIO for free).
 *
 * Subclasses override the virtual methods of its class structure,
 * `ExecnetConnectionClass` (below), that apply to them; see
 * [Transports, and how to write one](transports.html).
 *
 * Most transports get their connection from a launcher program, in their
 * `open_async`:
 *
 * ```c
 * const char *launcher[] = { "sudo", "-n", "-u", user, NULL };
 * ExecnetConnection *connection =
 *   execnet_transport_spawn (xspec, launcher, cancellable, &error);
 * ```
 *
 * Since: 1.0
 */

typedef struct
{
  GIOStream *stream;                 /* (owned) */
  char *remote_address;              /* (owned) */
  ExecnetBootstrapMode bootstrap_mode;

  GMutex lock;
  int exit_status;                   /* (lock lock); -1 while unknown */
  GString *error_output;             /* (lock lock) (owned) the tail of the remote's stderr */
  GBytes *bootstrap_answer;          /* (lock lock) (owned) (nullable) not the agent's */
} ExecnetConnectionPrivate;

/* How much of the remote's error output is kept for messages. */
#define ERROR_OUTPUT_KEEP 4096

enum {
  PROP_0,
  PROP_STREAM,
  PROP_REMOTE_ADDRESS,
  PROP_BOOTSTRAP_MODE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

G_DEFINE_TYPE_WITH_PRIVATE (ExecnetConnection, execnet_connection, G_TYPE_OBJECT)

static gboolean
execnet_connection_real_close_write (ExecnetConnection  *self,
                                     GError            **error)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  return g_output_stream_close (g_io_stream_get_output_stream (priv->stream), NULL, error);
}

static void
execnet_connection_real_terminate (ExecnetConnection *self,
                                   gboolean           force)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_io_stream_close (priv->stream, NULL, NULL);
}

static void
execnet_connection_real_wait_async (ExecnetConnection   *self,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, execnet_connection_real_wait_async);
  g_task_return_boolean (task, TRUE);
}

static gboolean
execnet_connection_real_wait_finish (ExecnetConnection  *self,
                                     GAsyncResult       *result,
                                     GError            **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_connection_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  ExecnetConnection *self = EXECNET_CONNECTION (object);
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_STREAM:
      g_value_set_object (value, priv->stream);
      break;
    case PROP_REMOTE_ADDRESS:
      g_value_set_string (value, priv->remote_address);
      break;
    case PROP_BOOTSTRAP_MODE:
      g_value_set_enum (value, priv->bootstrap_mode);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
execnet_connection_set_property (GObject      *object,
                                 guint         prop_id,
                                 const GValue *value,
                                 GParamSpec   *pspec)
{
  ExecnetConnection *self = EXECNET_CONNECTION (object);
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_STREAM:
      priv->stream = g_value_dup_object (value);
      break;
    case PROP_REMOTE_ADDRESS:
      priv->remote_address = g_value_dup_string (value);
      break;
    case PROP_BOOTSTRAP_MODE:
      priv->bootstrap_mode = g_value_get_enum (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
execnet_connection_finalize (GObject *object)
{
  ExecnetConnection *self = EXECNET_CONNECTION (object);
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_clear_object (&priv->stream);
  g_clear_pointer (&priv->remote_address, g_free);
  g_string_free (priv->error_output, TRUE);
  g_clear_pointer (&priv->bootstrap_answer, g_bytes_unref);
  g_mutex_clear (&priv->lock);

  G_OBJECT_CLASS (execnet_connection_parent_class)->finalize (object);
}

static void
execnet_connection_class_init (ExecnetConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = execnet_connection_get_property;
  object_class->set_property = execnet_connection_set_property;
  object_class->finalize = execnet_connection_finalize;

  klass->close_write = execnet_connection_real_close_write;
  klass->terminate = execnet_connection_real_terminate;
  klass->wait_async = execnet_connection_real_wait_async;
  klass->wait_finish = execnet_connection_real_wait_finish;

  /**
   * ExecnetConnection:stream:
   *
   * The stream to the remote interpreter.
   *
   * Since: 1.0
   */
  properties[PROP_STREAM] =
    g_param_spec_object ("stream", NULL, NULL,
                         G_TYPE_IO_STREAM,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExecnetConnection:remote-address:
   *
   * Where the interpreter runs, for messages: `pid 1234`, `alice@node7:22`.
   *
   * Since: 1.0
   */
  properties[PROP_REMOTE_ADDRESS] =
    g_param_spec_string ("remote-address", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                         G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  /**
   * ExecnetConnection:bootstrap-mode:
   *
   * How the interpreter reads the bootstrap line.
   *
   * Since: 1.0
   */
  properties[PROP_BOOTSTRAP_MODE] =
    g_param_spec_enum ("bootstrap-mode", NULL, NULL,
                       EXECNET_TYPE_BOOTSTRAP_MODE,
                       EXECNET_BOOTSTRAP_STDIO,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY |
                       G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
execnet_connection_init (ExecnetConnection *self)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_mutex_init (&priv->lock);
  priv->exit_status = -1;
  priv->error_output = g_string_new (NULL);
}

/**
 * execnet_connection_get_stream:
 * @self: a connection
 *
 * Gets the stream to the remote interpreter.
 *
 * Returns: (transfer none): the stream to the remote interpreter
 *
 * Since: 1.0
 */
GIOStream *
execnet_connection_get_stream (ExecnetConnection *self)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), NULL);

  return priv->stream;
}

/**
 * execnet_connection_get_remote_address:
 * @self: a connection
 *
 * Gets where the interpreter runs, as the transport describes it for messages.
 *
 * Returns: (nullable): where the interpreter runs, for messages
 *
 * Since: 1.0
 */
const char *
execnet_connection_get_remote_address (ExecnetConnection *self)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), NULL);

  return priv->remote_address;
}

/**
 * execnet_connection_get_bootstrap_mode:
 * @self: a connection
 *
 * Gets how the remote interpreter reads the bootstrap line.
 *
 * Returns: how the interpreter reads the bootstrap line
 *
 * Since: 1.0
 */
ExecnetBootstrapMode
execnet_connection_get_bootstrap_mode (ExecnetConnection *self)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), EXECNET_BOOTSTRAP_STDIO);

  return priv->bootstrap_mode;
}

/**
 * execnet_connection_close_write:
 * @self: a connection
 * @error: return location for a #GError
 *
 * Signals end-of-file to the remote side; reading goes on.
 *
 * Returns: %TRUE on success
 *
 * Since: 1.0
 */
gboolean
execnet_connection_close_write (ExecnetConnection  *self,
                                GError            **error)
{
  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), FALSE);

  return EXECNET_CONNECTION_GET_CLASS (self)->close_write (self, error);
}

/**
 * execnet_connection_terminate:
 * @self: a connection
 * @force: whether to end the interpreter at once
 *
 * Ends the remote interpreter, politely or, with @force, at once.
 * Never blocks.
 *
 * Since: 1.0
 */
void
execnet_connection_terminate (ExecnetConnection *self,
                              gboolean           force)
{
  g_return_if_fail (EXECNET_IS_CONNECTION (self));

  EXECNET_CONNECTION_GET_CLASS (self)->terminate (self, force);
}

/**
 * execnet_connection_wait_async:
 * @self: a connection
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the interpreter has ended
 * @user_data: data for @callback
 *
 * Waits for the remote interpreter to end.
 *
 * Since: 1.0
 */
void
execnet_connection_wait_async (ExecnetConnection   *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (EXECNET_IS_CONNECTION (self));

  EXECNET_CONNECTION_GET_CLASS (self)->wait_async (self, cancellable, callback, user_data);
}

/**
 * execnet_connection_wait_finish:
 * @self: a connection
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * Finishes execnet_connection_wait_async().
 *
 * Returns: %TRUE when the interpreter has ended
 *
 * Since: 1.0
 */
gboolean
execnet_connection_wait_finish (ExecnetConnection  *self,
                                GAsyncResult       *result,
                                GError            **error)
{
  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), FALSE);

  return EXECNET_CONNECTION_GET_CLASS (self)->wait_finish (self, result, error);
}

/**
 * execnet_connection_set_exit_status:
 * @self: a connection
 * @wait_status: how the interpreter ended, encoded as by waitpid()
 *
 * Records how the interpreter ended. Transports call this before completing
 * a wait.
 *
 * Since: 1.0
 */
void
execnet_connection_set_exit_status (ExecnetConnection *self,
                                    int                wait_status)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_return_if_fail (EXECNET_IS_CONNECTION (self));

  g_mutex_lock (&priv->lock);
  priv->exit_status = wait_status;
  g_mutex_unlock (&priv->lock);
}

/**
 * execnet_connection_get_exit_status:
 * @self: a connection
 *
 * Gets how the remote interpreter ended, once the transport knows.
 *
 * Returns: how the interpreter ended, encoded as by waitpid(), or -1 while
 *   it is not known
 *
 * Since: 1.0
 */
int
execnet_connection_get_exit_status (ExecnetConnection *self)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);
  int status;

  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), -1);

  g_mutex_lock (&priv->lock);
  status = priv->exit_status;
  g_mutex_unlock (&priv->lock);

  return status;
}

/**
 * execnet_connection_append_error_output:
 * @self: a connection
 * @data: (array length=length) (element-type guint8): bytes the remote wrote to its error output
 * @length: the length of @data
 *
 * Keeps the tail of what the remote interpreter wrote to its error output,
 * so that a failed bootstrap can quote it. Transports that capture the
 * remote's stderr call this; thread-safe.
 *
 * Since: 1.0
 */
void
execnet_connection_append_error_output (ExecnetConnection *self,
                                        const char        *data,
                                        gsize              length)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_return_if_fail (EXECNET_IS_CONNECTION (self));

  g_mutex_lock (&priv->lock);
  g_string_append_len (priv->error_output, data, length);
  if (priv->error_output->len > ERROR_OUTPUT_KEEP)
    g_string_erase (priv->error_output, 0, priv->error_output->len - ERROR_OUTPUT_KEEP);
  g_mutex_unlock (&priv->lock);
}

/**
 * execnet_connection_dup_error_output:
 * @self: a connection
 *
 * Copies what the transport kept of the remote interpreter's error output,
 * escaped with execnet_error_escape_text() so that it can go into an error
 * message as it is.
 *
 * Returns: (transfer full) (nullable): the tail of the remote's error output,
 *   or %NULL if nothing was captured
 *
 * Since: 1.0
 */
char *
execnet_connection_dup_error_output (ExecnetConnection *self)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);
  char *copy = NULL;

  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), NULL);

  g_mutex_lock (&priv->lock);
  if (priv->error_output->len > 0)
    copy = execnet_error_escape_text (priv->error_output->str, priv->error_output->len,
                                      ERROR_OUTPUT_KEEP);
  g_mutex_unlock (&priv->lock);

  return copy;
}

/* I/O thread, before the transport's explain_failure runs: what the remote
 * answered to the bootstrap line, when it was not the agent's answer. */
void
_execnet_connection_set_bootstrap_answer (ExecnetConnection *self,
                                          GBytes            *answer)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);

  g_mutex_lock (&priv->lock);
  g_clear_pointer (&priv->bootstrap_answer, g_bytes_unref);
  priv->bootstrap_answer = g_bytes_ref (answer);
  g_mutex_unlock (&priv->lock);
}

/**
 * execnet_connection_dup_bootstrap_answer:
 * @self: a connection
 *
 * Gets what the remote side answered to the bootstrap line when that was
 * not the agent's answer: the first line it wrote (at most 128 bytes), or
 * its first byte if that is not text. A transport's
 * [method@Execnet.Transport.explain_failure] can recognise what its kind of
 * peer says there, such as a socket server's token challenge.
 *
 * Returns: (transfer full) (nullable): the raw bytes of the answer, or
 *   %NULL if the remote answered as an agent does, or not yet
 *
 * Since: 1.0
 */
GBytes *
execnet_connection_dup_bootstrap_answer (ExecnetConnection *self)
{
  ExecnetConnectionPrivate *priv = execnet_connection_get_instance_private (self);
  GBytes *answer = NULL;

  g_return_val_if_fail (EXECNET_IS_CONNECTION (self), NULL);

  g_mutex_lock (&priv->lock);
  if (priv->bootstrap_answer != NULL)
    answer = g_bytes_ref (priv->bootstrap_answer);
  g_mutex_unlock (&priv->lock);

  return answer;
}
