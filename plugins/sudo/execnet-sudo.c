/* execnet-sudo.c: gateways to a local Python running as another user
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-launcher.h"

/* `sudo[=USER]`: `sudo -n [-u USER] -- python3 ...`. The spec's python=,
 * chdir= and env: are applied by that Python, so they take effect as the
 * target user. sudo never prompts (-n): a rule that wants a password is
 * an authentication error that says to add a NOPASSWD rule. */

#define EXECNET_TYPE_SUDO_TRANSPORT (execnet_sudo_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetSudoTransport, execnet_sudo_transport, EXECNET, SUDO_TRANSPORT, GObject)

struct _ExecnetSudoTransport
{
  GObject parent_instance;
};

static void execnet_sudo_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExecnetSudoTransport, execnet_sudo_transport, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXECNET_TYPE_TRANSPORT,
                                                      execnet_sudo_transport_iface_init))

static void
execnet_sudo_transport_open_async (ExecnetTransport    *transport,
                                   ExecnetXSpec        *xspec,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  _execnet_launcher_open_async (transport, xspec, "sudo", "install sudo",
                                _execnet_launcher_sudo_argv, cancellable, callback, user_data);
}

static GError *
execnet_sudo_transport_explain_failure (ExecnetTransport  *transport,
                                        ExecnetXSpec      *xspec,
                                        ExecnetConnection *connection,
                                        const GError      *error)
{
  g_autofree char *output = execnet_connection_dup_error_output (connection);

  return _execnet_launcher_explain_sudo (xspec, output);
}

static void
execnet_sudo_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->open_async = execnet_sudo_transport_open_async;
  iface->explain_failure = execnet_sudo_transport_explain_failure;
}

static void
execnet_sudo_transport_class_init (ExecnetSudoTransportClass *klass)
{
}

static void
execnet_sudo_transport_init (ExecnetSudoTransport *self)
{
}

EXECNET_DEFINE_TRANSPORT_MODULE (sudo, EXECNET_TYPE_SUDO_TRANSPORT)
