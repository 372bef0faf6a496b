/* execnet-error-private.h: error messages that quote foreign text
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet-error.h>

G_BEGIN_DECLS

/* The most bytes of an error that a gateway's start-up reports (it may
 * quote a remote's error output and the spec) and of a remote traceback. */
#define EXECNET_START_ERROR_MAX (2 * EXECNET_ERROR_TEXT_MAX)
#define EXECNET_REMOTE_ERROR_MAX ((gsize) 64 * 1024)

/* Rewrites @error's message with execnet_error_escape_text(): where foreign
 * text enters an error through a path that may not have escaped it (a
 * transport's error, a remote traceback), the message is made safe once,
 * at the point where the library hands it on. Does nothing if @error is
 * NULL. */
void _execnet_error_escape_message (GError *error,
                                    gsize   max_length);

G_END_DECLS
