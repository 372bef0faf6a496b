/* execnet-xspec.h: gateway specifications
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <glib-object.h>
#include <execnet/execnet-version.h>
#include <execnet/execnet-types.h>

G_BEGIN_DECLS

#define EXECNET_TYPE_XSPEC (execnet_xspec_get_type ())

EXECNET_AVAILABLE_IN_1_0
GType         execnet_xspec_get_type   (void) G_GNUC_CONST;
EXECNET_AVAILABLE_IN_1_0
ExecnetXSpec *execnet_xspec_new        (const char   *spec,
                                        GError      **error);
EXECNET_AVAILABLE_IN_1_0
ExecnetXSpec *execnet_xspec_ref        (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
void          execnet_xspec_unref      (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
ExecnetXSpec *execnet_xspec_copy       (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
const char   *execnet_xspec_get_scheme (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
const char   *execnet_xspec_get        (ExecnetXSpec *self,
                                        const char   *key);
EXECNET_AVAILABLE_IN_1_0
gboolean      execnet_xspec_has        (ExecnetXSpec *self,
                                        const char   *key);
EXECNET_AVAILABLE_IN_1_0
const char * const *execnet_xspec_get_keys (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
const char   *execnet_xspec_get_id     (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
void          execnet_xspec_set_id     (ExecnetXSpec *self,
                                        const char   *id);
EXECNET_AVAILABLE_IN_1_0
GHashTable   *execnet_xspec_get_env    (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
const char   *execnet_xspec_to_string  (ExecnetXSpec *self);
EXECNET_AVAILABLE_IN_1_0
const char * const *execnet_xspec_get_general_keys (void);
EXECNET_AVAILABLE_IN_1_0
gboolean      execnet_xspec_is_general_key (const char *key);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetXSpec, execnet_xspec_unref)

G_END_DECLS
