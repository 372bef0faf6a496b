/* execnet-popen.c: gateways to local Python subprocesses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <execnet/execnet.h>

/* The popen transport starts the interpreter named by `python=` (default
 * `python3`) as a local child process: execnet_transport_spawn() with no
 * launcher. The interpreter runs in a process group of its own, which
 * terminate ends as a whole, so that the remote code's own subprocesses do
 * not outlive the gateway; the group is also killed when we die. Its stderr
 * goes on to ours, and its tail is quoted if the bootstrap fails. */

#define EXECNET_TYPE_POPEN_TRANSPORT (execnet_popen_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetPopenTransport, execnet_popen_transport, EXECNET, POPEN_TRANSPORT, GObject)

struct _ExecnetPopenTransport
{
  GObject parent_instance;
};

static void execnet_popen_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExecnetPopenTransport, execnet_popen_transport, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXECNET_TYPE_TRANSPORT,
                                                      execnet_popen_transport_iface_init))

/* I/O thread. */
static void
execnet_popen_transport_open_async (ExecnetTransport    *transport,
                                    ExecnetXSpec        *xspec,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (transport, cancellable, callback, user_data);
  ExecnetConnection *connection;
  GError *error = NULL;

  g_task_set_source_tag (task, execnet_popen_transport_open_async);
  /* Once a process is started, the connection is returned even if the
   * start was cancelled meanwhile: the gateway then kills and reaps it. */
  g_task_set_check_cancellable (task, FALSE);

  execnet_transport_log_phase (xspec, "starting-python", "starting %s",
                               execnet_xspec_has (xspec, "python") ? execnet_xspec_get (xspec, "python")
                                                                   : "python3");
  connection = execnet_transport_spawn (xspec, NULL, cancellable, &error);
  if (connection == NULL)
    {
      g_prefix_error (&error, "popen: ");
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, connection, g_object_unref);
}

static gboolean
execnet_popen_transport_check_xspec (ExecnetTransport  *transport,
                                     ExecnetXSpec      *xspec,
                                     GError           **error)
{
  const char *value = execnet_xspec_get (xspec, "popen");

  if (value != NULL && *value != '\0')
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "Invalid gateway spec “%s”: popen takes no value; name the "
                   "interpreter with python=, as in popen//python=%s",
                   execnet_xspec_to_string (xspec), value);
      return FALSE;
    }

  return TRUE;
}

/* The command the interpreter is started with. */
static GVariant *
execnet_popen_transport_describe (ExecnetTransport  *transport,
                                  ExecnetXSpec      *xspec,
                                  GError           **error)
{
  g_auto(GVariantBuilder) description = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_auto(GStrv) argv = execnet_transport_build_python_argv (xspec, error);

  if (argv == NULL)
    return NULL;
  g_variant_builder_add (&description, "{sv}", "command",
                         g_variant_new_strv ((const char * const *) argv, -1));
  return g_variant_builder_end (&description);
}

static void
execnet_popen_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->open_async = execnet_popen_transport_open_async;
  iface->check_xspec = execnet_popen_transport_check_xspec;
  iface->describe = execnet_popen_transport_describe;
}

static void
execnet_popen_transport_class_init (ExecnetPopenTransportClass *klass)
{
}

static void
execnet_popen_transport_init (ExecnetPopenTransport *self)
{
}

EXECNET_DEFINE_TRANSPORT_MODULE (popen, EXECNET_TYPE_POPEN_TRANSPORT)
