/* execnet-ssh-args.h: the ssh words of an `ssh=` spec and the remote command (pure)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>
#include <execnet/execnet.h>

G_BEGIN_DECLS

/* Three-valued settings: what the spec said, or nothing. */
typedef enum {
  EXECNET_SSH_UNSET = -1,
  EXECNET_SSH_NO = 0,
  EXECNET_SSH_YES = 1,
} ExecnetSshTristate;

/* -o StrictHostKeyChecking: "ask" is taken as "yes" (nothing may prompt). */
typedef enum {
  EXECNET_SSH_HOST_KEY_UNSET = -1,
  EXECNET_SSH_HOST_KEY_NO = 0,
  EXECNET_SSH_HOST_KEY_YES = 1,
  EXECNET_SSH_HOST_KEY_ACCEPT_NEW = 2,
} ExecnetSshHostKeyPolicy;

/* What the words of `ssh=WORDS` ask for, in OpenSSH's terms. Everything
 * unset keeps the value from the ssh config files, then libssh's default. */
typedef struct
{
  char               *destination;        /* (owned) the host as written, maybe an alias */
  char               *user;               /* (owned) (nullable) -l or user@ */
  guint16             port;               /* -p or -o Port; 0 if unset */
  char               *config_file;        /* (owned) (nullable) -F */
  GPtrArray          *identity_files;     /* (owned) (element-type utf8) -i, -o IdentityFile */
  char               *known_hosts;        /* (owned) (nullable) -o UserKnownHostsFile */
  char               *global_known_hosts; /* (owned) (nullable) -o GlobalKnownHostsFile */
  ExecnetSshHostKeyPolicy strict_host_key_checking;
  gdouble             connect_timeout;    /* -o ConnectTimeout in seconds; < 0 if unset */
  char               *proxy_command;      /* (owned) (nullable) -o ProxyCommand */
  char               *proxy_jump;         /* (owned) (nullable) -J, -o ProxyJump */
  ExecnetSshTristate  compression;        /* -C, -o Compression */
} ExecnetSshArgs;

ExecnetSshArgs *_execnet_ssh_args_parse (const char  *words,
                                         GError     **error);
void            _execnet_ssh_args_free  (ExecnetSshArgs *args);
char           *_execnet_ssh_args_proxy_jump_command (const char *jump,
                                                      const char *config_file);

char           *_execnet_ssh_build_remote_command (ExecnetXSpec  *xspec,
                                                   GError       **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetSshArgs, _execnet_ssh_args_free)

G_END_DECLS
