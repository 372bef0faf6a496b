/* execnet-inbox-private.h: running code in a main context from any thread
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef void (*ExecnetInboxFunc) (gpointer data);

void _execnet_inbox_ensure         (GMainContext     *context);
void _execnet_context_invoke       (GMainContext     *context,
                                    ExecnetInboxFunc  func,
                                    gpointer          data,
                                    GDestroyNotify    free_data);

void _execnet_task_return_boolean  (GTask            *task,
                                    gboolean          result);
void _execnet_task_return_pointer  (GTask            *task,
                                    gpointer          result,
                                    GDestroyNotify    result_destroy);
void _execnet_task_return_error    (GTask            *task,
                                    GError           *error);
void _execnet_task_return_new_error (GTask           *task,
                                     GQuark           domain,
                                     gint             code,
                                     const char      *format,
                                     ...) G_GNUC_PRINTF (4, 5);

G_END_DECLS
