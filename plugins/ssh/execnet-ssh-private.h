/* execnet-ssh-private.h: the pieces of the ssh transport plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libssh/libssh.h>
#include <execnet/execnet.h>

G_BEGIN_DECLS

/* ExecnetSshSession: one authenticated libssh session with the channel
 * running the remote interpreter (execnet-ssh-session.c). Refcounted; the
 * connection and both halves of its stream each hold a reference. */
typedef struct _ExecnetSshSession ExecnetSshSession;

/* What a session source waits for. */
typedef enum {
  EXECNET_SSH_WAIT_READABLE,   /* stdout data, end-of-file or an error */
  EXECNET_SSH_WAIT_WRITABLE,   /* window to send, or an error */
  EXECNET_SSH_WAIT_ENDED,      /* the remote command ended or the session died */
} ExecnetSshWait;

ExecnetSshSession *_execnet_ssh_session_new          (ssh_session         session,
                                                      ssh_channel         channel,
                                                      int                 socket_fd,
                                                      const char         *address,
                                                      ExecnetXSpec       *xspec);
ExecnetSshSession *_execnet_ssh_session_ref          (ExecnetSshSession  *self);
void               _execnet_ssh_session_unref        (ExecnetSshSession  *self);
const char        *_execnet_ssh_session_get_address  (ExecnetSshSession  *self);
void               _execnet_ssh_session_start        (ExecnetSshSession  *self);
void               _execnet_ssh_session_set_owner    (ExecnetSshSession  *self,
                                                      ExecnetConnection  *owner);
gssize             _execnet_ssh_session_read         (ExecnetSshSession  *self,
                                                      void               *buffer,
                                                      gsize               count,
                                                      GError            **error);
gssize             _execnet_ssh_session_write        (ExecnetSshSession  *self,
                                                      const void         *buffer,
                                                      gsize               count,
                                                      GError            **error);
gboolean           _execnet_ssh_session_send_eof     (ExecnetSshSession  *self,
                                                      GError            **error);
gboolean           _execnet_ssh_session_is_ready     (ExecnetSshSession  *self,
                                                      ExecnetSshWait      wait);
GSource           *_execnet_ssh_session_create_source (ExecnetSshSession *self,
                                                       ExecnetSshWait     wait);
void               _execnet_ssh_session_terminate    (ExecnetSshSession  *self,
                                                      gboolean            force);
gboolean           _execnet_ssh_session_get_ending   (ExecnetSshSession  *self,
                                                      int                *wait_status);
char              *_execnet_ssh_session_dup_stderr_tail (ExecnetSshSession *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetSshSession, _execnet_ssh_session_unref)

/* execnet-ssh-stream.c */
GIOStream *_execnet_ssh_stream_new      (ExecnetSshSession *session);
void       _execnet_ssh_stream_register (GTypeModule       *module);

/* execnet-ssh-log.c */
void _execnet_ssh_log_attach        (ExecnetXSpec *xspec);
void _execnet_ssh_log_set_verbosity (ssh_session   session);

/* execnet-ssh-connect.c: runs in a worker thread, blocks */
ExecnetSshSession *_execnet_ssh_connect (ExecnetXSpec  *xspec,
                                         GCancellable  *cancellable,
                                         GError       **error);

G_END_DECLS
