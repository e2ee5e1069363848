/* http_write.c: what a connection sends: non-blocking writes with a cap on
 * a slow reader's backlog, whole and streamed replies, the replies the
 * connection layer makes itself, and lingering closes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "http_impl.h"

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
void http__linger(http_conn *c)
{
    if (c->closing || c->lingering) return;
    c->lingering = true;
    uv_shutdown_t *req = xmalloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown)) {
        free(req);
        http__conn_close(c);
        return;
    }
    if (!c->active) http__arm_timer(c, 2000);
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
    if (status < 0) http__conn_close(c);
    else if (c->close_after_write && !c->write_queued) http__linger(c);
    else if (!c->write_queued && !c->active && !c->cur) http__arm_timer(c, c->srv->lim.idle_timeout_ms);
}

void http__write(http_conn *c, const char *data, size_t len)
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
        http__conn_close(c);
        return;
    }
    /* a reader that does not keep up: what it has not taken yet is over the limit */
    if (backlog > c->srv->lim.max_write_buffer) http__conn_close(c);
}

void http__error_reply(http_conn *c, int status, const char *msg)
{
    char body[512], head[256];
    int bn = snprintf(body, sizeof(body),
                      "{\"error\": {\"message\": \"%s\", \"type\": \"%s\", \"param\": null, "
                      "\"code\": null}}", msg, status >= 500 ? "server_error" : "invalid_request_error");
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s"
                      "Connection: close\r\n\r\n", status, http_status_text(status), bn,
                      status == 503 ? "Retry-After: 1\r\n" : "");
    http__write(c, head, hn);
    http__write(c, body, bn);
    c->close_after_write = true;
    if (!c->write_queued) http__linger(c);
}

// ---------------------------------------------------------------------------
// replies

static void reply_done(http_conn *c)
{
    http__free_request(c->active);
    c->active = NULL;
    if (c->closing) return;
    if (!c->keep_alive || c->srv->closing) {
        c->close_after_write = true;
        if (!c->write_queued) http__linger(c);
        return;
    }
    if (!c->write_queued) http__arm_timer(c, c->srv->lim.idle_timeout_ms); /* else once the reply drains */
    http__pump(c);
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
    http__write(c, h, (size_t)n);
    if (strcmp(r->method, "HEAD")) http__write(c, body, len);
    reply_done(c);
}

void http_stream_begin(struct http_request *r, int status, const char *content_type, const char *extra_headers)
{
    http_conn *c = r->conn;
    if (c->http10) c->keep_alive = false;
    char h[4096];
    int n = head(h, sizeof(h), r, status, content_type, extra_headers, -1);
    if (n >= (int)sizeof(h)) n = sizeof(h) - 1;
    http__write(c, h, (size_t)n);
}

bool http_stream_write(struct http_request *r, const char *data, size_t len)
{
    http_conn *c = r->conn;
    if (c->closing) return false;
    if (!len) return true;
    if (c->http10) {
        http__write(c, data, len);
        return !c->closing;
    }
    char size[32];
    int n = snprintf(size, sizeof(size), "%zx\r\n", len);
    /* one write per chunk: header, data, CRLF */
    char *buf = xmalloc(n + len + 2);
    memcpy(buf, size, n);
    memcpy(buf + n, data, len);
    memcpy(buf + n + len, "\r\n", 2);
    http__write(c, buf, n + len + 2);
    free(buf);
    return !c->closing;
}

void http_stream_end(struct http_request *r)
{
    http_conn *c = r->conn;
    if (!c->http10) http__write(c, "0\r\n\r\n", 5);
    reply_done(c);
}
