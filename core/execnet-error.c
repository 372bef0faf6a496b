/* execnet-error.c: the error domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>

#include <execnet/execnet-error.h>

/**
 * execnet_error_quark:
 *
 * The quark of the %EXECNET_ERROR domain.
 *
 * Returns: the quark
 *
 * Since: 1.0
 */
G_DEFINE_QUARK (execnet-error-quark, execnet_error)
