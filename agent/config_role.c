/* Configuration keys of the agent's roles (site or host) and of apply
 * aggregation and rollback. config.c lists them in its key table and
 * calls config_role_check() after loading.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../proto/err.h"
#include "config.h"

#define BAD(...)                         \
    do {                                 \
        snprintf(e, l, __VA_ARGS__);     \
        return VC_EINVAL;                \
    } while (0)

int config_k_role(struct config *c, const char *v, char *e, size_t l)
{
    if (!strcmp(v, "site"))
        c->role = CONFIG_ROLE_SITE;
    else if (!strcmp(v, "host"))
        c->role = CONFIG_ROLE_HOST;
    else
        BAD("\"%s\" is not site or host", v);
    return 0;
}

int config_k_host(struct config *c, const char *v, char *e, size_t l)
{
    if (!proto_name_ok(mp_cstr(v)))
        BAD("\"%s\" is not a valid host name", v);
    snprintf(c->host, sizeof c->host, "%s", v);
    return 0;
}

/* "IP:PORT,IP:PORT,...": the site agent's API addresses, tried in turn. */
int config_k_site_agent(struct config *c, const char *v, char *e, size_t l)
{
    char buf[CONFIG_SITE_AGENTS_MAX * (VC_ADDR_MAX + 2)], *save, *item;
    struct sockaddr_storage ss;
    if (strlen(v) >= sizeof buf)
        BAD("too long");
    snprintf(buf, sizeof buf, "%s", v);
    c->nsite_agents = 0;
    for (item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        while (*item == ' ')
            item++;
        if (c->nsite_agents == CONFIG_SITE_AGENTS_MAX)
            BAD("more than %d addresses", CONFIG_SITE_AGENTS_MAX);
        if (strlen(item) > VC_ADDR_MAX || config_parse_addr(item, &ss) != 0)
            BAD("\"%s\" is not IP:PORT (or [IPv6]:PORT)", item);
        snprintf(c->site_agents[c->nsite_agents++], VC_ADDR_MAX + 1, "%s",
                 item);
    }
    if (!c->nsite_agents)
        BAD("no address listed");
    return 0;
}

int config_k_host_driver(struct config *c, const char *v, char *e, size_t l)
{
    if (strlen(v) >= sizeof c->host_driver)
        BAD("longer than %zu characters", sizeof c->host_driver - 1);
    snprintf(c->host_driver, sizeof c->host_driver, "%s", v);
    return 0;
}

int config_k_host_agents(struct config *c, const char *v, char *e, size_t l)
{
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
        c->host_agents = true;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
        c->host_agents = false;
    else
        BAD("\"%s\" is not yes or no", v);
    return 0;
}

/* A duration: "90" (seconds), "90s", "2m", "1h", "500ms"; "0" or "off"
 * disables rollback. At most a day. */
int config_k_apply_deadline(struct config *c, const char *v, char *e,
                            size_t l)
{
    char *end;
    unsigned long long n, mult = 1000;
    if (!strcmp(v, "off")) {
        c->apply_deadline_ms = 0;
        return 0;
    }
    errno = 0;
    n = strtoull(v, &end, 10);
    if (end == v || errno)
        BAD("\"%s\" is not a duration such as 60s, 5m or off", v);
    if (!strcmp(end, "ms"))
        mult = 1;
    else if (!strcmp(end, "m"))
        mult = 60000;
    else if (!strcmp(end, "h"))
        mult = 3600000;
    else if (*end && strcmp(end, "s"))
        BAD("\"%s\" is not a duration such as 60s, 5m or off", v);
    if (n > 86400000ull / mult || (n && n * mult < 1000))
        BAD("\"%s\" must be 0 (off) or between 1 s and 24 h", v);
    c->apply_deadline_ms = (unsigned)(n * mult);
    return 0;
}

int config_role_check(struct config *c, char *e, size_t l)
{
    if (c->role != CONFIG_ROLE_HOST)
        return 0;
    if (!c->host[0])
        BAD("config: host: required with role = host");
    if (!c->nsite_agents)
        BAD("config: site-agent: required with role = host");
    if (!c->host_driver[0])
        snprintf(c->host_driver, sizeof c->host_driver, "host");
    if (!c->site[0])
        snprintf(c->site, sizeof c->site, "%s", c->host);
    return 1;
}

void config_role_print(const struct config *c, void *file)
{
    FILE *f = file;
    fprintf(f, "role = %s\n", c->role == CONFIG_ROLE_HOST ? "host" : "site");
    if (c->role == CONFIG_ROLE_HOST) {
        fprintf(f, "host = %s\nsite-agent = ", c->host);
        for (unsigned i = 0; i < c->nsite_agents; i++)
            fprintf(f, "%s%s", i ? "," : "", c->site_agents[i]);
        fprintf(f, "\nhost-driver = %s\n", c->host_driver);
        return;
    }
    fprintf(f, "host-agents = %s\n", c->host_agents ? "yes" : "no");
    if (c->apply_deadline_ms)
        fprintf(f, "apply-deadline = %ums\n", c->apply_deadline_ms);
    else
        fprintf(f, "apply-deadline = off\n");
}
