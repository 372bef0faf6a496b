/* execnet-source-private.h: Python source text as remote_exec sends it
 * (pure, GLib only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char *_execnet_dedent (const char *source);

G_END_DECLS
