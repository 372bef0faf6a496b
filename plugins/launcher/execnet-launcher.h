/* execnet-launcher.h: what the launcher transports (sudo, docker, podman,
 * kubectl, srun, vagrant_ssh) share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet.h>

G_BEGIN_DECLS

/* The launcher command lines, without the Python command that follows
 * them. Pure: they read only the spec (and, for srun, @in_allocation). */
char  **_execnet_launcher_sudo_argv      (ExecnetXSpec  *xspec,
                                          GError       **error);
char  **_execnet_launcher_container_argv (const char    *engine,
                                          ExecnetXSpec  *xspec,
                                          const char    *container_name,
                                          GError       **error);
char  **_execnet_launcher_kubectl_argv   (ExecnetXSpec  *xspec,
                                          GError       **error);
char  **_execnet_launcher_srun_argv      (ExecnetXSpec  *xspec,
                                          gboolean       in_allocation,
                                          GError       **error);

/* Clearer errors from what a launcher wrote on stderr (@output, may be
 * NULL) and how it ended (@wait_status, or -1 while it still runs, as
 * after connect_timeout=). %NULL when the text says nothing we know. */
GError *_execnet_launcher_explain_sudo      (ExecnetXSpec *xspec,
                                             const char   *output);
GError *_execnet_launcher_explain_container (const char   *engine,
                                             ExecnetXSpec *xspec,
                                             const char   *output);
GError *_execnet_launcher_explain_kubectl   (ExecnetXSpec *xspec,
                                             const char   *output);
GError *_execnet_launcher_explain_srun      (ExecnetXSpec *xspec,
                                             const char   *output,
                                             gboolean      timed_out,
                                             char        **out_job_id);

/* vagrant_ssh: the ssh_config text for `vagrant ssh-config` @output, and
 * the host name to connect to through it. */
char   *_execnet_launcher_vagrant_ssh_config (const char  *output,
                                              char       **out_host,
                                              GError     **error);

/* Fails with a clear error if @program is not on PATH. */
gboolean _execnet_launcher_check_program (const char  *scheme,
                                          const char  *program,
                                          const char  *what_to_do,
                                          GError     **error);


/* The open_async of a launcher transport: checks that @program is
 * installed (@install_hint says how to get it otherwise), builds the
 * launcher's words with @build_argv and spawns them with the Python
 * command after them (execnet_transport_spawn()). The interface's default
 * open_finish finishes it. */
typedef char **(*ExecnetLauncherArgvFunc) (ExecnetXSpec  *xspec,
                                           GError       **error);

void               _execnet_launcher_open_async  (ExecnetTransport        *transport,
                                                  ExecnetXSpec            *xspec,
                                                  const char              *program,
                                                  const char              *install_hint,
                                                  ExecnetLauncherArgvFunc  build_argv,
                                                  GCancellable            *cancellable,
                                                  GAsyncReadyCallback      callback,
                                                  gpointer                 user_data);

/* EXECNET_DEFINE_TRANSPORT_MODULE, for a @scheme that is itself a macro. */
#define EXECNET_LAUNCHER_DEFINE_MODULE(scheme, transport_type) \
  EXECNET_DEFINE_TRANSPORT_MODULE (scheme, transport_type)

G_END_DECLS
