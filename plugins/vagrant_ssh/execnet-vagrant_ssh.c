/* execnet-vagrant_ssh.c: gateways to Vagrant machines, over the ssh transport
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>

#include "execnet-launcher.h"

/* `vagrant_ssh=NAME`: asks `vagrant ssh-config NAME` (run in the current
 * directory, or VAGRANT_CWD, like any vagrant command) how to reach the
 * machine, writes its Host block to a private temporary ssh_config, and
 * hands the ssh transport the spec `ssh=HOST//ssh_config=FILE` plus every
 * other key of the original (the general ones: ssh_config= is the one
 * ssh key of its own, and it is ours to set). The gateway is then an ssh
 * gateway in every respect: its options, its errors, its speed. The file is removed as soon
 * as the ssh transport has connected (or failed to). */

#define EXECNET_TYPE_VAGRANT_SSH_TRANSPORT (execnet_vagrant_ssh_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetVagrantSshTransport, execnet_vagrant_ssh_transport,
                      EXECNET, VAGRANT_SSH_TRANSPORT, GObject)

struct _ExecnetVagrantSshTransport
{
  GObject parent_instance;
};

static void execnet_vagrant_ssh_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExecnetVagrantSshTransport, execnet_vagrant_ssh_transport, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXECNET_TYPE_TRANSPORT,
                                                      execnet_vagrant_ssh_transport_iface_init))

typedef struct
{
  ExecnetXSpec *xspec;          /* (owned) the vagrant_ssh= spec */
  ExecnetTransport *ssh;        /* (owned) (nullable) */
  char *config_path;            /* (owned) (nullable) the temporary ssh_config */
} Open;

static void
open_free (Open *open)
{
  if (open->config_path != NULL)
    g_unlink (open->config_path);
  g_free (open->config_path);
  g_clear_object (&open->ssh);
  execnet_xspec_unref (open->xspec);
  g_free (open);
}

/* The ssh spec: ssh=HOST//ssh_config=FILE, then every key of @xspec but
 * its scheme, in order. Values cannot hold "//": they came from a spec. */
static char *
build_ssh_spec (ExecnetXSpec *xspec,
                const char   *host,
                const char   *config_path)
{
  g_autoptr(GString) spec = g_string_new (NULL);
  const char * const *keys = execnet_xspec_get_keys (xspec);

  g_string_printf (spec, "ssh=%s//ssh_config=%s", host, config_path);
  for (guint i = 0; keys[i] != NULL; i++)
    {
      const char *value = execnet_xspec_get (xspec, keys[i]);

      if (strcmp (keys[i], "vagrant_ssh") == 0)
        continue;
      g_string_append_printf (spec, "//%s", keys[i]);
      if (*value != '\0')
        g_string_append_printf (spec, "=%s", value);
    }
  return g_string_free (g_steal_pointer (&spec), FALSE);
}

static void
on_ssh_opened (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  ExecnetConnection *connection;
  GError *error = NULL;

  connection = execnet_transport_open_finish (EXECNET_TRANSPORT (source), result, &error);
  if (connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, connection, g_object_unref);
}

static void
on_ssh_config (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Open *open = g_task_get_task_data (task);
  GSubprocess *vagrant = G_SUBPROCESS (source);
  const char *name = execnet_xspec_get (open->xspec, "vagrant_ssh");
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *config = NULL;
  g_autofree char *host = NULL;
  g_autofree char *ssh_spec = NULL;
  g_autoptr(ExecnetXSpec) ssh_xspec = NULL;
  GCancellable *cancellable;
  GError *error = NULL;
  int fd;

  if (!g_subprocess_communicate_utf8_finish (vagrant, result, &out, &err, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  if (!g_subprocess_get_successful (vagrant))
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                               "vagrant_ssh: `vagrant ssh-config %s` failed: %s; is the machine "
                               "defined by the Vagrantfile here (or in VAGRANT_CWD) and running "
                               "(vagrant status)?", name, err != NULL ? g_strstrip (err) : "");
      return;
    }

  config = _execnet_launcher_vagrant_ssh_config (out, &host, &error);
  if (config == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  fd = g_file_open_tmp ("execnet-vagrant-XXXXXX.conf", &open->config_path, &error);
  if (fd < 0 || !g_file_set_contents (open->config_path, config, -1, &error))
    {
      if (fd >= 0)
        close (fd);
      g_task_return_error (task, error);
      return;
    }
  close (fd);

  ssh_spec = build_ssh_spec (open->xspec, host, open->config_path);
  ssh_xspec = execnet_xspec_new (ssh_spec, &error);
  open->ssh = ssh_xspec != NULL ? execnet_transport_new_for_scheme ("ssh", &error) : NULL;
  if (open->ssh == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  cancellable = g_task_get_cancellable (task);
  execnet_transport_open_async (open->ssh, ssh_xspec, cancellable, on_ssh_opened, g_steal_pointer (&task));
}

static void
execnet_vagrant_ssh_transport_open_async (ExecnetTransport    *transport,
                                          ExecnetXSpec        *xspec,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (transport, cancellable, callback, user_data);
  g_autoptr(GSubprocess) vagrant = NULL;
  const char *name = execnet_xspec_get (xspec, "vagrant_ssh");
  Open *open;
  GError *error = NULL;

  g_task_set_source_tag (task, execnet_vagrant_ssh_transport_open_async);

  if (name == NULL || *name == '\0' || name[0] == '-')
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                               "vagrant_ssh: name the machine of the Vagrantfile, such as "
                               "vagrant_ssh=default");
      return;
    }
  if (!_execnet_launcher_check_program ("vagrant_ssh", "vagrant", "install Vagrant", &error))
    {
      g_task_return_error (task, error);
      return;
    }

  vagrant = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
                              G_SUBPROCESS_FLAGS_STDIN_INHERIT, &error,
                              "vagrant", "ssh-config", name, NULL);
  if (vagrant == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  open = g_new0 (Open, 1);
  open->xspec = execnet_xspec_ref (xspec);
  g_task_set_task_data (task, open, (GDestroyNotify) open_free);
  g_subprocess_communicate_utf8_async (vagrant, NULL, cancellable, on_ssh_config, g_steal_pointer (&task));
}

static void
execnet_vagrant_ssh_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->open_async = execnet_vagrant_ssh_transport_open_async;
}

static void
execnet_vagrant_ssh_transport_class_init (ExecnetVagrantSshTransportClass *klass)
{
}

static void
execnet_vagrant_ssh_transport_init (ExecnetVagrantSshTransport *self)
{
}

EXECNET_DEFINE_TRANSPORT_MODULE (vagrant_ssh, EXECNET_TYPE_VAGRANT_SSH_TRANSPORT)
