/* execnet-emitter-private.h: signals in the context an object was made in
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib-object.h>

G_BEGIN_DECLS

typedef struct _ExecnetEmitter ExecnetEmitter;

/* Runs in the emitter's context with a reference on @object held. */
typedef void (*ExecnetEmitFunc) (GObject  *object,
                                 gpointer  data);

ExecnetEmitter *_execnet_emitter_new         (void);
ExecnetEmitter *_execnet_emitter_new_for_context (GMainContext *context);
void            _execnet_emitter_free        (ExecnetEmitter  *self);
GMainContext   *_execnet_emitter_get_context (ExecnetEmitter  *self);
gboolean        _execnet_emitter_is_home     (ExecnetEmitter  *self);
void            _execnet_emitter_queue       (ExecnetEmitter  *self,
                                              GObject         *object,
                                              ExecnetEmitFunc  func,
                                              gpointer         data,
                                              GDestroyNotify   free_data);
void            _execnet_emitter_flush       (ExecnetEmitter  *self);

GMainContext   *_execnet_ref_caller_context  (void);
GMainContext   *_execnet_caller_context_enter (GMainContext   *caller);
void            _execnet_caller_context_leave (GMainContext   *saved);

G_END_DECLS
