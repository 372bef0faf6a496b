/* execnet-container.c: gateways into containers (docker and podman)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-launcher.h"

/* Built twice: as libexecnet-docker.so with ENGINE "docker" and as
 * libexecnet-podman.so with ENGINE "podman" (meson.build sets ENGINE and
 * the type names). The two command-line tools take the same words:
 *
 *  - `ENGINE=CONTAINER`: `ENGINE exec -i CONTAINER python3 ...`, a Python in
 *    a running container, which ends with its stdin like any gateway;
 *  - `ENGINE//image=IMAGE`: `ENGINE run -i --rm --name execnet-XXXX IMAGE
 *    python3 ...`, a fresh container that is removed when Python ends.
 *    Python ends when its stdin does, and the attached stdin ends when the
 *    engine client dies, so the container goes also when we are killed. */

#ifndef ENGINE
#error "ENGINE must name the container engine"
#endif

/* The transport needs no state, so it is a plain GObject type implementing
 * the interface, registered by hand: the two modules may be loaded in one
 * process, so the type name has to come from meson.build (TYPE_NAME,
 * "ExecnetDockerTransport" or "ExecnetPodmanTransport"). */

static char **
build_argv (ExecnetXSpec  *xspec,
            GError       **error)
{
  /* A name of our own makes the container easy to find in `ENGINE ps`. */
  g_autofree char *name = g_strdup_printf ("execnet-%08x%08x", g_random_int (), g_random_int ());

  return _execnet_launcher_container_argv (ENGINE, xspec, name, error);
}

static void
container_transport_open_async (ExecnetTransport    *transport,
                                ExecnetXSpec        *xspec,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  _execnet_launcher_open_async (transport, xspec, ENGINE,
                                "install " ENGINE ", or use the other container engine",
                                build_argv, cancellable, callback, user_data);
}

static GError *
container_transport_explain_failure (ExecnetTransport  *transport,
                                     ExecnetXSpec      *xspec,
                                     ExecnetConnection *connection,
                                     const GError      *error)
{
  g_autofree char *output = execnet_connection_dup_error_output (connection);

  return _execnet_launcher_explain_container (ENGINE, xspec, output);
}

static const char * const *
container_transport_get_keys (ExecnetTransport *transport)
{
  static const char * const keys[] = { "image", NULL };

  return keys;
}

static void
container_transport_iface_init (gpointer g_iface,
                                gpointer iface_data)
{
  ExecnetTransportInterface *iface = g_iface;

  iface->open_async = container_transport_open_async;
  iface->get_keys = container_transport_get_keys;
  iface->explain_failure = container_transport_explain_failure;
}

static GType
container_transport_get_type (void)
{
  static gsize type = 0;

  if (g_once_init_enter (&type))
    {
      const GTypeInfo info = { .class_size = sizeof (GObjectClass), .instance_size = sizeof (GObject) };
      const GInterfaceInfo iface_info = { .interface_init = container_transport_iface_init };
      GType new_type = g_type_register_static (G_TYPE_OBJECT, TYPE_NAME, &info, G_TYPE_FLAG_FINAL);

      g_type_add_interface_static (new_type, EXECNET_TYPE_TRANSPORT, &iface_info);
      g_once_init_leave (&type, new_type);
    }
  return type;
}

EXECNET_LAUNCHER_DEFINE_MODULE (ENGINE_SYMBOL, container_transport_get_type ())
