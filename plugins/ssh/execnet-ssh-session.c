/* execnet-ssh-session.c: libssh channels on shared connections, served without blocking
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libssh/callbacks.h>

#include "execnet-ssh-private.h"
#include "execnet-ssh-args.h"

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
 * made with the link's @lock held. The I/O thread makes almost all of
 * them; terminate() may come from any thread and takes the lock too.
 *
 * One connection (ExecnetSshLink) carries the channels of every gateway
 * made with the same ssh words (execnet-ssh-connect.c decides which
 * share): each gateway's ExecnetSshSession is one channel
 * running one interpreter, and all of them share the link's lock, pump and
 * socket. Whoever pumps files packets for every channel; the sources of
 * all of them poll the same socket, and each asks only about its own
 * channel. The link is disconnected when its last channel is freed.
 *
 * A further channel is opened by the gateway's own worker thread while
 * the I/O thread keeps serving the others: the worker asks libssh to take
 * the next step without waiting (open the channel, then run the command),
 * and between steps sleeps, without the lock, in poll() on the socket and
 * on an eventfd that every other holder of the lock signals when it lets
 * go (unlock_link()), since whoever holds the lock may have pumped the
 * reply the worker waits for.
 *
 * Each session channel costs the server a login: its shell, and whatever
 * that reads at start-up, before the interpreter starts. So once a second
 * gateway comes to a link, the link starts a spawner (spawner.py) in one
 * more session: a small Python program listening on a Unix socket in a
 * private directory on the remote host. Every further gateway then opens
 * a direct-streamlocal channel to that socket (no session, no shell), and
 * the spawner starts its interpreter with the connection as stdin and
 * stdout. The spawner's stdout reports each child's stderr and exit
 * status, filed into the child's session by a channel callback; the
 * link writes signal requests to its stdin. A server that refuses the
 * spawner or the forwarding gets sessions for every gateway, as before. */

#define STDERR_TAIL_KEEP 4096

/* How much one write hands to libssh; more than that waits for the
 * socket, which keeps libssh's output buffer small. */
#define WRITE_CHUNK (64 * 1024)

/* How many times one read or check pumps before giving the main loop back. */
#define MAX_PUMPS 32

/* The most channels one connection carries: OpenSSH's default
 * MaxSessions. A server that allows fewer refuses to open the next one,
 * which then makes a connection of its own (execnet-ssh-connect.c). */
#define MAX_CHANNELS_PER_LINK 10

/* The same for gateways that the spawner may start, whose channels are
 * not sessions: the limit is ours. Should the spawner fail after all, the
 * server refuses the sessions past its MaxSessions, as above. */
#define MAX_SPAWNED_PER_LINK 64

/* The longest a thread opening a channel sleeps before it looks at the
 * channel again; it is normally woken well before (see unlock_link). */
#define OPEN_POLL_MS 1000

/* Where the spawner of a link is. */
typedef enum {
  SPAWNER_NONE,        /* not needed yet: the link has had one gateway */
  SPAWNER_OPENING,     /* its session channel is being opened */
  SPAWNER_EXECUTING,   /* its command is being started */
  SPAWNER_STARTING,    /* running; its socket is not ready yet */
  SPAWNER_READY,       /* listening at spawner_path */
  SPAWNER_GONE,        /* refused, failed or ended: gateways get sessions */
} SpawnerState;

/* One SSH connection, shared by the sessions (channels) on it. */
struct _ExecnetSshLink
{
  /* Guards every field below, every field of the sessions on this link,
   * and every libssh call on @session or its channels. */
  GMutex lock;

  ssh_session session;            /* (owned) (nullable) NULL once disconnected */
  ssh_event event;                /* (owned) (nullable) the private pump */
  int socket_fd;                  /* (owned) our TCP socket, -1 if libssh made its own */
  char *address;                  /* (owned) immutable: user@host:port */
  ExecnetXSpec *xspec;            /* (owned) immutable: the first gateway's, for libssh's log */
  GPtrArray *contexts;            /* (owned) (element-type GMainContext) where our sources ran */
  GArray *waiters;                /* (owned) (element-type int) eventfds of threads opening channels */
  GPtrArray *orphans;             /* (owned) (element-type ssh_channel) opens given up on, still pending */
  guint n_channels;               /* channels open, being opened, or promised to an opener */
  gboolean shut;                  /* shut down by a forced end: takes no more channels */
  gboolean full;                  /* the server refused a channel: takes no more */

  SpawnerState spawner_state;
  ssh_channel spawner;            /* (owned) (nullable) the spawner's session */
  struct ssh_channel_callbacks_struct spawner_callbacks;  /* registered on @spawner */
  ExecnetSshSpawnerReader *spawner_reader;  /* (owned) (nullable) its stdout */
  char *spawner_command;          /* (owned) (nullable) until it is started */
  char *spawner_path;             /* (owned) (nullable) its socket, once ready */
  char *spawner_python;           /* (owned) (nullable) its python=, NULL for the default */
  GString *spawner_control;       /* (owned) lines for its stdin not sent yet */
  GHashTable *spawned;            /* (owned) (element-type guint ExecnetSshSession) (unowned values) */
  guint last_spawn_id;
  gboolean spawned_ended;         /* a child's end was filed: see unlock_link() */
};

struct _ExecnetSshSession
{
  ExecnetSshLink *link;           /* (owned) immutable; its lock guards the fields below */

  ssh_channel channel;            /* (owned) (nullable) NULL before it opens and once freed */
  gboolean counted;               /* holds one of the link's n_channels */
  guint spawn_id;                 /* nonzero: a channel to the spawner, which runs the command */
  struct ssh_channel_callbacks_struct callbacks;  /* registered on @channel */
  char *address;                  /* (owned) immutable: user@host:port */
  ExecnetXSpec *xspec;            /* (owned) immutable: for libssh's log */

  ExecnetConnection *owner;       /* (unowned) (nullable) receives the stderr tail */
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

/* Runs inside a libssh call, with @lock held. */
static void
keep_stderr_unlocked (ExecnetSshSession *self,
                      const char        *data,
                      gsize              len)
{
  /* The remote's stderr is ours, as a local child's would be. */
  execnet_transport_write_stderr (data, len);

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

/* Any thread: takes the link's lock for libssh calls, with libssh's log
 * routed to @xspec's gateway in this thread. */
static void
lock_link (ExecnetSshLink *link,
           ExecnetXSpec   *xspec)
{
  g_mutex_lock (&link->lock);
  _execnet_ssh_log_attach (xspec);
}

static void link_finish_spawned_unlocked (ExecnetSshLink *link);

/* Any thread, @lock held; releases it. Whatever was done under the lock
 * may have pumped the connection and filed a reply some thread opening a
 * channel waits for: each of them (but @own_fd, the caller's) is woken.
 * It may also have filed the end of a spawner's child whose channel has
 * been read to its end: nobody else would free that channel, which keeps
 * the connection up, until the core lets go of the gateway. */
static void
unlock_link (ExecnetSshLink *link,
             int             own_fd)
{
  if (link->spawned_ended)
    link_finish_spawned_unlocked (link);
  for (guint i = 0; i < link->waiters->len; i++)
    {
      int fd = g_array_index (link->waiters, int, i);

      if (fd != own_fd)
        eventfd_write (fd, 1);
    }
  g_mutex_unlock (&link->lock);
}

static void
lock_session (ExecnetSshSession *self)
{
  lock_link (self->link, self->xspec);
}

static void
unlock_session (ExecnetSshSession *self)
{
  unlock_link (self->link, -1);
}

/* @lock held. Closes the connection for good. */
static void
link_disconnect_unlocked (ExecnetSshLink *link)
{
  if (link->session == NULL)
    return;

  /* Before ssh_free(), which frees every channel of the session itself. */
  g_ptr_array_set_size (link->orphans, 0);
  if (link->spawner != NULL)
    {
      /* Signals still queued for its children; they end anyway when the
       * spawner's input closes. */
      ssh_blocking_flush (link->session, 0);
      ssh_remove_channel_callbacks (link->spawner, &link->spawner_callbacks);
      link->spawner = NULL;
    }
  link->spawner_state = SPAWNER_GONE;
  if (link->event != NULL)
    {
      ssh_event_remove_session (link->event, link->session);
      g_clear_pointer (&link->event, ssh_event_free);
    }
  ssh_disconnect (link->session);
  g_clear_pointer (&link->session, ssh_free);
  if (link->socket_fd >= 0)
    {
      close (link->socket_fd);
      link->socket_fd = -1;
    }
}

/* @lock held. A channel (or the promise of one) is gone; the last one
 * takes the connection with it. */
static void
link_release_unlocked (ExecnetSshLink *link)
{
  g_assert (link->n_channels > 0);
  if (--link->n_channels == 0)
    link_disconnect_unlocked (link);
}

/* @lock held. Whether the connection can no longer carry data. */
static gboolean
link_is_dead_unlocked (ExecnetSshLink *link)
{
  return link->session == NULL ||
         (ssh_get_status (link->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

/* The spawner: see the comment at the top, and spawner.py. */

/* Runs inside a libssh call on the spawner's channel, with @lock held. */
static void
on_spawner_report (ExecnetSshSpawnerReport  report,
                   guint                    id,
                   int                      status,
                   const char              *data,
                   gsize                    len,
                   gpointer                 user_data)
{
  ExecnetSshLink *link = user_data;
  ExecnetSshSession *child;

  switch (report)
    {
    case EXECNET_SSH_SPAWNER_READY:
      if (link->spawner_state == SPAWNER_STARTING)
        {
          link->spawner_path = g_strndup (data, len);
          link->spawner_state = SPAWNER_READY;
        }
      break;

    case EXECNET_SSH_SPAWNER_FAIL:
      execnet_transport_log (link->xspec, "transport",
                             "ssh: the spawner on %s cannot serve (%.*s): each gateway gets a session",
                             link->address, (int) len, data);
      link->spawner_state = SPAWNER_GONE;
      break;

    case EXECNET_SSH_SPAWNER_ERR:
      child = g_hash_table_lookup (link->spawned, GUINT_TO_POINTER (id));
      if (child != NULL)
        keep_stderr_unlocked (child, data, len);
      break;

    case EXECNET_SSH_SPAWNER_EXIT:
      child = g_hash_table_lookup (link->spawned, GUINT_TO_POINTER (id));
      if (child != NULL)
        {
          child->exit_known = TRUE;
          child->wait_status = status;
          link->spawned_ended = TRUE;
        }
      break;

    default:
      g_assert_not_reached ();
    }
}

/* libssh callbacks of the spawner's channel: with @lock held. They only
 * note what happened; spawner_tend_unlocked() acts on it. */
static int
on_spawner_data (ssh_session  session,
                 ssh_channel  channel,
                 void        *data,
                 uint32_t     len,
                 int          is_stderr,
                 void        *userdata)
{
  ExecnetSshLink *link = userdata;

  if (is_stderr)
    execnet_transport_write_stderr (data, len);   /* its own complaints, if any */
  else if (!_execnet_ssh_spawner_reader_feed (link->spawner_reader, data, len,
                                              on_spawner_report, link))
    {
      execnet_transport_log (link->xspec, "transport",
                             "ssh: the spawner on %s sent something that is not a report; "
                             "further gateways there get sessions of their own", link->address);
      link->spawner_state = SPAWNER_GONE;
    }
  return (int) len;
}

static void
on_spawner_close (ssh_session  session,
                  ssh_channel  channel,
                  void        *userdata)
{
  ExecnetSshLink *link = userdata;

  link->spawner_state = SPAWNER_GONE;
  link->spawned_ended = TRUE;   /* no more reports: a closed channel is all there is */
}

/* @lock held, outside libssh calls. Takes the spawner's next start-up
 * step without waiting, sends what its input has queued, and frees its
 * channel once it is gone (which ends it, if it still runs). */
static void
spawner_tend_unlocked (ExecnetSshLink *link)
{
  int rc;

  if (link->spawner == NULL || link_is_dead_unlocked (link))
    return;

  if (link->spawner_state == SPAWNER_OPENING)
    {
      rc = ssh_channel_open_session (link->spawner);
      if (rc == SSH_AGAIN)
        return;
      if (rc == SSH_OK)
        {
          link->spawner_callbacks.userdata = link;
          link->spawner_callbacks.channel_data_function = on_spawner_data;
          link->spawner_callbacks.channel_close_function = on_spawner_close;
          ssh_callbacks_init (&link->spawner_callbacks);
          ssh_set_channel_callbacks (link->spawner, &link->spawner_callbacks);
          link->spawner_state = SPAWNER_EXECUTING;
        }
      else
        {
          execnet_transport_log (link->xspec, "transport",
                                 "ssh: %s refused a session for the spawner: %s",
                                 link->address, ssh_get_error (link->session));
          link->spawner_state = SPAWNER_GONE;
        }
    }

  if (link->spawner_state == SPAWNER_EXECUTING)
    {
      rc = ssh_channel_request_exec (link->spawner, link->spawner_command);
      if (rc == SSH_AGAIN)
        return;
      link->spawner_state = rc == SSH_OK ? SPAWNER_STARTING : SPAWNER_GONE;
      g_clear_pointer (&link->spawner_command, g_free);
    }

  if (link->spawner_state == SPAWNER_GONE)
    {
      link->spawned_ended = TRUE;   /* no more reports for its children */
      ssh_remove_channel_callbacks (link->spawner, &link->spawner_callbacks);
      g_clear_pointer (&link->spawner, ssh_channel_free);
      ssh_blocking_flush (link->session, 0);
      return;
    }

  if (link->spawner_control->len > 0 && link->spawner_state >= SPAWNER_STARTING)
    {
      uint32_t window = ssh_channel_window_size (link->spawner);
      int n = window > 0 ? ssh_channel_write (link->spawner, link->spawner_control->str,
                                              MIN (window, link->spawner_control->len))
                         : 0;

      if (n > 0)
        g_string_erase (link->spawner_control, 0, n);
      ssh_blocking_flush (link->session, 0);
    }
}

/* @lock held. Starts the link's spawner, without waiting for it, in
 * the interpreter @xspec names if it can. */
static void
spawner_start_unlocked (ExecnetSshLink *link,
                        ExecnetXSpec   *xspec)
{
  g_autoptr(GBytes) source = NULL;

  link->spawner_state = SPAWNER_GONE;
  /* Looked up by name: GLib registers a module's resources lazily, and
   * the generated getter does not wait for that in another thread. */
  source = g_resources_lookup_data ("/org/execnet/ssh/spawner.py",
                                    G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
  if (source == NULL || link_is_dead_unlocked (link))
    return;
  link->spawner = ssh_channel_new (link->session);
  if (link->spawner == NULL)
    return;
  link->spawner_python = _execnet_ssh_spawner_python (xspec);
  link->spawner_command = _execnet_ssh_build_spawner_command (g_bytes_get_size (source),
                                                              link->spawner_python);
  /* Its input starts with its source; signal requests come after it. */
  g_string_append_len (link->spawner_control, g_bytes_get_data (source, NULL),
                       g_bytes_get_size (source));
  link->spawner_reader = _execnet_ssh_spawner_reader_new ();
  link->spawner_state = SPAWNER_OPENING;
  spawner_tend_unlocked (link);
}

/* @lock held. Asks the spawner to send @signal to @child's process
 * group; without a spawner there is nobody to ask. */
static void
spawner_signal_unlocked (ExecnetSshSession *child,
                         int                signal)
{
  ExecnetSshLink *link = child->link;

  if (link->spawner == NULL || link->spawner_state < SPAWNER_STARTING)
    return;
  g_string_append_printf (link->spawner_control, "kill %u %d\n", child->spawn_id, signal);
  spawner_tend_unlocked (link);
}

/**
 * _execnet_ssh_link_new:
 * @session: (transfer full): a connected, authenticated session in
 *   blocking mode
 * @socket_fd: (transfer full): the socket the session was given with
 *   SSH_OPTIONS_FD, which libssh never closes, or -1
 * @address: user@host:port for messages
 * @xspec: the spec of the gateway that made the connection, for libssh's
 *   log
 *
 * Switches the session to non-blocking mode and gives it its private pump;
 * from here on it is served by sources and shared by the channels opened
 * with _execnet_ssh_session_open(). The link starts with one channel
 * promised to the caller, as by _execnet_ssh_link_reserve(). Runs in the
 * transport's worker thread.
 *
 * Returns: (transfer full): the link
 */
ExecnetSshLink *
_execnet_ssh_link_new (ssh_session   session,
                       int           socket_fd,
                       const char   *address,
                       ExecnetXSpec *xspec)
{
  ExecnetSshLink *link = g_atomic_rc_box_new0 (ExecnetSshLink);

  g_mutex_init (&link->lock);
  link->session = session;
  link->socket_fd = socket_fd;
  link->address = g_strdup (address);
  link->xspec = execnet_xspec_ref (xspec);
  link->contexts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_main_context_unref);
  link->waiters = g_array_new (FALSE, FALSE, sizeof (int));
  link->orphans = g_ptr_array_new_with_free_func ((GDestroyNotify) ssh_channel_free);
  link->n_channels = 1;
  link->spawner_control = g_string_new (NULL);
  link->spawned = g_hash_table_new (NULL, NULL);

  ssh_set_blocking (session, 0);
  link->event = ssh_event_new ();
  if (link->event != NULL && ssh_event_add_session (link->event, session) != SSH_OK)
    g_clear_pointer (&link->event, ssh_event_free);

  return link;
}

ExecnetSshLink *
_execnet_ssh_link_ref (ExecnetSshLink *link)
{
  /* Any thread, as is unref. */
  return g_atomic_rc_box_acquire (link);
}

/* Whichever thread drops the last reference: by then no session is left
 * on the link, so it is disconnected already unless a promise was broken
 * without _execnet_ssh_link_release(). */
static void
link_clear (gpointer data)
{
  ExecnetSshLink *link = data;

  lock_link (link, link->xspec);
  link_disconnect_unlocked (link);
  _execnet_ssh_log_attach (NULL);
  g_mutex_unlock (&link->lock);

  g_mutex_clear (&link->lock);
  execnet_xspec_unref (link->xspec);
  g_ptr_array_unref (link->contexts);
  g_array_unref (link->waiters);
  g_ptr_array_unref (link->orphans);
  g_free (link->address);
  g_clear_pointer (&link->spawner_reader, _execnet_ssh_spawner_reader_free);
  g_free (link->spawner_command);
  g_free (link->spawner_path);
  g_free (link->spawner_python);
  g_string_free (link->spawner_control, TRUE);
  g_hash_table_unref (link->spawned);
}

void
_execnet_ssh_link_unref (ExecnetSshLink *link)
{
  g_atomic_rc_box_release_full (link, link_clear);
}

/**
 * _execnet_ssh_link_reserve:
 *
 * @may_spawn: whether the channel may go to the link's spawner, which
 *   lets the link carry more gateways than the server allows sessions
 *
 * Promises the caller one more channel on the link, which keeps the
 * connection open until the promise is kept (_execnet_ssh_session_open())
 * or given back (_execnet_ssh_link_release()). Any thread.
 *
 * Returns: %FALSE if the connection is closed, lost, shut down or full,
 *   and takes no more channels
 */
gboolean
_execnet_ssh_link_reserve (ExecnetSshLink *link,
                           gboolean        may_spawn)
{
  guint limit;
  gboolean ok;

  lock_link (link, link->xspec);
  limit = may_spawn && link->spawner_state != SPAWNER_GONE ? MAX_SPAWNED_PER_LINK
                                                           : MAX_CHANNELS_PER_LINK;
  ok = !link_is_dead_unlocked (link) && !link->shut && !link->full &&
       link->n_channels > 0 && link->n_channels < limit;
  if (ok)
    link->n_channels++;
  unlock_link (link, -1);
  return ok;
}

/* Gives back a promise that _execnet_ssh_session_open() was not called
 * for. Any thread. */
void
_execnet_ssh_link_release (ExecnetSshLink *link)
{
  lock_link (link, link->xspec);
  link_release_unlocked (link);
  _execnet_ssh_log_attach (NULL);
  unlock_link (link, -1);
}

/* Any thread. */
ExecnetSshSession *
_execnet_ssh_session_ref (ExecnetSshSession *self)
{
  /* Any thread, as are unref and get_address. */
  return g_atomic_rc_box_acquire (self);
}

/* @lock held. Frees the channel (closing it if it is open: the server then
 * ends its side) and gives its place on the link back; data still
 * buffered in libssh for it is dropped. */
static void
close_channel_unlocked (ExecnetSshSession *self)
{
  ExecnetSshLink *link = self->link;

  if (self->channel != NULL)
    {
      ssh_remove_channel_callbacks (self->channel, &self->callbacks);
      ssh_channel_free (self->channel);
      self->channel = NULL;
      if (link->session != NULL && link->n_channels > 1)
        ssh_blocking_flush (link->session, 0);   /* the close, for the siblings' sake */
    }
  if (self->counted)
    {
      self->counted = FALSE;
      link_release_unlocked (link);
    }
}

/* Whichever thread drops the last reference. */
static void
session_clear (gpointer data)
{
  ExecnetSshSession *self = data;
  ExecnetSshLink *link = self->link;

  lock_session (self);
  /* The last reference is gone while the command may still run (the core
   * gave up on it): make sure it does not outlive us. */
  if (self->channel != NULL && !self->exit_known && !self->remote_closed &&
      !self->write_shut && link->session != NULL && ssh_channel_is_open (self->channel))
    {
      if (self->spawn_id != 0)
        spawner_signal_unlocked (self, SIGKILL);
      else
        ssh_channel_request_send_signal (self->channel, "KILL");
      ssh_blocking_flush (link->session, 0);
    }
  if (self->spawn_id != 0)
    g_hash_table_remove (link->spawned, GUINT_TO_POINTER (self->spawn_id));
  close_channel_unlocked (self);
  _execnet_ssh_log_attach (NULL);
  unlock_session (self);

  _execnet_ssh_link_unref (link);
  execnet_xspec_unref (self->xspec);
  g_string_free (self->stderr_tail, TRUE);
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
  unlock_session (self);
}

/* Any thread. */
char *
_execnet_ssh_session_dup_stderr_tail (ExecnetSshSession *self)
{
  char *copy;

  lock_session (self);
  copy = g_strndup (self->stderr_tail->str, self->stderr_tail->len);
  unlock_session (self);
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
  for (guint i = 0; i < self->link->contexts->len; i++)
    if (self->link->contexts->pdata[i] != current)
      g_main_context_wakeup (self->link->contexts->pdata[i]);
}

/* @lock held; in @context's dispatching thread. */
static void
remember_context_unlocked (ExecnetSshSession *self,
                           GMainContext      *context)
{
  if (context != NULL && !g_ptr_array_find (self->link->contexts, context, NULL))
    g_ptr_array_add (self->link->contexts, g_main_context_ref (context));
}

/* @lock held. Whether the session can no longer carry data. */
static gboolean
is_dead_unlocked (ExecnetSshSession *self)
{
  return self->channel == NULL || link_is_dead_unlocked (self->link);
}

/* @lock held. A channel whose opening was given up on (cancelled, or out
 * of time) while the server had not answered yet: once the server opens
 * it, freeing it closes it again, so that it does not hold one of the
 * server's sessions for as long as the connection lives; a refusal frees
 * it at once. Freed unanswered, libssh would forget it and ignore the
 * server's late answer. */
static void
link_tend_orphans_unlocked (ExecnetSshLink *link)
{
  for (guint i = link->orphans->len; i-- > 0;)
    if (ssh_channel_open_session (link->orphans->pdata[i]) != SSH_AGAIN)
      g_ptr_array_remove_index_fast (link->orphans, i);
}

/* @lock held. Lets libssh read, decrypt and file what the socket has and
 * flush what it holds, without waiting; returns whether anything was
 * there. */
static gboolean
pump_unlocked (ExecnetSshSession *self)
{
  gboolean pumped;

  if (is_dead_unlocked (self))
    return FALSE;
  if (self->link->event != NULL)
    pumped = ssh_event_dopoll (self->link->event, 0) == SSH_OK;
  else
    /* Without a private pump (ssh_event_new failed), a flush still polls
     * the socket both ways. */
    pumped = ssh_blocking_flush (self->link->session, 0) == SSH_OK;
  if (self->link->orphans->len > 0)
    link_tend_orphans_unlocked (self->link);
  spawner_tend_unlocked (self->link);
  return pumped;
}

/* @lock held. Whether the command has ended, as far as we know. A
 * spawner's child may close its connection before it ends; the spawner
 * reports when it has, unless it is gone itself. */
static gboolean
has_ended_unlocked (ExecnetSshSession *self)
{
  if (self->spawn_id != 0 && !self->exit_known && !is_dead_unlocked (self))
    return self->remote_closed && self->link->spawner_state != SPAWNER_READY;
  return self->exit_known || self->remote_closed || is_dead_unlocked (self);
}

/* @lock held. When the remote is done and the reader has had everything,
 * the connection has no further use: closing it at once ends the server's
 * side of the session too, rather than when the core lets go of us. */
static void
finish_if_done_unlocked (ExecnetSshSession *self)
{
  if (self->channel != NULL && self->remote_closed && has_ended_unlocked (self) &&
      ssh_channel_poll (self->channel, 0) == SSH_EOF)
    close_channel_unlocked (self);
}

/* @lock held, outside libssh calls. */
static void
link_finish_spawned_unlocked (ExecnetSshLink *link)
{
  GHashTableIter iter;
  gpointer child;

  link->spawned_ended = FALSE;
  g_hash_table_iter_init (&iter, link->spawned);
  while (g_hash_table_iter_next (&iter, NULL, &child))
    finish_if_done_unlocked (child);
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
      if ((ssh_get_poll_flags (self->link->session) & SSH_WRITE_PENDING) != 0 &&
          ssh_blocking_flush (self->link->session, 0) != SSH_OK)
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
  unlock_session (self);
  return ready;
}

/* @lock held. */
static void
set_dead_error_unlocked (ExecnetSshSession  *self,
                         GError            **error)
{
  if (self->link->session == NULL)
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                 "ssh: the connection to %s is closed", self->address);
  else
    g_set_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED,
                 "ssh: the connection to %s was lost: %s",
                 self->address, ssh_get_error (self->link->session));
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
  unlock_session (self);
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

  if ((ssh_get_poll_flags (self->link->session) & SSH_WRITE_PENDING) != 0 &&
      ssh_blocking_flush (self->link->session, 0) != SSH_OK)
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
  unlock_session (self);
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
  unlock_session (self);
  return ok;
}

/**
 * _execnet_ssh_session_terminate:
 * @force: %FALSE: end-of-file and SIGTERM; %TRUE: SIGKILL, then the
 *   connection is shut down
 *
 * Ends the remote command. Never blocks; any thread.
 *
 * Forcing, when the session is the only one on its connection, shuts the
 * socket down for writing rather than closing it: a close with unread
 * input makes the kernel reset the connection and drop what is still
 * queued, the KILL request included; a shutdown sends everything queued,
 * then end-of-file, on which the server closes the session. The socket
 * itself is closed when the server has gone or when the last reference
 * goes. When other gateways share the connection, forcing closes the
 * channel instead, on which the server closes the interpreter's input and
 * output; the connection stays up for the others.
 */
void
_execnet_ssh_session_terminate (ExecnetSshSession *self,
                                gboolean           force)
{
  lock_session (self);
  if (self->spawn_id != 0)
    {
      /* The spawner signals the child (which may have closed its end
       * already); the channel is not a session, and the connection stays
       * up for the spawner and the others. */
      if (is_dead_unlocked (self) || self->write_shut || self->exit_known)
        goto out;
      if (!self->eof_sent && !self->remote_closed)
        ssh_channel_send_eof (self->channel);
      self->eof_sent = TRUE;
      spawner_signal_unlocked (self, force ? SIGKILL : SIGTERM);
      if (force)
        {
          self->write_shut = TRUE;
          ssh_channel_close (self->channel);
        }
      ssh_blocking_flush (self->link->session, 0);
      goto out;
    }

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
  self->write_shut = TRUE;
  if (self->link->n_channels > 1)
    {
      ssh_channel_close (self->channel);
      ssh_blocking_flush (self->link->session, 0);
      goto out;
    }
  ssh_blocking_flush (self->link->session, 0);
  self->link->shut = TRUE;
  if (ssh_get_fd (self->link->session) != SSH_INVALID_SOCKET)
    shutdown (ssh_get_fd (self->link->session), SHUT_WR);

out:
  wake_other_contexts_unlocked (self);
  unlock_session (self);
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
  unlock_session (self);
  return known;
}

/* Opening a channel on a link; see the comment at the top. */

typedef int (*ChannelStep) (ExecnetSshSession *self,
                            gpointer           data);

static int
step_open (ExecnetSshSession *self,
           gpointer           data)
{
  return ssh_channel_open_session (self->channel);
}

static int
step_exec (ExecnetSshSession *self,
           gpointer           data)
{
  const char *command = data;

  return ssh_channel_request_exec (self->channel, command);
}

/* Waits for the link's spawner to be ready, or gone. */
static int
step_spawner (ExecnetSshSession *self,
              gpointer           data)
{
  ExecnetSshLink *link = self->link;

  if (link->event != NULL)
    ssh_event_dopoll (link->event, 0);
  spawner_tend_unlocked (link);
  switch (link->spawner_state)
    {
    case SPAWNER_READY:
      return SSH_OK;
    case SPAWNER_GONE:
      return SSH_ERROR;
    default:
      return SSH_AGAIN;
    }
}

static int
step_forward (ExecnetSshSession *self,
              gpointer           data)
{
  /* OpenSSH ignores the originator's address and port. */
  return ssh_channel_open_forward_unix (self->channel, self->link->spawner_path,
                                        "127.0.0.1", 0);
}

/* Sends the rest of the spawner's request: @data is a GBytes *, whose
 * front is cut off as it goes. */
static int
step_request (ExecnetSshSession *self,
              gpointer           data)
{
  GBytes **request = data;
  gsize len;
  const char *bytes = g_bytes_get_data (*request, &len);
  int n = ssh_channel_write (self->channel, bytes, (uint32_t) len);

  if (n == SSH_ERROR)
    return SSH_ERROR;
  if (n > 0)
    {
      GBytes *rest = g_bytes_new_from_bytes (*request, n, len - n);

      g_bytes_unref (*request);
      *request = rest;
    }
  ssh_blocking_flush (self->link->session, 0);
  return g_bytes_get_size (*request) == 0 ? SSH_OK : SSH_AGAIN;
}

/* @lock held, and held again on return; in the opening worker thread.
 * Takes @step until it is done (SSH_OK) or fails (SSH_ERROR), waiting
 * between tries for the socket, for another holder of the lock, or for
 * @cancellable, until @deadline; sets @timed_out when that passed. Returns
 * SSH_AGAIN when it gave up waiting (cancelled or out of time) with the
 * server's answer still to come. */
static int
run_step_unlocked (ExecnetSshSession *self,
                   ChannelStep        step,
                   gpointer           data,
                   int                wake_fd,
                   gint64             deadline,
                   GCancellable      *cancellable,
                   gboolean          *timed_out)
{
  ExecnetSshLink *link = self->link;
  GPollFD fds[3];

  for (;;)
    {
      guint n_fds = 0;
      gboolean watch_cancellable;
      gint64 left;
      eventfd_t drained;
      int rc;

      rc = step (self, data);
      /* The step may have pumped what other gateways' sources wait for,
       * and this thread dispatches none of them. */
      for (guint i = 0; i < link->contexts->len; i++)
        g_main_context_wakeup (link->contexts->pdata[i]);
      if (rc != SSH_AGAIN)
        return rc;
      if (link_is_dead_unlocked (link))
        return SSH_ERROR;
      if (g_cancellable_is_cancelled (cancellable))
        return SSH_AGAIN;
      left = deadline - g_get_monotonic_time ();
      if (left <= 0)
        {
          *timed_out = TRUE;
          return SSH_AGAIN;
        }

      fds[n_fds].fd = ssh_get_fd (link->session);
      fds[n_fds].events = G_IO_IN | G_IO_HUP | G_IO_ERR;
      if ((ssh_get_poll_flags (link->session) & SSH_WRITE_PENDING) != 0)
        fds[n_fds].events |= G_IO_OUT;
      if (fds[n_fds].fd != SSH_INVALID_SOCKET)
        n_fds++;
      fds[n_fds].fd = wake_fd;
      fds[n_fds++].events = G_IO_IN;
      watch_cancellable = g_cancellable_make_pollfd (cancellable, &fds[n_fds]);
      if (watch_cancellable)
        n_fds++;

      unlock_link (link, wake_fd);
      g_poll (fds, n_fds, (int) MIN (left / 1000 + 1, OPEN_POLL_MS));
      if (watch_cancellable)
        g_cancellable_release_fd (cancellable);
      eventfd_read (wake_fd, &drained);
      lock_session (self);
    }
}

/* @lock held. Returns whether the server refused to open the channel on
 * a connection that is otherwise fine and carries other channels. */
static gboolean
set_open_error_unlocked (ExecnetSshSession  *self,
                         gboolean            timed_out,
                         gdouble             timeout,
                         const char         *during,
                         GError            **error)
{
  if (timed_out)
    _execnet_ssh_set_timed_out (error, during, self->address, timeout);
  else if (link_is_dead_unlocked (self->link))
    set_dead_error_unlocked (self, error);
  else if (g_str_equal (during, "opening a session on"))
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                   "ssh: %s refused to open a session: %s",
                   self->address, ssh_get_error (self->link->session));
      /* No more on this connection: the next gateway makes its own. If
       * others use it, this one may too (the connection is not at fault). */
      self->link->full = TRUE;
      return self->link->n_channels > 1;
    }
  else
    g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                 "ssh: %s refused to run the Python interpreter: %s%s%.*s",
                 self->address, ssh_get_error (self->link->session),
                 self->stderr_tail->len > 0 ? "; remote error output: " : "",
                 (int) self->stderr_tail->len, self->stderr_tail->str);
  return FALSE;
}

/* @lock held. Before the command starts, so that its first stderr bytes
 * reach the callbacks. */
static void
set_callbacks_unlocked (ExecnetSshSession *self)
{
  self->callbacks.userdata = self;
  self->callbacks.channel_data_function = on_channel_data;
  self->callbacks.channel_exit_status_function = on_channel_exit_status;
  self->callbacks.channel_exit_signal_function = on_channel_exit_signal;
  self->callbacks.channel_close_function = on_channel_close;
  ssh_callbacks_init (&self->callbacks);
  ssh_set_channel_callbacks (self->channel, &self->callbacks);
}

typedef enum {
  SPAWN_OPENED,        /* the spawner runs the command */
  SPAWN_FAILED,        /* @error is set, unless cancelled */
  SPAWN_UNAVAILABLE,   /* no spawner on this link: open a session instead */
} SpawnOutcome;

/* @lock held, and held again on return; in the opening worker thread.
 * Has the link's spawner (started here if it is not yet) run @xspec's
 * interpreter, on a channel forwarded to the spawner's socket. */
static SpawnOutcome
open_spawned_unlocked (ExecnetSshSession  *self,
                       ExecnetXSpec       *xspec,
                       int                 wake_fd,
                       gint64              deadline,
                       gdouble             timeout,
                       GCancellable       *cancellable,
                       GError            **error)
{
  ExecnetSshLink *link = self->link;
  g_autoptr(GBytes) request = NULL;
  gboolean timed_out = FALSE;
  int rc;

  if (link->spawner_state == SPAWNER_NONE)
    {
      execnet_transport_log (xspec, "transport", "ssh: starting a spawner on %s", link->address);
      spawner_start_unlocked (link, xspec);
    }
  rc = run_step_unlocked (self, step_spawner, NULL, wake_fd, deadline, cancellable, &timed_out);
  if (rc == SSH_ERROR && !link_is_dead_unlocked (link))
    return SPAWN_UNAVAILABLE;
  if (rc != SSH_OK)
    goto failed;

  self->channel = ssh_channel_new (link->session);
  if (self->channel == NULL)
    return SPAWN_UNAVAILABLE;
  rc = run_step_unlocked (self, step_forward, NULL, wake_fd, deadline, cancellable, &timed_out);
  if (rc == SSH_AGAIN && !link_is_dead_unlocked (link))
    g_ptr_array_add (link->orphans, g_steal_pointer (&self->channel));
  if (rc == SSH_ERROR && !link_is_dead_unlocked (link))
    {
      /* AllowStreamLocalForwarding or DisableForwarding says no (or the
       * spawner has just ended): sessions for this gateway and the
       * next; freeing the spawner's channel ends it. */
      execnet_transport_log (xspec, "transport",
                             "ssh: %s refused a channel to the spawner (%s): each gateway gets a session",
                             link->address, ssh_get_error (link->session));
      g_clear_pointer (&self->channel, ssh_channel_free);
      link->spawner_state = SPAWNER_GONE;
      spawner_tend_unlocked (link);
      return SPAWN_UNAVAILABLE;
    }
  if (rc != SSH_OK)
    goto failed;
  set_callbacks_unlocked (self);

  self->spawn_id = ++link->last_spawn_id;
  g_hash_table_insert (link->spawned, GUINT_TO_POINTER (self->spawn_id), self);
  request = _execnet_ssh_build_spawner_request (xspec, self->spawn_id, link->spawner_python, error);
  if (request == NULL)
    return SPAWN_FAILED;
  rc = run_step_unlocked (self, step_request, &request, wake_fd, deadline, cancellable, &timed_out);
  if (rc == SSH_OK)
    {
      execnet_transport_log (xspec, "transport", "ssh: the spawner on %s starts the interpreter (%u)",
                             link->address, self->spawn_id);
      return SPAWN_OPENED;
    }

failed:
  if (timed_out)
    _execnet_ssh_set_timed_out (error, "starting Python on", self->address, timeout);
  else if (link_is_dead_unlocked (link))
    set_dead_error_unlocked (self, error);
  else if (rc == SSH_ERROR)
    g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                 "ssh: cannot send the interpreter's command to the spawner on %s: %s",
                 self->address, ssh_get_error (link->session));
  return SPAWN_FAILED;
}

/**
 * _execnet_ssh_session_open:
 * @link: (transfer none): a link with a channel promised to the caller
 *   (_execnet_ssh_link_new() or _execnet_ssh_link_reserve()); the promise
 *   is kept or given back, whatever happens
 * @xspec: the gateway's spec, for libssh's log
 * @command: the remote command
 * @deadline: monotonic time by which the command must have started
 * @timeout: the budget @deadline came from, for messages
 * @cancellable: (nullable): ends the wait
 * @may_spawn: whether the link's spawner may start the interpreter
 * @refused: (out): set when the server refused to open the channel on a
 *   connection that is otherwise fine and carries other channels (too
 *   many sessions on it); the link takes no more channels then
 *
 * Opens a session channel on @link and starts @command on it, without
 * holding up the other channels of the link; or, when the link already
 * carries another gateway and @may_spawn, has the link's spawner start
 * the interpreter (see the comment at the top). Blocks; runs in the
 * transport's worker thread.
 *
 * Returns: (transfer full) (nullable): the session, served by sources
 *   from here on
 */
ExecnetSshSession *
_execnet_ssh_session_open (ExecnetSshLink  *link,
                           ExecnetXSpec    *xspec,
                           const char      *command,
                           gboolean         may_spawn,
                           gint64           deadline,
                           gdouble          timeout,
                           GCancellable    *cancellable,
                           gboolean        *refused,
                           GError         **error)
{
  g_autoptr(ExecnetSshSession) self = g_atomic_rc_box_new0 (ExecnetSshSession);
  gboolean timed_out = FALSE;
  gboolean ok = FALSE;
  int wake_fd;
  int rc;

  *refused = FALSE;
  self->link = _execnet_ssh_link_ref (link);
  self->counted = TRUE;
  self->address = g_strdup (link->address);
  self->xspec = execnet_xspec_ref (xspec);
  self->stderr_tail = g_string_new (NULL);

  wake_fd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                   "ssh: cannot open a session on %s: eventfd: %s",
                   self->address, g_strerror (saved_errno));
      return NULL;
    }

  lock_session (self);
  g_array_append_val (link->waiters, wake_fd);

  if (may_spawn && link->n_channels > 1 && link->spawner_state != SPAWNER_GONE &&
      !link_is_dead_unlocked (link))
    switch (open_spawned_unlocked (self, xspec, wake_fd, deadline, timeout, cancellable, error))
      {
      case SPAWN_OPENED:
        ok = TRUE;
        goto out;
      case SPAWN_FAILED:
        goto out;
      case SPAWN_UNAVAILABLE:
        break;
      default:
        g_assert_not_reached ();
      }

  if (link->session != NULL)
    self->channel = ssh_channel_new (link->session);
  if (self->channel == NULL)
    {
      set_open_error_unlocked (self, FALSE, timeout, "opening a session on", error);
      goto out;
    }
  rc = run_step_unlocked (self, step_open, NULL, wake_fd, deadline, cancellable, &timed_out);
  if (rc == SSH_AGAIN && !link_is_dead_unlocked (link))
    g_ptr_array_add (link->orphans, g_steal_pointer (&self->channel));
  if (rc == SSH_AGAIN && !timed_out)
    goto out;   /* cancelled: the error is set below; the connection is not at fault */
  if (rc != SSH_OK)
    {
      *refused = set_open_error_unlocked (self, timed_out, timeout, "opening a session on", error);
      goto out;
    }

  set_callbacks_unlocked (self);

  rc = run_step_unlocked (self, step_exec, (gpointer) command, wake_fd, deadline, cancellable, &timed_out);
  if (rc == SSH_AGAIN && !timed_out)
    goto out;
  if (rc != SSH_OK)
    {
      set_open_error_unlocked (self, timed_out, timeout, "starting Python on", error);
      goto out;
    }
  ok = TRUE;

out:
  for (guint i = 0; i < link->waiters->len; i++)
    if (g_array_index (link->waiters, int, i) == wake_fd)
      {
        g_array_remove_index_fast (link->waiters, i);
        break;
      }
  _execnet_ssh_log_attach (NULL);
  unlock_session (self);
  close (wake_fd);

  if (!ok && g_cancellable_is_cancelled (cancellable))
    {
      g_clear_error (error);
      g_cancellable_set_error_if_cancelled (cancellable, error);
    }
  return ok ? g_steal_pointer (&self) : NULL;
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
  int fd = self->link->session ? ssh_get_fd (self->link->session) : SSH_INVALID_SOCKET;

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
  if ((ssh_get_poll_flags (self->link->session) & SSH_WRITE_PENDING) != 0)
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
  unlock_session (self);
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
  unlock_session (self);
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
  unlock_session (self);

  return base;
}
