/* test-xspec.c: the XSpec parser
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <glib-object.h>

#include <execnet/execnet-xspec.h>
#include <execnet/execnet-error.h>

/* A spec that must parse. @options lists key, value pairs in the order the
 * keys are written, NULL-terminated; @env lists NAME, value pairs. */
typedef struct
{
  const char *name;
  const char *spec;
  const char *scheme;
  const char *id;
  const char *options[32];
  const char *env[8];
} ParseCase;

static const ParseCase parse_cases[] = {
  /* The examples of execnet's documentation. */
  { "ssh-python-chdir", "ssh=wyvern//python=python3.3//chdir=mycache", "ssh", NULL,
    { "ssh", "wyvern", "python", "python3.3", "chdir", "mycache", NULL } },
  { "ssh-options", "ssh=-p 5000 myhost", "ssh", NULL,
    { "ssh", "-p 5000 myhost", NULL } },
  { "popen-python-nice", "popen//python=python2.7//nice=20", "popen", NULL,
    { "popen", "", "python", "python2.7", "nice", "20", NULL } },
  { "popen-dont-write-bytecode", "popen//dont_write_bytecode", "popen", NULL,
    { "popen", "", "dont_write_bytecode", "", NULL } },
  { "popen-env", "popen//env:NAME=value", "popen", NULL,
    { "popen", "", "env:NAME", "value", NULL },
    { "NAME", "value", NULL } },
  { "popen-execmodel", "popen//execmodel=eventlet", "popen", NULL,
    { "popen", "", "execmodel", "eventlet", NULL } },
  { "socket", "socket=192.168.1.4:8888", "socket", NULL,
    { "socket", "192.168.1.4:8888", NULL } },
  { "vagrant-ssh", "vagrant_ssh=default", "vagrant_ssh", NULL,
    { "vagrant_ssh", "default", NULL } },
  { "popen-id", "popen//id=sub1", "popen", "sub1",
    { "popen", "", "id", "sub1", NULL } },
  { "popen", "popen", "popen", NULL,
    { "popen", "", NULL } },
  { "ssh-user-chdir-nice", "ssh=user@host//chdir=work//nice=20", "ssh", NULL,
    { "ssh", "user@host", "chdir", "work", "nice", "20", NULL } },

  /* Values keep everything after the first '='. */
  { "python-args", "popen//python=python3 -X dev", "popen", NULL,
    { "popen", "", "python", "python3 -X dev", NULL } },
  { "value-with-equals", "popen//env:OPTS=a=b=c//chdir=x=y", "popen", NULL,
    { "popen", "", "env:OPTS", "a=b=c", "chdir", "x=y", NULL },
    { "OPTS", "a=b=c", NULL } },
  { "empty-values", "popen//chdir=//env:EMPTY=", "popen", NULL,
    { "popen", "", "chdir", "", "env:EMPTY", "", NULL },
    { "EMPTY", "", NULL } },
  { "env-flag", "popen//env:FLAG", "popen", NULL,
    { "popen", "", "env:FLAG", "", NULL },
    { "FLAG", "", NULL } },
  { "env-several", "env:A=1//popen//env:B=two words//id=w", "popen", "w",
    { "env:A", "1", "popen", "", "env:B", "two words", "id", "w", NULL },
    { "A", "1", "B", "two words", NULL } },
  { "unicode-value", "popen//chdir=répertoire", "popen", NULL,
    { "popen", "", "chdir", "répertoire", NULL } },

  /* The scheme is the first key that is not a general option. */
  { "no-scheme", "python=python3", NULL, NULL,
    { "python", "python3", NULL } },
  { "no-scheme-env", "env:X=1//id=a", NULL, "a",
    { "env:X", "1", "id", "a", NULL },
    { "X", "1", NULL } },
  { "scheme-after-python", "python=x//popen", "popen", NULL,
    { "python", "x", "popen", "", NULL } },
  { "scheme-after-general", "id=g//python=p//chdir=c//nice=1//dont_write_bytecode"
    "//execmodel=thread//via=gw0//connect_timeout=5"
    "//agent=a//env:E=e//socket=h:1//token_file=tok",
    "socket", "g",
    { "id", "g", "python", "p", "chdir", "c", "nice", "1",
      "dont_write_bytecode", "", "execmodel", "thread", "via", "gw0",
      "connect_timeout", "5", "agent", "a", "env:E", "e", "socket", "h:1",
      "token_file", "tok", NULL },
    { "E", "e", NULL } },
  /* A transport's own keys are not general: they follow the scheme. */
  { "transport-key-first", "token_file=tok//socket=h:1", "token_file", NULL,
    { "token_file", "tok", "socket", "h:1", NULL } },
  { "first-scheme-wins", "ssh=h//popen", "ssh", NULL,
    { "ssh", "h", "popen", "", NULL } },
  { "third-party-scheme", "sudo//python=python3", "sudo", NULL,
    { "sudo", "", "python", "python3", NULL } },
  { "via", "popen//via=gw0", "popen", NULL,
    { "popen", "", "via", "gw0", NULL } },
  { "key-characters", "my-transport.v2//x:y_z=1", "my-transport.v2", NULL,
    { "my-transport.v2", "", "x:y_z", "1", NULL } },
};

/* Keys that no case above has, or has only sometimes. */
static const char * const maybe_absent_keys[] = {
  "ssh", "socket", "popen", "chdir", "nice", "python", "via", "id",
  "execmodel", "env:NAME", "env:NOPE", "nonexistent", "", "env:", "_x",
};

static const char *
lookup_pair (const char * const *pairs,
             const char         *key)
{
  for (gsize i = 0; pairs[i] != NULL; i += 2)
    if (strcmp (pairs[i], key) == 0)
      return pairs[i + 1];

  return NULL;
}

static void
test_parse (gconstpointer data)
{
  const ParseCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;
  const char * const *keys;
  GHashTable *env;
  gsize n_options = 0, n_env = 0;

  spec = execnet_xspec_new (c->spec, &error);
  g_assert_no_error (error);
  g_assert_nonnull (spec);

  g_assert_cmpstr (execnet_xspec_to_string (spec), ==, c->spec);
  g_assert_cmpstr (execnet_xspec_get_scheme (spec), ==, c->scheme);
  g_assert_cmpstr (execnet_xspec_get_id (spec), ==, c->id);
  g_assert_cmpstr (execnet_xspec_get (spec, "id"), ==, c->id);
  g_assert_true (execnet_xspec_has (spec, "id") == (c->id != NULL));

  /* Every key, in order, with its value. */
  keys = execnet_xspec_get_keys (spec);
  g_assert_nonnull (keys);
  for (; c->options[2 * n_options] != NULL; n_options++)
    {
      const char *key = c->options[2 * n_options];
      const char *value = c->options[2 * n_options + 1];

      g_assert_cmpstr (keys[n_options], ==, key);
      g_assert_true (execnet_xspec_has (spec, key));
      g_assert_cmpstr (execnet_xspec_get (spec, key), ==, value);
    }
  g_assert_null (keys[n_options]);
  g_assert_cmpuint (g_strv_length ((char **) keys), ==, n_options);

  for (gsize i = 0; i < G_N_ELEMENTS (maybe_absent_keys); i++)
    {
      const char *key = maybe_absent_keys[i];

      if (lookup_pair (c->options, key) != NULL)
        continue;
      g_assert_false (execnet_xspec_has (spec, key));
      g_assert_null (execnet_xspec_get (spec, key));
    }

  env = execnet_xspec_get_env (spec);
  g_assert_nonnull (env);
  for (; c->env[2 * n_env] != NULL; n_env++)
    {
      const char *name = c->env[2 * n_env];
      const char *value = c->env[2 * n_env + 1];
      g_autofree char *key = g_strconcat ("env:", name, NULL);

      g_assert_true (g_hash_table_contains (env, name));
      g_assert_cmpstr (g_hash_table_lookup (env, name), ==, value);
      g_assert_cmpstr (execnet_xspec_get (spec, key), ==, value);
    }
  g_assert_cmpuint (g_hash_table_size (env), ==, n_env);
}

/* A spec that must be refused; the message must contain @fragment. */
typedef struct
{
  const char *name;
  const char *spec;
  const char *fragment;
} InvalidCase;

static const InvalidCase invalid_cases[] = {
  { "empty", "", "empty" },
  { "empty-part", "popen////id=x", "option 2 of 3 is empty" },
  { "trailing-separator", "popen//", "option 2 of 2 is empty" },
  { "leading-separator", "//popen", "option 1 of 2 is empty" },
  { "only-separator", "//", "option 1 of 2 is empty" },
  { "empty-key", "=foo", "(“=foo”) has no key" },
  { "empty-key-later", "popen//=foo", "option 2 (“=foo”) has no key" },
  { "duplicate-key", "popen//id=a//id=b", "key “id” is given more than once" },
  { "duplicate-flag", "popen//popen", "key “popen” is given more than once" },
  { "duplicate-env", "popen//env:A=1//env:A=2", "key “env:A” is given more than once" },
  { "underscore-key", "popen//_private=1", "key “_private” starts with “_”" },
  { "underscore-flag", "_popen", "key “_popen” starts with “_”" },
  { "space-in-key", "popen//chd ir=x", "key “chd ir” contains whitespace" },
  { "space-before-key", "popen// id=x", "key “ id” contains whitespace" },
  { "space-after-key", "popen//id =x", "key “id ” contains whitespace" },
  { "slash-in-key", "popen///id=x", "key “/id” contains “/”" },
  { "non-ascii-key", "popen//clé=1", "key “clé” contains “é”" },
  { "bang-in-key", "popen!", "key “popen!” contains “!”" },
  { "env-without-name", "popen//env:=x", "option 2 (“env:=x”) names no environment variable" },
  { "env-flag-without-name", "popen//env:", "option 2 (“env:”) names no environment variable" },
  { "empty-id", "popen//id=", "key “id” has an empty value" },
  { "id-flag", "id//popen", "key “id” has an empty value" },
  { "not-utf8", "popen//chdir=\xff\xfe", "not valid UTF-8" },
};

static void
test_invalid (gconstpointer data)
{
  const InvalidCase *c = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;

  spec = execnet_xspec_new (c->spec, &error);
  g_assert_null (spec);
  g_assert_error (error, EXECNET_ERROR, EXECNET_ERROR_INVALID_SPEC);
  g_test_message ("%s", error->message);
  g_assert_true (g_utf8_validate (error->message, -1, NULL));

  if (g_strstr_len (error->message, -1, c->fragment) == NULL)
    g_error ("message “%s” does not contain “%s”", error->message, c->fragment);

  /* Every message quotes the whole spec, when there is one to quote. */
  if (*c->spec != '\0' && g_utf8_validate (c->spec, -1, NULL))
    {
      g_autofree char *quoted = g_strdup_printf ("“%s”", c->spec);

      if (g_strstr_len (error->message, -1, quoted) == NULL)
        g_error ("message “%s” does not quote the spec", error->message);
    }
}

static void
test_ref (void)
{
  g_autoptr(GError) error = NULL;
  ExecnetXSpec *spec;
  ExecnetXSpec *ref;

  spec = execnet_xspec_new ("popen//id=a", &error);
  g_assert_no_error (error);

  ref = execnet_xspec_ref (spec);
  g_assert_true (ref == spec);
  execnet_xspec_unref (spec);

  /* Still alive through @ref. */
  g_assert_cmpstr (execnet_xspec_to_string (ref), ==, "popen//id=a");
  g_assert_cmpstr (execnet_xspec_get_id (ref), ==, "a");
  execnet_xspec_unref (ref);
}

static void
test_copy (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;
  g_autoptr(ExecnetXSpec) copy = NULL;
  g_autoptr(ExecnetXSpec) copy2 = NULL;

  spec = execnet_xspec_new ("ssh=host//id=a//env:K=v//chdir=work", &error);
  g_assert_no_error (error);

  execnet_xspec_set_id (spec, "b");
  copy = execnet_xspec_copy (spec);
  g_assert_true (copy != spec);

  g_assert_cmpstr (execnet_xspec_to_string (copy), ==,
                   "ssh=host//id=a//env:K=v//chdir=work");
  g_assert_cmpstr (execnet_xspec_get_scheme (copy), ==, "ssh");
  g_assert_cmpstr (execnet_xspec_get (copy, "chdir"), ==, "work");
  g_assert_cmpstr (g_hash_table_lookup (execnet_xspec_get_env (copy), "K"), ==, "v");
  g_assert_true (execnet_xspec_get_env (copy) != execnet_xspec_get_env (spec));
  g_assert_true (execnet_xspec_get_keys (copy) != execnet_xspec_get_keys (spec));

  /* The copy carries the current id, not the written one... */
  g_assert_cmpstr (execnet_xspec_get_id (copy), ==, "b");

  /* ...and the two ids are independent from now on. */
  execnet_xspec_set_id (copy, "c");
  g_assert_cmpstr (execnet_xspec_get_id (spec), ==, "b");
  g_assert_cmpstr (execnet_xspec_get_id (copy), ==, "c");
  execnet_xspec_set_id (spec, NULL);
  g_assert_cmpstr (execnet_xspec_get_id (copy), ==, "c");

  /* A cleared id stays cleared in a copy. */
  copy2 = execnet_xspec_copy (spec);
  g_assert_null (execnet_xspec_get_id (copy2));
  g_assert_false (execnet_xspec_has (copy2, "id"));
}

static void
test_set_id (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;
  const char *first;
  const char *second;

  spec = execnet_xspec_new ("popen", &error);
  g_assert_no_error (error);
  g_assert_null (execnet_xspec_get_id (spec));
  g_assert_false (execnet_xspec_has (spec, "id"));

  execnet_xspec_set_id (spec, "gw0");
  first = execnet_xspec_get_id (spec);
  g_assert_cmpstr (first, ==, "gw0");
  g_assert_cmpstr (execnet_xspec_get (spec, "id"), ==, "gw0");
  g_assert_true (execnet_xspec_has (spec, "id"));

  /* The text and the written keys do not change. */
  g_assert_cmpstr (execnet_xspec_to_string (spec), ==, "popen");
  g_assert_cmpstr (execnet_xspec_get_keys (spec)[0], ==, "popen");
  g_assert_null (execnet_xspec_get_keys (spec)[1]);

  /* Setting the same id again changes nothing. */
  execnet_xspec_set_id (spec, "gw0");
  g_assert_true (execnet_xspec_get_id (spec) == first);

  execnet_xspec_set_id (spec, "gw1");
  second = execnet_xspec_get_id (spec);
  g_assert_cmpstr (second, ==, "gw1");
  /* A string returned before the change stays readable. */
  g_assert_cmpstr (first, ==, "gw0");

  execnet_xspec_set_id (spec, NULL);
  g_assert_null (execnet_xspec_get_id (spec));
  g_assert_null (execnet_xspec_get (spec, "id"));
  g_assert_false (execnet_xspec_has (spec, "id"));
  g_assert_cmpstr (second, ==, "gw1");
}

static void
test_set_id_written (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;

  spec = execnet_xspec_new ("popen//id=sub1", &error);
  g_assert_no_error (error);

  execnet_xspec_set_id (spec, "other");
  g_assert_cmpstr (execnet_xspec_get_id (spec), ==, "other");
  g_assert_cmpstr (execnet_xspec_get (spec, "id"), ==, "other");
  g_assert_cmpstr (execnet_xspec_to_string (spec), ==, "popen//id=sub1");
  g_assert_cmpstr (execnet_xspec_get_keys (spec)[1], ==, "id");
}

#define N_THREADS 4
#define N_ROUNDS 2000

static gpointer
set_id_thread (gpointer data)
{
  ExecnetXSpec *spec = data;

  for (guint i = 0; i < N_ROUNDS; i++)
    {
      g_autofree char *id = g_strdup_printf ("gw%u", i % 7);
      const char *read;

      execnet_xspec_set_id (spec, id);
      read = execnet_xspec_get_id (spec);
      g_assert_nonnull (read);
      g_assert_true (g_str_has_prefix (read, "gw"));
    }

  return NULL;
}

/* Concurrent readers and writers of the id; run under ThreadSanitizer or
 * AddressSanitizer this catches a use of a freed id. */
static void
test_set_id_threads (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;
  GThread *threads[N_THREADS];

  spec = execnet_xspec_new ("popen", &error);
  g_assert_no_error (error);

  for (guint i = 0; i < N_THREADS; i++)
    threads[i] = g_thread_new ("set-id", set_id_thread, spec);
  for (guint i = 0; i < N_THREADS; i++)
    g_thread_join (threads[i]);

  g_assert_true (g_str_has_prefix (execnet_xspec_get_id (spec), "gw"));
}

static void
test_gvalue (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;
  g_auto(GValue) value = G_VALUE_INIT;
  g_auto(GValue) value2 = G_VALUE_INIT;
  ExecnetXSpec *got;
  ExecnetXSpec *dup;

  g_assert_true (G_TYPE_IS_BOXED (EXECNET_TYPE_XSPEC));
  g_assert_cmpstr (g_type_name (EXECNET_TYPE_XSPEC), ==, "ExecnetXSpec");

  spec = execnet_xspec_new ("ssh=host//id=a", &error);
  g_assert_no_error (error);

  g_value_init (&value, EXECNET_TYPE_XSPEC);
  g_value_set_boxed (&value, spec);
  got = g_value_get_boxed (&value);
  /* Boxed copies are references: the id is shared, as in GUri. */
  g_assert_true (got == spec);

  g_value_init (&value2, EXECNET_TYPE_XSPEC);
  g_value_copy (&value, &value2);
  g_assert_true (g_value_get_boxed (&value2) == spec);

  dup = g_value_dup_boxed (&value);
  g_assert_true (dup == spec);
  execnet_xspec_unref (dup);

  dup = g_boxed_copy (EXECNET_TYPE_XSPEC, spec);
  g_assert_cmpstr (execnet_xspec_to_string (dup), ==, "ssh=host//id=a");
  g_boxed_free (EXECNET_TYPE_XSPEC, dup);

  g_value_take_boxed (&value, execnet_xspec_copy (spec));
  got = g_value_get_boxed (&value);
  g_assert_true (got != spec);
  g_assert_cmpstr (execnet_xspec_to_string (got), ==, "ssh=host//id=a");
  g_assert_cmpstr (execnet_xspec_get_id (got), ==, "a");
}

static void
test_long_spec (void)
{
  g_autoptr(GString) text = g_string_new ("popen");
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) spec = NULL;
  const char * const *keys;

  for (guint i = 0; i < 1000; i++)
    g_string_append_printf (text, "//env:V%u=%u", i, i);

  spec = execnet_xspec_new (text->str, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_hash_table_size (execnet_xspec_get_env (spec)), ==, 1000);
  g_assert_cmpstr (g_hash_table_lookup (execnet_xspec_get_env (spec), "V999"), ==, "999");
  keys = execnet_xspec_get_keys (spec);
  g_assert_cmpuint (g_strv_length ((char **) keys), ==, 1001);
  g_assert_cmpstr (keys[1000], ==, "env:V999");
}

/* execnet_error_escape_text(), which every error quoting foreign text
 * (spec text among it) goes through. */
static void
test_escape_text (void)
{
  static const struct {
    const char *in;
    gssize      length;
    gsize       max;
    const char *out;
  } cases[] = {
    { "plain text", -1, 0, "plain text" },
    { "two\nlines\tand a tab", -1, 0, "two\nlines\tand a tab" },
    { "\x1b[2Jclear", -1, 0, "\\x1b[2Jclear" },
    { "bell\a del\x7f", -1, 0, "bell\\x07 del\\x7f" },
    { "bad \xff\xfe utf8", -1, 0, "bad \\xff\\xfe utf8" },
    { "nul\0inside", 10, 0, "nul\\x00inside" },
    { "c1 \xc2\x9b csi", -1, 0, "c1 \\u{009b} csi" },
    { "bidi \xe2\x80\xae override", -1, 0, "bidi \\u{202e} override" },
    { "caf\xc3\xa9 ok", -1, 0, "caf\xc3\xa9 ok" },
    { "0123456789", -1, 4, "01 […6 bytes left out…] 89" },
    /* A cut does not split a character. */
    { "\xc3\xa9\xc3\xa9\xc3\xa9", -1, 4, "\xc3\xa9 […2 bytes left out…] \xc3\xa9" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = execnet_error_escape_text (cases[i].in, cases[i].length, cases[i].max);

      g_assert_true (g_utf8_validate (out, -1, NULL));
      g_assert_cmpstr (out, ==, cases[i].out);
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (gsize i = 0; i < G_N_ELEMENTS (parse_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/xspec/parse/%s", parse_cases[i].name);
      g_test_add_data_func (path, &parse_cases[i], test_parse);
    }

  for (gsize i = 0; i < G_N_ELEMENTS (invalid_cases); i++)
    {
      g_autofree char *path = g_strdup_printf ("/xspec/invalid/%s", invalid_cases[i].name);
      g_test_add_data_func (path, &invalid_cases[i], test_invalid);
    }

  g_test_add_func ("/xspec/parse/long", test_long_spec);
  g_test_add_func ("/xspec/ref", test_ref);
  g_test_add_func ("/xspec/copy", test_copy);
  g_test_add_func ("/xspec/set-id/basic", test_set_id);
  g_test_add_func ("/xspec/set-id/written", test_set_id_written);
  g_test_add_func ("/xspec/set-id/threads", test_set_id_threads);
  g_test_add_func ("/xspec/gvalue", test_gvalue);

  g_test_add_func ("/error/escape-text", test_escape_text);

  return g_test_run ();
}
