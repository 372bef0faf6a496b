/* execnet-message.h: the message codes of execnet's wire protocol
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
 * ExecnetMessageCode:
 * @EXECNET_MESSAGE_STATUS: asks the remote side for its status
 * @EXECNET_MESSAGE_RECONFIGURE: changes how strings are exchanged (ignored)
 * @EXECNET_MESSAGE_GATEWAY_TERMINATE: the master says goodbye
 * @EXECNET_MESSAGE_CHANNEL_EXEC: runs code with a new channel
 * @EXECNET_MESSAGE_CHANNEL_DATA: one item sent over a channel
 * @EXECNET_MESSAGE_CHANNEL_CLOSE: a channel closed
 * @EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR: a channel closed with an error text
 * @EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE: a channel closed for sending only
 *
 * The code in the header of each message on the wire, with the values
 * execnet gives them (see [the wire protocol](protocol.html)). A
 * [callback@Execnet.WireObserver] sees it for every message.
 *
 * Since: 1.0
 */
typedef enum {
  EXECNET_MESSAGE_STATUS = 0,
  EXECNET_MESSAGE_RECONFIGURE = 1,
  EXECNET_MESSAGE_GATEWAY_TERMINATE = 2,
  EXECNET_MESSAGE_CHANNEL_EXEC = 3,
  EXECNET_MESSAGE_CHANNEL_DATA = 4,
  EXECNET_MESSAGE_CHANNEL_CLOSE = 5,
  EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR = 6,
  EXECNET_MESSAGE_CHANNEL_LAST_MESSAGE = 7,
} ExecnetMessageCode;

EXECNET_AVAILABLE_IN_1_0
const char *execnet_message_code_name (guint code);

G_END_DECLS
