/* execnet-kubectl.c: gateways into Kubernetes pods
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-launcher.h"

/* `kubectl=POD//namespace=NS//container=C//context=CTX`:
 * `kubectl [--context CTX] [--namespace NS] exec -i POD [--container C] --
 * python3 ...`, a Python in a running pod, through the API server as the
 * kubeconfig's user. The pod needs python3 (or python=). */

#define EXECNET_TYPE_KUBECTL_TRANSPORT (execnet_kubectl_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExecnetKubectlTransport, execnet_kubectl_transport, EXECNET, KUBECTL_TRANSPORT, GObject)

struct _ExecnetKubectlTransport
{
  GObject parent_instance;
};

static void execnet_kubectl_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExecnetKubectlTransport, execnet_kubectl_transport, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXECNET_TYPE_TRANSPORT,
                                                      execnet_kubectl_transport_iface_init))

static void
execnet_kubectl_transport_open_async (ExecnetTransport    *transport,
                                      ExecnetXSpec        *xspec,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  _execnet_launcher_open_async (transport, xspec, "kubectl", "install kubectl and configure it for the cluster",
                                _execnet_launcher_kubectl_argv, cancellable, callback, user_data);
}

static const char * const *
execnet_kubectl_transport_get_keys (ExecnetTransport *transport)
{
  static const char * const keys[] = { "namespace", "container", "context", NULL };

  return keys;
}

static GError *
execnet_kubectl_transport_explain_failure (ExecnetTransport  *transport,
                                           ExecnetXSpec      *xspec,
                                           ExecnetConnection *connection,
                                           const GError      *error)
{
  g_autofree char *output = execnet_connection_dup_error_output (connection);

  return _execnet_launcher_explain_kubectl (xspec, output);
}

static void
execnet_kubectl_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->open_async = execnet_kubectl_transport_open_async;
  iface->get_keys = execnet_kubectl_transport_get_keys;
  iface->explain_failure = execnet_kubectl_transport_explain_failure;
}

static void
execnet_kubectl_transport_class_init (ExecnetKubectlTransportClass *klass)
{
}

static void
execnet_kubectl_transport_init (ExecnetKubectlTransport *self)
{
}

EXECNET_DEFINE_TRANSPORT_MODULE (kubectl, EXECNET_TYPE_KUBECTL_TRANSPORT)
