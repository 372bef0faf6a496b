/* test-launcher-args.c: the launcher transports' command lines and error texts
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-launcher.h"

typedef struct
{
  const char *spec;
  const char *words;     /* the launcher's words joined by spaces; NULL: an INVALID_SPEC error */
} ArgvCase;

static char **
build (ExecnetXSpec  *xspec,
       GError       **error)
{
  const char *scheme = execnet_xspec_get_scheme (xspec);

  if (strcmp (scheme, "sudo") == 0)
    return _execnet_launcher_sudo_argv (xspec, error);
  if (strcmp (scheme, "kubectl") == 0)
    return _execnet_launcher_kubectl_argv (xspec, error);
  if (strcmp (scheme, "srun") == 0)
    return _execnet_launcher_srun_argv (xspec, execnet_xspec_has (xspec, "in_allocation"), error);
  return _execnet_launcher_container_argv (scheme, xspec, "execnet-c1", error);
}

static const ArgvCase argv_cases[] = {
  { "sudo", "sudo -n --" },
  { "sudo=builder//python=python3.11//chdir=/srv", "sudo -n -u builder --" },
  { "sudo=-r", NULL },
  { "sudo=a b", NULL },
  { "docker=web", "docker exec -i web" },
  { "podman=web//env:A=1", "podman exec -i web" },
  { "docker//image=debian:12", "docker run -i --rm --log-driver none --name execnet-c1 debian:12" },
  { "podman//image=registry.example/x/y@sha256:00", "podman run -i --rm --log-driver none --name execnet-c1 registry.example/x/y@sha256:00" },
  { "docker", NULL },
  { "docker=web//image=debian", NULL },
  { "podman//image=", NULL },
  { "podman=--privileged", NULL },
  { "kubectl=web-0", "kubectl exec -i web-0 --" },
  { "kubectl=web-0//namespace=prod//container=app//context=east",
    "kubectl --context east --namespace prod exec -i web-0 --container app --" },
  { "kubectl", NULL },
  { "kubectl=web-0//namespace=", NULL },
  { "kubectl=web-0//context=-v", NULL },
  { "srun", "srun -u --ntasks=1 --job-name=execnet --input=0" },
  { "srun=gpu//time=30", "srun -u --ntasks=1 --partition gpu --time 30 --job-name=execnet --input=0" },
  { "srun//srun_args=--mem=2G  --constraint='a b'",
    "srun -u --ntasks=1 --job-name=execnet --mem=2G --constraint=a b --input=0" },
  { "srun//in_allocation", "srun -u --ntasks=1 --input=0" },
  { "srun//srun_args='unterminated", NULL },
  { "srun=--x", NULL },
};

static void
test_argv (gconstpointer data)
{
  const ArgvCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new (c->spec, &error);
  g_auto(GStrv) argv = NULL;

  g_assert_no_error (error);
  argv = build (xspec, &error);
  if (c->words == NULL)
    {
      g_assert_null (argv);
      g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
      g_test_message ("%s: %s", c->spec, error->message);
    }
  else
    {
      g_autofree char *words = NULL;

      g_assert_no_error (error);
      words = g_strjoinv (" ", argv);
      g_assert_cmpstr (words, ==, c->words);
    }
}

typedef struct
{
  const char *spec;
  const char *output;    /* what the launcher wrote on stderr */
  GQuark domain;         /* 0: no explanation */
  int code;
  const char *text;      /* in the message */
} ExplainCase;

static GError *
explain (ExecnetXSpec *xspec,
         const char   *output)
{
  const char *scheme = execnet_xspec_get_scheme (xspec);
  g_autofree char *job = NULL;
  GError *error;

  if (strcmp (scheme, "sudo") == 0)
    return _execnet_launcher_explain_sudo (xspec, output);
  if (strcmp (scheme, "kubectl") == 0)
    return _execnet_launcher_explain_kubectl (xspec, output);
  if (strcmp (scheme, "srun") == 0)
    {
      error = _execnet_launcher_explain_srun (xspec, output, execnet_xspec_has (xspec, "timed_out"), &job);
      if (job != NULL)
        g_assert_cmpstr (job, ==, "42");
      return error;
    }
  return _execnet_launcher_explain_container (scheme, xspec, output);
}

static void
test_explain (gconstpointer data)
{
  const ExplainCase *c = data;
  g_autoptr(GError) parse_error = NULL;
  g_autoptr(ExecnetXSpec) xspec = execnet_xspec_new (c->spec, &parse_error);
  g_autoptr(GError) error = NULL;

  g_assert_no_error (parse_error);
  error = explain (xspec, c->output);
  if (c->domain == 0)
    {
      g_assert_null (error);
      return;
    }
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_error (error, c->domain, c->code);
  g_assert_nonnull (strstr (error->message, c->text));
}

static void
add_explain_cases (void)
{
  const GQuark E = EXECNET_ERROR;
  const ExplainCase cases[] = {
    { "sudo", "sudo: a password is required\n", E, EXECNET_ERROR_AUTHENTICATION, "NOPASSWD" },
    { "sudo=bob", "sudo: unknown user bob\nsudo: error initializing audit plugin sudoers_audit\n",
      E, EXECNET_ERROR_AUTHENTICATION, "(“sudo: unknown user bob”)" },
    { "sudo", "alice is not in the sudoers file.\n", E, EXECNET_ERROR_AUTHENTICATION, "may not run" },
    { "sudo", "Traceback (most recent call last):\n", 0, 0, NULL },
    { "docker=web", "Error response from daemon: No such container: web\n", E, EXECNET_ERROR_HOST_NOT_FOUND,
      "no container “web”" },
    { "podman=web", "Error: no container with name or ID \"web\" found: no such container\n",
      E, EXECNET_ERROR_HOST_NOT_FOUND, "no container “web”" },
    { "docker=web", "Error response from daemon: Container abc is not running\n",
      E, EXECNET_ERROR_CONNECTION_REFUSED, "docker start web" },
    { "docker//image=nope", "Unable to find image 'nope:latest' locally\n"
      "docker: Error response from daemon: pull access denied for nope\n",
      E, EXECNET_ERROR_HOST_NOT_FOUND, "no image “nope”" },
    { "docker=web", "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
      "Is the docker daemon running?\n", E, EXECNET_ERROR_CONNECTION_REFUSED, "cannot reach" },
    { "podman=web", "OCI runtime exec failed: exec: \"python3\": executable file not found in $PATH\n",
      E, EXECNET_ERROR_BOOTSTRAP, "python=" },
    { "kubectl=web-0", "Error from server (NotFound): pods \"web-0\" not found\n",
      E, EXECNET_ERROR_HOST_NOT_FOUND, "no pod “web-0” in the default namespace" },
    { "kubectl=web-0//namespace=x", "Error from server (NotFound): namespaces \"x\" not found\n",
      E, EXECNET_ERROR_HOST_NOT_FOUND, "no namespace “x”" },
    { "kubectl=web-0", "Error from server (Forbidden): pods \"web-0\" is forbidden: User \"u\" "
      "cannot create resource \"pods/exec\"\n", E, EXECNET_ERROR_AUTHENTICATION, "pods/exec" },
    { "kubectl=web-0", "Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout\n",
      E, EXECNET_ERROR_CONNECTION_REFUSED, "API server" },
    { "srun=held//timed_out//connect_timeout=3", "srun: Partition in DOWN state\n"
      "srun: job 42 queued and waiting for resources\n", G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
      "did not start job 42 in held within connect_timeout=3 seconds" },
    { "srun//timed_out", "srun: job 42 queued and waiting for resources\n"
      "srun: job 42 has been allocated resources\n", 0, 0, NULL },
    { "srun=x", "srun: error: Unable to allocate resources: Invalid partition name specified\n",
      E, EXECNET_ERROR_HOST_NOT_FOUND, "no partition “x”" },
    { "srun", "srun: error: Unable to contact slurm controller (connect failure)\n",
      E, EXECNET_ERROR_CONNECTION_REFUSED, "scontrol ping" },
    { "srun//time=x", "srun: error: Invalid --time specification\n", E, EXECNET_ERROR_INVALID_SPEC, "time=x" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/launcher/explain/%" G_GSIZE_FORMAT, i);

      g_test_add_data_func_full (path, g_memdup2 (&cases[i], sizeof cases[i]), test_explain, g_free);
    }
}

static void
test_vagrant_config (void)
{
  const char *output =
    "Host default\n"
    "  HostName 127.0.0.1\n"
    "  User vagrant\n"
    "  Port 2222\n"
    "  IdentityFile \"/home/me/my project/.vagrant/machines/default/virtualbox/private_key\"\n"
    "  Include /etc/evil\n"
    "  LogLevel FATAL\n"
    "\n"
    "Host other\n"
    "  HostName 10.0.0.2\n";
  g_autoptr(GError) error = NULL;
  g_autofree char *host = NULL;
  g_autofree char *config = _execnet_launcher_vagrant_ssh_config (output, &host, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (host, ==, "default");
  g_assert_cmpstr (config, ==,
                   "Host default\n"
                   "  HostName 127.0.0.1\n"
                   "  User vagrant\n"
                   "  Port 2222\n"
                   "  IdentityFile \"/home/me/my project/.vagrant/machines/default/virtualbox/private_key\"\n"
                   "  LogLevel FATAL\n");

  g_clear_pointer (&config, g_free);
  g_clear_pointer (&host, g_free);
  config = _execnet_launcher_vagrant_ssh_config ("A Vagrant environment or target machine is required\n",
                                                 &host, &error);
  g_assert_null (config);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (argv_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/launcher/argv/%" G_GSIZE_FORMAT, i);

      g_test_add_data_func (path, &argv_cases[i], test_argv);
    }
  add_explain_cases ();
  g_test_add_func ("/launcher/vagrant-config", test_vagrant_config);

  return g_test_run ();
}
