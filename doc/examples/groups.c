/* groups.c: two local Python interpreters in a group, each running code.
 *
 * The C version of the first example of execnet's "Managing multiple
 * gateways" page. Build it against an installed library with
 *   cc groups.c $(pkg-config --cflags --libs execnet-1)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <execnet/execnet.h>

static const char remote_code[] =
  "import os, sys\n"
  "numbers = channel.receive()\n"
  "channel.send((sum(numbers), os.getpid(), sys.version.split()[0]))\n";

int
main (int    argc,
      char **argv)
{
  const char *specs[] = { "popen", "popen", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autofree char *description = NULL;

  if (argc > 1)
    specs[0] = specs[1] = argv[1];   /* e.g. popen//python=/usr/bin/python3 */

  /* Both gateways start at the same time. */
  group = execnet_group_new_with_specs (specs, &error);
  if (group == NULL)
    {
      g_printerr ("cannot start the gateways: %s\n", error->message);
      return 1;
    }

  description = execnet_group_to_string (group);
  g_print ("%s\n", description);                      /* <Group ['gw0', 'gw1']> */

  for (guint i = 0; i < execnet_group_get_size (group); i++)
    {
      ExecnetGateway *gateway = execnet_group_get_gateway (group, i);
      g_autoptr(ExecnetChannel) channel = NULL;
      g_autoptr(GVariant) reply = NULL;
      g_autofree char *name = execnet_gateway_to_string (gateway);
      gint64 total, pid;
      const char *version;

      channel = execnet_gateway_remote_exec (gateway, remote_code, &error);
      if (channel == NULL ||
          !execnet_channel_send (channel, g_variant_new_parsed ("[1, 2, 3, %i]", (gint32) i), &error) ||
          (reply = execnet_channel_receive (channel, 10.0, &error)) == NULL)
        {
          g_printerr ("%s failed: %s\n", execnet_gateway_get_id (gateway), error->message);
          return 1;
        }

      g_variant_get (reply, "(xx&s)", &total, &pid, &version);
      g_print ("%s: sum %" G_GINT64_FORMAT " computed by Python %s, pid %" G_GINT64_FORMAT "\n",
               name, total, version, pid);
    }

  /* Every member exits; whatever has not ended after 2 seconds is killed. */
  execnet_group_terminate (group, 2.0, NULL);
  g_clear_pointer (&description, g_free);
  description = execnet_group_to_string (group);
  g_print ("%s\n", description);                      /* <Group []> */

  return 0;
}
