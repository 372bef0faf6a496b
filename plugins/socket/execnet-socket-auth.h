/* execnet-socket-auth.h: the socket server's challenge-response handshake
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

/* The handshake's pieces, in the execnet-socket-auth static library:
 * plugins/socket/meson.build declares it as execnet_socket_auth_dep. */

G_BEGIN_DECLS

/* Both ends of the handshake link this library, the socket transport
 * (client) and `execnet-tool socketserver` (server), so that the lines and
 * the MAC inputs are spelled in exactly one place. doc/protocol.md,
 * "Socket server authentication", is the specification:
 *
 *   server: "execnet-auth-1 " SNONCE "\n"
 *   client: CNONCE " " HMAC(token, "execnet-auth-1 client " SNONCE " " CNONCE) "\n"
 *   server: "OK " HMAC(token, "execnet-auth-1 server " SNONCE " " CNONCE) "\n"
 *       or: "NO\n", then it closes
 *
 * Nonces are 32 random bytes and MACs HMAC-SHA256 values, all written as
 * 64 lowercase hex digits. The role words keep a proof made for one
 * direction from being replayed in the other; the client's nonce makes the
 * server's proof fresh, so the client knows it reached a server that holds
 * the token before it sends anything else.
 *
 * The challenge deliberately starts with a lowercase "e": a master that has
 * no token reads it where it expects the bootstrap answer ("1", or "E" and
 * a reason), and can tell the two apart by the first byte. */

/* How the challenge of every version of the handshake begins. */
#define EXECNET_SOCKET_AUTH_GREETING         "execnet-auth-"
#define EXECNET_SOCKET_AUTH_CHALLENGE_PREFIX "execnet-auth-1 "
#define EXECNET_SOCKET_AUTH_ACCEPTED_PREFIX  "OK "
#define EXECNET_SOCKET_AUTH_REJECTED_LINE    "NO\n"
#define EXECNET_SOCKET_AUTH_CLIENT_ROLE      "execnet-auth-1 client "
#define EXECNET_SOCKET_AUTH_SERVER_ROLE      "execnet-auth-1 server "

#define EXECNET_SOCKET_AUTH_NONCE_BYTES 32
#define EXECNET_SOCKET_AUTH_HEX_LEN     64   /* of a nonce, and of a MAC */

/* Longer than any line of the handshake; whoever reads a line gives up
 * after this many bytes without a newline. */
#define EXECNET_SOCKET_AUTH_LINE_MAX 256

gboolean _execnet_socket_auth_is_hex       (const char    *text,
                                           gsize          length);
gboolean _execnet_socket_auth_equal        (const char    *a,
                                           const char    *b,
                                           gsize          length);
gboolean _execnet_socket_auth_make_nonce   (char          *out,
                                           GError       **error);
char    *_execnet_socket_auth_mac          (const guchar  *token,
                                           gsize          token_length,
                                           const char    *role,
                                           const char    *server_nonce,
                                           const char    *client_nonce);
gsize    _execnet_socket_auth_strip_token  (char          *contents,
                                           gsize          length);

/* Not the handshake, but shared by the same two ends: how long a TCP
 * connection whose peer stopped answering (a dead network, a host gone
 * without a word) may last before the kernel gives up on it. */
#define EXECNET_SOCKET_DEFAULT_KEEPALIVE 60

gboolean _execnet_socket_set_keepalive     (GSocket       *socket,
                                           guint          seconds,
                                           GError       **error);

G_END_DECLS
