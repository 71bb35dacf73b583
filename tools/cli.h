/* Shared machinery of the virtcloud command-line tool (docs/cli.md).
 *
 * Each command is a {name, fn, args, help} entry of a dispatch table (like
 * wireguard-tools' wg.c); fn gets the words after its name and returns
 * the process exit status. Commands parse with cli_parse(), talk to an
 * agent with cli_read() / cli_submit(), print through cli_render.h and
 * report failures with cli_fail() / cli_usage(), which also choose the
 * exit status.
 */
#ifndef VC_TOOLS_CLI_H
#define VC_TOOLS_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"
#include "proto/cmd.h"

/* Exit statuses: part of the interface, documented in docs/cli.md. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,      /* refused, or committed with an error */
    CLI_EXIT_USAGE = 2,       /* bad command line: nothing was sent */
    CLI_EXIT_UNAVAILABLE = 3, /* not applied; retrying later may help */
    CLI_EXIT_TIMEOUT = 4,     /* no answer in time: outcome unknown */
};

#define CLI_DEFAULT_API "127.0.0.1:7800"
#define CLI_DEFAULT_TIMEOUT_MS 10000u

struct cli {
    const char *api;         /* --api, $VIRTCLOUD_API or the default */
    bool json;               /* --json */
    bool stale;              /* --stale */
    const char *req_id;      /* --request-id, NULL when not given */
    const char *timeout_arg; /* --timeout as typed, NULL when not given */
    const char *key_arg;     /* --key, NULL when not given (cli_key.c) */
    uint32_t timeout_ms;
    const char *usage; /* of the running command, for usage errors */
    char usage_buf[256];
    const char *help; /* one line about the running command */
    char what[160];   /* "cluster create c1": starts every message */
    char req_buf[VC_REQID_MAX + 1]; /* generated request id */
    /* Bulk commands (cmd_bulk.c): failures are not printed but kept. */
    bool quiet;
    char last_error[1024]; /* the last failure's message when quiet */
    int last_code;         /* and its code */
};

struct cli_command {
    const char *name;
    int (*fn)(struct cli *c, int argc, char **argv);
    const char *args;              /* synopsis after the name */
    const char *help;              /* one line */
    const struct cli_command *sub; /* subcommands, NULL-terminated */
};

/* An option of a command: "--name VALUE", "--name=VALUE", or a flag
 * "--name" when value is NULL. Arrays end with a NULL name. */
struct cli_opt {
    const char *name;
    const char **value;
    bool *flag;
};

/* Defaults from the environment; sees a "--json" anywhere in argv so that
 * even early usage errors come out as JSON. */
void cli_init(struct cli *c, int argc, char **argv);

/* Consumes the global options at the front of argv (*i is the index of
 * the first word that is not one). Returns false when the process should
 * exit with *status (usage error, or --help printed). */
bool cli_parse_globals(struct cli *c, int argc, char **argv, int *i,
                       int *status);

/* Parses a command's words: opts and the global options in any order,
 * between min and max positional arguments into pos (borrowed from argv).
 * Returns false when the process should exit with *status. */
bool cli_parse(struct cli *c, int argc, char **argv, const struct cli_opt *opts,
               const char **pos, int min, int max, int *status);

/* Prints "virtcloud <prefix> <name> <args>" and the help line of every
 * entry of table, descending into subcommand tables. */
void cli_print_synopsis(FILE *f, const struct cli_command *table,
                        const char *prefix);

/* Runs the entry of table named argv[0]; with no argv[0] (usage error) or
 * "-h", lists the entries. */
int cli_dispatch(struct cli *c, const struct cli_command *table,
                 const char *prefix, int argc, char **argv);

/* Prints "virtcloud: <what>: <message>" and the usage of the running
 * command. Returns CLI_EXIT_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports code: one line on stderr, the error object on stdout with
 * --json. committed: the command was applied and its result is code.
 * Returns the exit status for code. */
int cli_fail(struct cli *c, int code, bool committed, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sets the prefix of every message ("cluster show c1"). */
void cli_what(struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses "500ms", "10s", "5m", "8h", "2d" or sums such as "1h30m" into
 * *ms. Returns 0 or VC_EINVAL. */
int cli_parse_duration(const char *s, uint64_t *ms);

/* Asks for a read (op with name filter, "" for all). On success returns 0
 * with r holding the answer; else reports the failure and returns the
 * exit status. The caller closes r in both cases. */
int cli_read(struct cli *c, uint8_t op, const char *name,
             struct client_response *r);

/* cli_read() for a request the caller built (op, body): the same checks,
 * --stale, signing and reporting (none with c->quiet). */
int cli_read_req(struct cli *c, struct proto_request *req,
                 struct client_response *r);

/* Validates cmd (usage error if it does not), stamps it with the request
 * id and the time, and submits it. On success returns 0 with res holding
 * the committed result; else reports and returns the exit status. */
int cli_submit(struct cli *c, struct proto_cmd *cmd, struct proto_result *res);

/* Prints the outcome of a committed command: ok, name, vlan, gen,
 * request_id, message, plus the sites when with_sites. Returns the exit
 * status. */
int cli_print_result(struct cli *c, const struct proto_cmd *cmd,
                     const struct proto_result *res, bool with_sites);

struct render_view;

/* Reads the whole list of op (PROTO_OP_SITES / PROTO_OP_CLUSTERS) and
 * prints it through v. Returns the exit status. */
int cli_list(struct cli *c, uint8_t op, const struct render_view *v);

/* Reads the element of op's list called name and prints it through v;
 * VC_ENOTFOUND (exit 1) when there is none. Returns the exit status. */
int cli_show(struct cli *c, uint8_t op, const char *name,
             const struct render_view *v);

/* Whether arg asks for help ("-h", "--help"). */
bool cli_is_help(const char *arg);

/* Commands (tools/cmd_<verb>.c). */
int cmd_status(struct cli *c, int argc, char **argv);
/* tools/cli_key.c: finds and loads the client's key once and signs every
 * request with it from then on. 0 or an exit status. */
int cli_key_setup(struct cli *c);
/* Which key requests carry and where it came from, for error messages. */
const char *cli_key_desc(void);
int cmd_site(struct cli *c, int argc, char **argv);
int cmd_cluster(struct cli *c, int argc, char **argv);
int cmd_host(struct cli *c, int argc, char **argv);
int cmd_cluster_wait(struct cli *c, int argc, char **argv); /* cmd_wait.c */
int cmd_release_all(struct cli *c, int argc, char **argv);  /* cmd_bulk.c */
extern const struct cli_command cmd_host_commands[];
extern const struct cli_command cmd_site_commands[];
extern const struct cli_command cmd_cluster_commands[];

#endif
