/* http_impl.h: the state of http.c's server and connections, shared by
 * http.c (connections, parsing, timers) and http_write.c (writes, replies,
 * closing). Not for use outside them. */
#ifndef TESSERA_HTTP_IMPL_H
#define TESSERA_HTTP_IMPL_H

#include <llhttp.h>

#include "http.h"

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
    struct strbuf hname, hvalue; /* header being parsed */
    size_t header_bytes;
    int limit_status;            /* 400, 413, 431 or 503 once a check failed */
    bool in_body;                /* headers complete, body not yet: the body deadline runs */
    bool reject;                 /* over max_connections: answered 503 at its headers */
    bool lingering;              /* reply sent, write side shut: waiting for the client's EOF */
    struct strbuf pending;       /* received bytes not parsed yet */
    bool paused, in_pump, keep_alive, close_after_write, closing;
    bool http10;                 /* the active request is HTTP/1.0: no chunked replies */
    size_t write_queued;
    int handles_open;
    http_conn *prev, *next;
};

/* http.c */
void http__conn_close(http_conn *c);
void http__arm_timer(http_conn *c, int ms);
/* Parses what is pending while no request is being answered. */
void http__pump(http_conn *c);
void http__free_request(struct http_request *r);

/* http_write.c */
void http__write(http_conn *c, const char *data, size_t len);
/* Ends a connection whose last reply is queued or written (see http_write.c). */
void http__linger(http_conn *c);
/* A reply the connection ends with, before any handler saw the request; msg
 * is one of ours (plain ASCII, no quotes). */
void http__error_reply(http_conn *c, int status, const char *msg);

#endif
