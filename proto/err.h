/* VirtCloud error codes.
 *
 * Functions return 0 or a negative code. System failures pass through as
 * negative errno values (libuv's UV_E* are negative errno on Linux); domain
 * failures live in their own range below VC_ERR_BASE so the two never clash.
 */
#ifndef VC_PROTO_ERR_H
#define VC_PROTO_ERR_H

#define VC_ERR_BASE (-10000)

/* X(NAME, offset, text). Offsets are part of the wire format: never reuse. */
#define VC_ERR_TABLE(X)                                                   \
    X(EXISTS, 1, "already exists")                                        \
    X(NOTFOUND, 2, "not found")                                           \
    X(NOVLAN, 3, "no common VLAN")                                        \
    X(CONFLICT, 4, "conflict")                                            \
    X(INUSE, 5, "in use")                                                 \
    X(INVAL, 6, "invalid argument")                                       \
    X(LIMIT, 7, "limit reached")                                          \
    X(STATE, 8, "wrong state")                                            \
    X(MALFORMED, 9, "malformed message")                                  \
    X(VERSION, 10, "unsupported format version")                          \
    X(NOTLEADER, 11, "not the leader")                                    \
    X(NOQUORUM, 12, "no quorum")                                          \
    X(UNAVAILABLE, 13, "unavailable")                                     \
    X(TIMEOUT, 14, "timed out")                                           \
    X(UNKNOWN, 15, "outcome unknown")                                     \
    X(SHUTDOWN, 16, "shutting down")                                      \
    X(NOMEM, 17, "out of memory")                                         \
    X(TOOBIG, 18, "too big")                                              \
    X(DENIED, 19, "permission denied")                                    \
    X(IO, 20, "I/O error")

enum {
#define VC_ERR_ENUM(name, off, text) VC_E##name = VC_ERR_BASE - (off),
    VC_ERR_TABLE(VC_ERR_ENUM)
#undef VC_ERR_ENUM
};

/* Human text for a VirtCloud code or a negative errno. Never NULL. */
const char *vc_strerror(int code);

/* Stable short identifier ("NOVLAN", "EIO"), for JSON output. Never NULL. */
const char *vc_errname(int code);

#endif
