/* execnet-tool-trace.c: execnet-tool trace
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "execnet-tool.h"

/* trace runs code like exec, with a wire observer on the gateway
 * (execnet_gateway_set_wire_observer): every frame in and out is printed as
 * it crosses the wire, with its value decoded. Outgoing frames are seen in
 * the thread that sends them and incoming ones in the library's I/O thread,
 * so records are printed under a lock, which also keeps their timestamps in
 * order. The tracer is reference counted through the observer's destroy
 * notification, because an observer call may still run in the I/O thread
 * after the command has removed it. */

static char *code = NULL;
static char **send_texts = NULL;
static double timeout = -1;
static char *color_when = NULL;

static const GOptionEntry entries[] = {
  { "code", 'c', 0, G_OPTION_ARG_STRING, &code, "Run CODE instead of a file", "CODE" },
  { "send", 's', 0, G_OPTION_ARG_STRING_ARRAY, &send_texts,
    "Send VALUE (GVariant text) to the code's channel; repeat for more", "VALUE" },
  { "timeout", 't', 0, G_OPTION_ARG_DOUBLE, &timeout,
    "Give up after S seconds, counting from the start of the gateway", "S" },
  { "color", 0, 0, G_OPTION_ARG_STRING, &color_when,
    "Colour the direction and errors: auto (on a terminal, unless NO_COLOR is set), always or never",
    "WHEN" },
  EXECNET_TOOL_JSON_OPTION ("Print each record as one line of JSON"),
  G_OPTION_ENTRY_NULL
};

typedef struct
{
  gatomicrefcount ref_count;
  GMutex lock;              /* guards the output and write_error */
  gint64 start;             /* monotonic microseconds */
  GError *write_error;      /* (owned) (nullable) stdout failed */
  gboolean color;           /* text lines get ANSI colours */
} Tracer;

/* SGR sequences: outgoing frames cyan, incoming green, errors bold red. */
#define COLOR_OUT   "\033[36m"
#define COLOR_IN    "\033[32m"
#define COLOR_ERROR "\033[1;31m"
#define COLOR_RESET "\033[0m"

/* --color=WHEN. "auto" colours when stdout is a terminal that can show
 * colours and the user did not set NO_COLOR (https://no-color.org: any
 * non-empty value); an explicit "always" wins over NO_COLOR, as that
 * convention asks of command-line options. */
static gboolean
decide_color (const char  *when,
              gboolean    *color,
              GError     **error)
{
  const char *no_color = g_getenv ("NO_COLOR");
  const char *term = g_getenv ("TERM");

  if (when == NULL || g_strcmp0 (when, "auto") == 0)
    *color = isatty (STDOUT_FILENO) &&
             (no_color == NULL || *no_color == '\0') &&
             g_strcmp0 (term, "dumb") != 0;
  else if (g_strcmp0 (when, "always") == 0)
    *color = TRUE;
  else if (g_strcmp0 (when, "never") == 0)
    *color = FALSE;
  else
    {
      g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                   "--color=%s: give auto, always or never", when);
      return FALSE;
    }
  return TRUE;
}

static Tracer *
tracer_ref (Tracer *self)
{
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

static void
tracer_unref (gpointer data)
{
  Tracer *self = data;

  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  g_clear_error (&self->write_error);
  g_mutex_clear (&self->lock);
  g_free (self);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Tracer, tracer_unref)

/* The value a frame carries, for the reader: the code of an exec, the
 * traceback of an error close, the item of a data frame. */
static GVariant *
decode_payload (guint   code,
                GBytes *payload)
{
  g_autoptr(GByteArray) versioned = NULL;
  g_autoptr(GBytes) bytes = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GError) error = NULL;
  gsize size;
  const guint8 *data = g_bytes_get_data (payload, &size);
  guint8 version = EXECNET_DUMPS_VERSION;

  if (size == 0)
    return NULL;

  versioned = g_byte_array_sized_new (size + 1);
  g_byte_array_append (versioned, &version, 1);
  g_byte_array_append (versioned, data, size);
  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&versioned));

  value = execnet_loads (bytes, &error);
  if (value == NULL)
    return g_variant_ref_sink (g_variant_new_printf ("<undecodable: %s>", error->message));

  /* CHANNEL_EXEC carries (source, file name, function, kwargs). */
  if (code == 3 && g_variant_is_of_type (value, G_VARIANT_TYPE_TUPLE) &&
      g_variant_n_children (value) == 4)
    return g_variant_get_child_value (value, 0);

  return g_steal_pointer (&value);
}

/* Any thread, from the library. */
static void
on_frame (ExecnetGateway     *gateway,
          gboolean            outgoing,
          ExecnetMessageCode  code,
          gint                channel,
          GBytes             *payload,
          gpointer            user_data)
{
  Tracer *self = user_data;
  g_autoptr(GVariant) value = decode_payload (code, payload);
  g_autofree char *line = NULL;
  const char *message = execnet_message_code_name (code);
  gint64 time;

  g_mutex_lock (&self->lock);
  time = g_get_monotonic_time () - self->start;

  if (execnet_tool_json ())
    {
      g_auto(GVariantBuilder) record = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
      g_autoptr(GVariant) root = NULL;

      g_variant_builder_add (&record, "{sv}", "time_us", g_variant_new_int64 (time));
      g_variant_builder_add (&record, "{sv}", "gateway",
                             g_variant_new_string (execnet_gateway_get_id (gateway)));
      g_variant_builder_add (&record, "{sv}", "direction", g_variant_new_string (outgoing ? "out" : "in"));
      g_variant_builder_add (&record, "{sv}", "message", g_variant_new_string (message));
      g_variant_builder_add (&record, "{sv}", "channel", g_variant_new_int32 (channel));
      g_variant_builder_add (&record, "{sv}", "length", g_variant_new_uint64 (g_bytes_get_size (payload)));
      if (value != NULL)
        g_variant_builder_add (&record, "{sv}", "value", value);
      root = g_variant_ref_sink (g_variant_builder_end (&record));
      line = execnet_tool_value_to_json (root);
    }
  else
    {
      g_autofree char *text = value != NULL ? g_variant_print (value, TRUE) : NULL;
      gboolean is_error = code == EXECNET_MESSAGE_CHANNEL_CLOSE_ERROR;
      const char *start = "";
      const char *end = "";

      if (self->color)
        {
          start = is_error ? COLOR_ERROR : outgoing ? COLOR_OUT : COLOR_IN;
          end = COLOR_RESET;
        }
      /* The arrow and the message name carry the colour; the traceback
       * of an error close too. */
      line = g_strdup_printf ("%8.3f %s %s%s %s%s channel=%d length=%" G_GSIZE_FORMAT "%s%s%s%s",
                              time / 1e6, execnet_gateway_get_id (gateway),
                              start, outgoing ? "->" : "<-", message, end, channel,
                              g_bytes_get_size (payload),
                              text != NULL ? " " : "",
                              is_error ? start : "", text != NULL ? text : "",
                              is_error ? end : "");
    }

  if (self->write_error == NULL)
    execnet_tool_write_line (line, &self->write_error);
  g_mutex_unlock (&self->lock);
}

/* Watches the gateway from before the code is sent. */
static void
observe (ExecnetGateway *gateway,
         gpointer        data)
{
  execnet_gateway_set_wire_observer (gateway, on_frame, tracer_ref (data), tracer_unref);
}

int
execnet_tool_trace (int    argc,
                    char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(ExecnetXSpec) xspec = NULL;
  g_autoptr(ExecnetGroup) group = NULL;
  g_autoptr(GPtrArray) values = NULL;
  g_autoptr(Tracer) tracer = NULL;
  g_autofree char *source = NULL;
  int exit_code;
  gboolean ok;

  context = g_option_context_new ("SPEC [FILE | -]");
  g_option_context_set_summary (context,
    "Run Python code like “execnet-tool exec” and show the wire while it runs:\n"
    "one line per message in and out, with a timestamp, the gateway, the\n"
    "direction (-> to the remote side, <- from it), the message name, the\n"
    "channel id, the payload length and the decoded value (the source code\n"
    "for CHANNEL_EXEC, the remote traceback for CHANNEL_CLOSE_ERROR).\n"
    "Programs can get the same through execnet_gateway_set_wire_observer(),\n"
    "and EXECNET_DEBUG=wire prints the frame headers of any program.\n"
    "On a terminal the direction is coloured (-> cyan, <- green) and errors\n"
    "are red, unless NO_COLOR is set or --color=never is given.");
  g_option_context_set_description (context,
    "Exit status: as for exec: 0 when the code finished, 1 when it raised,\n"
    "2 for bad arguments or a bad spec, 3 for an unknown transport, 4 when\n"
    "the gateway could not start, 5 on timeout, 6 when the connection was\n"
    "lost, 7 otherwise.\n"
    "\n"
    "Example:\n"
    "  execnet-tool trace popen -c 'channel.send(channel.receive() * 2)' --send 21");
  g_option_context_add_main_entries (context, entries, NULL);
  g_option_context_add_main_entries (context, execnet_tool_verbose_entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (!execnet_tool_default_timeout (&timeout, &error))
    return execnet_tool_report_error (argv[0], error);

  source = execnet_tool_get_code (argc, argv, code, &exit_code);
  if (source == NULL)
    return exit_code;

  values = execnet_tool_parse_values (send_texts, &error);
  if (values == NULL)
    return execnet_tool_report_error (argv[0], error);

  xspec = execnet_xspec_new (argv[1], &error);
  if (xspec == NULL)
    return execnet_tool_report_error (argv[0], error);

  tracer = g_new0 (Tracer, 1);
  g_atomic_ref_count_init (&tracer->ref_count);
  g_mutex_init (&tracer->lock);
  tracer->start = g_get_monotonic_time ();
  if (!decide_color (color_when, &tracer->color, &error))
    return execnet_tool_report_error (argv[0], error);

  group = execnet_group_new ();
  /* The items are on the trace already; nothing prints them twice. */
  ok = execnet_tool_run_code (group, xspec, source, values, timeout, observe, tracer, NULL, &error);
  /* Whatever happened, no process is left behind; the trace shows it go. */
  execnet_group_terminate (group, EXECNET_TOOL_TERMINATE_TIMEOUT, NULL);

  if (!ok)
    return execnet_tool_report_error (argv[0], error);

  g_mutex_lock (&tracer->lock);
  if (tracer->write_error != NULL)
    {
      g_mutex_unlock (&tracer->lock);
      return execnet_tool_report_error (argv[0], tracer->write_error);
    }
  g_mutex_unlock (&tracer->lock);

  return EXECNET_TOOL_EXIT_OK;
}
