/* execnet-ssh-stream.c: the remote command's stdin and stdout as a GIOStream
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-ssh-private.h"

/* Both halves are pollable streams over one ExecnetSshSession, so GIO's
 * default asynchronous read and write (which the core's I/O thread uses)
 * run on the session's sources without threads and without blocking. The
 * blocking read and write GIO also requires wait on the same sources in a
 * private main context. Closing the output half sends end-of-file; closing
 * the input half only stops reading. Neither ends the remote command:
 * that is ExecnetSshConnection's terminate(). */

#define EXECNET_TYPE_SSH_INPUT_STREAM (execnet_ssh_input_stream_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSshInputStream, execnet_ssh_input_stream, EXECNET, SSH_INPUT_STREAM, GInputStream)

#define EXECNET_TYPE_SSH_OUTPUT_STREAM (execnet_ssh_output_stream_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSshOutputStream, execnet_ssh_output_stream, EXECNET, SSH_OUTPUT_STREAM, GOutputStream)

#define EXECNET_TYPE_SSH_STREAM (execnet_ssh_stream_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSshStream, execnet_ssh_stream, EXECNET, SSH_STREAM, GIOStream)

struct _ExecnetSshInputStream
{
  GInputStream parent_instance;
  ExecnetSshSession *session;   /* (owned) */
};

struct _ExecnetSshOutputStream
{
  GOutputStream parent_instance;
  ExecnetSshSession *session;   /* (owned) */
};

struct _ExecnetSshStream
{
  GIOStream parent_instance;
  GInputStream *input;          /* (owned) */
  GOutputStream *output;        /* (owned) */
};

static void execnet_ssh_input_stream_pollable_init (GPollableInputStreamInterface *iface);
static void execnet_ssh_output_stream_pollable_init (GPollableOutputStreamInterface *iface);

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ExecnetSshInputStream, execnet_ssh_input_stream, G_TYPE_INPUT_STREAM, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (G_TYPE_POLLABLE_INPUT_STREAM,
                                                               execnet_ssh_input_stream_pollable_init))

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ExecnetSshOutputStream, execnet_ssh_output_stream, G_TYPE_OUTPUT_STREAM, G_TYPE_FLAG_FINAL,
                                G_IMPLEMENT_INTERFACE_DYNAMIC (G_TYPE_POLLABLE_OUTPUT_STREAM,
                                                               execnet_ssh_output_stream_pollable_init))

G_DEFINE_DYNAMIC_TYPE_EXTENDED (ExecnetSshStream, execnet_ssh_stream, G_TYPE_IO_STREAM, G_TYPE_FLAG_FINAL, {})

static gboolean
on_ready (GObject  *stream,
          gpointer  user_data)
{
  gboolean *ready = user_data;

  *ready = TRUE;
  return G_SOURCE_REMOVE;
}

/* Any thread. Blocks until @source dispatches or @cancellable fires. */
static gboolean
wait_for_source (GSource       *source,
                 GCancellable  *cancellable,
                 GError       **error)
{
  g_autoptr(GMainContext) context = g_main_context_new ();
  gboolean ready = FALSE;

  g_source_set_callback (source, G_SOURCE_FUNC (on_ready), &ready, NULL);
  g_source_attach (source, context);
  while (!ready)
    g_main_context_iteration (context, TRUE);
  g_source_destroy (source);

  return !g_cancellable_set_error_if_cancelled (cancellable, error);
}

/* ExecnetSshInputStream */

static gssize
execnet_ssh_input_stream_read_nonblocking (GPollableInputStream  *pollable,
                                           void                  *buffer,
                                           gsize                  count,
                                           GError               **error)
{
  ExecnetSshInputStream *self = EXECNET_SSH_INPUT_STREAM (pollable);

  return _execnet_ssh_session_read (self->session, buffer, count, error);
}

static gboolean
execnet_ssh_input_stream_can_poll (GPollableInputStream *pollable)
{
  return TRUE;
}

static gboolean
execnet_ssh_input_stream_is_readable (GPollableInputStream *pollable)
{
  ExecnetSshInputStream *self = EXECNET_SSH_INPUT_STREAM (pollable);

  return _execnet_ssh_session_is_ready (self->session, EXECNET_SSH_WAIT_READABLE);
}

static GSource *
execnet_ssh_input_stream_create_source (GPollableInputStream *pollable,
                                        GCancellable         *cancellable)
{
  ExecnetSshInputStream *self = EXECNET_SSH_INPUT_STREAM (pollable);
  g_autoptr(GSource) child = _execnet_ssh_session_create_source (self->session,
                                                                 EXECNET_SSH_WAIT_READABLE);

  return g_pollable_source_new_full (pollable, child, cancellable);
}

static gssize
execnet_ssh_input_stream_read (GInputStream  *stream,
                               void          *buffer,
                               gsize          count,
                               GCancellable  *cancellable,
                               GError       **error)
{
  GPollableInputStream *pollable = G_POLLABLE_INPUT_STREAM (stream);

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GSource) source = NULL;
      gssize n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return -1;
      n = execnet_ssh_input_stream_read_nonblocking (pollable, buffer, count, &local_error);
      if (n >= 0 || !g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (n < 0)
            g_propagate_error (error, g_steal_pointer (&local_error));
          return n;
        }
      source = execnet_ssh_input_stream_create_source (pollable, cancellable);
      if (!wait_for_source (source, cancellable, error))
        return -1;
    }
}

static gboolean
execnet_ssh_input_stream_close (GInputStream  *stream,
                                GCancellable  *cancellable,
                                GError       **error)
{
  return TRUE;
}

/* Closing does nothing that could block, so it need not go to a thread
 * the way GInputStream's default close_async does. */
static void
execnet_ssh_input_stream_close_async (GInputStream        *stream,
                                      int                  io_priority,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);

  g_task_set_source_tag (task, execnet_ssh_input_stream_close_async);
  g_task_return_boolean (task, TRUE);
}

static gboolean
execnet_ssh_input_stream_close_finish (GInputStream  *stream,
                                       GAsyncResult  *result,
                                       GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_ssh_input_stream_finalize (GObject *object)
{
  ExecnetSshInputStream *self = EXECNET_SSH_INPUT_STREAM (object);

  g_clear_pointer (&self->session, _execnet_ssh_session_unref);

  G_OBJECT_CLASS (execnet_ssh_input_stream_parent_class)->finalize (object);
}

static void
execnet_ssh_input_stream_class_init (ExecnetSshInputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  object_class->finalize = execnet_ssh_input_stream_finalize;
  stream_class->read_fn = execnet_ssh_input_stream_read;
  stream_class->close_fn = execnet_ssh_input_stream_close;
  stream_class->close_async = execnet_ssh_input_stream_close_async;
  stream_class->close_finish = execnet_ssh_input_stream_close_finish;
}

static void
execnet_ssh_input_stream_class_finalize (ExecnetSshInputStreamClass *klass)
{
}

static void
execnet_ssh_input_stream_init (ExecnetSshInputStream *self)
{
}

static void
execnet_ssh_input_stream_pollable_init (GPollableInputStreamInterface *iface)
{
  iface->can_poll = execnet_ssh_input_stream_can_poll;
  iface->is_readable = execnet_ssh_input_stream_is_readable;
  iface->create_source = execnet_ssh_input_stream_create_source;
  iface->read_nonblocking = execnet_ssh_input_stream_read_nonblocking;
}

/* ExecnetSshOutputStream */

static gssize
execnet_ssh_output_stream_write_nonblocking (GPollableOutputStream  *pollable,
                                             const void             *buffer,
                                             gsize                   count,
                                             GError                **error)
{
  ExecnetSshOutputStream *self = EXECNET_SSH_OUTPUT_STREAM (pollable);

  return _execnet_ssh_session_write (self->session, buffer, count, error);
}

static gboolean
execnet_ssh_output_stream_can_poll (GPollableOutputStream *pollable)
{
  return TRUE;
}

static gboolean
execnet_ssh_output_stream_is_writable (GPollableOutputStream *pollable)
{
  ExecnetSshOutputStream *self = EXECNET_SSH_OUTPUT_STREAM (pollable);

  return _execnet_ssh_session_is_ready (self->session, EXECNET_SSH_WAIT_WRITABLE);
}

static GSource *
execnet_ssh_output_stream_create_source (GPollableOutputStream *pollable,
                                         GCancellable          *cancellable)
{
  ExecnetSshOutputStream *self = EXECNET_SSH_OUTPUT_STREAM (pollable);
  g_autoptr(GSource) child = _execnet_ssh_session_create_source (self->session,
                                                                 EXECNET_SSH_WAIT_WRITABLE);

  return g_pollable_source_new_full (pollable, child, cancellable);
}

static gssize
execnet_ssh_output_stream_write (GOutputStream  *stream,
                                 const void     *buffer,
                                 gsize           count,
                                 GCancellable   *cancellable,
                                 GError        **error)
{
  GPollableOutputStream *pollable = G_POLLABLE_OUTPUT_STREAM (stream);

  for (;;)
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(GSource) source = NULL;
      gssize n;

      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return -1;
      n = execnet_ssh_output_stream_write_nonblocking (pollable, buffer, count, &local_error);
      if (n >= 0 || !g_error_matches (local_error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
        {
          if (n < 0)
            g_propagate_error (error, g_steal_pointer (&local_error));
          return n;
        }
      source = execnet_ssh_output_stream_create_source (pollable, cancellable);
      if (!wait_for_source (source, cancellable, error))
        return -1;
    }
}

static gboolean
execnet_ssh_output_stream_close (GOutputStream  *stream,
                                 GCancellable   *cancellable,
                                 GError        **error)
{
  ExecnetSshOutputStream *self = EXECNET_SSH_OUTPUT_STREAM (stream);

  return _execnet_ssh_session_send_eof (self->session, error);
}

/* Sending end-of-file does not block: no thread needed. */
static void
execnet_ssh_output_stream_close_async (GOutputStream       *stream,
                                       int                  io_priority,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (stream, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, execnet_ssh_output_stream_close_async);
  if (execnet_ssh_output_stream_close (stream, cancellable, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

static gboolean
execnet_ssh_output_stream_close_finish (GOutputStream  *stream,
                                        GAsyncResult   *result,
                                        GError        **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
execnet_ssh_output_stream_finalize (GObject *object)
{
  ExecnetSshOutputStream *self = EXECNET_SSH_OUTPUT_STREAM (object);

  g_clear_pointer (&self->session, _execnet_ssh_session_unref);

  G_OBJECT_CLASS (execnet_ssh_output_stream_parent_class)->finalize (object);
}

static void
execnet_ssh_output_stream_class_init (ExecnetSshOutputStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GOutputStreamClass *stream_class = G_OUTPUT_STREAM_CLASS (klass);

  object_class->finalize = execnet_ssh_output_stream_finalize;
  stream_class->write_fn = execnet_ssh_output_stream_write;
  stream_class->close_fn = execnet_ssh_output_stream_close;
  stream_class->close_async = execnet_ssh_output_stream_close_async;
  stream_class->close_finish = execnet_ssh_output_stream_close_finish;
}

static void
execnet_ssh_output_stream_class_finalize (ExecnetSshOutputStreamClass *klass)
{
}

static void
execnet_ssh_output_stream_init (ExecnetSshOutputStream *self)
{
}

static void
execnet_ssh_output_stream_pollable_init (GPollableOutputStreamInterface *iface)
{
  iface->can_poll = execnet_ssh_output_stream_can_poll;
  iface->is_writable = execnet_ssh_output_stream_is_writable;
  iface->create_source = execnet_ssh_output_stream_create_source;
  iface->write_nonblocking = execnet_ssh_output_stream_write_nonblocking;
}

/* ExecnetSshStream */

static GInputStream *
execnet_ssh_stream_get_input_stream (GIOStream *stream)
{
  return EXECNET_SSH_STREAM (stream)->input;
}

static GOutputStream *
execnet_ssh_stream_get_output_stream (GIOStream *stream)
{
  return EXECNET_SSH_STREAM (stream)->output;
}

static void
execnet_ssh_stream_finalize (GObject *object)
{
  ExecnetSshStream *self = EXECNET_SSH_STREAM (object);

  g_clear_object (&self->input);
  g_clear_object (&self->output);

  G_OBJECT_CLASS (execnet_ssh_stream_parent_class)->finalize (object);
}

static void
execnet_ssh_stream_class_init (ExecnetSshStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GIOStreamClass *stream_class = G_IO_STREAM_CLASS (klass);

  object_class->finalize = execnet_ssh_stream_finalize;
  stream_class->get_input_stream = execnet_ssh_stream_get_input_stream;
  stream_class->get_output_stream = execnet_ssh_stream_get_output_stream;
}

static void
execnet_ssh_stream_class_finalize (ExecnetSshStreamClass *klass)
{
}

static void
execnet_ssh_stream_init (ExecnetSshStream *self)
{
}

/**
 * _execnet_ssh_stream_new:
 * @session: the session whose channel the stream reads and writes
 *
 * Returns: (transfer full): the stream
 */
GIOStream *
_execnet_ssh_stream_new (ExecnetSshSession *session)
{
  ExecnetSshStream *self = g_object_new (EXECNET_TYPE_SSH_STREAM, NULL);
  ExecnetSshInputStream *input = g_object_new (EXECNET_TYPE_SSH_INPUT_STREAM, NULL);
  ExecnetSshOutputStream *output = g_object_new (EXECNET_TYPE_SSH_OUTPUT_STREAM, NULL);

  input->session = _execnet_ssh_session_ref (session);
  output->session = _execnet_ssh_session_ref (session);
  self->input = G_INPUT_STREAM (input);
  self->output = G_OUTPUT_STREAM (output);

  return G_IO_STREAM (self);
}

void
_execnet_ssh_stream_register (GTypeModule *module)
{
  execnet_ssh_input_stream_register_type (module);
  execnet_ssh_output_stream_register_type (module);
  execnet_ssh_stream_register_type (module);
}
