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

/* execnet-ssh-spawner.c: the master's side of the spawner's protocol. */
typedef enum {
  EXECNET_SSH_SPAWNER_READY,   /* @data: the socket's path */
  EXECNET_SSH_SPAWNER_FAIL,    /* @data: why it cannot serve */
  EXECNET_SSH_SPAWNER_ERR,     /* @id's child wrote @data to stderr */
  EXECNET_SSH_SPAWNER_EXIT,    /* @id's child ended with wait status @status */
} ExecnetSshSpawnerReport;

/* @data is valid for the call only. */
typedef void (*ExecnetSshSpawnerFunc) (ExecnetSshSpawnerReport  report,
                                       guint                    id,
                                       int                      status,
                                       const char              *data,
                                       gsize                    len,
                                       gpointer                 user_data);

typedef struct _ExecnetSshSpawnerReader ExecnetSshSpawnerReader;

char                    *_execnet_ssh_spawner_python        (ExecnetXSpec  *xspec);
char                    *_execnet_ssh_build_spawner_command (gsize          length,
                                                             const char    *python);
GBytes                  *_execnet_ssh_build_spawner_request (ExecnetXSpec  *xspec,
                                                             guint          id,
                                                             const char    *spawner_python,
                                                             GError       **error);
ExecnetSshSpawnerReader *_execnet_ssh_spawner_reader_new    (void);
void                     _execnet_ssh_spawner_reader_free   (ExecnetSshSpawnerReader *reader);
gboolean                 _execnet_ssh_spawner_reader_feed   (ExecnetSshSpawnerReader *reader,
                                                             const void              *data,
                                                             gsize                    len,
                                                             ExecnetSshSpawnerFunc    func,
                                                             gpointer                 user_data);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetSshArgs, _execnet_ssh_args_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetSshSpawnerReader, _execnet_ssh_spawner_reader_free)

G_END_DECLS
