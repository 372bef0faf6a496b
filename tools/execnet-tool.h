/* execnet-tool.h: what the subcommands of execnet-tool share
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <execnet/execnet.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Exit codes, documented in --help and doc/execnet-tool.1. */
typedef enum {
  EXECNET_TOOL_EXIT_OK = 0,
  EXECNET_TOOL_EXIT_REMOTE_ERROR = 1,   /* the remote code raised */
  EXECNET_TOOL_EXIT_USAGE = 2,          /* bad options or a malformed spec */
  EXECNET_TOOL_EXIT_UNKNOWN_TRANSPORT = 3,
  EXECNET_TOOL_EXIT_CONNECT = 4,        /* host, connection, authentication, bootstrap */
  EXECNET_TOOL_EXIT_TIMEOUT = 5,
  EXECNET_TOOL_EXIT_CONNECTION_LOST = 6, /* gateway closed, protocol error */
  EXECNET_TOOL_EXIT_FAILURE = 7,        /* anything else */
} ExecnetToolExit;

/* Maps an error to an exit code and prints it on stderr as
 * "execnet-tool COMMAND: message". */
int  execnet_tool_report_error (const char   *command,
                                const GError *error);
/* Prints "execnet-tool COMMAND: message" on stderr. */
void execnet_tool_print_error  (const char   *command,
                                const char   *format,
                                ...) G_GNUC_PRINTF (2, 3);

/* How long a gateway the tool made gets to end before it is killed. */
#define EXECNET_TOOL_TERMINATE_TIMEOUT 2.0

/* Shared by exec and trace (execnet-tool-common.c). */
char           *execnet_tool_get_code       (int            argc,
                                             char         **argv,
                                             const char    *code,
                                             int           *exit_code);
char           *execnet_tool_load_source    (const char    *path,
                                             GError       **error);
GPtrArray      *execnet_tool_parse_values   (char         **texts,
                                             GError       **error);
ExecnetGateway *execnet_tool_start_gateway  (ExecnetGroup  *group,
                                             ExecnetXSpec  *xspec,
                                             gint64         deadline,
                                             double         timeout,
                                             GError       **error);
double          execnet_tool_seconds_left   (gint64         deadline);
char           *execnet_tool_format_value   (GVariant      *value);
gboolean        execnet_tool_write_line     (const char    *text,
                                             GError       **error);

typedef void     (*ExecnetToolPrepare)  (ExecnetGateway *gateway,
                                         gpointer        data);
typedef gboolean (*ExecnetToolItemFunc) (GVariant       *item,
                                         GError        **error);
gboolean        execnet_tool_run_code       (ExecnetGroup         *group,
                                             ExecnetXSpec         *xspec,
                                             const char           *source,
                                             GPtrArray            *values,
                                             double                timeout,
                                             ExecnetToolPrepare    prepare,
                                             gpointer              prepare_data,
                                             ExecnetToolItemFunc   on_item,
                                             GError              **error);

/* -v and -vv (execnet-tool-verbose.c): the option, for every command that
 * starts gateways, and lines shown at a verbosity. */
extern const GOptionEntry execnet_tool_verbose_entries[];
void execnet_tool_set_verbosity (int         level);
int  execnet_tool_get_verbosity (void);
void execnet_tool_verbose_print (int         level,
                                 const char *format,
                                 ...) G_GNUC_PRINTF (2, 3);

/* The timeout of exec and trace: --timeout, else EXECNET_TOOL_TIMEOUT,
 * else none (-1); FALSE with an error for a bad value. */
gboolean execnet_tool_default_timeout (double   *timeout,
                                       GError  **error);

/* --json and --json=pretty (execnet-tool-json.c). */
#define EXECNET_TOOL_JSON_OPTION(description) \
  { "json", 'j', G_OPTION_FLAG_NO_ARG, G_OPTION_ARG_CALLBACK, \
    execnet_tool_on_json_option, description " (--json=pretty: indented)", NULL }
gboolean execnet_tool_on_json_option      (const char  *option_name,
                                           const char  *value,
                                           gpointer     data,
                                           GError     **error);
gboolean execnet_tool_take_json_pretty    (int          argc,
                                           char       **argv,
                                           GError     **error);
gboolean execnet_tool_json                (void);
char    *execnet_tool_value_to_json       (GVariant    *value);
char    *execnet_tool_json_node_to_string (JsonNode    *node);

/* One function per subcommand; argv[0] is the subcommand's name. */
int execnet_tool_exec         (int argc, char **argv);
int execnet_tool_spec         (int argc, char **argv);
int execnet_tool_transports   (int argc, char **argv);
int execnet_tool_status       (int argc, char **argv);
int execnet_tool_info         (int argc, char **argv);
int execnet_tool_rsync        (int argc, char **argv);
int execnet_tool_probe        (int argc, char **argv);
int execnet_tool_trace        (int argc, char **argv);
int execnet_tool_dumps        (int argc, char **argv);
int execnet_tool_loads        (int argc, char **argv);
int execnet_tool_socketserver (int argc, char **argv);

G_END_DECLS
