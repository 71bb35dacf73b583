/* Raft glue: libraft 0.22.1 with raft_uv disk I/O.
 *
 * Happy path: consensus_start() opens the data dir, bootstraps an empty one
 * from the configured member list, starts raft. consensus_propose() hands an
 * encoded batch to raft_apply(); once committed, raft calls apply_cb() on
 * every replica, which decodes the batch, applies each command to the state
 * machine and reports it through the apply hook; the proposer's done
 * callback follows.
 *
 * Failure modes: raft_apply() refusing at once (not leader) is returned to
 * the caller; leadership lost after appending reports VC_EUNKNOWN (the
 * entry may still commit: commands are idempotent by request id); an
 * undecodable entry or out-of-memory in apply calls the fatal hook and
 * stalls this replica, never applying a command partially on some replicas
 * only.
 */
#include "consensus.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../proto/err.h"
#include "../proto/raftmsg.h"
#include "log.h"
#include "transport.h"

/* 0.22.1's shared object exports no version function; its soname
 * (libraft.so.0, unlike 0.15's libraft.so.2) pins the line at run time. */
#if RAFT_VERSION_NUMBER < 2201
#error "libraft 0.22.1 or later is required (tools/setup-deps.sh)"
#endif

struct op {
    union {
        struct raft_apply apply;
        struct raft_barrier barrier;
        struct raft_change change;
    } req;
    struct consensus *c;
    consensus_done_cb cb;
    void *data;
};

uint64_t consensus_site_id(const char *site)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = site; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    /* Keep ids positive in signed renderings and never 0. */
    h &= 0x7fffffffffffffffull;
    return h ? h : 1;
}

static int map_raft_err(int rv)
{
    switch (rv) {
    case 0: return 0;
    case RAFT_NOTLEADER: return VC_ENOTLEADER;
    case RAFT_LEADERSHIPLOST: return VC_EUNKNOWN;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED: return VC_ESHUTDOWN;
    case RAFT_NOSPACE: return VC_EUNAVAILABLE;
    case RAFT_TOOBIG: return VC_ETOOBIG;
    case RAFT_NOMEM: return VC_ENOMEM;
    default: return VC_EIO;
    }
}

/* --- state machine callbacks ------------------------------------------- */

static int apply_cb(struct raft_fsm *rf, const struct raft_buffer *buf,
                    void **result)
{
    struct consensus *c = rf->data;
    struct proto_result r;
    char err[256];
    size_t n;
    *result = NULL;
    msgpack_zone_clear(&c->zone);
    int rv = proto_batch_decode(buf->base, buf->len, &c->zone, c->cmds,
                                VC_BATCH_MAX, &n, err, sizeof err);
    if (rv != 0) {
        char why[320];
        snprintf(why, sizeof why, "committed log entry cannot be decoded: %s",
                 err);
        c->on_fatal(c->hook_data, why);
        return RAFT_MALFORMED;
    }
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n) /* overlap the next command's cache misses */
            fsm_prefetch(c->fsm, &c->cmds[i + 1]);
        if (fsm_apply(c->fsm, &c->cmds[i], &r) != 0) {
            c->on_fatal(c->hook_data, "out of memory applying a command");
            return RAFT_NOMEM;
        }
        c->on_apply(c->hook_data, &c->cmds[i], &r);
    }
    return 0;
}

/* The snapshot is encoded on the loop thread (libraft 0.22.1 calls
 * snapshot() there, and snapshot_async() too), into a buffer kept from one
 * snapshot to the next: a fresh one of ~14 MiB cost more than the encoding
 * itself (page faults on every new page, realloc copies while growing, and
 * a munmap when freed). The price is that memory held between snapshots;
 * it is let go when a snapshot needs less than a quarter of it. */
static int snapshot_cb(struct raft_fsm *rf, struct raft_buffer *bufs[],
                       unsigned *n)
{
    struct consensus *c = rf->data;
    struct mp_buf fresh, *b = &c->snap;
    if (c->snap_lent) { /* raft still has it: not expected, but safe */
        mp_buf_init(&fresh);
        b = &fresh;
    }
    mp_buf_reset(b);
    if (fsm_snapshot(c->fsm, b) != 0 || !(*bufs = raft_malloc(sizeof **bufs))) {
        mp_buf_close(b);
        return RAFT_NOMEM;
    }
    if (b == &c->snap) {
        (*bufs)[0].base = b->data;
        (*bufs)[0].len = b->len;
        c->snap_lent = true;
    } else {
        (*bufs)[0].base = mp_buf_take(b, &(*bufs)[0].len);
    }
    *n = 1;
    log_debug("snapshot taken: %zu bytes", (*bufs)[0].len);
    return 0;
}

static int snapshot_finalize_cb(struct raft_fsm *rf, struct raft_buffer *bufs[],
                                unsigned *n)
{
    struct consensus *c = rf->data;
    if (*bufs) {
        void *base = (*bufs)[0].base;
        size_t len = (*bufs)[0].len;
        if (c->snap_lent && base == c->snap.data) {
            c->snap_lent = false;
            if (c->closing || len < c->snap.cap / 4)
                mp_buf_close(&c->snap);
        } else {
            free(base);
        }
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n = 0;
    return 0;
}

static int restore_cb(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct consensus *c = rf->data;
    char err[256];
    int rv = fsm_restore(c->fsm, buf->base, buf->len, err, sizeof err);
    if (rv != 0) {
        log_error("cannot restore snapshot (%zu bytes): %s", buf->len, err);
        return RAFT_MALFORMED;
    }
    log_info("restored snapshot of %zu bytes", buf->len);
    raft_free(buf->base);
    return 0;
}

/* --- start ------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* raft_uv's segment size; the agent never changes it. */
#define SEGMENT_BYTES (8u << 20)

/* raft_uv preallocates every open segment ("open-N") to the segment size,
 * so a crash in the middle of an append leaves zeros or a torn batch
 * inside a full-size file, which libraft 0.22.1 reads as the end of the
 * log. A shorter file (cut by a file system that lost the preallocation,
 * or by hand) it cannot load: raft_start() fails with "short read" when
 * the cut is in the first batch and double-frees the segment buffer when
 * it is in a later one (the chaos suite's torn writes found both). Padding
 * such a file with zeros back to the segment size turns the cut into the
 * torn tail raft does handle; nothing that was readable is changed. */
static void pad_open_segments(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[600];
    struct stat st;
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "open-", 5) != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) ||
            st.st_size >= (off_t)SEGMENT_BYTES)
            continue;
        int fd = open(path, O_WRONLY);
        if (fd < 0 || ftruncate(fd, SEGMENT_BYTES) != 0 || fsync(fd) != 0)
            log_warn("open segment %s is cut short (%lld bytes) and cannot "
                     "be padded: %s", path, (long long)st.st_size,
                     strerror(errno));
        else
            log_warn("open segment %s was cut short at %lld bytes (torn "
                     "write?); padded with zeros so that raft drops the "
                     "torn tail", path, (long long)st.st_size);
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
}

/* --- segment preallocation ---------------------------------------------
 * raft_uv prepares every open segment with posix_fallocate(). On ext4 (and
 * xfs) that leaves unwritten extents, and every O_DIRECT|O_DSYNC append
 * into one must convert extents (metadata, a journal commit) and is mostly
 * refused under RWF_NOWAIT: libraft then redoes the write on a libuv
 * worker thread (strace: ~half of the appends, all 8 KiB ones). Into
 * blocks that hold written zeros an append is a plain overwrite:
 * submitted from the loop, no worker, no journal.
 *
 * So this definition, which takes precedence over libc's for libraft (the
 * only caller in the agent), writes real zeros into a new open segment
 * (an empty file given exactly the segment size), at the cost of writing
 * it once more, on raft's worker thread, before it is used; the page cache
 * that fills is dropped (direct writes would invalidate it page by page).
 * Anything else libraft preallocates -- snapshot files, which it then
 * writes in full anyway, and its 4 KiB direct-I/O probe -- gets a plain
 * fallocate(2) as before. Durability is unchanged: appends stay O_DSYNC. */
#define ZERO_CHUNK (1u << 20)

static int fill_zeros(int fd, off_t from, off_t to)
{
    static _Alignas(4096) char zeros[ZERO_CHUNK]; /* .bss: never written */
    while (from < to) {
        size_t n = to - from < ZERO_CHUNK ? (size_t)(to - from) : ZERO_CHUNK;
        ssize_t w = pwrite(fd, zeros, n, from);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        from += w;
    }
    return 0;
}

/* Named by its symbol: with _FILE_OFFSET_BITS=64, <fcntl.h> renames the C
 * name to posix_fallocate64, and libraft imports posix_fallocate. */
int zero_fallocate(int fd, off_t offset, off_t len) __asm__("posix_fallocate");

int zero_fallocate(int fd, off_t offset, off_t len)
{
    struct stat st;
    int rv;
    if (offset < 0 || len <= 0)
        return EINVAL;
    if (offset > INT64_MAX - len)
        return EFBIG;
    if (fstat(fd, &st) != 0)
        return errno;
    if (!S_ISREG(st.st_mode))
        return ENODEV;
    bool segment = offset == 0 && len == SEGMENT_BYTES && st.st_size == 0;
    if (!segment) {
        if (fallocate(fd, 0, offset, len) == 0)
            return 0;
        if (errno != EOPNOTSUPP)
            return errno;
        /* No fallocate here (as glibc): zeros past the end of the file. */
    }
    off_t end = offset + len, from = st.st_size > offset ? st.st_size : offset;
    if (from >= end)
        return 0;
    if (from > st.st_size && ftruncate(fd, from) != 0)
        return errno;
    if ((rv = fill_zeros(fd, from, end)) != 0)
        return rv;
    if (fdatasync(fd) != 0)
        return errno;
    posix_fadvise(fd, from, end - from, POSIX_FADV_DONTNEED);
    return 0;
}

static int bootstrap(struct consensus *c, char *err, size_t len)
{
    struct raft_configuration conf;
    const struct config *cfg = c->cfg;
    bool self = false;
    int rv;
    if (cfg->nbootstrap == 0)
        return 0;
    raft_configuration_init(&conf);
    for (unsigned i = 0; i < cfg->nbootstrap; i++) {
        const struct config_member *m = &cfg->bootstrap[i];
        self |= strcmp(m->site, cfg->site) == 0;
        rv = raft_configuration_add(&conf, consensus_site_id(m->site), m->addr,
                                    RAFT_VOTER);
        if (rv != 0) {
            snprintf(err, len, "bootstrap: %s: %s", m->site, raft_strerror(rv));
            raft_configuration_close(&conf);
            return VC_EINVAL;
        }
    }
    if (!self && cfg->join[0]) {
        /* A joining site may carry the founders' list: it joins instead. */
        raft_configuration_close(&conf);
        return 0;
    }
    if (!self) {
        raft_configuration_close(&conf);
        snprintf(err, len, "config: bootstrap: this site (%s) is not listed",
                 cfg->site);
        return VC_EINVAL;
    }
    rv = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == RAFT_CANTBOOTSTRAP)
        return 0; /* data dir already holds state: the list is ignored */
    if (rv != 0) {
        snprintf(err, len, "bootstrap: %s", raft_errmsg(&c->raft));
        return VC_EIO;
    }
    log_info("bootstrapped a new cluster of %u sites", cfg->nbootstrap);
    return 0;
}

/* --- Nagle on raft's streams -------------------------------------------
 * raft_uv_tcp (the plain transport) leaves Nagle's algorithm on. Raft's
 * connections are one-way, so the receiver of AppendEntries never sends
 * data to piggyback its ACKs on and delays them (40 ms minimum on Linux);
 * meanwhile Nagle holds the leader's next AppendEntries, which is smaller
 * than a segment, until that ACK arrives: one commit in a few hundred
 * took 40+ ms. Raft hands the stream to our callbacks first, so we turn
 * Nagle off there. The secure transport gives raft no stream at all (see
 * io_wrap()) and sets TCP_NODELAY on its own TCP connections. */

static struct consensus *of_transport(struct raft_uv_transport *t)
{
    return (struct consensus *)((char *)t -
                                offsetof(struct consensus, transport));
}

static void nodelay(struct uv_stream_s *stream)
{
    if (stream && stream->type == UV_TCP &&
        uv_tcp_nodelay((uv_tcp_t *)stream, 1) != 0)
        log_warn("raft connection: cannot set TCP_NODELAY");
}

/* Raft passes the same connect callback every time (one function in
 * libraft), so one saved pointer serves every consensus in the process. */
static raft_uv_connect_cb raft_connect_cb;

static void nodelay_connect_cb(struct raft_uv_connect *req,
                               struct uv_stream_s *stream, int status)
{
    if (status == 0)
        nodelay(stream);
    raft_connect_cb(req, stream, status);
}

static int nodelay_connect(struct raft_uv_transport *t,
                           struct raft_uv_connect *req, raft_id id,
                           const char *address, raft_uv_connect_cb cb)
{
    struct consensus *c = of_transport(t);
    if (raft_connect_cb && raft_connect_cb != cb) /* not expected: no wrap */
        return c->tr_connect(t, req, id, address, cb);
    raft_connect_cb = cb;
    return c->tr_connect(t, req, id, address, nodelay_connect_cb);
}

static void nodelay_accept_cb(struct raft_uv_transport *t, raft_id id,
                              const char *address, struct uv_stream_s *stream)
{
    nodelay(stream);
    of_transport(t)->raft_accept_cb(t, id, address, stream);
}

static int nodelay_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct consensus *c = of_transport(t);
    c->raft_accept_cb = cb;
    return c->tr_listen(t, nodelay_accept_cb);
}

static void nodelay_wrap(struct consensus *c)
{
    c->tr_connect = c->transport.connect;
    c->tr_listen = c->transport.listen;
    c->transport.connect = nodelay_connect;
    c->transport.listen = nodelay_listen;
}

/* --- raft's messages: the receive guard and the secure transport -------
 * raft_io's send() and start() are function pointers raft calls through
 * (raft_uv's own code never calls them). start() is wrapped on both
 * transports so that every received message is checked by
 * consensus_second_leader() first: guard_recv() for raft_uv's, the
 * transport's deliver() with a key. With a key the messages also bypass
 * raft_uv's streams: raft_uv would
 * write them to a stream from its transport, and the secure transport
 * cannot give it one without a socketpair and a pump (two more syscalls
 * and a loop turn per message at each end); so send() goes to
 * transport_send(), and received messages come from the transport
 * (transport_set_recv()). raft_uv keeps the disk and its listen() call;
 * its connect() is then never used. */

static struct consensus *of_io(struct raft_io *io)
{
    return (struct consensus *)((char *)io - offsetof(struct consensus, io));
}

raft_term consensus_second_leader(struct raft *r,
                                  const struct raft_message *m)
{
    raft_term term;
    if (m->type == RAFT_APPEND_ENTRIES)
        term = m->append_entries.term;
    else if (m->type == RAFT_INSTALL_SNAPSHOT)
        term = m->install_snapshot.term;
    else
        return 0;
    return r && raft_state(r) == RAFT_LEADER && raft_current_term(r) == term
               ? term
               : 0;
}

/* Every received message, before raft: see consensus_second_leader(). */
static void guard_recv(struct raft_io *io, struct raft_message *m)
{
    struct consensus *c = of_io(io);
    raft_term term = consensus_second_leader(&c->raft, m);
    unsigned left_out;
    if (!term) {
        c->raft_recv(io, m);
        return;
    }
    if (log_limit_ok(&c->forged_warn, uv_now(c->loop), 5000, &left_out))
        log_warn("raft message from id %llu at %s: %s of term %llu, which "
                 "this site leads: dropped (forged: the plain transport "
                 "authenticates nobody; %u more in the last 5 s)",
                 (unsigned long long)m->server_id,
                 m->server_address ? m->server_address : "?",
                 m->type == RAFT_APPEND_ENTRIES ? "AppendEntries"
                                                : "InstallSnapshot",
                 (unsigned long long)term, left_out);
    /* What raft_uv allocated for m, as proto_raftmsg_decode() does:
     * raft would have taken it over. */
    proto_raftmsg_free(m);
}

static int guarded_start(struct raft_io *io, unsigned msecs,
                         raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    struct consensus *c = of_io(io);
    c->raft_recv = recv;
    /* The secure transport makes the same check itself, and closes the
     * connection the message came on: it delivers straight to raft. */
    if (transport_secure(&c->transport))
        transport_set_recv(&c->transport, io, recv);
    return c->io_start(io, msecs, tick, guard_recv);
}

static int secure_send(struct raft_io *io, struct raft_io_send *req,
                       const struct raft_message *m, raft_io_send_cb cb)
{
    return transport_send(&of_io(io)->transport, req, m, cb);
}

static void io_wrap(struct consensus *c)
{
    c->io_start = c->io.start;
    c->io.start = guarded_start;
    if (transport_secure(&c->transport))
        c->io.send = secure_send;
}

static void tune(struct consensus *c)
{
    const struct config *cfg = c->cfg;
    raft_set_election_timeout(&c->raft, cfg->election_timeout_ms);
    raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_timeout_ms);
    raft_set_pre_vote(&c->raft, true);
    raft_set_snapshot_threshold(&c->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing);
    /* Pipelined group commits: see docs/operations on tuning. */
    raft_set_max_inflight_entries(&c->raft, 256);
    raft_set_max_catch_up_rounds(&c->raft, 20);
    /* raft_uv reports as "capacity" the room left in its preallocated
     * segments, and raft refuses every entry (RAFT_NOSPACE) while a
     * majority is below the threshold (4096 KiB by default): with small
     * segments that is always, so the threshold follows the segment. */
    if (cfg->segment_kib < 8192)
        raft_set_capacity_threshold(&c->raft,
                                    (unsigned short)(cfg->segment_kib / 2));
}

int consensus_start(struct consensus *c, uv_loop_t *loop,
                    const struct config *cfg, struct fsm *fsm,
                    consensus_apply_hook on_apply,
                    consensus_fatal_hook on_fatal, void *data, char *err,
                    size_t len)
{
    int rv;
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->cfg = cfg;
    c->fsm = fsm;
    c->on_apply = on_apply;
    c->on_fatal = on_fatal;
    c->hook_data = data;
    if ((rv = mkdir_p(cfg->data_dir)) != 0) {
        snprintf(err, len, "data-dir %s: %s", cfg->data_dir, strerror(-rv));
        return rv;
    }
    pad_open_segments(cfg->data_dir);
    c->cmds = calloc(VC_BATCH_MAX, sizeof *c->cmds);
    if (!c->cmds || !msgpack_zone_init(&c->zone, 64 * 1024)) {
        free(c->cmds);
        snprintf(err, len, "out of memory");
        return VC_ENOMEM;
    }
    if ((rv = transport_init(&c->transport, loop, cfg, err, len)) != 0)
        goto err_zone;
    if (!transport_secure(&c->transport))
        nodelay_wrap(c);
    if ((rv = raft_uv_init(&c->io, loop, cfg->data_dir, &c->transport)) != 0) {
        snprintf(err, len, "data-dir %s: %s", cfg->data_dir, c->io.errmsg);
        goto err_transport;
    }
    io_wrap(c);
    raft_uv_set_segment_size(&c->io, (size_t)cfg->segment_kib * 1024);
    c->raft_fsm.version = 2;
    c->raft_fsm.data = c;
    c->raft_fsm.apply = apply_cb;
    c->raft_fsm.snapshot = snapshot_cb;
    c->raft_fsm.snapshot_finalize = snapshot_finalize_cb;
    c->raft_fsm.restore = restore_cb;
    rv = raft_init(&c->raft, &c->io, &c->raft_fsm,
                   consensus_site_id(cfg->site), cfg->peer);
    if (rv != 0) {
        snprintf(err, len, "raft: %s", raft_errmsg(&c->raft));
        goto err_io;
    }
    c->raft.data = c;
    /* 0.22.1 formats every trace message (snprintf, several per entry on
     * every replica) before its default tracer checks LIBRAFT_TRACE and
     * drops it; a NULL tracer skips the formatting. LIBRAFT_TRACE still
     * turns raft's stderr tracing on. */
    if (!getenv("LIBRAFT_TRACE"))
        c->raft.tracer = NULL;
    tune(c);
    if ((rv = bootstrap(c, err, len)) != 0)
        goto err_raft;
    if ((rv = raft_start(&c->raft)) != 0) {
        const char *m = raft_errmsg(&c->raft);
        snprintf(err, len, "raft start in %s: %s (%d)%s", cfg->data_dir,
                 m && *m ? m : raft_strerror(rv), rv,
                 rv == RAFT_IOERR || rv == RAFT_BUSY
                     ? "; is another agent using this data-dir?"
                     : "");
        goto err_raft;
    }
    c->started = true;
    return 0;
err_raft:
    /* raft_close is asynchronous; the caller exits on this error path. */
    return rv < 0 ? rv : VC_EIO;
err_io:
    raft_uv_close(&c->io);
err_transport:
    transport_close(&c->transport);
err_zone:
    msgpack_zone_destroy(&c->zone);
    free(c->cmds);
    return rv < 0 ? rv : VC_EIO;
}

/* --- proposals --------------------------------------------------------- */

static void transfer_done_cb(struct raft_transfer *req);

/* A leader that cannot write its log (disk full, I/O errors) commits
 * nothing: it hands leadership to a voter that can, rather than answering
 * UNAVAILABLE until an operator frees space. At most once per
 * DISK_STEPDOWN_MS, so a cluster whose disks are all full does not bounce
 * leadership around. */
#define DISK_STEPDOWN_MS 5000

static void disk_trouble(struct consensus *c, int rv)
{
    uint64_t now = uv_now(c->loop);
    if ((rv != RAFT_NOSPACE && rv != RAFT_IOERR) || c->closing ||
        !consensus_is_leader(c) ||
        (c->disk_stepdown_ms && now - c->disk_stepdown_ms < DISK_STEPDOWN_MS))
        return;
    c->disk_stepdown_ms = now;
    c->transfer.data = c;
    if (raft_transfer(&c->raft, &c->transfer, 0, transfer_done_cb) == 0)
        log_warn("cannot write the raft log (%s): handing leadership to "
                 "another site; free space in %s", c->disk_low ?
                 "less than two segments of free disk" : raft_strerror(rv),
                 c->cfg->data_dir);
}

/* raft_uv does not report a full disk: it retries its writes every few
 * seconds, so a full leader goes on leading (the followers commit for
 * it) without persisting anything, its unwritten entries pile up in
 * memory, and one more failure loses the quorum. So the agent watches
 * the free space itself: below DISK_LOW_SEGMENTS segments, a leader
 * hands over. */
#define DISK_LOW_SEGMENTS 2
#define DISK_CHECK_MS 1000

static void check_disk(struct consensus *c)
{
    struct statvfs st;
    uint64_t now = uv_now(c->loop), need;
    if (now - c->disk_checked_ms < DISK_CHECK_MS)
        return;
    c->disk_checked_ms = now;
    if (statvfs(c->cfg->data_dir, &st) != 0)
        return;
    need = (uint64_t)DISK_LOW_SEGMENTS * c->cfg->segment_kib * 1024;
    c->disk_low = (uint64_t)st.f_bavail * st.f_frsize < need;
    if (c->disk_low)
        disk_trouble(c, RAFT_NOSPACE);
}

/* A new leader's commit index can be below what the previous leader
 * committed until an entry of its own term commits (raft never counts
 * replicas of older-term entries). A barrier issued in the new term
 * settles it: once it completes, the commit index covers every entry
 * ever committed, and consensus_leader_ready() says so. */
static void term_ready_cb(void *data, int status)
{
    struct consensus *c = data;
    c->term_barrier_inflight = false;
    if (status == 0)
        c->ready_term = c->term_barrier_term;
}

static void settle_term(struct consensus *c)
{
    uint64_t term = c->raft.current_term;
    if (!consensus_is_leader(c) || c->ready_term == term ||
        c->term_barrier_inflight)
        return;
    if (consensus_barrier(c, term_ready_cb, c) == 0) {
        c->term_barrier_inflight = true;
        c->term_barrier_term = term;
    }
}

bool consensus_leader_ready(struct consensus *c)
{
    return consensus_is_leader(c) && c->ready_term == c->raft.current_term;
}

void consensus_tick(struct consensus *c)
{
    if (!c->started || c->closing)
        return;
    settle_term(c);
    check_disk(c);
}

static void apply_done_cb(struct raft_apply *req, int status, void *result)
{
    struct op *op = req->data;
    (void)result;
    disk_trouble(op->c, status);
    op->cb(op->data, map_raft_err(status));
    free(op);
}

int consensus_propose(struct consensus *c, void *data, size_t len,
                      consensus_done_cb cb, void *cb_data)
{
    struct raft_buffer buf;
    struct op *op;
    int rv;
    if (c->closing) {
        free(data);
        return VC_ESHUTDOWN;
    }
    if (!(op = malloc(sizeof *op)) || !(buf.base = raft_malloc(len))) {
        free(op);
        free(data);
        return VC_ENOMEM;
    }
    memcpy(buf.base, data, len);
    free(data);
    buf.len = len;
    op->c = c;
    op->cb = cb;
    op->data = cb_data;
    op->req.apply.data = op;
    rv = raft_apply(&c->raft, &op->req.apply, &buf, 1, apply_done_cb);
    if (rv != 0) {
        /* Unlike its header comment says, 0.22.1's legacy raft_apply hands
         * the buffer to the failed submit event, which frees it (ASan
         * showed a double free when we freed it too). Do not touch it --
         * except after RAFT_NOTLEADER (not leader, or a leadership
         * transfer running), which returns before taking it: LSan showed
         * that leak in virtcloud-sim, and freeing it no double free. */
        if (rv == RAFT_NOTLEADER)
            raft_free(buf.base);
        unsigned left_out;
        if (log_limit_ok(&c->apply_warn, uv_now(c->loop), 5000, &left_out))
            log_warn("raft_apply: %s (%d): %s (%u more in the last 5 s)",
                     raft_strerror(rv), rv, raft_errmsg(&c->raft), left_out);
        disk_trouble(c, rv);
        free(op);
        return map_raft_err(rv);
    }
    return 0;
}

static void barrier_done_cb(struct raft_barrier *req, int status)
{
    struct op *op = req->data;
    op->cb(op->data, map_raft_err(status));
    free(op);
}

int consensus_barrier(struct consensus *c, consensus_done_cb cb,
                      void *cb_data)
{
    struct op *op;
    int rv;
    if (c->closing)
        return VC_ESHUTDOWN;
    if (!(op = malloc(sizeof *op)))
        return VC_ENOMEM;
    op->c = c;
    op->cb = cb;
    op->data = cb_data;
    op->req.barrier.data = op;
    rv = raft_barrier(&c->raft, &op->req.barrier, barrier_done_cb);
    if (rv != 0) {
        free(op);
        return map_raft_err(rv);
    }
    return 0;
}

/* --- membership ---------------------------------------------------------- */

static void change_done_cb(struct raft_change *req, int status)
{
    struct op *op = req->data;
    op->c->changing = false;
    op->cb(op->data, map_raft_err(status));
    free(op);
}

static struct op *change_op(struct consensus *c, consensus_done_cb cb,
                            void *data, int *rv)
{
    struct op *op;
    *rv = 0;
    if (c->closing)
        *rv = VC_ESHUTDOWN;
    else if (!consensus_is_leader(c))
        *rv = VC_ENOTLEADER;
    else if (c->changing)
        *rv = VC_ECONFLICT;
    else if (!(op = malloc(sizeof *op)))
        *rv = VC_ENOMEM;
    if (*rv)
        return NULL;
    op->c = c;
    op->cb = cb;
    op->data = data;
    op->req.change.data = op;
    return op;
}

static int change_started(struct consensus *c, struct op *op, int rv)
{
    if (rv != 0) {
        free(op);
        return rv == RAFT_CANTCHANGE ? VC_ECONFLICT : map_raft_err(rv);
    }
    c->changing = true;
    return 0;
}

int consensus_add(struct consensus *c, uint64_t id, const char *addr,
                  consensus_done_cb cb, void *data)
{
    int rv;
    struct op *op = change_op(c, cb, data, &rv);
    if (!op)
        return rv;
    return change_started(c, op, raft_add(&c->raft, &op->req.change, id, addr,
                                          change_done_cb));
}

int consensus_assign(struct consensus *c, uint64_t id, int role,
                     consensus_done_cb cb, void *data)
{
    int rv;
    struct op *op = change_op(c, cb, data, &rv);
    if (!op)
        return rv;
    return change_started(c, op, raft_assign(&c->raft, &op->req.change, id,
                                             role, change_done_cb));
}

int consensus_remove(struct consensus *c, uint64_t id, consensus_done_cb cb,
                     void *data)
{
    int rv;
    struct op *op = change_op(c, cb, data, &rv);
    if (!op)
        return rv;
    return change_started(c, op, raft_remove(&c->raft, &op->req.change, id,
                                             change_done_cb));
}

bool consensus_changing(struct consensus *c)
{
    return c->changing;
}

int consensus_member_role(struct consensus *c, uint64_t id, const char **addr)
{
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id == id) {
            if (addr)
                *addr = conf->servers[i].address;
            return conf->servers[i].role;
        }
    return -1;
}

int consensus_match_index(struct consensus *c, uint64_t id, uint64_t *idx)
{
    raft_index i = 0;
    if (!consensus_is_leader(c) || raft_match_index(&c->raft, id, &i) != 0)
        return VC_ENOTFOUND;
    *idx = i;
    return 0;
}

uint64_t consensus_last_index(struct consensus *c)
{
    return c->raft.last_stored;
}

/* --- queries ----------------------------------------------------------- */

bool consensus_is_leader(struct consensus *c)
{
    return c->started && !c->closing && raft_state(&c->raft) == RAFT_LEADER;
}

uint64_t consensus_leader(struct consensus *c, const char **addr)
{
    raft_id id = 0;
    const char *a = NULL;
    if (c->started && !c->closing)
        raft_leader(&c->raft, &id, &a);
    if (addr)
        *addr = a ? a : "";
    return id;
}

static void member_site(const struct consensus *c, uint64_t id, char *out,
                        size_t len)
{
    for (int i = 0; i < VC_SITES_MAX; i++)
        if (c->fsm->sites[i].live &&
            consensus_site_id(c->fsm->sites[i].name) == id) {
            snprintf(out, len, "%s", c->fsm->sites[i].name);
            return;
        }
    for (unsigned i = 0; i < c->cfg->nbootstrap; i++)
        if (consensus_site_id(c->cfg->bootstrap[i].site) == id) {
            snprintf(out, len, "%s", c->cfg->bootstrap[i].site);
            return;
        }
    out[0] = '\0';
}

void consensus_status(struct consensus *c, struct consensus_status *st)
{
    const char *addr;
    memset(st, 0, sizeof *st);
    st->state = c->started ? raft_state(&c->raft) : RAFT_UNAVAILABLE;
    st->term = c->raft.current_term;
    st->commit = raft_commit_index(&c->raft);
    st->applied = raft_last_applied(&c->raft);
    st->leader_id = consensus_leader(c, &addr);
    st->last_index = c->raft.last_stored;
    snprintf(st->leader_addr, sizeof st->leader_addr, "%s", addr);
    const struct raft_configuration *conf = &c->raft.configuration;
    for (unsigned i = 0; i < conf->n && st->nmembers < sizeof st->members /
                                            sizeof st->members[0]; i++) {
        struct consensus_member *m = &st->members[st->nmembers++];
        m->id = conf->servers[i].id;
        m->role = conf->servers[i].role;
        m->leader = m->id == st->leader_id;
        snprintf(m->addr, sizeof m->addr, "%s", conf->servers[i].address);
        member_site(c, m->id, m->site, sizeof m->site);
        if (st->state == RAFT_LEADER) {
            raft_index idx = 0;
            if (m->id == c->raft.id)
                idx = c->raft.last_stored;
            else if (raft_match_index(&c->raft, m->id, &idx) != 0)
                idx = 0;
            m->match = idx;
            m->lag = c->raft.last_stored > idx ? c->raft.last_stored - idx : 0;
        }
    }
}

/* --- leadership transfer and close ------------------------------------- */

static void transfer_done_cb(struct raft_transfer *req)
{
    struct consensus *c = req->data;
    if (c->transfer_cb)
        c->transfer_cb(c);
}

int consensus_transfer(struct consensus *c, void (*cb)(struct consensus *c))
{
    if (!consensus_is_leader(c))
        return VC_ENOTLEADER;
    c->transfer_cb = cb;
    c->transfer.data = c;
    int rv = raft_transfer(&c->raft, &c->transfer, 0, transfer_done_cb);
    return rv == 0 ? 0 : map_raft_err(rv);
}

static void raft_closed_cb(struct raft *r)
{
    struct consensus *c = r->data;
    raft_uv_close(&c->io);
    transport_close(&c->transport);
    msgpack_zone_destroy(&c->zone);
    free(c->cmds);
    c->cmds = NULL;
    if (!c->snap_lent) /* else snapshot_finalize() frees it */
        mp_buf_close(&c->snap);
    if (c->close_cb)
        c->close_cb(c);
}

void consensus_close(struct consensus *c, void (*cb)(struct consensus *c))
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_cb = cb;
    if (!c->started) {
        if (cb)
            cb(c);
        return;
    }
    raft_close(&c->raft, raft_closed_cb);
}
