/* transport-wrap.c: a whole transport plugin, the worked example of
 * doc/transports.md.
 *
 * `wrap=COMMAND` starts the gateway's Python through COMMAND, split into
 * words as a shell would: `wrap=nice -n 5`, `wrap=taskset -c 0`,
 * `wrap=env LC_ALL=C`. With the flag `wrap_shell`, COMMAND is shell text
 * run by /bin/sh, with the Python command line as its arguments "$@":
 * `wrap=ulimit -v 1000000; exec "$@"//wrap_shell`.
 *
 * Build it as libexecnet-wrap.so and put its directory on
 * EXECNET_TRANSPORT_PATH (or install it into
 * `pkg-config --variable=transportdir execnet-1`):
 *
 *   cc -shared -fPIC -o libexecnet-wrap.so transport-wrap.c \
 *      $(pkg-config --cflags --libs execnet-1)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <execnet/execnet.h>

#define EXAMPLE_TYPE_WRAP_TRANSPORT (example_wrap_transport_get_type ())
G_DECLARE_FINAL_TYPE (ExampleWrapTransport, example_wrap_transport, EXAMPLE, WRAP_TRANSPORT, GObject)

struct _ExampleWrapTransport
{
  GObject parent_instance;
};

static void example_wrap_transport_iface_init (ExecnetTransportInterface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (ExampleWrapTransport, example_wrap_transport, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (EXECNET_TYPE_TRANSPORT,
                                                      example_wrap_transport_iface_init))

/* The keys this transport accepts besides `wrap` itself and the general
 * ones (chdir=, python=, env:NAME=, ...); any other key is refused with a
 * "did you mean" before open_async() is called. */
static const char * const *
example_wrap_transport_get_keys (ExecnetTransport *transport)
{
  static const char * const keys[] = { "wrap_shell", NULL };

  return keys;
}

/* Values are checked before anything starts. */
static gboolean
example_wrap_transport_check_xspec (ExecnetTransport  *transport,
                                    ExecnetXSpec      *xspec,
                                    GError           **error)
{
  const char *command = execnet_xspec_get (xspec, "wrap");

  if (*command == '\0')
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "wrap: give the command to start Python through, as in wrap=nice -n 5");
      return FALSE;
    }

  return TRUE;
}

/* Called in the library's I/O thread. execnet_transport_spawn() does the
 * rest: the Python command line after ours, a process group that
 * terminate ends as a whole, stderr quoted in errors. */
static void
example_wrap_transport_open_async (ExecnetTransport    *transport,
                                   ExecnetXSpec        *xspec,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (transport, cancellable, callback, user_data);
  const char *command = execnet_xspec_get (xspec, "wrap");
  g_auto(GStrv) launcher = NULL;
  ExecnetConnection *connection;
  GError *error = NULL;

  if (execnet_xspec_has (xspec, "wrap_shell"))
    {
      const char *shell_argv[] = { "/bin/sh", "-c", command, "sh", NULL };

      launcher = g_strdupv ((char **) shell_argv);
    }
  else if (!g_shell_parse_argv (command, NULL, &launcher, &error))
    {
      g_task_return_new_error (task, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                               "wrap: cannot split “%s” into words: %s", command, error->message);
      g_error_free (error);
      return;
    }

  connection = execnet_transport_spawn (xspec, (const char * const *) launcher, cancellable, &error);
  if (connection == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, connection, g_object_unref);
}

static void
example_wrap_transport_iface_init (ExecnetTransportInterface *iface)
{
  iface->open_async = example_wrap_transport_open_async;
  /* open_finish: the default one takes the connection from the GTask. */
  iface->get_keys = example_wrap_transport_get_keys;
  iface->check_xspec = example_wrap_transport_check_xspec;
}

static void
example_wrap_transport_class_init (ExampleWrapTransportClass *klass)
{
}

static void
example_wrap_transport_init (ExampleWrapTransport *self)
{
}

EXECNET_DEFINE_TRANSPORT_MODULE (wrap, EXAMPLE_TYPE_WRAP_TRANSPORT)
