/* offload.c: request preparation off the loop.
 *
 * Parsing a body (up to 8 MiB of JSON), rendering the chat template and
 * tokenizing all grow with the input, so they run on libuv's worker threads
 * and the loop only takes the result: /health, /metrics and every stream go
 * on while a long prompt is read. A small body (INLINE_MAX) is prepared on
 * the loop at once: its work is bounded (well under a millisecond for
 * most), and the hop to a worker thread and back cost more than that when
 * the compute threads keep every core busy (TTFT 27 -> 36 ms serving 16
 * clients on 2 cores, benchmarks/README.md). The work owns the request's body and may
 * read only what never changes while the server runs (the tokenizer, the
 * model's limits, engine_check's constants); jobs and counters are touched
 * on the loop alone, in done. */
#include <stdlib.h>

#include "../base/err.h"
#include "serve.h"

#define INLINE_MAX 16384

struct offloaded {
    uv_work_t work;
    struct srv *s;
    struct http_request *req;   /* NULL once the client left */
    char *body;                 /* taken over from req */
    size_t len;
    offload_work fn;
    offload_done done;
    void *arg;
};

static void on_work(uv_work_t *w)
{
    struct offloaded *o = w->data;
    o->fn(o->arg, o->body, o->len);
}

static void on_done(uv_work_t *w, int status)
{
    struct offloaded *o = w->data;
    struct srv *s = o->s;
    struct http_request *r = o->req;
    s->n_preps--;
    if (r) r->on_abort = NULL;
    struct oai_error e;
    if (r && (status < 0 || s->shutting_down)) {
        if (status < 0) oai_fail(&e, 500, NULL, NULL, "the request could not be prepared");
        else oai_fail(&e, 503, NULL, NULL, "the server is shutting down");
        reply_error(s, r, &e);
        r = NULL;
    }
    o->done(s, r, o->arg);
    free(o->body);
    free(o);
    serve_maybe_stop(s);
}

static void abandon(struct http_request *r, void *arg)
{
    struct offloaded *o = arg;
    log_request(o->s, r, 499, -1, -1, -1);
    o->req = NULL; /* the work goes on; done is told */
}

void offload(struct srv *s, struct http_request *r, offload_work work, offload_done done, void *arg)
{
    struct offloaded *o = xcalloc(1, sizeof(*o));
    *o = (struct offloaded){.s = s, .req = r, .len = r->body.len, .fn = work, .done = done, .arg = arg};
    o->body = strbuf_take(&r->body);
    o->work.data = o;
    r->on_abort = abandon;
    r->abort_arg = o;
    s->n_preps++;
    if (o->len <= INLINE_MAX) {
        on_work(&o->work);
        on_done(&o->work, 0);
    } else if (uv_queue_work(s->loop, &o->work, on_work, on_done)) {
        on_done(&o->work, UV_ECANCELED);
    }
}
