/* execnet-tool-serialize.c: execnet-tool dumps and execnet-tool loads
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <json-glib/json-glib.h>

#include "execnet-tool.h"

static char *output_path = NULL;

static const GOptionEntry dumps_entries[] = {
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output_path,
    "Write to FILE instead of standard output", "FILE" },
  G_OPTION_ENTRY_NULL
};

static const GOptionEntry loads_entries[] = {
  EXECNET_TOOL_JSON_OPTION ("Print the value as one line of JSON"),
  G_OPTION_ENTRY_NULL
};

int
execnet_tool_dumps (int    argc,
                    char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GOutputStream) output = NULL;
  const void *bytes;
  gsize size;

  context = g_option_context_new ("VALUE");
  g_option_context_set_summary (context,
    "Serialize VALUE, written as GVariant text, in execnet's public format\n"
    "(what Python's execnet.dumps() writes and execnet.loads() reads), to\n"
    "standard output or to FILE.");
  g_option_context_set_description (context,
    "GVariant text without a type annotation takes the default type: 41 is\n"
    "an int32, [1, 2] an array of int32. Annotate to choose another type:\n"
    "“int64 41”, “@ay [1, 2]”, “@mv nothing” for None. As everywhere in\n"
    "GVariant, b'xy' is a byte string with a NUL at its end; write\n"
    "[byte 0x78, 0x79] for exactly two bytes.\n"
    "\n"
    "Exit status: 0 on success, 2 when VALUE is not GVariant text, 7 when\n"
    "it has no form in execnet's format or FILE cannot be written.\n"
    "\n"
    "Example:\n"
    "  execnet-tool dumps \"('a', [1, 2], {'k': <true>})\" -o value.bin");
  g_option_context_add_main_entries (context, dumps_entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (argc != 2)
    {
      execnet_tool_print_error (argv[0], argc < 2 ? "no value given; try “execnet-tool help dumps”"
                                                  : "give exactly one value (quote it for the shell)");
      return EXECNET_TOOL_EXIT_USAGE;
    }

  value = g_variant_parse (NULL, argv[1], NULL, NULL, &error);
  if (value == NULL)
    {
      g_autofree char *context_text = g_variant_parse_error_print_context (error, argv[1]);

      execnet_tool_print_error (argv[0], "the value is not GVariant text:\n%s", context_text);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  data = execnet_dumps (value, &error);
  if (data == NULL)
    return execnet_tool_report_error (argv[0], error);

  if (output_path != NULL)
    {
      g_autoptr(GFile) file = g_file_new_for_commandline_arg (output_path);

      output = G_OUTPUT_STREAM (g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error));
      if (output == NULL)
        return execnet_tool_report_error (argv[0], error);
    }
  else
    {
      output = g_unix_output_stream_new (1, FALSE);
    }

  bytes = g_bytes_get_data (data, &size);
  if (!g_output_stream_write_all (output, bytes, size, NULL, NULL, &error) ||
      !g_output_stream_close (output, NULL, &error))
    return execnet_tool_report_error (argv[0], error);

  return EXECNET_TOOL_EXIT_OK;
}

/* The most input `loads` reads: the largest frame a gateway accepts is far
 * larger, but a value this size already takes a while to print. */
#define LOADS_MAX_INPUT ((gsize) 64 << 20)

/* Reads all of @path ("-" for standard input), refusing more than
 * LOADS_MAX_INPUT bytes, so that an endless source such as /dev/zero
 * costs a bounded amount of memory. */
static GBytes *
read_all (const char  *path,
          GError     **error)
{
  g_autoptr(GInputStream) input = NULL;
  g_autoptr(GByteArray) data = g_byte_array_new ();

  if (strcmp (path, "-") == 0)
    {
      input = g_unix_input_stream_new (0, FALSE);
    }
  else
    {
      g_autoptr(GFile) file = g_file_new_for_commandline_arg (path);

      input = G_INPUT_STREAM (g_file_read (file, NULL, error));
      if (input == NULL)
        return NULL;
    }

  for (;;)
    {
      guint8 buffer[64 * 1024];
      gssize n = g_input_stream_read (input, buffer, sizeof buffer, NULL, error);

      if (n < 0)
        return NULL;
      if (n == 0)
        break;
      if (data->len + (gsize) n > LOADS_MAX_INPUT)
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_MESSAGE_TOO_LARGE,
                       "the input is larger than %" G_GSIZE_FORMAT " MiB, the most "
                       "“loads” reads; give it a file of serialized data",
                       LOADS_MAX_INPUT >> 20);
          return NULL;
        }
      g_byte_array_append (data, buffer, n);
    }

  return g_byte_array_free_to_bytes (g_steal_pointer (&data));
}

int
execnet_tool_loads (int    argc,
                    char **argv)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) data = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *text = NULL;

  context = g_option_context_new ("[FILE | -]");
  g_option_context_set_summary (context,
    "Read data in execnet's public serialization format (what Python's\n"
    "execnet.dumps() writes) from FILE, or from standard input if FILE is\n"
    "“-” or missing, and print the value as GVariant text, or as JSON.");
  g_option_context_set_description (context,
    "Exit status: 0 on success, 2 when FILE cannot be read or holds more\n"
    "than 64 MiB, 7 when the data is not in execnet's format.\n"
    "\n"
    "Example:\n"
    "  python3 -c 'import sys, execnet; sys.stdout.buffer.write(execnet.dumps([1, \"a\"]))' \\\n"
    "    | execnet-tool loads");
  g_option_context_add_main_entries (context, loads_entries, NULL);

  if (!g_option_context_parse (context, &argc, &argv, &error))
    return execnet_tool_report_error (argv[0], error);
  if (argc > 2)
    {
      execnet_tool_print_error (argv[0], "give at most one file");
      return EXECNET_TOOL_EXIT_USAGE;
    }

  data = read_all (argc == 2 ? argv[1] : "-", &error);
  if (data == NULL)
    {
      execnet_tool_print_error (argv[0], "%s", error->message);
      return EXECNET_TOOL_EXIT_USAGE;
    }

  /* Bad data is not a lost connection, whatever its error code says. */
  value = execnet_loads (data, &error);
  if (value == NULL)
    {
      execnet_tool_print_error (argv[0], "%s", error->message);
      return EXECNET_TOOL_EXIT_FAILURE;
    }

  /* JSON and GVariant text are UTF-8 whatever the locale, and are data
   * to be read back: they are written as they are, not converted. */
  if (execnet_tool_json ())
    {
      text = execnet_tool_value_to_json (value);
    }
  else
    {
      text = g_variant_print (value, TRUE);
    }
  fputs (text, stdout);
  fputc ('\n', stdout);

  return EXECNET_TOOL_EXIT_OK;
}
