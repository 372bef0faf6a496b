/* execnet-ssh-log.c: libssh's log, into GLib's
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <libssh/callbacks.h>

#include "execnet-ssh-private.h"

/* libssh logs on stderr unless a thread has a log callback, and its
 * callback, level and callback data are per thread. It logs more than one
 * might think: an ssh_config with "LogLevel ERROR" is enough for a dozen
 * lines per connection about files it skips. The application did not ask
 * for any of it, so every thread sets our callback before it calls into
 * libssh (_execnet_ssh_log_attach), and the messages go to the debug log
 * under the key "ssh", with the gateway's id: G_MESSAGES_DEBUG=Execnet or
 * EXECNET_DEBUG=ssh shows them. EXECNET_DEBUG=ssh also makes libssh
 * describe the whole protocol exchange. */

/* Any thread, inside a libssh call. */
static void
on_libssh_log (int         priority,
               const char *function,
               const char *buffer,
               void       *userdata)
{
  ExecnetXSpec *xspec = userdata;

  if (xspec != NULL)
    execnet_transport_log (xspec, "ssh", "libssh: %s", buffer);
}

/* Any thread, before it calls libssh about the gateway of @xspec (which
 * must outlive the calls), or with %NULL once it is done. */
void
_execnet_ssh_log_attach (ExecnetXSpec *xspec)
{
  ssh_set_log_callback (on_libssh_log);
  ssh_set_log_userdata (xspec);
}

/* How much libssh says: with EXECNET_DEBUG=ssh, the protocol exchange;
 * otherwise whatever the ssh config asks for. */
void
_execnet_ssh_log_set_verbosity (ssh_session session)
{
  if (execnet_transport_debug_enabled ("ssh"))
    {
      int verbosity = SSH_LOG_PROTOCOL;

      ssh_options_set (session, SSH_OPTIONS_LOG_VERBOSITY, &verbosity);
    }
}
