#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli_render.h"
#include "proto/err.h"

#define ERRMSG_MAX 1024

static int print_failed(struct cli *c);

void cli_init(struct cli *c, int argc, char **argv)
{
    const char *env = getenv("VIRTCLOUD_API");
    memset(c, 0, sizeof *c);
    c->api = env && *env ? env : CLI_DEFAULT_API;
    c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        c->json |= strcmp(argv[i], "--json") == 0;
}

void cli_what(struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->what, sizeof c->what, fmt, ap);
    va_end(ap);
}

/* --- errors ------------------------------------------------------------- */

static int exit_status(int code, bool committed)
{
    if (code == 0)
        return CLI_EXIT_OK;
    if (committed)
        return CLI_EXIT_FAILED;
    switch (code) {
    case VC_ENOQUORUM:
    case VC_EUNAVAILABLE:
    case VC_ENOTLEADER:
    case VC_ESHUTDOWN:
        return CLI_EXIT_UNAVAILABLE;
    case VC_ETIMEOUT:
    case VC_EUNKNOWN:
        return CLI_EXIT_TIMEOUT;
    default:
        return CLI_EXIT_FAILED;
    }
}

/* The error object of --json mode: {"ok":false,"error","code","message"}. */
static void print_error_json(int code, const char *message)
{
    msgpack_object_kv kv[] = {
        render_kv("ok", render_bool(false)),
        render_kv("error", render_str(vc_errname(code))),
        render_kv("code", render_int(code)),
        render_kv("message", render_str(message)),
    };
    msgpack_object doc = render_map(kv, sizeof kv / sizeof kv[0]);
    render_json(stdout, &doc, NULL);
    fputc('\n', stdout);
}

static int report(struct cli *c, int code, int status, const char *fmt,
                  va_list ap)
{
    char msg[ERRMSG_MAX], line[ERRMSG_MAX + sizeof c->what + 4];
    vsnprintf(msg, sizeof msg, fmt, ap);
    snprintf(line, sizeof line, "%s%s%s", c->what, *c->what ? ": " : "", msg);
    if (c->quiet) { /* a bulk command reports each item itself */
        snprintf(c->last_error, sizeof c->last_error, "%s", msg);
        c->last_code = code;
        return status;
    }
    fprintf(stderr, "virtcloud: %s\n", line);
    if (c->json)
        print_error_json(code, line);
    return status;
}

int cli_fail(struct cli *c, int code, bool committed, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int status = report(c, code, exit_status(code, committed), fmt, ap);
    va_end(ap);
    return status;
}

int cli_usage(struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(c, VC_EINVAL, CLI_EXIT_USAGE, fmt, ap);
    va_end(ap);
    if (c->quiet)
        return CLI_EXIT_USAGE;
    if (c->usage)
        fprintf(stderr, "usage: virtcloud %s\n", c->usage);
    fprintf(stderr, "Run 'virtcloud help' for all commands and options.\n");
    return CLI_EXIT_USAGE;
}

/* --- command line ------------------------------------------------------- */

int cli_parse_duration(const char *s, uint64_t *ms)
{
    /* "ms" before "m", so that "5ms" is not read as "5m" + "s". */
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const size_t nunits = sizeof units / sizeof units[0];
    uint64_t total = 0;
    if (!*s)
        return VC_EINVAL;
    while (*s) {
        char *end;
        size_t i = 0;
        if (*s < '0' || *s > '9')
            return VC_EINVAL;
        errno = 0;
        unsigned long long n = strtoull(s, &end, 10);
        while (i < nunits &&
               strncmp(end, units[i].unit, strlen(units[i].unit)) != 0)
            i++;
        if (errno || i == nunits || n > (UINT64_MAX - total) / units[i].ms)
            return VC_EINVAL;
        total += n * units[i].ms;
        s = end + strlen(units[i].unit);
    }
    *ms = total;
    return 0;
}

static void global_opts(struct cli *c, struct cli_opt *o)
{
    o[0] = (struct cli_opt){"api", &c->api, NULL};
    o[1] = (struct cli_opt){"json", NULL, &c->json};
    o[2] = (struct cli_opt){"timeout", &c->timeout_arg, NULL};
    o[3] = (struct cli_opt){"stale", NULL, &c->stale};
    o[4] = (struct cli_opt){"request-id", &c->req_id, NULL};
    o[5] = (struct cli_opt){"key", &c->key_arg, NULL};
    o[6] = (struct cli_opt){NULL, NULL, NULL};
}

static const struct cli_opt *find_opt(const struct cli_opt *opts,
                                      const char *name, size_t len)
{
    for (; opts && opts->name; opts++)
        if (strlen(opts->name) == len && strncmp(opts->name, name, len) == 0)
            return opts;
    return NULL;
}

/* Consumes the option at argv[*i] ("--name", "--name=v", "--name v").
 * Returns 0, or CLI_EXIT_USAGE after reporting. */
static int take_opt(struct cli *c, const struct cli_opt *opts, int argc,
                    char **argv, int *i)
{
    struct cli_opt globals[7];
    const char *arg = argv[*i] + 2, *eq = strchr(arg, '=');
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    global_opts(c, globals);
    const struct cli_opt *o = find_opt(opts, arg, len);
    if (!o && !(o = find_opt(globals, arg, len)))
        return cli_usage(c, "unknown option \"%s\"", argv[*i]);
    if (!o->value) {
        if (eq)
            return cli_usage(c, "--%s takes no value", o->name);
        *o->flag = true;
        return 0;
    }
    if (eq) {
        *o->value = eq + 1;
    } else if (*i + 1 < argc) {
        *o->value = argv[++*i];
    } else {
        return cli_usage(c, "--%s needs a value", o->name);
    }
    return 0;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void print_usage(const struct cli *c)
{
    printf("usage: virtcloud %s\n",
           c->usage ? c->usage : "[OPTIONS] COMMAND [ARGS]");
    if (c->help)
        printf("%s\n", c->help);
    printf("Run 'virtcloud help' for all commands, options and exit "
           "codes.\n");
}

/* Checks the values of the global options once all are known. */
static int check_globals(struct cli *c)
{
    uint64_t ms;
    if (c->timeout_arg) {
        if (cli_parse_duration(c->timeout_arg, &ms) != 0 || ms == 0 ||
            ms > UINT32_MAX)
            return cli_usage(c,
                             "--timeout \"%s\": expected a duration "
                             "such as 500ms, 10s, 5m, 8h or 2d",
                             c->timeout_arg);
        c->timeout_ms = (uint32_t)ms;
    }
    if (!*c->api)
        return cli_usage(c, "--api: empty address list");
    return 0;
}

bool cli_parse_globals(struct cli *c, int argc, char **argv, int *i,
                       int *status)
{
    *status = 0;
    for (; *i < argc && argv[*i][0] == '-' && !cli_is_help(argv[*i]); ++*i) {
        if (strncmp(argv[*i], "--", 2) != 0 || argv[*i][2] == '\0') {
            *status = cli_usage(c, "unknown option \"%s\"", argv[*i]);
            return false;
        }
        if ((*status = take_opt(c, NULL, argc, argv, i)) != 0)
            return false;
    }
    return (*status = check_globals(c)) == 0;
}

bool cli_parse(struct cli *c, int argc, char **argv, const struct cli_opt *opts,
               const char **pos, int min, int max, int *status)
{
    int n = 0;
    bool only_pos = false;
    *status = 0;
    for (int i = 0; i < argc && *status == 0; i++) {
        const char *arg = argv[i];
        if (!only_pos && strcmp(arg, "--") == 0) {
            only_pos = true;
        } else if (!only_pos && cli_is_help(arg)) {
            print_usage(c);
            return false;
        } else if (!only_pos && strncmp(arg, "--", 2) == 0) {
            *status = take_opt(c, opts, argc, argv, &i);
        } else if (!only_pos && arg[0] == '-' && arg[1] != '\0') {
            *status = cli_usage(c, "unknown option \"%s\"", arg);
        } else if (n == max) {
            *status = cli_usage(c, "unexpected argument \"%s\"", arg);
        } else {
            pos[n++] = arg;
        }
    }
    if (*status == 0 && n < min)
        *status = cli_usage(c, "missing argument");
    if (*status == 0)
        *status = check_globals(c);
    return *status == 0;
}

void cli_print_synopsis(FILE *f, const struct cli_command *table,
                        const char *prefix)
{
    for (const struct cli_command *t = table; t->name; t++) {
        if (t->sub) {
            char p[64];
            snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? " " : "",
                     t->name);
            cli_print_synopsis(f, t->sub, p);
            continue;
        }
        char line[160];
        snprintf(line, sizeof line, "%s%s%s%s%s", prefix, *prefix ? " " : "",
                 t->name, *t->args ? " " : "", t->args);
        fprintf(f, "  virtcloud %s\n", line);
        fprintf(f, "      %s\n", t->help);
    }
}

int cli_dispatch(struct cli *c, const struct cli_command *table,
                 const char *prefix, int argc, char **argv)
{
    const char *sp = *prefix ? " " : "";
    if (argc < 1 || cli_is_help(argv[0])) {
        FILE *f = argc < 1 ? stderr : stdout;
        if (argc < 1)
            fprintf(f, "virtcloud: %s: missing subcommand\nusage:\n", prefix);
        cli_print_synopsis(f, table, prefix);
        return argc < 1 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    for (const struct cli_command *t = table; t->name; t++) {
        if (strcmp(argv[0], t->name) != 0)
            continue;
        snprintf(c->usage_buf, sizeof c->usage_buf, "%s%s%s%s%s", prefix, sp,
                 t->name, *t->args ? " " : "", t->args);
        c->usage = c->usage_buf;
        c->help = t->help;
        cli_what(c, "%s%s%s", prefix, sp, t->name);
        return t->fn(c, argc - 1, argv + 1);
    }
    cli_what(c, "%s", prefix);
    return cli_usage(c, "unknown %s \"%s\"", *prefix ? "subcommand" : "command",
                     argv[0]);
}

/* --- requests ----------------------------------------------------------- */

/* What to do about a code when the agent said nothing more. */
static const char *hint(int code, bool write)
{
    switch (code) {
    case VC_ENOQUORUM:
        return "retry when a majority of sites is up";
    case VC_EUNAVAILABLE:
        return "retry later, or name more agents with --api";
    case VC_ENOTLEADER:
        return "retry once a leader is elected";
    case VC_ESHUTDOWN:
        return "the agent is stopping; retry, or name another with --api";
    case VC_ETIMEOUT:
        return write ? "the outcome is unknown; re-run with the same "
                       "--request-id to learn it"
                     : "retry, or allow more time with --timeout";
    case VC_EUNKNOWN:
        return write ? "re-run with the same --request-id to learn the "
                       "outcome"
                     : "retry";
    default:
        return NULL;
    }
}

/* Reports a request that got no verdict, or a verdict that is not ok.
 * text: what the agent (agent) or the client library said, "" for
 * nothing. The agent's words say what to do; ours get a hint. */
static int request_failed(struct cli *c, int code, bool committed,
                          const char *text, bool agent, bool write)
{
    const char *h = committed || (agent && *text) ? NULL : hint(code, write);
    int status = exit_status(code, committed);
    /* A retry needs the id: say it when the user did not choose it. */
    bool show_id = write && !c->req_id && status >= CLI_EXIT_UNAVAILABLE &&
                   !strstr(text, c->req_buf);
    if (!*text)
        text = vc_strerror(code);
    /* A refusal says which key this client used, and from where. */
    if (code == VC_EDENIED && !committed) {
        h = cli_key_desc();
        if (!*h)
            h = NULL;
    }
    return cli_fail(c, code, committed, "%s%s%s%s%s%s", text, h ? "; " : "",
                    h ? h : "", show_id ? " (request id " : "",
                    show_id ? c->req_buf : "", show_id ? ")" : "");
}

/* The time the agent may take, leaving the client room to hear about a
 * timeout from the agent rather than running into its own. */
static uint32_t agent_timeout(uint32_t ms)
{
    uint32_t margin = ms / 10 < 1000 ? ms / 10 : 1000;
    return ms - margin > 0 ? ms - margin : 1;
}

static int call(struct cli *c, struct proto_request *req,
                struct client_response *r, bool write)
{
    char errmsg[ERRMSG_MAX];
    int st;
    if ((st = cli_key_setup(c)) != 0)
        return st;
    req->timeout_ms = agent_timeout(c->timeout_ms);
    int rv =
        client_request(c->api, req, c->timeout_ms, r, errmsg, sizeof errmsg);
    if (rv == VC_EINVAL)
        return cli_usage(c, "--api: %s", errmsg);
    if (rv == VC_EUNAVAILABLE)
        return cli_fail(c, rv, false, "no agent reachable: %s; %s", errmsg,
                        write ? "nothing was applied"
                              : "start one or "
                                "check --api");
    if (rv != 0)
        return request_failed(c, rv, false, errmsg, false, write);
    return 0;
}

static const char *msg_or_empty(const struct proto_response *resp, char *buf,
                                size_t len)
{
    mp_str_copy(resp->msg, buf, len);
    return buf;
}

int cli_read(struct cli *c, uint8_t op, const char *name,
             struct client_response *r)
{
    struct proto_request req = {.op = op};
    char msg[4097];
    client_response_init(r);
    if (c->req_id)
        return cli_usage(c, "--request-id applies to commands that change "
                            "something");
    req.flags = c->stale ? PROTO_FLAG_STALE : 0;
    req.name = mp_cstr(name ? name : "");
    int status = call(c, &req, r, false);
    if (status != 0)
        return status;
    if (r->resp.code != 0)
        return request_failed(c, r->resp.code, false,
                              msg_or_empty(&r->resp, msg, sizeof msg), true,
                              false);
    return 0;
}

int cli_read_req(struct cli *c, struct proto_request *req,
                 struct client_response *r)
{
    char msg[4097];
    client_response_init(r);
    if (c->req_id)
        return cli_usage(c, "--request-id applies to commands that change "
                            "something");
    req->flags |= c->stale ? PROTO_FLAG_STALE : 0;
    int status = call(c, req, r, false);
    if (status != 0)
        return status;
    if (r->resp.code != 0)
        return request_failed(c, r->resp.code, false,
                              msg_or_empty(&r->resp, msg, sizeof msg), true,
                              false);
    return 0;
}

/* A request id for a command the user gave none: unique per host and
 * time, so the client may re-send it to another agent safely. */
static void make_req_id(struct cli *c)
{
    char host[64] = "";
    struct timespec ts;
    gethostname(host, sizeof host - 1);
    for (char *p = host; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
            *p = '_';
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(c->req_buf, sizeof c->req_buf, "virtcloud:%s:%ld:%lld.%09ld",
             host[0] ? host : "localhost", (long)getpid(), (long long)ts.tv_sec,
             (long)ts.tv_nsec);
}

/* Turns the answer to a SUBMIT into res, or reports why there is none. */
static int submit_answer(struct cli *c, const struct client_response *r,
                         struct proto_result *res)
{
    char msg[4097];
    bool committed = proto_result_unpack(&r->resp.payload, res) == 0;
    if (committed && res->code == 0)
        return 0;
    if (committed)
        return request_failed(c, res->code, true, res->msg, true, true);
    if (r->resp.code == 0)
        return cli_fail(c, VC_EMALFORMED, false,
                        "%s: the agent reported "
                        "success without a result",
                        c->api);
    return request_failed(c, r->resp.code, false,
                          msg_or_empty(&r->resp, msg, sizeof msg), true, true);
}

int cli_submit(struct cli *c, struct proto_cmd *cmd, struct proto_result *res)
{
    struct proto_request req = {.op = PROTO_OP_SUBMIT};
    struct client_response r;
    char errmsg[ERRMSG_MAX];
    if (c->stale)
        return cli_usage(c, "--stale applies to reads only");
    if (c->req_id)
        snprintf(c->req_buf, sizeof c->req_buf, "%s", c->req_id);
    else
        make_req_id(c);
    /* time_ms stays 0: the leader stamps every command with its clock. */
    cmd->req_id = mp_cstr(c->req_buf);
    if (proto_cmd_validate(cmd, errmsg, sizeof errmsg) != 0)
        return cli_usage(c, "%s", errmsg);
    req.cmd = *cmd;
    int status = call(c, &req, &r, true);
    if (status == 0)
        status = submit_answer(c, &r, res);
    client_response_close(&r);
    return status;
}

int cli_print_result(struct cli *c, const struct proto_cmd *cmd,
                     const struct proto_result *res, bool with_sites)
{
    static const struct render_field fields[] = {
        {"ok", "ok", RENDER_BOOL, 0, NULL},
        {"name", "cluster", RENDER_ANY, RENDER_LINE, NULL},
        {"vlan", "vlan", RENDER_ANY, RENDER_LINE, NULL},
        {"sites", "sites", RENDER_LIST, RENDER_LINE, NULL},
        {"gen", "generation", RENDER_ANY, RENDER_LINE, NULL},
        {"request_id", "request id", RENDER_ANY, RENDER_LINE, NULL},
        {"message", "message", RENDER_ANY, RENDER_LINE, NULL},
    };
    struct render_field shown[7];
    struct render_view view = {shown, 0};
    char name[VC_NAME_MAX + 1];
    msgpack_object sites[VC_SITES_MAX];
    char site_names[VC_SITES_MAX][VC_NAME_MAX + 1];
    msgpack_object_kv kv[7];
    uint32_t n = 0;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (with_sites || strcmp(fields[i].key, "sites") != 0)
            shown[view.n++] = fields[i];
    mp_str_copy(cmd->name, name, sizeof name);
    kv[n++] = render_kv("ok", render_bool(true));
    kv[n++] = render_kv("name", render_str(name));
    kv[n++] = render_kv("vlan", render_uint(res->vlan));
    for (uint32_t i = 0; with_sites && i < cmd->nsites; i++) {
        mp_str_copy(cmd->sites[i], site_names[i], sizeof site_names[i]);
        sites[i] = render_str(site_names[i]);
    }
    if (with_sites)
        kv[n++] = render_kv("sites", render_array(sites, cmd->nsites));
    kv[n++] = render_kv("gen", render_uint(res->gen));
    kv[n++] = render_kv("request_id", render_str(c->req_buf));
    kv[n++] = render_kv("message", render_str(res->msg));
    msgpack_object doc = render_map(kv, n);
    if (render_object(stdout, c->json, &doc, &view) != 0)
        return print_failed(c);
    return CLI_EXIT_OK;
}

/* The element of the list payload whose "name" is name, or NULL. */
static const msgpack_object *find_named(const msgpack_object *list,
                                        const char *name)
{
    for (uint32_t i = 0;
         list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size; i++) {
        const msgpack_object *o = &list->via.array.ptr[i];
        const msgpack_object *n = render_get(o, "name");
        struct mp_str s;
        if (n && mp_get_str(n, VC_NAME_MAX, &s) == 0 && mp_str_eq(s, name))
            return o;
    }
    return NULL;
}

static int print_failed(struct cli *c)
{
    return cli_fail(c, VC_ENOMEM, false, "out of memory printing");
}

int cli_list(struct cli *c, uint8_t op, const struct render_view *v)
{
    struct client_response r;
    int status = cli_read(c, op, "", &r);
    if (status == 0 && r.resp.payload.type != MSGPACK_OBJECT_ARRAY)
        status = cli_fail(c, VC_EMALFORMED, false,
                          "the agent's answer "
                          "holds no list");
    if (status == 0 && render_list(stdout, c->json, &r.resp.payload, v))
        status = print_failed(c);
    client_response_close(&r);
    return status;
}

int cli_show(struct cli *c, uint8_t op, const char *name,
             const struct render_view *v)
{
    struct client_response r;
    const msgpack_object *o = NULL;
    if (!proto_name_ok(mp_cstr(name)))
        return cli_usage(c,
                         "\"%s\" is not a valid name (1-63 of A-Z a-z "
                         "0-9 . _ -, starting with a letter or digit)",
                         name);
    int status = cli_read(c, op, name, &r);
    if (status == 0 && !(o = find_named(&r.resp.payload, name)))
        status = cli_fail(c, VC_ENOTFOUND, false, "not found");
    if (status == 0 && render_object(stdout, c->json, o, v) != 0)
        status = print_failed(c);
    client_response_close(&r);
    return status;
}
