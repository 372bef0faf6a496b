/* execnet-error.h: the error domain
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(__EXECNET_INSIDE__) && !defined(EXECNET_COMPILATION)
#error "Only <execnet/execnet.h> can be included directly."
#endif

#include <glib.h>
#include <execnet/execnet-version.h>

G_BEGIN_DECLS

/**
 * EXECNET_ERROR:
 *
 * The error domain of execnet-glib. Timeouts are reported as
 * %G_IO_ERROR_TIMED_OUT and cancellation as %G_IO_ERROR_CANCELLED, as in GIO;
 * everything else uses this domain.
 *
 * Since: 1.0
 */
#define EXECNET_ERROR (execnet_error_quark ())

/**
 * ExecnetError:
 * @EXECNET_ERROR_INVALID_SPEC: the text of an XSpec is malformed
 * @EXECNET_ERROR_UNKNOWN_TRANSPORT: no transport plugin handles the spec's
 *   scheme; the message lists the schemes that are available
 * @EXECNET_ERROR_HOST_NOT_FOUND: a host name could not be resolved
 * @EXECNET_ERROR_CONNECTION_REFUSED: the remote end refused the connection
 * @EXECNET_ERROR_AUTHENTICATION: SSH authentication, a host key or a socket
 *   server token was refused
 * @EXECNET_ERROR_BOOTSTRAP: the remote interpreter could not be started, is
 *   too old, or did not acknowledge the bootstrap
 * @EXECNET_ERROR_REMOTE: remote code raised an exception; the message holds
 *   the remote traceback
 * @EXECNET_ERROR_CHANNEL_CLOSED: the channel is closed (execnet's `EOFError`)
 * @EXECNET_ERROR_GATEWAY_CLOSED: the connection to the remote is gone
 * @EXECNET_ERROR_PROTOCOL: corrupt or oversized data arrived on the wire
 * @EXECNET_ERROR_UNSUPPORTED_VALUE: a value has no mapping between GVariant
 *   and execnet's serialization
 * @EXECNET_ERROR_DUPLICATE_ID: a gateway with this id exists in the group
 *
 * Error codes in the %EXECNET_ERROR domain.
 *
 * Since: 1.0
 */
typedef enum {
  EXECNET_ERROR_INVALID_SPEC,
  EXECNET_ERROR_UNKNOWN_TRANSPORT,
  EXECNET_ERROR_HOST_NOT_FOUND,
  EXECNET_ERROR_CONNECTION_REFUSED,
  EXECNET_ERROR_AUTHENTICATION,
  EXECNET_ERROR_BOOTSTRAP,
  EXECNET_ERROR_REMOTE,
  EXECNET_ERROR_CHANNEL_CLOSED,
  EXECNET_ERROR_GATEWAY_CLOSED,
  EXECNET_ERROR_PROTOCOL,
  EXECNET_ERROR_UNSUPPORTED_VALUE,
  EXECNET_ERROR_DUPLICATE_ID,
} ExecnetError;

EXECNET_AVAILABLE_IN_1_0
GQuark execnet_error_quark (void);

/**
 * EXECNET_ERROR_TEXT_MAX:
 *
 * The most bytes of foreign text (remote output, spec text) that
 * execnet_error_escape_text() keeps by default: its start and its end.
 *
 * Since: 1.0
 */
#define EXECNET_ERROR_TEXT_MAX 4096

EXECNET_AVAILABLE_IN_1_0
char  *execnet_error_escape_text (const char *text,
                                  gssize      length,
                                  gsize       max_length);

G_END_DECLS
