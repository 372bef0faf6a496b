/* execnet-ssh-session.c: a libssh channel served without blocking
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/callbacks.h>

#include "execnet-ssh-private.h"

/* Once connected, a session lives in non-blocking mode and is driven by
 * the core's I/O thread through GLib sources on the session's socket, so
 * no thread ever waits inside libssh:
 *
 *  - libssh does all socket I/O itself, when it is "pumped":
 *    ssh_event_dopoll() with a zero timeout reads what the socket has
 *    (at most 4 KiB per call), decrypts, and files the packets: channel
 *    data into libssh's stdout buffer, window adjustments, the exit status,
 *    end-of-file and close; it also flushes pending output. The session is
 *    added to a private ssh_event so that it can be pumped whatever state
 *    the channel is in (ssh_channel_poll() only pumps while its buffer is
 *    empty and the remote has not sent EOF, which would leave a writer
 *    waiting for a window adjustment spinning on a readable socket).
 *
 *  - A source (ExecnetSshSource) asks in prepare() whether its condition
 *    already holds, since libssh may have filed data while pumping for
 *    someone else (asking may itself pump once, without waiting); if not,
 *    it polls the socket for input, and for output when libssh holds
 *    unsent bytes. In check() it pumps and asks again. Every wakeup
 *    consumes what made the socket ready, so nothing spins.
 *
 *  - Flow control is SSH's own: libssh grows the receive window only as
 *    we take data out of its buffer, so a reader that stops reading stops
 *    the remote; a writer is refused (G_IO_ERROR_WOULD_BLOCK) while the
 *    remote window is closed or libssh still holds unsent bytes, so at most
 *    one write's worth is buffered here.
 *
 *  - The remote's stderr is taken out of libssh's buffer as soon as it is
 *    filed (a channel data callback), so that it can never fill the window
 *    the two streams share; it goes to our stderr, as with popen, and its
 *    tail is kept for error messages.
 *
 * libssh is not thread-safe within a session: every libssh call on it is
 * made with @lock held. The I/O thread makes almost all of them;
 * terminate() may come from any thread and takes the lock too. */

#define STDERR_TAIL_KEEP 4096

/* How much one write hands to libssh; more than that waits for the
 * socket, which keeps libssh's output buffer small. */
#define WRITE_CHUNK (64 * 1024)

/* How many times one read or check pumps before giving the main loop back. */
#define MAX_PUMPS 32

struct _ExecnetSshSession
{
  /* Guards every field below and every libssh call on @session. */
  GMutex lock;

  ssh_session session;            /* (owned) (nullable) NULL once disconnected */
  ssh_channel channel;            /* (owned) (nullable) NULL once freed */
  ssh_event event;                /* (owned) (nullable) the private pump */
  struct ssh_channel_callbacks_struct callbacks;  /* registered on @channel */
  char *address;                  /* (owned) immutable: user@host:port */
  ExecnetXSpec *xspec;            /* (owned) immutable: for libssh's log */
  int socket_fd;                  /* (owned) our TCP socket, -1 if libssh made its own */

  ExecnetConnection *owner;       /* (unowned) (nullable) receives the stderr tail */
  GPtrArray *contexts;            /* (owned) (element-type GMainContext) where our sources ran */
  GString *stderr_tail;           /* (owned) the last STDERR_TAIL_KEEP bytes */

  gboolean exit_known;            /* exit-status or exit-signal received */
  int wait_status;                /* wait(2)-style, valid with @exit_known */
  gboolean remote_closed;         /* the server closed the channel */
  gboolean eof_sent;              /* we sent end-of-file */
  gboolean write_shut;            /* forced termination: never write again */
};

/* RFC 4254 signal names and the few others OpenSSH passes on. */
static const struct
{
  const char *name;
  int number;
} signal_names[] = {
  { "ABRT", SIGABRT }, { "ALRM", SIGALRM }, { "FPE", SIGFPE },
  { "HUP", SIGHUP }, { "ILL", SIGILL }, { "INT", SIGINT },
  { "KILL", SIGKILL }, { "PIPE", SIGPIPE }, { "QUIT", SIGQUIT },
  { "SEGV", SIGSEGV }, { "TERM", SIGTERM }, { "USR1", SIGUSR1 },
  { "USR2", SIGUSR2 }, { "BUS", SIGBUS }, { "TRAP", SIGTRAP },
  { "SYS", SIGSYS }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ },
};

static int
signal_number (const char *name)
{
  if (name == NULL)
    return 0;
  if (g_str_has_prefix (name, "SIG"))
    name += 3;
  for (gsize i = 0; i < G_N_ELEMENTS (signal_names); i++)
    if (strcmp (signal_names[i].name, name) == 0)
      return signal_names[i].number;
  return 0;
}

/* Any thread. The remote's stderr is ours, as a local child's would be.
 * A failure to write it (stderr a closed pipe) must not disturb the
 * gateway, let alone kill the process with SIGPIPE: the signal is blocked
 * in this thread around the write, and one it raised is taken back. */
static void
write_to_stderr (const char *data,
                 gsize       len)
{
  sigset_t pipe_only, saved;
  gboolean broken = FALSE;
  gsize done = 0;

  sigemptyset (&pipe_only);
  sigaddset (&pipe_only, SIGPIPE);
  pthread_sigmask (SIG_BLOCK, &pipe_only, &saved);

  while (done < len)
    {
      gssize n = write (STDERR_FILENO, data + done, len - done);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        {
          broken = n < 0 && errno == EPIPE;
          break;
        }
      done += n;
    }

  if (broken && !sigismember (&saved, SIGPIPE))
    {
      const struct timespec now = { 0, 0 };

      while (sigtimedwait (&pipe_only, NULL, &now) < 0 && errno == EINTR)
        ;
    }
  pthread_sigmask (SIG_SETMASK, &saved, NULL);
}

/* Runs inside a libssh call, with @lock held. */
static void
keep_stderr_unlocked (ExecnetSshSession *self,
                      const char        *data,
                      gsize              len)
{
  write_to_stderr (data, len);

  g_string_append_len (self->stderr_tail, data, len);
  if (self->stderr_tail->len > STDERR_TAIL_KEEP)
    g_string_erase (self->stderr_tail, 0, self->stderr_tail->len - STDERR_TAIL_KEEP);
  if (self->owner != NULL)
    execnet_connection_append_error_output (self->owner, data, len);
}

/* libssh channel callbacks: run inside libssh calls, with @lock held. */

static int
on_channel_data (ssh_session  session,
                 ssh_channel  channel,
                 void        *data,
                 uint32_t     len,
                 int          is_stderr,
                 void        *userdata)
{
  ExecnetSshSession *self = userdata;

  /* stdout stays in libssh's buffer for the reader: that is the flow control */
  if (!is_stderr)
    return 0;
  keep_stderr_unlocked (self, data, len);
  return (int) len;
}

static void
on_channel_exit_status (ssh_session  session,
                        ssh_channel  channel,
                        int          exit_status,
                        void        *userdata)
{
  ExecnetSshSession *self = userdata;

  self->exit_known = TRUE;
  self->wait_status = (exit_status & 0xff) << 8;
}

static void
on_channel_exit_signal (ssh_session  session,
                        ssh_channel  channel,
                        const char  *signal,
                        int          core,
                        const char  *errmsg,
                        const char  *lang,
                        void        *userdata)
{
  ExecnetSshSession *self = userdata;
  int number = signal_number (signal);

  self->exit_known = TRUE;
  /* An unknown signal still ended the command; report it like a shell
   * would report a failure it cannot name. */
  self->wait_status = number > 0 ? (number | (core ? 0x80 : 0)) : (255 << 8);
}

static void
on_channel_close (ssh_session  session,
                  ssh_channel  channel,
                  void        *userdata)
{
  ExecnetSshSession *self = userdata;

  self->remote_closed = TRUE;
}

/* Any thread: takes the lock for libssh calls, with libssh's log routed
 * to this session's gateway in this thread. */
static void
lock_session (ExecnetSshSession *self)
{
  g_mutex_lock (&self->lock);
  _execnet_ssh_log_attach (self->xspec);
}

/**
 * _execnet_ssh_session_new:
 * @session: (transfer full): a connected, authenticated session in
 *   blocking mode
 * @channel: (transfer full): its open session channel, before the exec
 *   request, so that no stderr escapes the callbacks
 * @socket_fd: (transfer full): the socket the session was given with
 *   SSH_OPTIONS_FD, which libssh never closes, or -1
 * @address: user@host:port for messages
 * @xspec: the gateway's spec, for libssh's log
 *
 * Runs in the transport's worker thread.
 *
 * Returns: (transfer full): the session
 */
ExecnetSshSession *
_execnet_ssh_session_new (ssh_session  session,
                          ssh_channel  channel,
                          int          socket_fd,
                          const char  *address,
                          ExecnetXSpec *xspec)
{
  ExecnetSshSession *self = g_atomic_rc_box_new0 (ExecnetSshSession);

  g_mutex_init (&self->lock);
  self->session = session;
  self->channel = channel;
  self->socket_fd = socket_fd;
  self->address = g_strdup (address);
  self->xspec = execnet_xspec_ref (xspec);
  self->stderr_tail = g_string_new (NULL);
  self->contexts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_main_context_unref);

  self->callbacks.userdata = self;
  self->callbacks.channel_data_function = on_channel_data;
  self->callbacks.channel_exit_status_function = on_channel_exit_status;
  self->callbacks.channel_exit_signal_function = on_channel_exit_signal;
  self->callbacks.channel_close_function = on_channel_close;
  ssh_callbacks_init (&self->callbacks);
  ssh_set_channel_callbacks (channel, &self->callbacks);

  return self;
}

/**
 * _execnet_ssh_session_start:
 * @self: a session whose command has been started
 *
 * Switches the session to non-blocking mode and gives it its private pump.
 * From here on it is served by sources; runs in the worker thread just
 * before it hands the session over.
 */
void
_execnet_ssh_session_start (ExecnetSshSession *self)
{
  lock_session (self);
  ssh_set_blocking (self->session, 0);
  self->event = ssh_event_new ();
  if (self->event != NULL && ssh_event_add_session (self->event, self->session) != SSH_OK)
    g_clear_pointer (&self->event, ssh_event_free);
  g_mutex_unlock (&self->lock);
}

ExecnetSshSession *
_execnet_ssh_session_ref (ExecnetSshSession *self)
{
  /* Any thread, as are unref and get_address. */
  return g_atomic_rc_box_acquire (self);
}

/* Any thread, @lock held. Closes the channel and the connection for good;
 * data still buffered in libssh is dropped. */
static void
disconnect_unlocked (ExecnetSshSession *self)
{
  if (self->session == NULL)
    return;

  if (self->channel != NULL)
    {
      ssh_remove_channel_callbacks (self->channel, &self->callbacks);
      ssh_channel_free (self->channel);
      self->channel = NULL;
    }
  if (self->event != NULL)
    {
      ssh_event_remove_session (self->event, self->session);
      g_clear_pointer (&self->event, ssh_event_free);
    }
  ssh_disconnect (self->session);
  g_clear_pointer (&self->session, ssh_free);
  if (self->socket_fd >= 0)
    {
      close (self->socket_fd);
      self->socket_fd = -1;
    }
}

/* Whichever thread drops the last reference. */
static void
session_clear (gpointer data)
{
  ExecnetSshSession *self = data;

  lock_session (self);
  /* The last reference is gone while the command may still run (the core
   * gave up on it): make sure it does not outlive us. */
  if (self->channel != NULL && !self->exit_known && !self->remote_closed &&
      !self->write_shut)
    {
      ssh_channel_request_send_signal (self->channel, "KILL");
      ssh_blocking_flush (self->session, 0);
    }
  disconnect_unlocked (self);
  _execnet_ssh_log_attach (NULL);
  g_mutex_unlock (&self->lock);

  g_mutex_clear (&self->lock);
  execnet_xspec_unref (self->xspec);
  g_string_free (self->stderr_tail, TRUE);
  g_ptr_array_unref (self->contexts);
  g_free (self->address);
}

void
_execnet_ssh_session_unref (ExecnetSshSession *self)
{
  g_atomic_rc_box_release_full (self, session_clear);
}

const char *
_execnet_ssh_session_get_address (ExecnetSshSession *self)
{
  return self->address;
}

/**
 * _execnet_ssh_session_set_owner:
 * @self: a session
 * @owner: (nullable): the connection that receives the remote's error
 *   output, or %NULL when it goes away
 *
 * What the remote wrote to stderr before the owner was set is passed on
 * at once. Any thread.
 */
void
_execnet_ssh_session_set_owner (ExecnetSshSession *self,
                                ExecnetConnection *owner)
{
  lock_session (self);
  self->owner = owner;
  if (owner != NULL && self->stderr_tail->len > 0)
    execnet_connection_append_error_output (owner, self->stderr_tail->str,
                                            self->stderr_tail->len);
  g_mutex_unlock (&self->lock);
}

/* Any thread. */
char *
_execnet_ssh_session_dup_stderr_tail (ExecnetSshSession *self)
{
  char *copy;

  lock_session (self);
  copy = g_strndup (self->stderr_tail->str, self->stderr_tail->len);
  g_mutex_unlock (&self->lock);
  return copy;
}

/* @lock held. libssh files whatever a pump reads, whoever pumps; a source
 * of ours sleeping in another thread's poll() would not see data that
 * left the socket that way, so every operation that may have pumped wakes
 * the other main contexts our sources have run in. (Sources in the calling
 * thread's context run prepare() again anyway.) The contexts are
 * remembered rather than looked up from the sources, which may be
 * finalizing in another thread; there are rarely more than two: the core's
 * I/O thread's and a waiter's. */
static void
wake_other_contexts_unlocked (ExecnetSshSession *self)
{
  GMainContext *current = g_main_context_get_thread_default ();

  if (current == NULL)
    current = g_main_context_default ();
  for (guint i = 0; i < self->contexts->len; i++)
    if (self->contexts->pdata[i] != current)
      g_main_context_wakeup (self->contexts->pdata[i]);
}

/* @lock held; in @context's dispatching thread. */
static void
remember_context_unlocked (ExecnetSshSession *self,
                           GMainContext      *context)
{
  if (context != NULL && !g_ptr_array_find (self->contexts, context, NULL))
    g_ptr_array_add (self->contexts, g_main_context_ref (context));
}

/* @lock held. Whether the session can no longer carry data. */
static gboolean
is_dead_unlocked (ExecnetSshSession *self)
{
  return self->session == NULL || self->channel == NULL ||
         (ssh_get_status (self->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

/* @lock held. Lets libssh read, decrypt and file what the socket has and
 * flush what it holds, without waiting; returns whether anything was
 * there. */
static gboolean
pump_unlocked (ExecnetSshSession *self)
{
  if (is_dead_unlocked (self))
    return FALSE;
  if (self->event != NULL)
    return ssh_event_dopoll (self->event, 0) == SSH_OK;
  /* Without a private pump (ssh_event_new failed), a flush still polls
   * the socket both ways. */
  return ssh_blocking_flush (self->session, 0) == SSH_OK;
}

/* @lock held. Whether the command has ended, as far as we know. */
static gboolean
has_ended_unlocked (ExecnetSshSession *self)
{
  return self->exit_known || self->remote_closed || is_dead_unlocked (self);
}

/* @lock held. When the remote is done and the reader has had everything,
 * the connection has no further use: closing it at once ends the server's
 * side of the session too, rather than when the core lets go of us. */
static void
finish_if_done_unlocked (ExecnetSshSession *self)
{
  if (self->channel != NULL && self->remote_closed &&
      ssh_channel_poll (self->channel, 0) == SSH_EOF)
    disconnect_unlocked (self);
}

/* @lock held. */
static gboolean
is_ready_unlocked (ExecnetSshSession *self,
                   ExecnetSshWait     wait)
{
  switch (wait)
    {
    case EXECNET_SSH_WAIT_READABLE:
      /* data, SSH_EOF or SSH_ERROR: all of them a read reports at once */
      return is_dead_unlocked (self) || ssh_channel_poll (self->channel, 0) != 0;

    case EXECNET_SSH_WAIT_WRITABLE:
      if (is_dead_unlocked (self) || self->eof_sent || self->write_shut ||
          self->remote_closed)
        return TRUE;
      if ((ssh_get_poll_flags (self->session) & SSH_WRITE_PENDING) != 0 &&
          ssh_blocking_flush (self->session, 0) != SSH_OK)
        return FALSE;
      return ssh_channel_window_size (self->channel) > 0;

    case EXECNET_SSH_WAIT_ENDED:
      return has_ended_unlocked (self);

    default:
      g_assert_not_reached ();
    }
}

/* Any thread: whether @wait holds now (may pump once, without waiting). */
gboolean
_execnet_ssh_session_is_ready (ExecnetSshSession *self,
                               ExecnetSshWait     wait)
{
  gboolean ready;

  lock_session (self);
  ready = is_ready_unlocked (self, wait);
  g_mutex_unlock (&self->lock);
  return ready;
}

/* @lock held. */
static void
set_dead_error_unlocked (ExecnetSshSession  *self,
                         GError            **error)
{
  if (self->session == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                 "ssh: the connection to %s is closed", self->address);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                 "ssh: the connection to %s was lost: %s",
                 self->address, ssh_get_error (self->session));
}

/**
 * _execnet_ssh_session_read:
 *
 * Reads the remote's stdout without blocking: bytes, 0 at end-of-file, or
 * -1 with %G_IO_ERROR_WOULD_BLOCK or another error. Any thread.
 */
gssize
_execnet_ssh_session_read (ExecnetSshSession  *self,
                           void               *buffer,
                           gsize               count,
                           GError            **error)
{
  gsize total = 0;
  gssize result;
  int n = 0;

  count = MIN (count, (gsize) G_MAXINT32);

  lock_session (self);
  if (self->channel == NULL)
    {
      /* Disconnected by us after end-of-file, or force-terminated. */
      result = 0;
      goto out;
    }

  /* Take what libssh has; each ssh_channel_read_nonblocking() on an empty
   * buffer pumps once (one 4 KiB socket read), so a few rounds move up to
   * @count bytes per main loop iteration instead of one socket read. */
  for (int pumps = 0; pumps < MAX_PUMPS && total < count; pumps++)
    {
      n = ssh_channel_read_nonblocking (self->channel, (char *) buffer + total,
                                        (uint32_t) (count - total), 0);
      if (n <= 0)
        break;
      total += n;
    }

  /* End-of-file wins over an error: a server that closes the connection
   * right after the channel leaves libssh in its error state, with all the
   * data delivered. */
  if (total > 0)
    result = total;
  else if (n == SSH_EOF || ssh_channel_is_eof (self->channel))
    {
      finish_if_done_unlocked (self);
      result = 0;
    }
  else if (n == SSH_ERROR || is_dead_unlocked (self))
    {
      set_dead_error_unlocked (self, error);
      result = -1;
    }
  else
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                           "ssh: no data yet");
      result = -1;
    }

out:
  wake_other_contexts_unlocked (self);
  g_mutex_unlock (&self->lock);
  return result;
}

/**
 * _execnet_ssh_session_write:
 *
 * Sends to the remote's stdin without blocking: bytes taken, or -1 with
 * %G_IO_ERROR_WOULD_BLOCK or another error. Any thread.
 */
gssize
_execnet_ssh_session_write (ExecnetSshSession  *self,
                            const void         *buffer,
                            gsize               count,
                            GError            **error)
{
  gssize result = -1;
  uint32_t window;
  int n;

  lock_session (self);
  if (self->eof_sent || self->write_shut)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                   "ssh: the input of the remote command on %s is closed", self->address);
      goto out;
    }
  if (is_dead_unlocked (self))
    {
      set_dead_error_unlocked (self, error);
      goto out;
    }
  if (self->remote_closed)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                   "ssh: the remote command on %s has ended", self->address);
      goto out;
    }

  if ((ssh_get_poll_flags (self->session) & SSH_WRITE_PENDING) != 0 &&
      ssh_blocking_flush (self->session, 0) != SSH_OK)
    goto would_block;

  window = ssh_channel_window_size (self->channel);
  if (window == 0)
    {
      pump_unlocked (self);
      if (is_dead_unlocked (self))
        {
          set_dead_error_unlocked (self, error);
          goto out;
        }
      window = ssh_channel_window_size (self->channel);
      if (window == 0)
        goto would_block;
    }

  n = ssh_channel_write (self->channel, buffer, (uint32_t) MIN (MIN (count, (gsize) window), WRITE_CHUNK));
  if (n == SSH_ERROR)
    {
      set_dead_error_unlocked (self, error);
      goto out;
    }
  if (n == 0)
    goto would_block;   /* a key re-exchange is under way */
  result = n;
  goto out;

would_block:
  g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                       "ssh: the remote window is full");
out:
  wake_other_contexts_unlocked (self);
  g_mutex_unlock (&self->lock);
  return result;
}

/**
 * _execnet_ssh_session_send_eof:
 *
 * Tells the remote command its input has ended. Idempotent; any thread;
 * does not block (the EOF is flushed along with earlier output).
 */
gboolean
_execnet_ssh_session_send_eof (ExecnetSshSession  *self,
                               GError            **error)
{
  gboolean ok = TRUE;

  lock_session (self);
  if (!self->eof_sent && !self->write_shut && !is_dead_unlocked (self) &&
      !self->remote_closed)
    {
      if (ssh_channel_send_eof (self->channel) == SSH_ERROR)
        {
          set_dead_error_unlocked (self, error);
          ok = FALSE;
        }
    }
  self->eof_sent = TRUE;
  wake_other_contexts_unlocked (self);
  g_mutex_unlock (&self->lock);
  return ok;
}

/**
 * _execnet_ssh_session_terminate:
 * @force: %FALSE: end-of-file and SIGTERM; %TRUE: SIGKILL, then the
 *   connection is shut down
 *
 * Ends the remote command. Never blocks; any thread.
 *
 * Forcing shuts the socket down for writing rather than closing it: a
 * close with unread input makes the kernel reset the connection and drop
 * what is still queued, the KILL request included; a shutdown sends
 * everything queued, then end-of-file, on which the server closes the
 * session. The socket itself is closed when the server has gone or when
 * the last reference goes.
 */
void
_execnet_ssh_session_terminate (ExecnetSshSession *self,
                                gboolean           force)
{
  lock_session (self);
  if (is_dead_unlocked (self) || self->write_shut || self->remote_closed)
    goto out;

  if (!force)
    {
      if (!self->eof_sent)
        ssh_channel_send_eof (self->channel);
      self->eof_sent = TRUE;
      ssh_channel_request_send_signal (self->channel, "TERM");
      goto out;
    }

  ssh_channel_request_send_signal (self->channel, "KILL");
  ssh_blocking_flush (self->session, 0);
  self->write_shut = TRUE;
  if (ssh_get_fd (self->session) != SSH_INVALID_SOCKET)
    shutdown (ssh_get_fd (self->session), SHUT_WR);

out:
  wake_other_contexts_unlocked (self);
  g_mutex_unlock (&self->lock);
}

/**
 * _execnet_ssh_session_get_ending:
 * @wait_status: (out): the wait(2)-style status, if known
 *
 * Returns: whether the exit status is known
 */
gboolean
_execnet_ssh_session_get_ending (ExecnetSshSession *self,
                                 int               *wait_status)
{
  gboolean known;

  lock_session (self);
  known = self->exit_known;
  *wait_status = self->wait_status;
  g_mutex_unlock (&self->lock);
  return known;
}

/* The source: see the comment at the top. */

/* The socket is polled through a GPollFD (g_source_add_poll) rather than
 * g_source_add_unix_fd(): GLib dispatches a source whose unix fd has any
 * revents even when check() says no, and through it the GPollableSource
 * parent, so every packet that is not for us (a window adjustment while we
 * wait for data) would wake the stream's reader for nothing. With a
 * GPollFD, check() decides. */
typedef struct
{
  GSource source;
  ExecnetSshSession *session;   /* (owned) */
  ExecnetSshWait wait;
  GPollFD pollfd;               /* fd -1 while not polled */
  gboolean polling;             /* @pollfd is added to the source */
} ExecnetSshSource;

/* @lock held. Polls the session's current socket, for input always (data,
 * window adjustments, exit status all come that way) and for output while
 * libssh holds unsent bytes. */
static void
update_poll_unlocked (ExecnetSshSource *source)
{
  ExecnetSshSession *self = source->session;
  int fd = self->session ? ssh_get_fd (self->session) : SSH_INVALID_SOCKET;

  if (source->polling && fd != source->pollfd.fd)
    {
      g_source_remove_poll (&source->source, &source->pollfd);
      source->polling = FALSE;
    }
  source->pollfd.fd = fd;
  source->pollfd.revents = 0;
  if (fd == SSH_INVALID_SOCKET)
    return;

  source->pollfd.events = G_IO_IN | G_IO_HUP | G_IO_ERR;
  if ((ssh_get_poll_flags (self->session) & SSH_WRITE_PENDING) != 0)
    source->pollfd.events |= G_IO_OUT;
  if (!source->polling)
    {
      g_source_add_poll (&source->source, &source->pollfd);
      source->polling = TRUE;
    }
}

/* The source's main context's thread, for this and the next three. */
static gboolean
ssh_source_prepare (GSource *base,
                    gint    *timeout)
{
  ExecnetSshSource *source = (ExecnetSshSource *) base;
  ExecnetSshSession *self = source->session;
  gboolean ready;

  *timeout = -1;
  lock_session (self);
  remember_context_unlocked (self, g_source_get_context (base));
  ready = is_ready_unlocked (self, source->wait);
  if (!ready)
    update_poll_unlocked (source);
  g_mutex_unlock (&self->lock);
  return ready;
}

static gboolean
ssh_source_check (GSource *base)
{
  ExecnetSshSource *source = (ExecnetSshSource *) base;
  ExecnetSshSession *self = source->session;
  gboolean ready = FALSE;

  if (!source->polling || source->pollfd.revents == 0)
    return FALSE;

  lock_session (self);
  for (int pumps = 0; pumps < MAX_PUMPS; pumps++)
    {
      gboolean progress = pump_unlocked (self);

      ready = is_ready_unlocked (self, source->wait);
      if (ready || !progress)
        break;
    }
  finish_if_done_unlocked (self);
  wake_other_contexts_unlocked (self);
  g_mutex_unlock (&self->lock);
  return ready;
}

static gboolean
ssh_source_dispatch (GSource     *base,
                     GSourceFunc  callback,
                     gpointer     user_data)
{
  if (callback == NULL)
    return G_SOURCE_CONTINUE;
  return callback (user_data);
}

static void
ssh_source_finalize (GSource *base)
{
  ExecnetSshSource *source = (ExecnetSshSource *) base;

  g_clear_pointer (&source->session, _execnet_ssh_session_unref);
}

/* For g_source_set_closure(), which GPollableSource uses on its child
 * sources (a dummy callback). */
static gboolean
ssh_source_closure_callback (gpointer data)
{
  GClosure *closure = data;
  GValue result = G_VALUE_INIT;
  gboolean keep;

  g_value_init (&result, G_TYPE_BOOLEAN);
  g_closure_invoke (closure, &result, 0, NULL, NULL);
  keep = g_value_get_boolean (&result);
  g_value_unset (&result);
  return keep;
}

static GSourceFuncs ssh_source_funcs = {
  .prepare = ssh_source_prepare,
  .check = ssh_source_check,
  .dispatch = ssh_source_dispatch,
  .finalize = ssh_source_finalize,
  .closure_callback = ssh_source_closure_callback,
};

/**
 * _execnet_ssh_session_create_source:
 * @wait: what to wait for
 *
 * Returns: (transfer full): a source that dispatches (with a
 *   #GSourceFunc callback) once @wait holds, or may hold
 */
GSource *
_execnet_ssh_session_create_source (ExecnetSshSession *self,
                                    ExecnetSshWait     wait)
{
  GSource *base = g_source_new (&ssh_source_funcs, sizeof (ExecnetSshSource));
  ExecnetSshSource *source = (ExecnetSshSource *) base;

  g_source_set_static_name (base, "ExecnetSshSource");
  source->session = _execnet_ssh_session_ref (self);
  source->wait = wait;
  source->pollfd.fd = SSH_INVALID_SOCKET;

  lock_session (self);
  update_poll_unlocked (source);
  g_mutex_unlock (&self->lock);

  return base;
}
