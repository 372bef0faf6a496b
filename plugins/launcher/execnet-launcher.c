/* execnet-launcher.c: command lines and error messages of the launcher transports
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "execnet-launcher.h"

/* Each launcher transport runs a command that starts the Python of the
 * spec somewhere else: `sudo -n -u USER`, `docker exec -i CONTAINER`,
 * `kubectl exec -i POD --`, `srun -u`. The Python command line follows the
 * launcher's words, so everything here is about those words, and about
 * what the launchers say on stderr when they cannot start it: that text is
 * turned into an error that names the problem and what to do, because the
 * launchers' own messages assume an interactive user who knows the tool. */

/* A value that a launcher would take as one of its own options. */
static gboolean
check_word (const char  *scheme,
            const char  *key,
            const char  *value,
            const char  *what,
            GError     **error)
{
  if (value == NULL || *value == '\0')
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "%s: %s= is empty; give %s", scheme, key, what);
      return FALSE;
    }
  if (value[0] == '-' || strpbrk (value, " \t\n") != NULL)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "%s: %s=%s is not a valid name; give %s", scheme, key, value, what);
      return FALSE;
    }
  return TRUE;
}

/* The value of an optional key, checked if present; %NULL if absent. */
static gboolean
get_optional_word (ExecnetXSpec  *xspec,
                   const char    *scheme,
                   const char    *key,
                   const char    *what,
                   const char   **out_value,
                   GError       **error)
{
  *out_value = execnet_xspec_get (xspec, key);
  return *out_value == NULL || check_word (scheme, key, *out_value, what, error);
}

char **
_execnet_launcher_sudo_argv (ExecnetXSpec  *xspec,
                             GError       **error)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  const char *user = execnet_xspec_get (xspec, "sudo");

  /* -n: never prompt. A password prompt on a pipe would hang the gateway
   * until connect_timeout=; sudo says "a password is required" instead. */
  g_strv_builder_add_many (builder, "sudo", "-n", NULL);
  if (user != NULL && *user != '\0')
    {
      if (!check_word ("sudo", "sudo", user, "a user name, such as sudo=nobody", error))
        return NULL;
      g_strv_builder_add_many (builder, "-u", user, NULL);
    }
  g_strv_builder_add (builder, "--");

  return g_strv_builder_end (builder);
}

char **
_execnet_launcher_container_argv (const char    *engine,
                                  ExecnetXSpec  *xspec,
                                  const char    *container_name,
                                  GError       **error)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  const char *container = execnet_xspec_get (xspec, engine);
  const char *image = execnet_xspec_get (xspec, "image");
  g_autofree char *what = g_strdup_printf ("the name of a running container (%s=NAME), or "
                                           "an image to start (%s//image=IMAGE)", engine, engine);

  if (container != NULL && *container != '\0' && image != NULL)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                   "%s: give either %s=CONTAINER (a running container) or %s//image=IMAGE "
                   "(a fresh one), not both", engine, engine, engine);
      return NULL;
    }

  if (image != NULL)
    {
      if (!check_word (engine, "image", image, "an image name, such as image=debian:12", error))
        return NULL;
      /* --rm: the container goes when Python ends, which it does when
       * its stdin ends, also when we are killed (the engine client dies,
       * and the attached stdin with it). No log driver: the stream is
       * ours, not something to keep on disk. */
      g_strv_builder_add_many (builder, engine, "run", "-i", "--rm",
                               "--log-driver", "none", NULL);
      if (container_name != NULL)
        g_strv_builder_add_many (builder, "--name", container_name, NULL);
      g_strv_builder_add (builder, image);
    }
  else
    {
      if (!check_word (engine, engine, container, what, error))
        return NULL;
      g_strv_builder_add_many (builder, engine, "exec", "-i", container, NULL);
    }

  return g_strv_builder_end (builder);
}

char **
_execnet_launcher_kubectl_argv (ExecnetXSpec  *xspec,
                                GError       **error)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  const char *pod = execnet_xspec_get (xspec, "kubectl");
  const char *namespace, *container, *context;

  if (!check_word ("kubectl", "kubectl", pod, "the name of a running pod, such as kubectl=web-0", error) ||
      !get_optional_word (xspec, "kubectl", "namespace", "a namespace, such as namespace=default",
                          &namespace, error) ||
      !get_optional_word (xspec, "kubectl", "container", "a container of the pod, such as container=app",
                          &container, error) ||
      !get_optional_word (xspec, "kubectl", "context", "a context of your kubeconfig, such as context=prod",
                          &context, error))
    return NULL;

  g_strv_builder_add (builder, "kubectl");
  if (context != NULL)
    g_strv_builder_add_many (builder, "--context", context, NULL);
  if (namespace != NULL)
    g_strv_builder_add_many (builder, "--namespace", namespace, NULL);
  g_strv_builder_add_many (builder, "exec", "-i", pod, NULL);
  if (container != NULL)
    g_strv_builder_add_many (builder, "--container", container, NULL);
  g_strv_builder_add (builder, "--");

  return g_strv_builder_end (builder);
}

char **
_execnet_launcher_srun_argv (ExecnetXSpec  *xspec,
                             gboolean       in_allocation,
                             GError       **error)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  const char *partition = execnet_xspec_get (xspec, "srun");
  const char *time_limit, *extra;

  if ((partition != NULL && *partition != '\0' &&
       !check_word ("srun", "srun", partition, "a partition name, such as srun=debug", error)) ||
      !get_optional_word (xspec, "srun", "time", "a time limit, such as time=10 or time=1:00:00",
                          &time_limit, error))
    return NULL;

  /* -u: unbuffered, or srun holds back a partial line (the bootstrap
   * answer is one byte without a newline) until more output comes.
   * One task, and stdin goes to task 0 only whatever srun_args= asks. */
  g_strv_builder_add_many (builder, "srun", "-u", "--ntasks=1", NULL);
  if (partition != NULL && *partition != '\0')
    g_strv_builder_add_many (builder, "--partition", partition, NULL);
  if (time_limit != NULL)
    g_strv_builder_add_many (builder, "--time", time_limit, NULL);
  /* A fresh job gets a name that says who made it (squeue shows it); a
   * step inside an existing allocation keeps the job's. */
  if (!in_allocation)
    g_strv_builder_add (builder, "--job-name=execnet");

  extra = execnet_xspec_get (xspec, "srun_args");
  if (extra != NULL && *extra != '\0')
    {
      g_auto(GStrv) words = NULL;
      g_autoptr(GError) local_error = NULL;

      if (!g_shell_parse_argv (extra, NULL, &words, &local_error))
        {
          g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                       "srun: cannot split srun_args=%s into words: %s", extra, local_error->message);
          return NULL;
        }
      g_strv_builder_addv (builder, (const char **) words);
    }
  g_strv_builder_add (builder, "--input=0");

  return g_strv_builder_end (builder);
}

static gboolean
contains (const char *output,
          const char *text)
{
  return output != NULL && strstr (output, text) != NULL;
}

/* The last line of @output, without the launcher's "Error: " decoration,
 * for quoting. */
static char *
last_line (const char *output)
{
  g_auto(GStrv) lines = NULL;

  if (output == NULL)
    return g_strdup ("");
  lines = g_strsplit (output, "\n", -1);
  for (gint i = (gint) g_strv_length (lines) - 1; i >= 0; i--)
    {
      char *line = g_strstrip (lines[i]);

      if (*line != '\0')
        return g_strdup (line);
    }
  return g_strdup ("");
}

/* The line of @output that holds @text, stripped, for quoting; %NULL if
 * there is none. */
static char *
find_line (const char *output,
           const char *text)
{
  const char *found = output != NULL ? strstr (output, text) : NULL;
  const char *start, *end;

  if (found == NULL)
    return NULL;
  for (start = found; start > output && start[-1] != '\n'; start--)
    ;
  end = strchrnul (found, '\n');
  return g_strstrip (g_strndup (start, end - start));
}

GError *
_execnet_launcher_explain_sudo (ExecnetXSpec *xspec,
                                const char   *output)
{
  const char *user = execnet_xspec_get (xspec, "sudo");
  g_autofree char *quoted = last_line (output);
  g_autofree char *unknown = find_line (output, "unknown user");

  if (user == NULL || *user == '\0')
    user = "root";

  if (contains (output, "a password is required") || contains (output, "a terminal is required"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                        "sudo: running Python as “%s” needs a password, and gateways cannot "
                        "type one (“%s”); allow it without one with a NOPASSWD rule in "
                        "sudoers, such as “%s ALL=(%s) NOPASSWD: ALL” (visudo)",
                        user, quoted, g_get_user_name (), user);
  if (contains (output, "not in the sudoers file") || contains (output, "is not allowed to"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                        "sudo: “%s” may not run Python as “%s” (“%s”); a NOPASSWD rule in "
                        "sudoers must allow it", g_get_user_name (), user, quoted);
  if (unknown != NULL)
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                        "sudo: there is no user “%s” on this machine (“%s”); name an existing "
                        "one with sudo=USER", user, unknown);
  return NULL;
}

GError *
_execnet_launcher_explain_container (const char   *engine,
                                     ExecnetXSpec *xspec,
                                     const char   *output)
{
  const char *image = execnet_xspec_get (xspec, "image");
  const char *container = execnet_xspec_get (xspec, engine);
  g_autofree char *quoted = last_line (output);

  if (contains (output, "Cannot connect to the Docker daemon") ||
      contains (output, "Cannot connect to Podman") ||
      contains (output, "cannot connect to Podman"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                        "%s: cannot reach the container engine (“%s”); is its service "
                        "running, and does DOCKER_HOST or CONTAINER_HOST point at it?",
                        engine, quoted);
  if (contains (output, "permission denied while trying to connect"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                        "%s: this user may not use the container engine (“%s”); join its "
                        "group or run as a user who may", engine, quoted);

  if (image != NULL)
    {
      if (contains (output, "Unable to find image") || contains (output, "image not known") ||
          contains (output, "pull access denied") || contains (output, "manifest unknown") ||
          contains (output, "initializing source") || contains (output, "repository does not exist") ||
          contains (output, "invalid reference format"))
        return g_error_new (EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                            "%s: there is no image “%s”, here or in a registry (“%s”); "
                            "build or pull it first (%s pull %s), or check its name",
                            engine, image, quoted, engine, image);
    }
  else
    {
      if (contains (output, "No such container") || contains (output, "no container with name or ID") ||
          contains (output, "no such container"))
        return g_error_new (EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                            "%s: there is no container “%s” (“%s”); start it first (%s ps "
                            "lists the running ones), or start a fresh one with "
                            "%s//image=IMAGE", engine, container, quoted, engine, engine);
      if (contains (output, "is not running") || contains (output, "container state improper") ||
          contains (output, "is paused") || contains (output, "is restarting"))
        return g_error_new (EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                            "%s: the container “%s” is not running (“%s”); start it with "
                            "%s start %s", engine, container, quoted, engine, container);
    }

  if (contains (output, "executable file not found") || contains (output, "no such file or directory"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
                        "%s: the container has no such Python interpreter (“%s”); name one "
                        "it has with python=", engine, quoted);
  return NULL;
}

GError *
_execnet_launcher_explain_kubectl (ExecnetXSpec *xspec,
                                   const char   *output)
{
  const char *pod = execnet_xspec_get (xspec, "kubectl");
  const char *namespace = execnet_xspec_get (xspec, "namespace");
  const char *context = execnet_xspec_get (xspec, "context");
  g_autofree char *quoted = last_line (output);

  if (namespace == NULL)
    namespace = "the default namespace";

  if (context != NULL && (contains (output, "does not exist") || contains (output, "context was not found")) &&
      contains (output, "context"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                        "kubectl: your kubeconfig has no context “%s” (“%s”); list them with "
                        "kubectl config get-contexts", context, quoted);
  if (contains (output, "Unable to connect to the server") || contains (output, "connection refused") ||
      contains (output, "The connection to the server"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                        "kubectl: cannot reach the cluster's API server (“%s”); check the "
                        "context (context=) and that the cluster is up", quoted);
  if (contains (output, "Forbidden") || contains (output, "Unauthorized") ||
      contains (output, "You must be logged in") || contains (output, "forbidden"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_AUTHENTICATION,
                        "kubectl: the cluster refuses to exec into pod “%s” (“%s”); your "
                        "credentials need the pods/exec permission there", pod, quoted);
  if (contains (output, "is not valid for pod") || contains (output, "container not found"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                        "kubectl: pod “%s” has no container “%s” (“%s”); name one of its "
                        "containers with container=", pod, execnet_xspec_get (xspec, "container"),
                        quoted);
  if (contains (output, "NotFound") || contains (output, "not found"))
    {
      if (contains (output, "namespaces"))
        return g_error_new (EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                            "kubectl: there is no namespace “%s” (“%s”); list them with "
                            "kubectl get namespaces", namespace, quoted);
      return g_error_new (EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                          "kubectl: there is no pod “%s” in %s (“%s”); list them with "
                          "kubectl get pods", pod, namespace, quoted);
    }
  return NULL;
}

/* The job id in srun's "srun: job 42 queued and waiting for resources". */
static char *
find_queued_job (const char *output)
{
  const char *p = output != NULL ? strstr (output, "srun: job ") : NULL;
  const char *digits, *end;

  if (p == NULL)
    return NULL;
  digits = p + strlen ("srun: job ");
  for (end = digits; g_ascii_isdigit (*end); end++)
    ;
  if (end == digits || !g_str_has_prefix (end, " queued"))
    return NULL;
  return g_strndup (digits, end - digits);
}

GError *
_execnet_launcher_explain_srun (ExecnetXSpec  *xspec,
                                const char    *output,
                                gboolean       timed_out,
                                char         **out_job_id)
{
  const char *partition = execnet_xspec_get (xspec, "srun");
  g_autofree char *quoted = last_line (output);
  g_autofree char *job = find_queued_job (output);

  *out_job_id = NULL;
  if (partition == NULL || *partition == '\0')
    partition = "the default partition";

  if (timed_out && job != NULL && !contains (output, "has been allocated resources"))
    {
      const char *timeout = execnet_xspec_get (xspec, "connect_timeout");
      GError *error;

      error = g_error_new (G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                           "srun: Slurm did not start job %s in %s within connect_timeout=%s "
                           "seconds, so it was cancelled; raise connect_timeout=, or choose a "
                           "partition with free nodes (sinfo)",
                           job, partition, timeout != NULL ? timeout : "60");
      *out_job_id = g_steal_pointer (&job);
      return error;
    }
  if (contains (output, "Invalid partition name"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                        "srun: Slurm has no partition “%s” (“%s”); list them with sinfo",
                        partition, quoted);
  if (contains (output, "Unable to contact slurm controller") ||
      contains (output, "Zero Bytes were transmitted") ||
      contains (output, "Connection refused"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                        "srun: cannot reach the Slurm controller (“%s”); check that slurmctld "
                        "runs (scontrol ping) and that SLURM_CONF names its configuration",
                        quoted);
  if (contains (output, "Invalid time limit") || contains (output, "Invalid --time") ||
      contains (output, "Requested time limit is invalid") ||
      contains (output, "invalid time limit"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC,
                        "srun: Slurm refuses time=%s (“%s”); give minutes, or "
                        "[days-]hours:minutes:seconds within the partition's limit",
                        execnet_xspec_get (xspec, "time"), quoted);
  if (contains (output, "Unable to allocate resources") || contains (output, "Unable to create step"))
    return g_error_new (EXECNET_ERROR, EXECNET_ERROR_CONNECTION_REFUSED,
                        "srun: Slurm cannot run the job in %s (“%s”); check srun_args= and "
                        "the partition's limits (sinfo, scontrol show partition)",
                        partition, quoted);
  return NULL;
}

char *
_execnet_launcher_vagrant_ssh_config (const char  *output,
                                      char       **out_host,
                                      GError     **error)
{
  g_auto(GStrv) lines = g_strsplit (output != NULL ? output : "", "\n", -1);
  g_autoptr(GString) config = g_string_new (NULL);
  g_autofree char *host = NULL;
  gboolean has_host_name = FALSE;

  /* `vagrant ssh-config NAME` prints one "Host NAME" block of
   * "  Key value" lines in ssh_config syntax. Only that block is kept, and
   * only lines that look like options, so that nothing else the tool
   * prints (warnings, a second machine) can change what ssh does. */
  for (guint i = 0; lines[i] != NULL; i++)
    {
      char *line = g_strstrip (lines[i]);
      const char *value;
      gsize key_len;

      if (*line == '\0' || *line == '#')
        continue;
      key_len = strcspn (line, " \t=");
      value = line + key_len;
      value += strspn (value, " \t=");
      for (gsize k = 0; k < key_len; k++)
        if (!g_ascii_isalnum (line[k]))
          goto not_an_option;

      if (g_ascii_strncasecmp (line, "Host", key_len) == 0 && key_len == 4)
        {
          if (host != NULL)
            break;
          if (*value == '\0' || strpbrk (value, " \t*?!") != NULL)
            goto not_an_option;
          host = g_strdup (value);
          g_string_append_printf (config, "Host %s\n", host);
          continue;
        }
      if (host == NULL || *value == '\0')
        continue;
      /* Nothing that pulls in other files or other hosts' rules. */
      if ((key_len == 5 && g_ascii_strncasecmp (line, "Match", 5) == 0) ||
          (key_len == 7 && g_ascii_strncasecmp (line, "Include", 7) == 0))
        continue;
      if (key_len == 8 && g_ascii_strncasecmp (line, "HostName", 8) == 0)
        has_host_name = TRUE;
      g_string_append_printf (config, "  %s\n", line);
      continue;

    not_an_option:
      if (host != NULL)
        break;
    }

  if (host == NULL || !has_host_name)
    {
      g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_HOST_NOT_FOUND,
                   "vagrant_ssh: `vagrant ssh-config` printed no Host block with a HostName "
                   "(it printed: “%.200s”); is the machine created and running (vagrant status)?",
                   output != NULL ? output : "");
      return NULL;
    }

  *out_host = g_steal_pointer (&host);
  return g_string_free (g_steal_pointer (&config), FALSE);
}

gboolean
_execnet_launcher_check_program (const char  *scheme,
                                 const char  *program,
                                 const char  *what_to_do,
                                 GError     **error)
{
  g_autofree char *path = g_find_program_in_path (program);

  if (path != NULL)
    return TRUE;

  g_set_error (error, EXECNET_ERROR, EXECNET_ERROR_BOOTSTRAP,
               "%s: the command “%s” is not installed here (not found in PATH); %s",
               scheme, program, what_to_do);
  return FALSE;
}

void
_execnet_launcher_open_async (ExecnetTransport        *transport,
                              ExecnetXSpec            *xspec,
                              const char              *program,
                              const char              *install_hint,
                              ExecnetLauncherArgvFunc  build_argv,
                              GCancellable            *cancellable,
                              GAsyncReadyCallback      callback,
                              gpointer                 user_data)
{
  g_autoptr(GTask) task = g_task_new (transport, cancellable, callback, user_data);
  g_auto(GStrv) argv = NULL;
  ExecnetConnection *connection;
  GError *error = NULL;

  g_task_set_source_tag (task, _execnet_launcher_open_async);

  if (!_execnet_launcher_check_program (execnet_xspec_get_scheme (xspec), program, install_hint, &error) ||
      (argv = build_argv (xspec, &error)) == NULL ||
      (connection = execnet_transport_spawn (xspec, (const char * const *) argv, cancellable, &error)) == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, connection, g_object_unref);
}
