/* fuzz_http.c: the HTTP request path in process, no model: the input is what
 * a client sends on one connection (several pipelined requests, bodies,
 * chunked encoding, garbage), written into one end of a socketpair whose
 * other end server/http.c serves (http_server_adopt) on a libuv loop:
 * llhttp, the header and body limits, keep-alive, pipelining, HEAD, Host,
 * lingering closes. Requests go through a route table like the server's:
 * /health, the two generation routes (oai_parse validation, then a whole
 * reply or a short SSE stream built with sse_data) and a 404 that echoes the
 * path (oai_fail repairs it). The loop runs until the connection is closed.
 *
 * Checked: every byte the server sends is valid UTF-8 (the path, a bad
 * header or body never comes back broken), every reply starts with a status
 * line, and the connection always ends (no request can hold it: the loop is
 * bounded and a hang is a libFuzzer timeout). */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "../../server/http.h"
#include "../../server/oai_render.h"
#include "../../server/sse.h"
#include "fuzz.h"

static uv_loop_t loop;
static http_server *srv;

static void reply_error(struct http_request *r, const struct oai_error *e)
{
    char *body = oai_error_json(e);
    http_respond(r, e->status, "application/json", e->status == 503 ? "Retry-After: 1\r\n" : NULL, body,
                 strlen(body));
    free(body);
}

static void generate(struct http_request *r, bool chat)
{
    struct oai_request q;
    struct oai_error e;
    if (oai_parse(&q, chat, r->body.s, r->body.len, 512, &e)) {
        oai_request_free(&q);
        reply_error(r, &e);
        return;
    }
    const char *text = chat ? q.msgs[0].content : q.prompts[0].text ? q.prompts[0].text : "ids";
    if (!q.stream) {
        char *body = malloc(strlen(text) + 32);
        if (!body) abort();
        int n = sprintf(body, "{\"n\":%d,\"text_bytes\":%zu}", q.n, strlen(text));
        http_respond(r, 200, "application/json", NULL, body, (size_t)n);
        free(body);
    } else {
        http_stream_begin(r, 200, "text/event-stream", NULL);
        for (int i = 0; i < q.n; i++) { /* the prompt's text echoed as events (jansson gave valid UTF-8) */
            size_t len;
            char *ev = sse_data(text, strlen(text), &len);
            http_stream_write(r, ev, len);
            free(ev);
        }
        http_stream_write(r, "data: [DONE]\n\n", 14);
        http_stream_end(r);
    }
    oai_request_free(&q);
}

static void handle(struct http_request *r, void *arg)
{
    (void)arg;
    bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"), post = !strcmp(r->method, "POST");
    struct oai_error e;
    if (!strcmp(r->path, "/health") && get) {
        http_respond(r, 200, "application/json", NULL, "{}", 2);
    } else if (!strcmp(r->path, "/v1/completions") && post) {
        generate(r, false);
    } else if (!strcmp(r->path, "/v1/chat/completions") && post) {
        generate(r, true);
    } else if (!strcmp(r->path, "/v1/completions") || !strcmp(r->path, "/v1/chat/completions") ||
               !strcmp(r->path, "/health")) {
        oai_fail(&e, 405, NULL, NULL, "%s is not allowed on %s", r->method, r->path);
        reply_error(r, &e);
    } else {
        oai_fail(&e, 404, NULL, NULL, "no route %s %s", r->method, r->path);
        reply_error(r, &e);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    uv_loop_init(&loop);
    struct http_limits lim = http_limits_default();
    lim.max_header_bytes = 2048; /* small limits, so that inputs reach them */
    lim.max_body_bytes = 4096;
    lim.max_write_buffer = 1 << 20;
    const char *err;
    FUZZ_ASSERT(http_server_start(&srv, &loop, NULL, 0, &lim, handle, NULL, &err) == 0, "start");
    return 0;
}

/* Reads what the server sent so far into *out (growing it). */
static void drain(int fd, char **out, size_t *len, size_t *cap)
{
    for (;;) {
        if (*cap - *len < 65536) {
            *cap = 2 * *cap + 65536;
            *out = realloc(*out, *cap);
            if (!*out) abort();
        }
        ssize_t k = read(fd, *out + *len, *cap - *len);
        if (k <= 0) return;
        *len += (size_t)k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair: %s", strerror(errno));
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    FUZZ_ASSERT(http_server_adopt(srv, sv[0]) == 0, "adopt");
    char *out = NULL;
    size_t len = 0, cap = 0, sent = 0;
    bool shut = false;
    for (int turn = 0; http_server_connections(srv) > 0; turn++) {
        FUZZ_ASSERT(turn < 100000, "the connection never ended");
        if (sent < size) {
            ssize_t k = write(sv[1], data + sent, size - sent);
            if (k > 0) sent += (size_t)k;
        } else if (!shut) {
            shutdown(sv[1], SHUT_WR); /* the client's EOF: the server ends the connection */
            shut = true;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        drain(sv[1], &out, &len, &cap);
    }
    close(sv[1]);
    FUZZ_ASSERT(utf8_valid(out ? out : "", len), "the server sent invalid UTF-8 (%zu bytes)", len);
    FUZZ_ASSERT(!len || !memcmp(out, "HTTP/1.1 ", 9), "a reply without a status line");
    free(out);
    return 0;
}
