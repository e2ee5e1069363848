/* http.c: connections, llhttp callbacks, limits, timers and writes. */
#include "http.h"

#include <ctype.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../engine/err.h"

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening, listener_closed, closing;
    struct http_limits lim;
    http_handler handler;
    void *arg;
    http_conn *conns;
    int n_conns;
    unsigned long long next_id;
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    http_server *srv;
    llhttp_t parser;
    struct http_request *cur;    /* being parsed */
    struct http_request *active; /* dispatched, not answered yet */
    char *hname, *hvalue;        /* header being parsed */
    size_t hname_len, hvalue_len;
    size_t header_bytes;
    int limit_status;            /* 400, 413, 431 or 503 once a check failed */
    bool in_body;                /* headers complete, body not yet: the body deadline runs */
    bool reject;                 /* over max_connections: answered 503 at its headers */
    bool lingering;              /* reply sent, write side shut: waiting for the client's EOF */
    char *pending;               /* received bytes not parsed yet */
    size_t pending_len, pending_cap;
    bool paused, in_pump, keep_alive, close_after_write, closing;
    bool http10;                 /* the active request is HTTP/1.0: no chunked replies */
    size_t write_queued;
    int handles_open;
    http_conn *prev, *next;
};

struct http_limits http_limits_default(void)
{
    return (struct http_limits){.max_header_bytes = 16 * 1024, .max_body_bytes = 8 * 1024 * 1024,
                                .header_timeout_ms = 10000, .body_timeout_ms = 30000, .idle_timeout_ms = 60000,
                                .max_write_buffer = 8 * 1024 * 1024, .max_connections = 4096};
}

const char *http_status_text(int s)
{
    switch (s) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    }
    return "Unknown";
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

static void free_request(struct http_request *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    free(r->target);
    free(r->path);
    free(r->body);
    free(r);
}

const char *http_header(const struct http_request *r, const char *name)
{
    for (int i = 0; i < r->n_headers; i++)
        if (!strcmp(r->headers[i].name, name)) return r->headers[i].value;
    return NULL;
}

// ---------------------------------------------------------------------------
// closing and writing

static void on_handle_closed(uv_handle_t *h)
{
    http_conn *c = h->data;
    if (--c->handles_open) return;
    if (c->active) {
        struct http_request *r = c->active;
        c->active = NULL;
        if (r->on_abort) r->on_abort(r, r->abort_arg);
        free_request(r);
    }
    free_request(c->cur);
    free(c->hname);
    free(c->hvalue);
    free(c->pending);
    http_server *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    free(c);
    if (s->closing && s->listener_closed && !s->n_conns) free(s);
}

static void conn_close(http_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void arm_timer(http_conn *c, int ms);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

/* Ends a connection whose last reply is queued or written: the write side is
 * shut (FIN once the reply is out) and what the client still sends is read
 * and dropped until its EOF, or for 2 s. Closing at once would make the
 * kernel answer unread request bytes with a reset, which can destroy the
 * reply before the client reads it. */
static void conn_linger(http_conn *c)
{
    if (c->closing || c->lingering) return;
    c->lingering = true;
    uv_shutdown_t *req = xmalloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
        free(req);
        conn_close(c);
        return;
    }
    if (!c->active) arm_timer(c, 2000);
}

struct write_req {
    uv_write_t w;
    http_conn *c;
    size_t len;
    char data[];
};

static void on_write(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    http_conn *c = wr->c;
    c->write_queued -= wr->len;
    free(wr);
    if (status < 0) conn_close(c);
    else if (c->close_after_write && !c->write_queued) conn_linger(c);
    else if (!c->write_queued && !c->active && !c->cur) arm_timer(c, c->srv->lim.idle_timeout_ms);
}

static void write_raw(http_conn *c, const char *data, size_t len)
{
    if (c->closing || !len) return;
    size_t backlog = c->write_queued;
    struct write_req *wr = xmalloc(sizeof(*wr) + len);
    wr->c = c;
    wr->len = len;
    memcpy(wr->data, data, len);
    uv_buf_t buf = uv_buf_init(wr->data, (unsigned)len);
    c->write_queued += len;
    if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &buf, 1, on_write)) {
        c->write_queued -= len;
        free(wr);
        conn_close(c);
        return;
    }
    /* a reader that does not keep up: what it has not taken yet is over the limit */
    if (backlog > c->srv->lim.max_write_buffer) conn_close(c);
}

static void error_reply(http_conn *c, int status, const char *msg);

static void on_timeout(uv_timer_t *t)
{
    http_conn *c = t->data;
    if (c->active) return;
    if (c->in_body && !c->lingering) error_reply(c, 408, "the request body did not arrive in time");
    else conn_close(c); /* headers that never end, an idle keep-alive, a lingering close */
}

static void arm_timer(http_conn *c, int ms)
{
    if (!c->closing) uv_timer_start(&c->timer, on_timeout, ms, 0);
}

// ---------------------------------------------------------------------------
// parsing

static http_conn *conn_of(llhttp_t *p) { return p->data; }

static int over_header_limit(http_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes <= c->srv->lim.max_header_bytes) return 0;
    c->limit_status = 431;
    return -1;
}

static int on_message_begin(llhttp_t *p)
{
    http_conn *c = conn_of(p);
    c->cur = xcalloc(1, sizeof(*c->cur));
    c->cur->conn = c;
    c->header_bytes = 0;
    c->in_body = false;
    arm_timer(c, c->reject ? 1000 : c->srv->lim.header_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    if (over_header_limit(c, n)) return -1;
    size_t len = c->cur->target ? strlen(c->cur->target) : 0, cap = len ? len + 1 : 0;
    append(&c->cur->target, &len, &cap, at, n);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    if (over_header_limit(c, n)) return -1;
    size_t cap = c->hname ? c->hname_len + 1 : 0;
    append(&c->hname, &c->hname_len, &cap, at, n);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    if (over_header_limit(c, n)) return -1;
    size_t cap = c->hvalue ? c->hvalue_len + 1 : 0;
    append(&c->hvalue, &c->hvalue_len, &cap, at, n);
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    http_conn *c = conn_of(p);
    struct http_request *r = c->cur;
    if (r->n_headers == r->cap_headers) {
        r->cap_headers = r->cap_headers ? 2 * r->cap_headers : 16;
        r->headers = xrealloc(r->headers, r->cap_headers * sizeof(*r->headers));
    }
    char *name = c->hname ? c->hname : xcalloc(1, 1);
    for (char *q = name; *q; q++) *q = (char)tolower((unsigned char)*q);
    r->headers[r->n_headers++] = (struct http_header){name, c->hvalue ? c->hvalue : xcalloc(1, 1)};
    c->hname = c->hvalue = NULL;
    c->hname_len = c->hvalue_len = 0;
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    http_conn *c = conn_of(p);
    struct http_request *r = c->cur;
    snprintf(r->method, sizeof(r->method), "%s", llhttp_method_name((llhttp_method_t)p->method));
    if (!r->target) r->target = xcalloc(1, 1);
    size_t plen = strcspn(r->target, "?#");
    r->path = xmalloc(plen + 1);
    memcpy(r->path, r->target, plen);
    r->path[plen] = '\0';
    r->t_start = mono_seconds();
    const char *rid = http_header(r, "x-request-id");
    bool ok = rid && *rid && strlen(rid) < sizeof(r->request_id);
    for (const char *q = rid; ok && *q; q++) ok = isgraph((unsigned char)*q) && *q != '"' && *q != '\\';
    if (ok) snprintf(r->request_id, sizeof(r->request_id), "%s", rid);
    else snprintf(r->request_id, sizeof(r->request_id), "req-%llx-%llx", (unsigned long long)uv_hrtime() & 0xffffffffull,
                  ++c->srv->next_id);
    if (c->reject) {
        c->limit_status = 503;
        return -1;
    }
    if (p->http_major == 1 && p->http_minor >= 1 && !http_header(r, "host")) {
        c->limit_status = 400;
        return -1;
    }
    if (p->flags & F_CONTENT_LENGTH && p->content_length > c->srv->lim.max_body_bytes) {
        c->limit_status = 413;
        return -1;
    }
    c->http10 = p->http_major == 1 && p->http_minor == 0;
    c->in_body = true;
    arm_timer(c, c->srv->lim.body_timeout_ms); /* the whole body, however it trickles in */
    const char *expect = http_header(r, "expect");
    if (expect && !strcasecmp(expect, "100-continue")) write_raw(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    struct http_request *r = c->cur;
    if (r->body_len + n > c->srv->lim.max_body_bytes) {
        c->limit_status = 413;
        return -1;
    }
    append(&r->body, &r->body_len, &r->body_cap, at, n);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    http_conn *c = conn_of(p);
    c->keep_alive = llhttp_should_keep_alive(p);
    c->in_body = false;
    if (!c->cur->body) c->cur->body = xcalloc(1, 1);
    return HPE_PAUSED;
}

static llhttp_settings_t parser_settings;

/* A reply the connection ends with, before any handler saw the request; msg
 * is one of ours (plain ASCII, no quotes). */
static void error_reply(http_conn *c, int status, const char *msg)
{
    char body[512], head[256];
    int bn = snprintf(body, sizeof(body),
                      "{\"error\": {\"message\": \"%s\", \"type\": \"%s\", \"param\": null, "
                      "\"code\": null}}", msg, status >= 500 ? "server_error" : "invalid_request_error");
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s"
                      "Connection: close\r\n\r\n", status, http_status_text(status), bn,
                      status == 503 ? "Retry-After: 1\r\n" : "");
    write_raw(c, head, hn);
    write_raw(c, body, bn);
    c->close_after_write = true;
    if (!c->write_queued) conn_linger(c);
}

static void execute(http_conn *c, const char *buf, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&c->parser, buf, len);
    if (e == HPE_OK) return;
    if (e == HPE_PAUSED) { /* a whole request: keep the rest, answer this one */
        c->paused = true;
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - buf);
        append(&c->pending, &c->pending_len, &c->pending_cap, buf + used, len - used);
        uv_timer_stop(&c->timer);
        c->active = c->cur;
        c->cur = NULL;
        c->srv->handler(c->active, c->srv->arg);
        return;
    }
    if (c->limit_status == 431) error_reply(c, 431, "request headers too large");
    else if (c->limit_status == 413) error_reply(c, 413, "request body too large");
    else if (c->limit_status == 503) error_reply(c, 503, "too many connections; retry later");
    else if (c->limit_status == 400) error_reply(c, 400, "an HTTP/1.1 request needs a Host header");
    else error_reply(c, 400, "malformed HTTP request");
}

/* Parses what is pending while no request is being answered. */
static void pump(http_conn *c)
{
    if (c->in_pump) return;
    c->in_pump = true;
    while (!c->closing && !c->close_after_write && !c->active && c->pending_len) {
        char *buf = c->pending;
        size_t len = c->pending_len;
        c->pending = NULL;
        c->pending_len = c->pending_cap = 0;
        if (c->paused) {
            llhttp_resume(&c->parser);
            c->paused = false;
        }
        execute(c, buf, len);
        free(buf);
    }
    c->in_pump = false;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = xmalloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    http_conn *c = s->data;
    if (n < 0) {
        free(buf->base);
        conn_close(c); /* EOF or error: a request in progress is aborted */
        return;
    }
    if (n > 0 && c->lingering) {
        free(buf->base); /* a closing connection: dropped */
        return;
    }
    if (n > 0) {
        append(&c->pending, &c->pending_len, &c->pending_cap, buf->base, (size_t)n);
        const struct http_limits *l = &c->srv->lim;
        if (c->active && c->pending_len > l->max_header_bytes + l->max_body_bytes) conn_close(c);
        else pump(c);
    }
    free(buf->base);
}

/* A connection whose tcp handle is initialised but not yet connected. */
static http_conn *conn_new(http_server *s)
{
    http_conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    c->reject = s->n_conns++ >= s->lim.max_connections;
    return c;
}

static void conn_start(http_conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    /* one over the limit is read up to its headers, answered 503 and closed */
    arm_timer(c, c->reject ? 1000 : c->srv->lim.idle_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connection(uv_stream_t *listener, int status)
{
    http_server *s = listener->data;
    if (status < 0) return;
    http_conn *c = conn_new(s);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) conn_close(c);
    else conn_start(c);
}

int http_server_adopt(http_server *s, int fd)
{
    http_conn *c = conn_new(s);
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc) {
        close(fd);
        conn_close(c);
    } else {
        conn_start(c);
    }
    return rc;
}

static void free_server_cb(uv_handle_t *h) { free(h->data); }

int http_server_start(http_server **out, uv_loop_t *loop, const char *host, int port,
                      const struct http_limits *lim, http_handler h, void *arg, const char **err)
{
    llhttp_settings_init(&parser_settings);
    parser_settings.on_message_begin = on_message_begin;
    parser_settings.on_url = on_url;
    parser_settings.on_header_field = on_header_field;
    parser_settings.on_header_value = on_header_value;
    parser_settings.on_header_value_complete = on_header_value_complete;
    parser_settings.on_headers_complete = on_headers_complete;
    parser_settings.on_body = on_body;
    parser_settings.on_message_complete = on_message_complete;

    http_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->lim = *lim;
    s->handler = h;
    s->arg = arg;
    if (!host) { /* no listener: connections come from http_server_adopt */
        s->listener_closed = true;
        *out = s;
        return 0;
    }
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    struct sockaddr_storage addr;
    int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                               : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (!rc) rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (!rc) rc = uv_listen((uv_stream_t *)&s->listener, 1024, on_connection);
    if (rc) {
        *err = uv_strerror(rc);
        uv_close((uv_handle_t *)&s->listener, free_server_cb);
        return rc;
    }
    s->listening = true;
    *out = s;
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    http_server *s = h->data;
    s->listener_closed = true;
    if (s->closing && !s->n_conns) free(s);
}

void http_server_stop_listening(http_server *s)
{
    if (!s->listening) return;
    s->listening = false;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void http_server_close(http_server *s)
{
    s->closing = true;
    /* a reply still being written is let out first (a lingering close) */
    for (http_conn *c = s->conns; c; c = c->next)
        if (c->write_queued && !c->active) conn_linger(c);
        else conn_close(c);
    if (s->listening) http_server_stop_listening(s);
    else if (s->listener_closed && !s->n_conns) free(s);
}

int http_server_connections(const http_server *s) { return s->n_conns; }

// ---------------------------------------------------------------------------
// replies

static void reply_done(http_conn *c)
{
    free_request(c->active);
    c->active = NULL;
    if (c->closing) return;
    if (!c->keep_alive || c->srv->closing) {
        c->close_after_write = true;
        if (!c->write_queued) conn_linger(c);
        return;
    }
    if (!c->write_queued) arm_timer(c, c->srv->lim.idle_timeout_ms); /* else once the reply drains */
    pump(c);
}

static int head(char *buf, size_t cap, const struct http_request *r, int status, const char *type,
                const char *extra, long content_length)
{
    http_conn *c = r->conn;
    bool keep = c->keep_alive && !c->srv->closing;
    char len[64];
    if (content_length >= 0) snprintf(len, sizeof(len), "Content-Length: %ld\r\n", content_length);
    else if (c->http10) snprintf(len, sizeof(len), "Cache-Control: no-cache\r\n"); /* ends with the connection */
    else snprintf(len, sizeof(len), "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n");
    return snprintf(buf, cap, "HTTP/1.1 %d %s\r\n%s%s%s%sX-Request-Id: %s\r\n%sConnection: %s\r\n\r\n", status,
                    http_status_text(status), type ? "Content-Type: " : "", type ? type : "", type ? "\r\n" : "",
                    len, r->request_id, extra ? extra : "", keep ? "keep-alive" : "close");
}

void http_respond(struct http_request *r, int status, const char *content_type, const char *extra_headers,
                  const char *body, size_t len)
{
    http_conn *c = r->conn;
    char h[4096];
    int n = head(h, sizeof(h), r, status, content_type, extra_headers, (long)len);
    if (n >= (int)sizeof(h)) n = sizeof(h) - 1;
    write_raw(c, h, (size_t)n);
    if (strcmp(r->method, "HEAD")) write_raw(c, body, len);
    reply_done(c);
}

void http_stream_begin(struct http_request *r, int status, const char *content_type, const char *extra_headers)
{
    http_conn *c = r->conn;
    if (c->http10) c->keep_alive = false;
    char h[4096];
    int n = head(h, sizeof(h), r, status, content_type, extra_headers, -1);
    if (n >= (int)sizeof(h)) n = sizeof(h) - 1;
    write_raw(c, h, (size_t)n);
}

bool http_stream_write(struct http_request *r, const char *data, size_t len)
{
    http_conn *c = r->conn;
    if (c->closing) return false;
    if (!len) return true;
    if (c->http10) {
        write_raw(c, data, len);
        return !c->closing;
    }
    char size[32];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    /* one write per chunk: header, data, CRLF */
    char *buf = xmalloc(n + len + 2);
    memcpy(buf, size, n);
    memcpy(buf + n, data, len);
    memcpy(buf + n + len, "\r\n", 2);
    write_raw(c, buf, n + len + 2);
    free(buf);
    return !c->closing;
}

void http_stream_end(struct http_request *r)
{
    http_conn *c = r->conn;
    if (!c->http10) write_raw(c, "0\r\n\r\n", 5);
    reply_done(c);
}
