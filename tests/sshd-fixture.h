/* sshd-fixture.h: a private OpenSSH server on 127.0.0.1 for tests and benchmarks
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * SshdFixture:
 * @dir: the temporary directory holding every file below
 * @port: the TCP port sshd listens on, on 127.0.0.1
 * @user: the login name the client config logs in as (the current user)
 * @client_key: the private key sshd accepts (its `.pub` is authorized)
 * @client_config: an ssh_config mapping the host names `localhost` and
 *   `sshtest` to this server, with strict host key checking
 * @known_hosts: a known_hosts file with this server's host key
 * @sshd_config: the server's configuration
 * @log_path: where sshd's own log (`-e`) goes
 *
 * One running `sshd -D` and the files it and its clients need, all in a
 * fresh directory; nothing under /etc/ssh or ~/.ssh is read or written.
 * The fields are read-only for users of the fixture.
 */
typedef struct
{
  char        *dir;             /* (owned) */
  guint16      port;
  char        *user;            /* (owned) */
  char        *client_key;      /* (owned) */
  char        *client_config;   /* (owned) */
  char        *known_hosts;     /* (owned) */
  char        *sshd_config;     /* (owned) */
  char        *log_path;        /* (owned) */

  /*< private >*/
  GSubprocess *sshd;            /* (owned) (nullable) */
  char        *host_key;        /* (owned) */
  guint        n_files;         /* a counter for unique names */
} SshdFixture;

/* Set on the error when the machine cannot run the fixture at all (no
 * /usr/sbin/sshd, no ssh-keygen, no privilege separation directory): the
 * caller should skip, not fail. */
#define SSHD_FIXTURE_ERROR_UNAVAILABLE G_IO_ERROR_NOT_SUPPORTED

void         sshd_fixture_prepare_environment (void);

SshdFixture *sshd_fixture_new                 (GError       **error);
SshdFixture *sshd_fixture_new_full            (const char    *server_lines,
                                               GError       **error);
void         sshd_fixture_free                (SshdFixture   *self);

char        *sshd_fixture_make_key            (SshdFixture   *self,
                                               GError       **error);
char        *sshd_fixture_write_client_config (SshdFixture   *self,
                                               const char    *identity_file,
                                               const char    *known_hosts,
                                               const char    *first_lines,
                                               GError       **error);
char        *sshd_fixture_write_file          (SshdFixture   *self,
                                               const char    *contents,
                                               GError       **error);
char        *sshd_fixture_get_log             (SshdFixture   *self);
GPid         sshd_fixture_get_pid             (SshdFixture   *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (SshdFixture, sshd_fixture_free)

G_END_DECLS
