/* execnet-util-private.h: helpers that every part of the core shares
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The one sync-over-async helper: runs @func (which starts an _async
 * operation with the callback and user data it is given) with a private
 * main context as the thread default, iterates that context until the
 * operation completes, and returns (transfer full) its result for the
 * matching _finish. Usable from any thread, several at the same time. */
typedef void (*ExecnetStartFunc) (gpointer            data,
                                  GAsyncReadyCallback callback,
                                  gpointer            user_data);
GAsyncResult   *_execnet_run_sync                (ExecnetStartFunc     func,
                                                  gpointer             data);

/* Timeouts are seconds; a negative one waits for ever. NaN is an error
 * (G_IO_ERROR_INVALID_ARGUMENT), checked by every public call that takes a
 * timeout; one too large to count in microseconds waits for ever. */
gboolean        _execnet_check_timeout           (gdouble              timeout,
                                                  GError             **error);
gint64          _execnet_deadline_from_timeout   (gdouble              timeout);

/* Says how a process ended, from its wait status ("exited with status 1",
 * "was killed by signal 9 (Killed)"); a negative status says "ended". */
char           *_execnet_describe_exit_status    (int                  wait_status);

/* The remote code the core sends (core/remote/, compiled into the library
 * as a GResource), by its resource path. Safe from any thread. */
GBytes         *_execnet_remote_lookup           (const char          *path);

G_END_DECLS
