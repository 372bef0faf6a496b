/* execnet-async-private.h: timeouts for asynchronous calls
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _ExecnetDeadline ExecnetDeadline;

ExecnetDeadline *_execnet_deadline_new         (gdouble          timeout,
                                                GCancellable    *parent);
GCancellable    *_execnet_deadline_get_cancellable (ExecnetDeadline *self);
gboolean         _execnet_deadline_timed_out   (ExecnetDeadline *self);
void             _execnet_deadline_free        (ExecnetDeadline *self);

GSource         *_execnet_cancel_source_new    (GCancellable    *cancellable,
                                                GSourceFunc      func,
                                                gpointer         data,
                                                GDestroyNotify   notify);
void             _execnet_cancel_source_free   (GSource         *source);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetDeadline, _execnet_deadline_free)

G_END_DECLS
