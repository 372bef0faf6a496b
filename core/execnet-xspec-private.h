/* execnet-xspec-private.h: reading typed values out of a spec
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-xspec.h>

G_BEGIN_DECLS

/* Reads @key as a non-negative number of seconds, @default_value when the
 * spec lacks it; anything else is EXECNET_ERROR_INVALID_SPEC. */
gboolean _execnet_xspec_get_double (ExecnetXSpec  *xspec,
                                    const char    *key,
                                    gdouble        default_value,
                                    gdouble       *value,
                                    GError       **error);

G_END_DECLS
