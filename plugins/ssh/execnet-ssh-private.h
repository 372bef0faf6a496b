/* execnet-ssh-private.h: the pieces of the ssh transport plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <libssh/libssh.h>
#include <execnet/execnet.h>

G_BEGIN_DECLS

/* ExecnetSshLink: one authenticated libssh connection, shared by the
 * gateways made to the same destination with the same ssh words
 * (execnet-ssh-session.c). Refcounted; each session on it holds a
 * reference, and so does the table of shared links (execnet-ssh-connect.c).
 *
 * ExecnetSshSession: one channel on a link, running one gateway's remote
 * interpreter. Refcounted; the connection and both halves of its stream
 * each hold a reference. */
typedef struct _ExecnetSshLink ExecnetSshLink;
typedef struct _ExecnetSshSession ExecnetSshSession;

/* What a session source waits for. */
typedef enum {
  EXECNET_SSH_WAIT_READABLE,   /* stdout data, end-of-file or an error */
  EXECNET_SSH_WAIT_WRITABLE,   /* window to send, or an error */
  EXECNET_SSH_WAIT_ENDED,      /* the remote command ended or the session died */
} ExecnetSshWait;

ExecnetSshLink    *_execnet_ssh_link_new             (ssh_session         session,
                                                      int                 socket_fd,
                                                      const char         *address,
                                                      ExecnetXSpec       *xspec);
ExecnetSshLink    *_execnet_ssh_link_ref             (ExecnetSshLink     *link);
void               _execnet_ssh_link_unref           (ExecnetSshLink     *link);
gboolean           _execnet_ssh_link_reserve         (ExecnetSshLink     *link,
                                                      gboolean            may_spawn);
void               _execnet_ssh_link_release         (ExecnetSshLink     *link);

ExecnetSshSession *_execnet_ssh_session_open         (ExecnetSshLink     *link,
                                                      ExecnetXSpec       *xspec,
                                                      const char         *command,
                                                      gboolean            may_spawn,
                                                      gint64              deadline,
                                                      gdouble             timeout,
                                                      GCancellable       *cancellable,
                                                      gboolean           *refused,
                                                      GError            **error);
ExecnetSshSession *_execnet_ssh_session_ref          (ExecnetSshSession  *self);
void               _execnet_ssh_session_unref        (ExecnetSshSession  *self);
const char        *_execnet_ssh_session_get_address  (ExecnetSshSession  *self);
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ExecnetSshLink, _execnet_ssh_link_unref)
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
void               _execnet_ssh_set_timed_out (GError      **error,
                                               const char   *during,
                                               const char   *address,
                                               gdouble       timeout);
/* Any thread; reads the ssh config files, connects to nothing. */
GVariant          *_execnet_ssh_describe (ExecnetXSpec  *xspec,
                                          GError       **error);

G_END_DECLS
