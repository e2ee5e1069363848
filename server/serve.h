/* serve.h: the state of `tessera serve`, shared by the server's files (not a
 * public API: everything here runs on the libuv loop's thread).
 *
 * A request's way through them: http.c parses it and calls route_request
 * (routes.c: method, path, auth, readiness); a generation or tokenize route
 * hands the body to offload.c, which runs completions.c's (responses.c
 * translates a Responses body into a chat one there) or
 * tokenize_routes.c's preparation on a worker thread and its answer back on
 * the loop; completions.c submits the prepared choices as a job (jobs.c),
 * whose engine events become SSE chunks or a whole reply (oai_render.c);
 * metrics.c counts what routes.c logs. serve.c starts and stops it all. */
#ifndef TESSERA_SERVE_H
#define TESSERA_SERVE_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <uv.h>

#include "../engine/engine.h"
#include "../tokenizer/tokenizer.h"
#include "chat_prompt.h"
#include "cli.h"
#include "http.h"
#include "jobs.h"
#include "launch.h"
#include "metrics.h"
#include "openai.h"
#include "reasoning.h"
#include "responses.h"
#include "responses_store.h"
#include "tool_calls.h"

struct serve_opts {
    const char *model_dir, *host, *served_name, *api_key, *chat_template_file, *origins;
    const char *tool_parser, *reasoning_parser; /* names; tool_parser "auto": from the template */
    int port, max_queue, max_connections;
    int responses_store_size;          /* responses kept for GET and previous_response_id */
    struct cli_backend bk;
    double shutdown_timeout, header_timeout, body_timeout, idle_timeout;
    struct engine_config ec;
};

struct srv {
    struct serve_opts o;
    uv_loop_t *loop;
    uv_async_t wake, loaded;
    uv_signal_t sigint, sigterm;
    uv_timer_t shutdown_timer;
    uv_thread_t load_thread;
    http_server *http;
    struct launched model;      /* tokenizer, backend, engine */
    int vocab, max_len;
    struct chat_format chat;    /* the model's template, compiled */
    enum tool_format tool_format;      /* the output format of tool calls (requests with tools) */
    enum reasoning_format reasoning;   /* how chat replies split off reasoning */
    int32_t markers[8];                /* control tokens of those formats whose text the parsers read */
    int n_markers;
    char *model_name;
    atomic_bool ready;
    char load_err[1024];
    bool shutting_down, load_joined;
    int exit_code;
    struct jobs jobs;
    struct resp_store responses;       /* finished responses (responses_store.h: locked) */
    int n_preps;                /* requests being prepared on worker threads */
    struct metrics m;
};

/* Stops the loop once a shutdown has nothing left to wait for. */
void serve_maybe_stop(struct srv *s);

/* routes.c: the http_handler. */
void route_request(struct http_request *r, void *arg);
/* Replies (each ends r and logs it, with the generation's token counts and
 * time to first token when prompt >= 0): a JSON body (consumed; NULL, a
 * json_pack that failed, becomes a 500), an encoded one, an OpenAI error. */
void reply_json(struct srv *s, struct http_request *r, int status, json_t *body, int prompt, int completion,
                double ttft);
void reply_text(struct srv *s, struct http_request *r, int status, const char *text);
void reply_error(struct srv *s, struct http_request *r, const struct oai_error *e);
/* The access-log line of r (and its count in the metrics); prompt < 0: not
 * a generation, ttft < 0: no token. */
void log_request(struct srv *s, const struct http_request *r, int status, int prompt, int completion, double ttft);
/* CORS response headers for r's Origin ("" when none apply). */
void cors_headers(const struct srv *s, const struct http_request *r, char *out, size_t cap);

/* offload.c: runs work(arg, body, len) on a worker thread, then done(s, r,
 * arg) on the loop, r NULL when the client left meanwhile. Takes over r's
 * body; done frees arg. */
typedef void (*offload_work)(void *arg, const char *body, size_t len);
typedef void (*offload_done)(struct srv *s, struct http_request *r, void *arg);
void offload(struct srv *s, struct http_request *r, offload_work work, offload_done done, void *arg);

/* completions.c, responses.c, tokenize_routes.c */
enum gen_api { GEN_COMPLETIONS, GEN_CHAT, GEN_RESPONSES };
void completions_route(struct srv *s, struct http_request *r, enum gen_api api);
void responses_get_route(struct srv *s, struct http_request *r);
void responses_delete_route(struct srv *s, struct http_request *r);
/* The ids of a prompt given as text or as ids (*ids malloc'd); -1 if the
 * tokenizer fails. */
int tokenize_prompt(const tokenizer *tok, const struct oai_prompt *p, bool add_bos, int32_t **ids);
enum tok_route { ROUTE_TOKENIZE, ROUTE_DETOKENIZE, ROUTE_APPLY_TEMPLATE };
void tokenize_route(struct srv *s, struct http_request *r, enum tok_route what);

#endif
