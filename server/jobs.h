/* jobs.h: a generation request in flight: a job with one choice per prompt
 * x n, each one engine request. Engine events come back on the loop
 * (jobs_on_wake), find their choice through an id -> choice map, and go
 * through the choice's detokenizer and stop-string matcher into an SSE chunk
 * or the whole reply's text, so that both carry the same text. A job is
 * freed once the engine's last event for each choice arrived and the reply
 * is done, or the client left (its engine requests are aborted). */
#ifndef TESSERA_JOBS_H
#define TESSERA_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "../engine/engine.h"
#include "../base/strbuf.h"
#include "../tokenizer/tokenizer.h"
#include "chat_out.h"
#include "oai_render.h"
#include "openai.h"
#include "responses.h"
#include "stop.h"

struct srv;
struct http_request;

struct choice {
    struct job *job;
    int index;
    int64_t eid;            /* engine request id */
    bool final_seen;        /* the engine's last event for eid arrived */
    bool done;              /* finish reason known, reply part complete */
    const char *finish;
    struct detok dt;
    struct stop_matcher sm;
    struct strbuf text;     /* whole replies: the text so far */
    json_t *lp;             /* logprobs not yet sent (stream) or all of them */
    int n_tokens;
    size_t text_offset;     /* completions logprobs */
    double t_last;
    bool role_sent;
    struct chat_out *out;   /* chat with a reasoning or tool-call parser; else NULL */
};

struct job {
    struct srv *s;
    struct http_request *req; /* NULL once answered or the client left */
    struct oai_head head;     /* id, created, model, chat, include_usage */
    bool stream, replied;
    int logprobs;
    int n_choices, n_done, n_final;
    struct choice *ch;
    int prompt_tokens, cached_tokens;
    double t_start, t_first;
    struct resp_job *resp;    /* a Responses request (one choice, always parsed by chat_out); else NULL */
};

/* The jobs of a server and the map from engine ids to their choices. */
struct jobs {
    struct job **list;
    int n, cap;
    struct choice **slots;  /* open addressing by engine id, linear probing */
    int n_slots, used;
    int live_choices;       /* submitted, last event not seen */
};

/* What completions.c prepared: per prompt its ids and its engine request. */
struct job_prompts {
    int n;
    int32_t **ids;
    int *n_ids;
    struct engine_request *er;
    int total;              /* prompt tokens of all prompts */
};

/* Submits q's choices and starts the reply to r (a stream's headers). resp:
 * a Responses request's state, taken over (NULL for chat and completions). */
void job_start(struct srv *s, struct http_request *r, const struct oai_request *q, const struct job_prompts *p,
               struct resp_job *resp);
/* Ends j's reply with e: a stream gets an error event and [DONE], a whole
 * reply the error; the choices still running are aborted. */
void job_fail(struct srv *s, struct job *j, const struct oai_error *e);
/* The engine's wake-up (the uv_async_t's callback): drains its events. */
void jobs_on_wake(uv_async_t *a);
void jobs_free_all(struct srv *s);

#endif
