/* execnet-io-worker.c: the one I/O thread of the process
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>

#include "execnet-inbox-private.h"
#include "execnet-io-worker-private.h"

/* All gateways of a process share one I/O thread, like GDBus connections
 * share theirs. It runs a private main context in which every stream is read
 * and written asynchronously and every transport is opened. It never runs
 * user code: callbacks and completions are handed to the main contexts of
 * the threads that asked for them.
 *
 * The thread starts with the first gateway and then lives as long as the
 * process. That is deliberate: children started from it get
 * PR_SET_PDEATHSIG, which fires when the forking *thread* exits.
 *
 * Writing to a pipe whose reader died raises SIGPIPE, whose default action
 * kills the process; like GDBus, we ignore SIGPIPE (if nobody installed a
 * handler) so that a dead remote is an error on one gateway instead. */

/* Both set once, inside g_once_init_enter() in
 * _execnet_io_worker_get_context(), whose g_once_init_leave() publishes
 * them to every caller of that function: read without a lock.
 * _execnet_io_worker_is_current() reads worker_thread without the once:
 * the I/O thread itself runs only sources attached after the write, so it
 * sees it, and any other thread finds it unequal to itself whether it
 * sees NULL or the thread. */
static GMainContext *worker_context;  /* (owned) set once */
static GThread *worker_thread;        /* (owned) set once */

static gpointer
worker_main (gpointer data)
{
  GMainLoop *loop = data;

  g_main_context_push_thread_default (worker_context);
  g_main_loop_run (loop);

  return NULL;
}

static void
ignore_sigpipe (void)
{
  struct sigaction action;

  if (sigaction (SIGPIPE, NULL, &action) == 0 && action.sa_handler == SIG_DFL)
    {
      action.sa_handler = SIG_IGN;
      sigemptyset (&action.sa_mask);
      action.sa_flags = 0;
      sigaction (SIGPIPE, &action, NULL);
    }
}

GMainContext *
_execnet_io_worker_get_context (void)
{
  static gsize started = 0;

  if (g_once_init_enter (&started))
    {
      GMainLoop *loop;

      ignore_sigpipe ();
      worker_context = g_main_context_new ();
      _execnet_inbox_ensure (worker_context);
      loop = g_main_loop_new (worker_context, FALSE);
      worker_thread = g_thread_new ("execnet-io", worker_main, loop);
      g_once_init_leave (&started, 1);
    }

  return worker_context;
}

/* Any thread: whether it is the I/O thread (see worker_thread). */
gboolean
_execnet_io_worker_is_current (void)
{
  return worker_thread != NULL && g_thread_self () == worker_thread;
}

/* Set while a thread blocked in a receive reads a wire for the I/O thread
 * (execnet-wire.c, "Reading"). */
static GPrivate stand_in;

/* The calling thread begins (@stand_in TRUE) or ends reading a wire in the
 * I/O thread's stead. */
void
_execnet_io_worker_set_stand_in (gboolean stand_in_now)
{
  g_private_set (&stand_in, GINT_TO_POINTER (stand_in_now));
}

/* Any thread: whether it reads a wire in the I/O thread's stead: what it
 * hands on must go where the I/O thread would send it (the gateway's
 * context, inboxes), never run there and then. */
gboolean
_execnet_io_worker_is_stand_in (void)
{
  return g_private_get (&stand_in) != NULL;
}

typedef struct
{
  GSourceFunc func;
  gpointer data;
  GDestroyNotify notify;
} Call;

static void
run_call (gpointer data)
{
  Call *call = data;

  call->func (call->data);
}

static void
call_free (gpointer data)
{
  Call *call = data;

  if (call->notify != NULL)
    call->notify (call->data);
  g_free (call);
}

/* Any thread: runs @func once in the I/O thread, soon, through the I/O
 * context's inbox (execnet-inbox.c), so that the caller never waits for
 * the I/O context's lock. */
void
_execnet_io_worker_invoke (GSourceFunc    func,
                           gpointer       data,
                           GDestroyNotify notify)
{
  Call *call = g_new (Call, 1);

  call->func = func;
  call->data = data;
  call->notify = notify;
  _execnet_context_invoke (_execnet_io_worker_get_context (), run_call, call, call_free);
}
