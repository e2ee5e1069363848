/* http.h: a small HTTP/1.1 server on libuv + llhttp.
 *
 * Keep-alive and pipelining (one request at a time per connection: parsing
 * pauses while a request is being answered), chunked request bodies, limits
 * on header and body size (431, 413), a header timeout and a keep-alive idle
 * timeout. Replies are whole (http_respond) or streamed with chunked
 * transfer encoding (http_stream_*). Writes are never blocking; a client
 * that reads so slowly that more than max_write_buffer bytes queue up is
 * disconnected. A body must arrive whole within body_timeout_ms of its
 * headers (one byte a second does not keep a connection open); beyond
 * max_connections a new connection gets a 503 with Retry-After and is
 * closed; an HTTP/1.1 request without Host is a 400 (RFC 9112). When a connection closes before its request was answered,
 * the handler's on_abort hook runs and the request is freed. All calls
 * happen on the loop's thread. */
#ifndef TESSERA_HTTP_H
#define TESSERA_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "../base/strbuf.h"

typedef struct http_server http_server;
typedef struct http_conn http_conn;

struct http_header {
    char *name; /* lower case */
    char *value;
};

struct http_request {
    http_conn *conn;
    char method[16];
    struct strbuf target;    /* as sent: path and query */
    char *path;              /* target without the query */
    struct http_header *headers;
    int n_headers, cap_headers;
    struct strbuf body;      /* NUL-terminated once complete (.s never NULL then) */
    char request_id[64];     /* the client's X-Request-Id, or a generated one */
    double t_start;          /* mono_seconds() when the headers were complete */
    /* set by the handler */
    void (*on_abort)(struct http_request *r, void *arg); /* the client went away first */
    void *abort_arg;
};

struct http_limits {
    size_t max_header_bytes;  /* request line + headers (431 beyond) */
    size_t max_body_bytes;    /* 413 beyond */
    int header_timeout_ms;    /* from a request's first byte to its complete headers */
    int body_timeout_ms;      /* from the complete headers to the body's last byte (408 beyond) */
    int idle_timeout_ms;      /* keep-alive connection with no request */
    size_t max_write_buffer;  /* queued reply bytes before a slow reader is dropped */
    int max_connections;      /* open at once; one more gets a 503 and is closed */
};
struct http_limits http_limits_default(void);

typedef void (*http_handler)(struct http_request *r, void *arg);

/* Listens on host:port (host NULL: listens nowhere). 0, or a libuv error
 * code (message in *err). */
int http_server_start(http_server **out, uv_loop_t *loop, const char *host, int port,
                      const struct http_limits *lim, http_handler h, void *arg, const char **err);
/* Serves fd, a connected stream socket the server then owns (the fuzzer's
 * socketpair): 0 or a libuv error (fd closed either way). */
int http_server_adopt(http_server *s, int fd);
/* Stops accepting; open connections go on. */
void http_server_stop_listening(http_server *s);
/* Closes every connection (aborting the requests not answered yet; replies
 * already queued are sent first) and frees s once all are closed. */
void http_server_close(http_server *s);
int http_server_connections(const http_server *s);

/* Header value by lower-case name, or NULL. */
const char *http_header(const struct http_request *r, const char *name);

/* A whole reply. extra_headers: "Name: value\r\n" lines or NULL. Ends r.
 * The reply to a HEAD request gets the headers only (Content-Length: len). */
void http_respond(struct http_request *r, int status, const char *content_type, const char *extra_headers,
                  const char *body, size_t len);
/* A streamed reply: status line and headers now, then chunks, then the end. */
void http_stream_begin(struct http_request *r, int status, const char *content_type, const char *extra_headers);
/* False when the connection is closing (the request is aborted soon). */
bool http_stream_write(struct http_request *r, const char *data, size_t len);
void http_stream_end(struct http_request *r);

const char *http_status_text(int status);

#endif
