/* execnet-socket-auth.c: the socket server's challenge-response handshake
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/random.h>

#include <gio/gio.h>

#include "execnet-socket-auth.h"

/* Whether @text is @length lowercase hex digits. */
gboolean
_execnet_socket_auth_is_hex (const char *text,
                             gsize       length)
{
  for (gsize i = 0; i < length; i++)
    if (!((text[i] >= '0' && text[i] <= '9') || (text[i] >= 'a' && text[i] <= 'f')))
      return FALSE;
  return TRUE;
}

/* Compares two strings of @length bytes in a time that does not depend on
 * where they differ, so that a peer cannot learn a MAC byte by byte. */
gboolean
_execnet_socket_auth_equal (const char *a,
                            const char *b,
                            gsize       length)
{
  volatile guchar diff = 0;

  for (gsize i = 0; i < length; i++)
    diff |= (guchar) a[i] ^ (guchar) b[i];
  return diff == 0;
}

/* Fills @out (EXECNET_SOCKET_AUTH_HEX_LEN + 1 bytes) with a fresh nonce from
 * the kernel's random source. GLib's g_random_*() are not meant for this. */
gboolean
_execnet_socket_auth_make_nonce (char    *out,
                                 GError **error)
{
  guchar bytes[EXECNET_SOCKET_AUTH_NONCE_BYTES];
  gsize done = 0;

  while (done < sizeof bytes)
    {
      gssize n = getrandom (bytes + done, sizeof bytes - done, 0);

      if (n < 0)
        {
          int saved_errno = errno;

          if (saved_errno == EINTR)
            continue;
          g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved_errno),
                       "cannot get random bytes from the kernel: %s", g_strerror (saved_errno));
          return FALSE;
        }
      done += n;
    }

  for (gsize i = 0; i < sizeof bytes; i++)
    g_snprintf (out + 2 * i, 3, "%02x", bytes[i]);
  memset (bytes, 0, sizeof bytes);

  return TRUE;
}

/* Returns the lowercase hex HMAC-SHA256 of @role SNONCE " " CNONCE keyed by
 * the token; free it with g_free(). */
char *
_execnet_socket_auth_mac (const guchar *token,
                          gsize         token_length,
                          const char   *role,
                          const char   *server_nonce,
                          const char   *client_nonce)
{
  GHmac *hmac = g_hmac_new (G_CHECKSUM_SHA256, token, token_length);
  char *hex;

  g_hmac_update (hmac, (const guchar *) role, strlen (role));
  g_hmac_update (hmac, (const guchar *) server_nonce, EXECNET_SOCKET_AUTH_HEX_LEN);
  g_hmac_update (hmac, (const guchar *) " ", 1);
  g_hmac_update (hmac, (const guchar *) client_nonce, EXECNET_SOCKET_AUTH_HEX_LEN);
  hex = g_strdup (g_hmac_get_string (hmac));
  g_hmac_unref (hmac);

  return hex;
}

/* Turns the contents of a token file into the token, in place: the bytes
 * without leading and trailing ASCII whitespace, so that an editor's final
 * newline does not matter. Returns the token's length (0: no token). */
gsize
_execnet_socket_auth_strip_token (char  *contents,
                                  gsize  length)
{
  gsize start = 0;

  while (length > 0 && g_ascii_isspace (contents[length - 1]))
    length--;
  while (start < length && g_ascii_isspace (contents[start]))
    start++;
  memmove (contents, contents + start, length - start);
  length -= start;
  contents[length] = '\0';

  return length;
}

/* Makes the kernel end @socket, a TCP connection, once its peer has not
 * answered for about @seconds: probes start after half of it without
 * traffic and three unanswered probes end the connection; data sent and
 * not acknowledged for @seconds ends it too. Either end then reads an
 * error instead of waiting forever for a peer that is gone. 0 leaves the
 * system's defaults (no probes). Other kinds of socket are left alone. */
gboolean
_execnet_socket_set_keepalive (GSocket  *socket,
                               guint     seconds,
                               GError  **error)
{
  guint idle = MAX (seconds / 2, 1);
  guint interval = MAX ((seconds - MIN (idle, seconds)) / 3, 1);

  if (seconds == 0 ||
      (g_socket_get_family (socket) != G_SOCKET_FAMILY_IPV4 &&
       g_socket_get_family (socket) != G_SOCKET_FAMILY_IPV6))
    return TRUE;

  return g_socket_set_option (socket, SOL_SOCKET, SO_KEEPALIVE, 1, error) &&
         g_socket_set_option (socket, IPPROTO_TCP, TCP_KEEPIDLE, (gint) idle, error) &&
         g_socket_set_option (socket, IPPROTO_TCP, TCP_KEEPINTVL, (gint) interval, error) &&
         g_socket_set_option (socket, IPPROTO_TCP, TCP_KEEPCNT, 3, error) &&
         g_socket_set_option (socket, IPPROTO_TCP, TCP_USER_TIMEOUT,
                              (gint) MIN (seconds, G_MAXINT / 1000) * 1000, error);
}
