/* http.c: connections, llhttp callbacks, limits and timers (writes and
 * replies: http_write.c). */
#include "http_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../base/err.h"

struct http_limits http_limits_default(void)
{
    return (struct http_limits){.max_header_bytes = 16 * 1024, .max_body_bytes = 8 * 1024 * 1024,
                                .header_timeout_ms = 10000, .body_timeout_ms = 30000, .idle_timeout_ms = 60000,
                                .max_write_buffer = 8 * 1024 * 1024, .max_connections = 4096};
}

void http__free_request(struct http_request *r)
{
    if (!r) return;
    for (int i = 0; i < r->n_headers; i++) {
        free(r->headers[i].name);
        free(r->headers[i].value);
    }
    free(r->headers);
    strbuf_free(&r->target);
    free(r->path);
    strbuf_free(&r->body);
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
        http__free_request(r);
    }
    http__free_request(c->cur);
    strbuf_free(&c->hname);
    strbuf_free(&c->hvalue);
    strbuf_free(&c->pending);
    http_server *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->n_conns--;
    free(c);
    if (s->closing && s->listener_closed && !s->n_conns) free(s);
}

void http__conn_close(http_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_timeout(uv_timer_t *t)
{
    http_conn *c = t->data;
    if (c->active) return;
    if (c->in_body && !c->lingering) http__error_reply(c, 408, "the request body did not arrive in time");
    else http__conn_close(c); /* headers that never end, an idle keep-alive, a lingering close */
}

void http__arm_timer(http_conn *c, int ms)
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
    http__arm_timer(c, c->reject ? 1000 : c->srv->lim.header_timeout_ms);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    if (over_header_limit(c, n)) return -1;
    strbuf_append(&c->cur->target, at, n);
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    if (over_header_limit(c, n)) return -1;
    strbuf_append(&c->hname, at, n);
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    if (over_header_limit(c, n)) return -1;
    strbuf_append(&c->hvalue, at, n);
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
    char *name = strbuf_take(&c->hname);
    for (char *q = name; *q; q++) *q = (char)tolower((unsigned char)*q);
    r->headers[r->n_headers++] = (struct http_header){name, strbuf_take(&c->hvalue)};
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    http_conn *c = conn_of(p);
    struct http_request *r = c->cur;
    snprintf(r->method, sizeof(r->method), "%s", llhttp_method_name((llhttp_method_t)p->method));
    if (!r->target.s) strbuf_append(&r->target, "", 0);
    size_t plen = strcspn(r->target.s, "?#");
    r->path = xmalloc(plen + 1);
    memcpy(r->path, r->target.s, plen);
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
    http__arm_timer(c, c->srv->lim.body_timeout_ms); /* the whole body, however it trickles in */
    const char *expect = http_header(r, "expect");
    if (expect && !strcasecmp(expect, "100-continue")) http__write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    http_conn *c = conn_of(p);
    struct http_request *r = c->cur;
    if (r->body.len + n > c->srv->lim.max_body_bytes) {
        c->limit_status = 413;
        return -1;
    }
    strbuf_append(&r->body, at, n);
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    http_conn *c = conn_of(p);
    c->keep_alive = llhttp_should_keep_alive(p);
    c->in_body = false;
    if (!c->cur->body.s) strbuf_append(&c->cur->body, "", 0);
    return HPE_PAUSED;
}

static llhttp_settings_t parser_settings;

static void execute(http_conn *c, const char *buf, size_t len)
{
    llhttp_errno_t e = llhttp_execute(&c->parser, buf, len);
    if (e == HPE_OK) return;
    if (e == HPE_PAUSED) { /* a whole request: keep the rest, answer this one */
        c->paused = true;
        size_t used = (size_t)(llhttp_get_error_pos(&c->parser) - buf);
        strbuf_append(&c->pending, buf + used, len - used);
        uv_timer_stop(&c->timer);
        c->active = c->cur;
        c->cur = NULL;
        c->srv->handler(c->active, c->srv->arg);
        return;
    }
    if (c->limit_status == 431) http__error_reply(c, 431, "request headers too large");
    else if (c->limit_status == 413) http__error_reply(c, 413, "request body too large");
    else if (c->limit_status == 503) http__error_reply(c, 503, "too many connections; retry later");
    else if (c->limit_status == 400) http__error_reply(c, 400, "an HTTP/1.1 request needs a Host header");
    else http__error_reply(c, 400, "malformed HTTP request");
}

/* Parses what is pending while no request is being answered. */
void http__pump(http_conn *c)
{
    if (c->in_pump) return;
    c->in_pump = true;
    while (!c->closing && !c->close_after_write && !c->active && c->pending.len) {
        size_t len = c->pending.len;
        char *buf = strbuf_take(&c->pending);
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
        http__conn_close(c); /* EOF or error: a request in progress is aborted */
        return;
    }
    if (n > 0 && c->lingering) {
        free(buf->base); /* a closing connection: dropped */
        return;
    }
    if (n > 0) {
        strbuf_append(&c->pending, buf->base, (size_t)n);
        const struct http_limits *l = &c->srv->lim;
        if (c->active && c->pending.len > l->max_header_bytes + l->max_body_bytes) http__conn_close(c);
        else http__pump(c);
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
    http__arm_timer(c, c->reject ? 1000 : c->srv->lim.idle_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_connection(uv_stream_t *listener, int status)
{
    http_server *s = listener->data;
    if (status < 0) return;
    http_conn *c = conn_new(s);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) http__conn_close(c);
    else conn_start(c);
}

int http_server_adopt(http_server *s, int fd)
{
    http_conn *c = conn_new(s);
    int rc = uv_tcp_open(&c->tcp, fd);
    if (rc) {
        close(fd);
        http__conn_close(c);
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
        if (c->write_queued && !c->active) http__linger(c);
        else http__conn_close(c);
    if (s->listening) http_server_stop_listening(s);
    else if (s->listener_closed && !s->n_conns) free(s);
}

int http_server_connections(const http_server *s) { return s->n_conns; }

