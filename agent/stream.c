#include "stream.h"

#include <stdlib.h>
#include <string.h>

struct stream_write {
    uv_write_t req;
    char data[];
};

int stream_write(uv_stream_t *s, struct mp_buf *out, void *data,
                 uv_write_cb cb)
{
    uv_buf_t buf = uv_buf_init(out->data, (unsigned)out->len);
    int n = uv_try_write(s, &buf, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0; /* earlier writes still queued: queue behind them */
    if (n < 0) {
        mp_buf_reset(out);
        return n;
    }
    size_t rest = out->len - (size_t)n;
    if (rest == 0) {
        mp_buf_reset(out);
        return 0;
    }
    struct stream_write *w = malloc(sizeof *w + rest);
    if (!w) {
        mp_buf_reset(out);
        return UV_ENOMEM;
    }
    memcpy(w->data, out->data + n, rest);
    mp_buf_reset(out);
    w->req.data = data;
    buf = uv_buf_init(w->data, (unsigned)rest);
    int rv = uv_write(&w->req, s, &buf, 1, cb);
    if (rv != 0)
        free(w);
    return rv;
}
