/* execnet-socket-installvia.c: socket//installvia=ID, a one-shot server
 * started through another gateway of the group
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "execnet-socket-auth.h"
#include "execnet-socket-private.h"

/* As in execnet, gateway ID of the group runs installvia.py, which serves
 * one connection on its host's loopback interface, and the new gateway
 * connects to it with the socket transport. Unlike execnet's, the one-shot
 * server only accepts a connection that proves it holds a random token the
 * master gave it over the via gateway's channel, so no other local user
 * can take the port first. The transport reads tokens from files: the
 * token goes into a private temporary file, which lives as long as the
 * transport that opens it (ExecnetSocketInstalled). */

struct _ExecnetSocketInstalled
{
  char *token_path;                 /* (owned) (nullable) removed when freed */
  ExecnetChannel *channel;          /* (owned) (nullable) to the one-shot server */
};

void
_execnet_socket_installed_free (ExecnetSocketInstalled *installed)
{
  if (installed->token_path != NULL)
    {
      g_unlink (installed->token_path);
      g_free (installed->token_path);
    }
  g_clear_object (&installed->channel);
  g_free (installed);
}

typedef struct
{
  ExecnetXSpec *xspec;              /* (owned) the spec with installvia= */
  ExecnetSocketInstalled *installed; /* (owned) */
} Install;

static void
install_free (gpointer data)
{
  Install *install = data;

  g_clear_pointer (&install->installed, _execnet_socket_installed_free);
  execnet_xspec_unref (install->xspec);
  g_free (install);
}

static void
on_port (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Install *install = g_task_get_task_data (task);
  g_autoptr(GVariant) port = NULL;
  g_autofree char *spec = NULL;
  ExecnetXSpec *target;
  const char *timeout;
  GError *error = NULL;

  port = execnet_channel_receive_finish (EXECNET_CHANNEL (source), result, &error);
  if (port == NULL || !g_variant_is_of_type (port, G_VARIANT_TYPE_INT64))
    {
      if (error == NULL)
        error = g_error_new (EXECNET_ERROR, EXECNET_ERROR_PROTOCOL,
                             "installvia: the via gateway answered with no port");
      g_prefix_error (&error, "installvia: cannot start a socket server through gateway %s: ",
                      execnet_xspec_get (install->xspec, "installvia"));
      g_task_return_error (task, error);
      return;
    }

  timeout = execnet_xspec_get (install->xspec, "connect_timeout");
  spec = g_strdup_printf ("socket=127.0.0.1:%" G_GINT64_FORMAT "//token_file=%s%s%s",
                          g_variant_get_int64 (port), install->installed->token_path,
                          timeout != NULL ? "//connect_timeout=" : "", timeout != NULL ? timeout : "");
  target = execnet_xspec_new (spec, &error);
  if (target == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  g_task_return_pointer (task, target, (GDestroyNotify) execnet_xspec_unref);
}

/* Caller's thread: starts the one-shot server through the group's gateway
 * named by @xspec's installvia=, and answers with the spec that reaches it. */
void
_execnet_socket_install_via_async (gpointer             source_object,
                                   ExecnetGroup        *group,
                                   ExecnetXSpec        *xspec,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (source_object, cancellable, callback, user_data);
  const char *via_id = execnet_xspec_get (xspec, "installvia");
  Install *install = g_new0 (Install, 1);
  ExecnetSocketInstalled *installed;
  ExecnetGateway *via_gateway;
  g_autoptr(GBytes) source = NULL;
  char token[EXECNET_SOCKET_AUTH_HEX_LEN + 1];
  GError *error = NULL;
  int fd;

  g_task_set_source_tag (task, _execnet_socket_install_via_async);
  install->xspec = execnet_xspec_ref (xspec);
  install->installed = installed = g_new0 (ExecnetSocketInstalled, 1);
  g_task_set_task_data (task, install, install_free);

  via_gateway = group != NULL ? execnet_group_lookup (group, via_id) : NULL;
  if (via_gateway == NULL)
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                               "invalid spec “%s”: the group has no gateway “%s” to install "
                               "the socket server through",
                               execnet_xspec_to_string (xspec), via_id);
      return;
    }

  /* A token is made as a nonce is: 32 bytes from the kernel, in hex. */
  if (!_execnet_socket_auth_make_nonce (token, &error))
    {
      g_prefix_error (&error, "installvia: cannot make a token: ");
      g_task_return_error (task, error);
      return;
    }

  fd = g_file_open_tmp ("execnet-installvia-XXXXXX", &installed->token_path, &error);
  if (fd < 0 || write (fd, token, strlen (token)) != (gssize) strlen (token))
    {
      if (error == NULL)
        error = g_error_new (G_IO_ERROR, g_io_error_from_errno (errno),
                             "installvia: cannot write a token file: %s", g_strerror (errno));
      if (fd >= 0)
        close (fd);
      g_task_return_error (task, error);
      return;
    }
  close (fd);

  /* The global lookup waits for GLib's lazy registration of static
   * resources in another thread; the generated getter does not. */
  source = g_resources_lookup_data ("/org/execnet/socket/installvia.py",
                                    G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);
  g_assert (source != NULL);
  installed->channel = execnet_gateway_remote_exec (via_gateway, g_bytes_get_data (source, NULL), &error);
  if (installed->channel == NULL ||
      !execnet_channel_send (installed->channel, g_variant_new_string (token), &error))
    {
      g_task_return_error (task, error);
      return;
    }

  execnet_channel_receive_async (installed->channel, cancellable, on_port, g_steal_pointer (&task));
}

/* Returns the spec to open, and in @installed what must live until it is
 * opened. */
ExecnetXSpec *
_execnet_socket_install_via_finish (GAsyncResult            *result,
                                    ExecnetSocketInstalled **installed,
                                    GError                 **error)
{
  Install *install = g_task_get_task_data (G_TASK (result));
  ExecnetXSpec *target = g_task_propagate_pointer (G_TASK (result), error);

  if (target != NULL)
    *installed = g_steal_pointer (&install->installed);
  return target;
}
