/* virtcloud: command-line client of the VirtCloud agents (docs/cli.md).
 *
 *   virtcloud [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]
 *
 * main() reads the global options, then hands the remaining words to the
 * command named by the first one (the table below; site and cluster have
 * tables of their own in cmd_site.c and cmd_cluster.c).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int cmd_help(struct cli *c, int argc, char **argv);
/* tools/cmd_keygen.c */
int cmd_keygen(struct cli *c, int argc, char **argv);
/* tools/cmd_log.c */
int cmd_log_level(struct cli *c, int argc, char **argv);
/* tools/cmd_audit.c */
int cmd_audit(struct cli *c, int argc, char **argv);
/* tools/cmd_role.c */
int cmd_role(struct cli *c, int argc, char **argv);
extern const struct cli_command cmd_role_commands[];

static const struct cli_command commands[] = {
    {"status", cmd_status, "[--local]",
     "at a glance: the raft group, every site asked directly (answers? "
     "applied how far?) and the clusters not ready, with where", NULL},
    {"site", cmd_site, "list | show NAME", "sites", cmd_site_commands},
    {"cluster", cmd_cluster, "SUBCOMMAND ...", "clusters",
     cmd_cluster_commands},
    {"host", cmd_host, "SUBCOMMAND ...", "hypervisor hosts and service nodes",
     cmd_host_commands},
    {"keygen", cmd_keygen, "[--out PATH]",
     "new site key pair: PATH (0600) and PATH.pub; prints the public key",
     NULL},
    {"role", cmd_role, "add | remove | list",
     "client keys and their roles (user, scheduler, admin)",
     cmd_role_commands},
    {"audit", cmd_audit, "[--cluster NAME] [--since T] [--limit N]",
     "the replicated history of changes: who asked, when, the request id "
     "and the result (the asked agent's replica)",
     NULL},
    {"log-level", cmd_log_level, "[debug|info|warn|error]",
     "show or set the answering agent's log level until it restarts", NULL},
    {"help", cmd_help, "[COMMAND]", "show this help", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static void print_help(FILE *f)
{
    fputs("usage: virtcloud [OPTIONS] COMMAND [ARGS] [OPTIONS]\n"
          "\n"
          "Options (before or after the command):\n"
          "  --api ADDR[,ADDR...]  agents to try in order: HOST:PORT, "
          "[IPv6]:PORT or\n"
          "                        unix:/path (default $VIRTCLOUD_API, "
          "else " CLI_DEFAULT_API ")\n"
          "  --json                print one JSON document on stdout, for "
          "scripts\n"
          "  --timeout DURATION    give up after this long (default 10s; "
          "e.g. 500ms, 5m)\n"
          "  --stale               reads: answer from the agent's local "
          "state, which may\n"
          "                        lag behind the leader\n"
          "  --request-id ID       writes: de-duplication id; repeating a "
          "command with the\n"
          "                        same id returns the first answer "
          "(e.g. slurm:1234)\n"
          "  --key PATH            sign requests with this private key "
          "(default\n"
          "                        $VIRTCLOUD_KEY, else "
          "~/.config/virtcloud/key if present)\n"
          "Durations: a number and a unit (ms, s, m, h, d), or sums such as "
          "1h30m.\n"
          "\n"
          "Commands:\n",
          f);
    cli_print_synopsis(f, commands, "");
    fputs("\n"
          "Exit status:\n"
          "  0  done\n"
          "  1  failed: refused (invalid, not found, conflict, no common "
          "VLAN...) or\n"
          "     applied with an error result; retrying the same will fail "
          "again\n"
          "  2  usage error: nothing was sent\n"
          "  3  unavailable: no quorum, no leader, agent stopping or "
          "unreachable;\n"
          "     nothing was applied, retrying later may help\n"
          "  4  timed out or outcome unknown: re-run with the same "
          "--request-id to learn\n"
          "     the outcome (a write without --request-id reports the id it "
          "used)\n"
          "Errors: one line \"virtcloud: WHAT: REASON\" on stderr; with "
          "--json also\n"
          "{\"ok\":false,\"error\":NAME,\"code\":N,\"message\":TEXT} on "
          "stdout.\n",
          f);
}

static int cmd_help(struct cli *c, int argc, char **argv)
{
    const char *pos[1] = {NULL};
    int status;
    if (!cli_parse(c, argc, argv, NULL, pos, 0, 1, &status))
        return status;
    if (!pos[0]) {
        print_help(stdout);
        return CLI_EXIT_OK;
    }
    for (const struct cli_command *t = commands; t->name; t++) {
        if (strcmp(pos[0], t->name) != 0)
            continue;
        if (t->sub)
            cli_print_synopsis(stdout, t->sub, t->name);
        else
            cli_print_synopsis(stdout, (const struct cli_command[]){*t, {0}},
                               "");
        return CLI_EXIT_OK;
    }
    return cli_usage(c, "no command \"%s\"", pos[0]);
}

int main(int argc, char **argv)
{
    struct cli c;
    int i = 1, status;
    cli_init(&c, argc, argv);
    if (!cli_parse_globals(&c, argc, argv, &i, &status))
        return status;
    if (i == argc)
        return cli_usage(&c, "missing command");
    if (cli_is_help(argv[i]))
        print_help(stdout);
    else
        status = cli_dispatch(&c, commands, "", argc - i, argv + i);
    /* A full disk or closed pipe must not pass for success. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "virtcloud: writing output: %s\n", strerror(errno));
        if (status == CLI_EXIT_OK)
            status = CLI_EXIT_FAILED;
    }
    return status;
}
