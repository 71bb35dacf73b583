/* agent/transport.c's raft sends, on a real loop: every raft_io_send
 * completes exactly once, never inside transport_send(), including sends
 * made from a send callback, sends to a peer being dialled when the
 * transport closes, and sends once closing has started (refused at once:
 * our close callback may have fired, and nothing would complete them).
 * The network side is covered by the integration tests (secure_peer,
 * raft_records, chaos_secure). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>
#include <uv.h>

#include "agent/config.h"
#include "agent/consensus.h"
#include "agent/keys.h"
#include "agent/transport.h"

struct fx {
    uv_loop_t loop;
    struct config cfg;
    struct raft_uv_transport t;
    char dir[32];
    bool closed;
};

/* One send: how often its callback fired, with what, and whether from
 * inside transport_send(). */
struct sent {
    struct raft_io_send req;
    int fired, status;
    bool inside;
};

static struct fx *fx_now;
static bool in_send;

static void send_cb(struct raft_io_send *req, int status)
{
    struct sent *s = (struct sent *)req;
    s->fired++;
    s->status = status;
    s->inside = s->inside || in_send;
}

static int tr_send(struct fx *x, struct sent *s, const struct raft_message *m,
                raft_io_send_cb cb)
{
    in_send = true;
    int rv = transport_send(&x->t, &s->req, m, cb);
    in_send = false;
    return rv;
}

static void run(struct fx *x)
{
    for (int i = 0; i < 20; i++)
        uv_run(&x->loop, UV_RUN_NOWAIT);
}

static void closed_cb(struct raft_uv_transport *t)
{
    (void)t;
    fx_now->closed = true;
}

static void close_transport(struct fx *x)
{
    x->t.close(&x->t, closed_cb);
    while (!x->closed)
        uv_run(&x->loop, UV_RUN_ONCE);
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    struct keys_pair kp, peer;
    char err[256], path[96];
    assert_non_null(x);
    assert_int_equal(keys_init(), 0);
    assert_int_equal(uv_loop_init(&x->loop), 0);
    snprintf(x->dir, sizeof x->dir, "/tmp/vc-trXXXXXX");
    assert_non_null(mkdtemp(x->dir));
    snprintf(path, sizeof path, "%s/key", x->dir);
    assert_int_equal(keys_generate(&kp), 0);
    assert_int_equal(keys_write(path, &kp, err, sizeof err), 0);
    snprintf(x->cfg.key_path, sizeof x->cfg.key_path, "%s", path);
    snprintf(x->cfg.site, sizeof x->cfg.site, "a");
    snprintf(x->cfg.cluster_id, sizeof x->cfg.cluster_id, "t");
    /* Site "b" pinned, so that sends to it dial. */
    assert_int_equal(keys_generate(&peer), 0);
    snprintf(x->cfg.peer_keys[0].site, sizeof x->cfg.peer_keys[0].site,
             "b");
    memcpy(x->cfg.peer_keys[0].pk, peer.pk, sizeof x->cfg.peer_keys[0].pk);
    x->cfg.npeer_keys = 1;
    assert_int_equal(transport_init(&x->t, &x->loop, &x->cfg, err,
                                    sizeof err), 0);
    assert_int_equal(x->t.init(&x->t, consensus_site_id("a"),
                               "127.0.0.1:1"), 0);
    fx_now = x;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    char path[96];
    if (!x->closed)
        close_transport(x);
    transport_close(&x->t);
    assert_int_equal(uv_loop_close(&x->loop), 0);
    snprintf(path, sizeof path, "%s/key", x->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/key.pub", x->dir);
    unlink(path);
    rmdir(x->dir);
    free(x);
    return 0;
}

/* A message proto_raftmsg cannot encode (type 0): RAFT_INVALID. */
static struct raft_message unencodable(void)
{
    struct raft_message m = {0};
    m.server_id = consensus_site_id("b");
    m.server_address = "127.0.0.1:2";
    return m;
}

static struct raft_message heartbeat(const char *site, const char *addr)
{
    struct raft_message m = {.type = RAFT_APPEND_ENTRIES};
    m.server_id = consensus_site_id(site);
    m.server_address = addr;
    m.append_entries.term = 3;
    return m;
}

static void refused_from_the_loop(void **state)
{
    struct fx *x = *state;
    struct sent s = {0};
    struct raft_message m = unencodable();
    assert_int_equal(tr_send(x, &s, &m, send_cb), 0);
    assert_int_equal(s.fired, 0);
    run(x);
    assert_int_equal(s.fired, 1);
    assert_int_equal(s.status, RAFT_INVALID);
    assert_false(s.inside);
}

/* A callback that sends again: that send completes too, once. */
static struct sent again;

static void send_again_cb(struct raft_io_send *req, int status)
{
    struct raft_message m = unencodable();
    send_cb(req, status);
    assert_int_equal(tr_send(fx_now, &again, &m, send_cb), 0);
}

static void send_from_a_callback(void **state)
{
    struct fx *x = *state;
    struct sent s = {0};
    struct raft_message m = unencodable();
    memset(&again, 0, sizeof again);
    assert_int_equal(tr_send(x, &s, &m, send_again_cb), 0);
    run(x);
    assert_int_equal(s.fired, 1);
    assert_int_equal(again.fired, 1);
    assert_false(again.inside);
}

/* A site without a pinned key is not dialled: RAFT_NOCONNECTION. */
static void unknown_site(void **state)
{
    struct fx *x = *state;
    struct sent s = {0};
    struct raft_message m = heartbeat("zz", "127.0.0.1:2");
    assert_int_equal(tr_send(x, &s, &m, send_cb), 0);
    run(x);
    assert_int_equal(s.fired, 1);
    assert_int_equal(s.status, RAFT_NOCONNECTION);
}

/* A listener that accepts and never answers the handshake: sends to it
 * wait in the dial queue (at most 64: the oldest fail first), and closing
 * the transport completes the rest with RAFT_CANCELED before its close
 * callback; a send once closing has started is refused at once. */
static void queued_then_closed(void **state)
{
    struct fx *x = *state;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    char addr[32];
    static struct sent s[70];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    struct raft_message m = heartbeat("b", addr);
    memset(s, 0, sizeof s);
    for (int i = 0; i < 70; i++)
        assert_int_equal(tr_send(x, &s[i], &m, send_cb), 0);
    run(x);
    for (int i = 0; i < 6; i++) { /* over the cap: the oldest */
        assert_int_equal(s[i].fired, 1);
        assert_int_equal(s[i].status, RAFT_NOCONNECTION);
    }
    for (int i = 6; i < 70; i++)
        assert_int_equal(s[i].fired, 0);
    x->t.close(&x->t, closed_cb);
    struct sent late = {0};
    assert_int_equal(tr_send(x, &late, &m, send_cb), RAFT_CANCELED);
    while (!x->closed)
        uv_run(&x->loop, UV_RUN_ONCE);
    for (int i = 0; i < 70; i++) {
        assert_int_equal(s[i].fired, 1);
        assert_false(s[i].inside);
    }
    for (int i = 6; i < 70; i++)
        assert_int_equal(s[i].status, RAFT_CANCELED);
    run(x);
    assert_int_equal(late.fired, 0);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(refused_from_the_loop),
        T(send_from_a_callback),
        T(unknown_site),
        T(queued_then_closed),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
