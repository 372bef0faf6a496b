/* test-module.c: small transport plugins that fail to load in chosen ways,
 * for tests/test-loader.c. Built once per variant by tests/loader/meson.build:
 *
 *   TEST_SCHEME      the scheme the file is named for (an identifier)
 *   TEST_NO_ENTRY    the module has no load function
 *   TEST_UNRESOLVED  the module needs a symbol that nothing defines
 *   TEST_REGISTER_AS the scheme it registers under, if not its own
 *   TEST_TYPE_NAME   the name of the transport type it registers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <gio/gio.h>
#include <gmodule.h>
#include <execnet/execnet.h>

#define PASTE3(a, b, c) a##b##c
#define ENTRY(scheme, what) PASTE3 (g_io_execnet_, scheme, what)
#define LOAD ENTRY (TEST_SCHEME, _load)
#define UNLOAD ENTRY (TEST_SCHEME, _unload)

#ifdef TEST_UNRESOLVED
/* Defined nowhere: the dynamic linker refuses the module. */
extern int execnet_test_symbol_nobody_defines;
#endif

static void
transport_iface_init (gpointer iface,
                      gpointer data)
{
}

static GType
test_transport_get_type (void)
{
  static GType type = 0;

  if (type == 0)
    {
      const GInterfaceInfo info = { transport_iface_init, NULL, NULL };

      type = g_type_register_static_simple (G_TYPE_OBJECT, TEST_TYPE_NAME,
                                            sizeof (GObjectClass), NULL,
                                            sizeof (GObject), NULL, 0);
      g_type_add_interface_static (type, EXECNET_TYPE_TRANSPORT, &info);
    }
  return type;
}

#ifndef TEST_NO_ENTRY
G_MODULE_EXPORT void LOAD (GIOModule *module);
G_MODULE_EXPORT void UNLOAD (GIOModule *module);

G_MODULE_EXPORT void
LOAD (GIOModule *module)
{
#ifdef TEST_UNRESOLVED
  if (execnet_test_symbol_nobody_defines == 42)
    return;
#endif
  /* Static types: the module stays loaded for ever. */
  g_type_module_use (G_TYPE_MODULE (module));
  execnet_transport_register_extension_point ();
  g_io_extension_point_implement (EXECNET_TRANSPORT_EXTENSION_POINT_NAME,
                                  test_transport_get_type (), TEST_REGISTER_AS, 0);
}

G_MODULE_EXPORT void
UNLOAD (GIOModule *module)
{
}
#else
G_MODULE_EXPORT GType execnet_test_not_an_entry (void);

G_MODULE_EXPORT GType
execnet_test_not_an_entry (void)
{
  return test_transport_get_type ();
}
#endif
