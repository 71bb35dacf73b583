#include "launch.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "proto/err.h"

static const char *site_names[LAUNCH_SITES_MAX] = {
    "brno", "praha", "plzen", "ostrava", "olomouc", "liberec", "pardubice",
    "zlin", "jihlava", "opava", "kladno", "most", "tabor", "cheb", "kolin",
    "pisek"};

/* True if port can be bound on loopback right now. */
static bool port_free(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok;
    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    close(fd);
    return ok;
}

/* A loopback port that is free now and not one of used[0..nused). Taken
 * from 20000-32000, below Linux's ephemeral range (32768-60999): a port
 * the kernel hands out for bind(0) can be handed out again, to another
 * site of the plan or to an outgoing connection, before the agent binds
 * it. */
static int free_port(const int *used, unsigned nused)
{
    static unsigned seed;
    if (seed == 0)
        seed = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
    for (int tries = 0; tries < 1000; tries++) {
        int port = 20000 + (int)(rand_r(&seed) % 12000);
        bool taken = false;
        for (unsigned i = 0; i < nused && !taken; i++)
            taken = used[i] == port;
        if (!taken && port_free(port))
            return port;
    }
    return -EADDRNOTAVAIL;
}

int launch_plan(struct launch *l, const char *dir, const char *agent,
                unsigned n, char *errmsg, size_t errlen)
{
    memset(l, 0, sizeof *l);
    if (n < 1 || n > LAUNCH_SITES_MAX) {
        snprintf(errmsg, errlen, "sites: 1..%d", LAUNCH_SITES_MAX);
        return -EINVAL;
    }
    snprintf(l->dir, sizeof l->dir, "%s", dir);
    snprintf(l->agent, sizeof l->agent, "%s", agent);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(errmsg, errlen, "%s: %s", dir, strerror(errno));
        return -errno;
    }
    l->n = n;
    int used[2 * LAUNCH_SITES_MAX];
    unsigned nused = 0;
    for (unsigned i = 0; i < n; i++) {
        struct launch_site *s = &l->sites[i];
        int p1 = free_port(used, nused);
        if (p1 >= 0)
            used[nused++] = p1;
        int p2 = p1 < 0 ? p1 : free_port(used, nused);
        if (p2 >= 0)
            used[nused++] = p2;
        if (p1 < 0 || p2 < 0) {
            snprintf(errmsg, errlen, "no free loopback port");
            return -EADDRNOTAVAIL;
        }
        snprintf(s->name, sizeof s->name, "%s", site_names[i]);
        snprintf(s->peer, sizeof s->peer, "127.0.0.1:%d", p1);
        snprintf(s->api, sizeof s->api, "127.0.0.1:%d", p2);
    }
    return 0;
}

void launch_api_list(const struct launch *l, char *buf, size_t len)
{
    size_t off = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < l->n && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "," : "",
                                l->sites[i].api);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int launch_start_site(struct launch *l, unsigned i, char *errmsg,
                      size_t errlen)
{
    struct launch_site *s = &l->sites[i];
    char bootstrap[1024] = "", data[600], logf[600], pidf[600], pool[64];
    char *argv[64];
    int argc = 0;
    size_t off = 0;
    for (unsigned j = 0; j < l->n; j++)
        if (!l->sites[j].join[0])
            off += (size_t)snprintf(bootstrap + off, sizeof bootstrap - off,
                                "%s%s=%s", j ? "," : "", l->sites[j].name,
                                l->sites[j].peer);
    snprintf(data, sizeof data, "%s/%s", l->dir, s->name);
    snprintf(logf, sizeof logf, "%s/%s.log", l->dir, s->name);
    snprintf(pidf, sizeof pidf, "%s/%s.pid", l->dir, s->name);
    /* Overlapping pools, as real sites have: 100-2999 minus a per-site
     * reserved block, so allocation has to intersect. */
    snprintf(pool, sizeof pool, "100-%u,%u-3999", 1000 + 100 * i,
             1100 + 100 * i);
    char extra[sizeof l->extra];
    snprintf(extra, sizeof extra, "%s", l->extra);
    argv[argc++] = l->agent;
    argv[argc++] = "--site";
    argv[argc++] = s->name;
    argv[argc++] = "--data-dir";
    argv[argc++] = data;
    argv[argc++] = "--peer";
    argv[argc++] = s->peer;
    argv[argc++] = "--api";
    argv[argc++] = s->api;
    if (s->join[0]) {
        argv[argc++] = "--join";
        argv[argc++] = s->join;
    } else {
        argv[argc++] = "--bootstrap";
        argv[argc++] = bootstrap;
    }
    argv[argc++] = "--vlans";
    argv[argc++] = pool;
    if (s->key[0]) {
        argv[argc++] = "--key";
        argv[argc++] = s->key;
    }
    for (char *save, *t = strtok_r(extra, " ", &save); t && argc < 62;
         t = strtok_r(NULL, " ", &save))
        argv[argc++] = t;
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(errmsg, errlen, "fork: %s", strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        int fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int null = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (null >= 0)
            dup2(null, 0);
        setsid(); /* survives the launcher and its terminal */
        execv(l->agent, argv);
        _exit(127);
    }
    s->pid = pid;
    char text[32];
    snprintf(text, sizeof text, "%d\n", (int)pid);
    write_file(pidf, text);
    return 0;
}

static uint64_t now_ms(void)
{
    return client_now_ms();
}

/* True once this agent reports a leader and sees n sites registered. */
static bool ready(const char *api, unsigned n)
{
    struct client cl;
    struct client_response r;
    struct proto_request req;
    char err[256];
    bool ok = false;
    uint64_t deadline = now_ms() + 1000;
    client_init(&cl);
    if (client_connect(&cl, api, deadline, err, sizeof err) != 0)
        return false;
    memset(&req, 0, sizeof req);
    req.op = PROTO_OP_SITES;
    req.flags = PROTO_FLAG_STALE;
    req.name = mp_cstr("");
    if (client_call(&cl, &req, &r, deadline, err, sizeof err) == 0 &&
        r.resp.code == 0 && r.resp.leader.n > 0 &&
        r.resp.payload.type == MSGPACK_OBJECT_ARRAY &&
        r.resp.payload.via.array.size == n)
        ok = true;
    client_response_close(&r);
    client_close(&cl);
    return ok;
}

int launch_start(struct launch *l, unsigned timeout_ms, char *errmsg,
                 size_t errlen)
{
    int rv;
    char apis[1024];
    for (unsigned i = 0; i < l->n; i++)
        if ((rv = launch_start_site(l, i, errmsg, errlen)) != 0)
            return rv;
    launch_api_list(l, apis, sizeof apis);
    char env[1200];
    snprintf(env, sizeof env, "export VIRTCLOUD_API=%s\n", apis);
    char path[600];
    snprintf(path, sizeof path, "%s/env", l->dir);
    write_file(path, env);
    uint64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        unsigned up = 0;
        for (unsigned i = 0; i < l->n; i++) {
            int st;
            if (l->sites[i].pid && waitpid(l->sites[i].pid, &st, WNOHANG) > 0) {
                l->sites[i].pid = 0;
                snprintf(errmsg, errlen, "agent %s exited; see %s/%s.log",
                         l->sites[i].name, l->dir, l->sites[i].name);
                return -ECHILD;
            }
            up += ready(l->sites[i].api, l->n);
        }
        if (up == l->n)
            return 0;
        usleep(50 * 1000);
    }
    snprintf(errmsg, errlen, "cluster not ready after %u ms; see %s/*.log",
             timeout_ms, l->dir);
    return -ETIMEDOUT;
}

static void reap(pid_t pid, unsigned grace_ms)
{
    uint64_t deadline = now_ms() + grace_ms;
    int st;
    while (now_ms() < deadline) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD && kill(pid, 0) != 0))
            return;
        usleep(20 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

int launch_signal(struct launch *l, unsigned i, int sig)
{
    struct launch_site *s = &l->sites[i];
    if (!s->pid)
        return -ESRCH;
    if (kill(s->pid, sig) != 0)
        return -errno;
    if (sig == SIGKILL || sig == SIGTERM) {
        reap(s->pid, 10000);
        s->pid = 0;
    }
    return 0;
}

void launch_stop(struct launch *l, unsigned grace_ms)
{
    for (unsigned i = 0; i < l->n; i++)
        if (l->sites[i].pid)
            kill(l->sites[i].pid, SIGTERM);
    for (unsigned i = 0; i < l->n; i++)
        if (l->sites[i].pid) {
            reap(l->sites[i].pid, grace_ms);
            l->sites[i].pid = 0;
        }
}

int launch_stop_dir(const char *dir, unsigned grace_ms, char *errmsg,
                    size_t errlen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    pid_t pids[64];
    unsigned n = 0;
    if (!d) {
        snprintf(errmsg, errlen, "%s: %s", dir, strerror(errno));
        return -errno;
    }
    while ((e = readdir(d)) && n < 64) {
        size_t len = strlen(e->d_name);
        char path[1024];
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        int pid = 0;
        if (f && fscanf(f, "%d", &pid) == 1 && pid > 1 && kill(pid, SIGTERM) == 0)
            pids[n++] = pid;
        if (f)
            fclose(f);
        unlink(path);
    }
    closedir(d);
    for (unsigned i = 0; i < n; i++) {
        uint64_t deadline = now_ms() + grace_ms;
        while (kill(pids[i], 0) == 0 && now_ms() < deadline)
            usleep(20 * 1000);
        if (kill(pids[i], 0) == 0)
            kill(pids[i], SIGKILL);
    }
    return (int)n;
}
