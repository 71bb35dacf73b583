/* Writing a buffer to a libuv stream without a request per write. */
#ifndef VC_AGENT_STREAM_H
#define VC_AGENT_STREAM_H

#include <uv.h>

#include "../proto/mp.h"

/* Writes out's bytes to s: synchronously as far as the socket takes them
 * (uv_try_write: no request to allocate, no callback, no epoll change),
 * the rest copied into a queued uv_write whose req->data is data; cb gets
 * it on completion and frees it. out is emptied either way. Returns 0, or
 * a negative libuv code: the caller closes the stream. */
int stream_write(uv_stream_t *s, struct mp_buf *out, void *data,
                 uv_write_cb cb);

#endif
