/* jobs.c: jobs and choices of jobs.h: submission, engine events -> replies,
 * the id -> choice map, disconnects. */
#include "jobs.h"

#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "serve.h"
#include "sse.h"

// ---------------------------------------------------------------------------
// the id -> choice map: open addressing, linear probing, deletion by
// shifting back the entries after the gap (no tombstones); at most half full

static size_t slot_of(const struct jobs *js, uint64_t id) { return (size_t)(id * 0x9e3779b97f4a7c15ull >> 17) & (js->n_slots - 1); }

static void map_put(struct jobs *js, struct choice *c)
{
    if (2 * (js->used + 1) > js->n_slots) {
        struct choice **old = js->slots;
        int n_old = js->n_slots;
        js->n_slots = n_old ? 2 * n_old : 64;
        js->slots = xcalloc(js->n_slots, sizeof(*js->slots));
        js->used = 0;
        for (int i = 0; i < n_old; i++)
            if (old[i]) map_put(js, old[i]);
        free(old);
    }
    size_t i = slot_of(js, (uint64_t)c->eid);
    while (js->slots[i]) i = (i + 1) & (js->n_slots - 1);
    js->slots[i] = c;
    js->used++;
}

static struct choice *map_get(const struct jobs *js, uint64_t id)
{
    if (!js->n_slots) return NULL;
    for (size_t i = slot_of(js, id); js->slots[i]; i = (i + 1) & (js->n_slots - 1))
        if ((uint64_t)js->slots[i]->eid == id) return js->slots[i];
    return NULL;
}

static void map_del(struct jobs *js, uint64_t id)
{
    size_t mask = js->n_slots - 1, i = slot_of(js, id);
    while (js->slots[i] && (uint64_t)js->slots[i]->eid != id) i = (i + 1) & mask;
    if (!js->slots[i]) return;
    js->slots[i] = NULL;
    js->used--;
    for (size_t j = (i + 1) & mask; js->slots[j]; j = (j + 1) & mask) {
        size_t home = slot_of(js, (uint64_t)js->slots[j]->eid);
        /* move j into the gap at i unless its home lies cyclically in (i, j] */
        if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
            js->slots[i] = js->slots[j];
            js->slots[j] = NULL;
            i = j;
        }
    }
}

// ---------------------------------------------------------------------------
// replies

static void job_send(struct job *j, json_t *event)
{
    size_t n;
    char *ev = oai_sse(event, &n);
    if (j->req) http_stream_write(j->req, ev, n);
    free(ev);
}

/* One chunk of choice c's stream: a chat delta (consumed; NULL: {}) or a
 * completion's text, with the logprobs not sent yet. */
static void send_chunk(struct choice *c, json_t *delta, const char *text, size_t n, const char *finish)
{
    struct job *j = c->job;
    if (!j->req) {
        json_decref(delta);
        return;
    }
    if (j->head.chat && !c->role_sent) {
        job_send(j, oai_chunk(&j->head, json_pack("[o]", oai_chunk_role(c->index)), NULL));
        c->role_sent = true;
    }
    bool has_lp = c->lp && json_array_size(c->lp);
    json_t *lp = has_lp ? oai_logprobs(j->head.chat, c->lp) : NULL;
    json_t *ch = j->head.chat ? oai_chunk_delta(c->index, delta, lp, finish)
                              : oai_chunk_choice(&j->head, c->index, text, n, lp, finish);
    if (has_lp) { /* the chunk holds the entries (chat's logprobs share the array): a new one */
        json_decref(c->lp);
        c->lp = json_array();
    }
    job_send(j, oai_chunk(&j->head, json_pack("[o]", ch), NULL));
}

/* A stream sends what the chat parsers decided, one chunk per delta. */
static void send_deltas(struct choice *c, json_t *deltas)
{
    size_t i;
    json_t *d;
    json_array_foreach(deltas, i, d) send_chunk(c, json_incref(d), NULL, 0, NULL);
    json_decref(deltas);
}

/* A Responses stream's events so far (ev emptied). */
static void resp_send(struct job *j, struct strbuf *ev)
{
    if (j->req && ev->len) http_stream_write(j->req, ev->s, ev->len);
    strbuf_free(ev);
}

/* What the chat parsers decided (consumed): a chat stream's chunks, or a
 * Responses request's items (and a stream's events). */
static void take_deltas(struct choice *c, json_t *deltas)
{
    struct job *j = c->job;
    if (!j->resp) {
        send_deltas(c, deltas);
        return;
    }
    struct strbuf ev = {0};
    resp_feed(j->resp, deltas, j->stream ? &ev : NULL);
    resp_send(j, &ev);
}

/* Streams text (and pending logprobs) of choice c, or keeps it for the
 * whole reply; through the chat parsers when c has them. */
static void choice_emit(struct choice *c, const char *text, size_t n)
{
    struct job *j = c->job;
    if (c->out) {
        json_t *deltas = j->stream || j->resp ? json_array() : NULL;
        chat_out_feed(c->out, text, n, deltas);
        if (deltas) take_deltas(c, deltas);
    } else if (!j->stream) {
        strbuf_append(&c->text, text, n);
    } else if (n || (c->lp && json_array_size(c->lp))) {
        send_chunk(c, j->head.chat ? json_pack("{s:o}", "content", oai_text(text, n)) : NULL, text, n, NULL);
    }
}

static int completion_tokens(const struct job *j)
{
    int n = 0;
    for (int i = 0; i < j->n_choices; i++) n += j->ch[i].n_tokens;
    return n;
}

/* A Responses request is done: the terminal event or the response object,
 * kept in the store unless store is false. */
static void resp_reply(struct srv *s, struct job *j, int completion, double ttft)
{
    struct strbuf ev = {0};
    json_t *o = resp_end(j->resp, j->ch[0].finish, j->prompt_tokens, completion, j->cached_tokens,
                         j->stream ? &ev : NULL);
    if (j->resp->store) responses_keep(&s->responses, j->resp, o);
    resp_send(j, &ev);
    if (j->req && j->stream) {
        log_request(s, j->req, 200, j->prompt_tokens, completion, ttft);
        http_stream_end(j->req);
        json_decref(o);
    } else if (j->req) {
        reply_json(s, j->req, 200, o, j->prompt_tokens, completion, ttft);
    } else {
        json_decref(o);
    }
    j->req = NULL;
}

/* Every choice is done: finish the reply. */
static void job_reply(struct srv *s, struct job *j)
{
    j->replied = true;
    struct http_request *r = j->req;
    int completion = completion_tokens(j);
    double ttft = j->t_first > 0 ? j->t_first - j->t_start : -1;
    if (j->resp) {
        resp_reply(s, j, completion, ttft);
        return;
    }
    if (!r) return;
    json_t *usage = oai_usage(j->prompt_tokens, completion, j->cached_tokens);
    if (j->stream) {
        if (j->head.include_usage) job_send(j, oai_chunk(&j->head, json_array(), usage));
        else json_decref(usage);
        http_stream_write(r, "data: [DONE]\n\n", 14);
        log_request(s, r, 200, j->prompt_tokens, completion, ttft);
        http_stream_end(r);
    } else {
        json_t *choices = json_array();
        for (int i = 0; i < j->n_choices; i++) {
            struct choice *c = &j->ch[i];
            json_t *lp = c->lp ? oai_logprobs(j->head.chat, c->lp) : NULL;
            json_array_append_new(choices, c->out ? oai_reply_message(i, chat_out_message(c->out), lp, c->finish)
                                                  : oai_reply_choice(&j->head, i, c->text.s ? c->text.s : "",
                                                                     c->text.len, lp, c->finish));
        }
        reply_json(s, r, 200, oai_reply(&j->head, choices, usage), j->prompt_tokens, completion, ttft);
    }
    j->req = NULL;
}

static void job_free(struct srv *s, struct job *j)
{
    for (int i = 0; i < j->n_choices; i++) {
        detok_deinit(&j->ch[i].dt);
        stop_deinit(&j->ch[i].sm);
        strbuf_free(&j->ch[i].text);
        json_decref(j->ch[i].lp);
        if (j->ch[i].out) chat_out_deinit(j->ch[i].out);
        free(j->ch[i].out);
        if (!j->ch[i].final_seen && j->ch[i].eid > 0) map_del(&s->jobs, (uint64_t)j->ch[i].eid);
    }
    struct jobs *js = &s->jobs;
    for (int i = 0; i < js->n; i++)
        if (js->list[i] == j) {
            js->list[i] = js->list[--js->n];
            break;
        }
    resp_job_free(j->resp);
    free(j->ch);
    free(j);
}

static void choice_done(struct srv *s, struct choice *c, const char *finish)
{
    struct job *j = c->job;
    c->done = true;
    if (c->out) {
        json_t *deltas = j->stream || j->resp ? json_array() : NULL;
        chat_out_finish(c->out, deltas);
        if (deltas) take_deltas(c, deltas);
        if (chat_out_called(c->out) && strcmp(finish, "length")) finish = "tool_calls";
    }
    c->finish = finish;
    j->n_done++;
    if (j->stream && !j->resp) send_chunk(c, NULL, "", 0, finish);
    if (j->n_done == j->n_choices) job_reply(s, j);
}

/* Detokenized text through the stop-string matcher to the reply. */
static void push_text(struct choice *c, const char *text, long n)
{
    size_t out_n;
    const char *out = stop_push(&c->sm, text, (size_t)n, &out_n);
    c->text_offset += out_n;
    choice_emit(c, out, out_n);
}

/* The logprobs entry of a token event, kept until its text goes out. */
static void add_logprobs(struct srv *s, struct choice *c, const struct engine_event *ev)
{
    bool chat = c->job->head.chat;
    json_t *e = oai_token(s->model.tok, ev->token, ev->logprob, chat), *top = json_array();
    for (int i = 0; i < ev->n_top; i++)
        json_array_append_new(top, oai_token(s->model.tok, ev->top_ids[i], ev->top_logprobs[i], chat));
    json_object_set_new(e, "top_logprobs", top);
    if (!chat) json_object_set_new(e, "text_offset", json_integer((json_int_t)c->text_offset));
    if (!c->lp) c->lp = json_array();
    json_array_append_new(c->lp, e);
}

static bool is_marker(const struct srv *s, int32_t id)
{
    for (int i = 0; i < s->n_markers; i++)
        if (s->markers[i] == id) return true;
    return false;
}

static void on_token(struct srv *s, struct choice *c, const struct engine_event *ev)
{
    struct job *j = c->job;
    double t = mono_seconds();
    if (c->n_tokens == 0) {
        if (j->t_first == 0) {
            j->t_first = t;
            metrics_observe(&s->m.ttft, t - j->t_start);
        }
    } else {
        metrics_observe(&s->m.itl, t - c->t_last);
    }
    c->t_last = t;
    c->n_tokens = ev->n_generated;
    s->m.generation_tokens++;
    if (j->logprobs >= 0) add_logprobs(s, c, ev);
    /* an eos or stop id ends the text without being part of it */
    if (ev->finish == FINISH_STOP) return;
    const char *piece;
    long n = detok_push(&c->dt, ev->token, &piece);
    push_text(c, piece, n);
    if (c->out && is_marker(s, ev->token)) { /* a control token the parsers read: its text */
        piece = tok_id_to_piece(s->model.tok, ev->token);
        push_text(c, piece, (long)strlen(piece));
    }
    if (c->sm.matched) {
        engine_abort(s->model.eng, (uint64_t)c->eid);
        choice_done(s, c, "stop");
    }
}

void job_fail(struct srv *s, struct job *j, const struct oai_error *e)
{
    if (j->stream && j->req && j->resp) { /* response.failed ends a Responses stream: no [DONE] */
        struct strbuf ev = {0};
        resp_failed(j->resp, e, &ev);
        resp_send(j, &ev);
        log_request(s, j->req, e->status, j->prompt_tokens, 0, -1);
        http_stream_end(j->req);
    } else if (j->stream && j->req) {
        char *t = oai_error_json(e);
        size_t n;
        char *ev = sse_data(t, strlen(t), &n);
        http_stream_write(j->req, ev, n);
        http_stream_write(j->req, "data: [DONE]\n\n", 14);
        free(ev);
        free(t);
        log_request(s, j->req, e->status, j->prompt_tokens, 0, -1);
        http_stream_end(j->req);
    } else if (j->req) {
        reply_error(s, j->req, e);
    }
    j->req = NULL;
    for (int i = 0; i < j->n_choices; i++)
        if (!j->ch[i].final_seen) engine_abort(s->model.eng, (uint64_t)j->ch[i].eid);
}

static void on_finish(struct srv *s, struct choice *c, enum finish_reason f)
{
    struct job *j = c->job;
    if (f == FINISH_ABORT) { /* not asked for: the engine failed this request */
        struct oai_error e;
        oai_fail(&e, 500, NULL, NULL, "the engine failed this request");
        c->done = true;
        j->n_done++;
        job_fail(s, j, &e);
        return;
    }
    const char *piece;
    long n = detok_flush(&c->dt, &piece);
    push_text(c, piece, n);
    if (!c->sm.matched) {
        size_t out_n;
        const char *out = stop_flush(&c->sm, &out_n);
        choice_emit(c, out, out_n);
    }
    choice_done(s, c, f == FINISH_LENGTH && !c->sm.matched ? "length" : "stop");
}

static void on_engine_event(struct srv *s, const struct engine_event *ev)
{
    struct choice *c = map_get(&s->jobs, ev->id);
    if (!c) return;
    struct job *j = c->job;
    if (!c->done && ev->token >= 0) on_token(s, c, ev);
    if (ev->n_cached > 0 && c->index == 0) j->cached_tokens = ev->n_cached;
    if (ev->finish != FINISH_NONE) {
        c->final_seen = true;
        map_del(&s->jobs, ev->id);
        j->n_final++;
        s->jobs.live_choices--;
        if (!c->done) on_finish(s, c, ev->finish);
    }
    if (j->n_final == j->n_choices && (j->replied || !j->req)) job_free(s, j);
}

void jobs_on_wake(uv_async_t *a)
{
    struct srv *s = a->data;
    struct engine_event ev[64];
    int n;
    while ((n = engine_poll(s->model.eng, ev, 64)) > 0)
        for (int i = 0; i < n; i++) on_engine_event(s, &ev[i]);
    serve_maybe_stop(s);
}

static void on_client_gone(struct http_request *r, void *arg)
{
    struct job *j = arg;
    struct srv *s = j->s;
    log_request(s, r, 499, j->prompt_tokens, 0, -1);
    j->req = NULL;
    for (int i = 0; i < j->n_choices; i++)
        if (!j->ch[i].final_seen) engine_abort(s->model.eng, (uint64_t)j->ch[i].eid);
    if (j->n_final == j->n_choices) job_free(s, j);
    serve_maybe_stop(s);
}

/* Submits one choice: the prompt's request with choice k's seed. */
static void submit(struct srv *s, struct choice *c, const struct engine_request *er, const struct oai_request *q,
                   int k)
{
    struct engine_request one = *er;
    if (q->sp.has_seed) one.sampling.seed = q->sp.seed + (uint64_t)k;
    c->eid = engine_submit(s->model.eng, &one);
    if (c->eid < 0) { /* checked before: cannot happen, but must not hang the reply */
        c->final_seen = c->done = true;
        c->finish = "length";
        c->job->n_final++;
        c->job->n_done++;
        return;
    }
    s->jobs.live_choices++;
    map_put(&s->jobs, c);
}

void job_start(struct srv *s, struct http_request *r, const struct oai_request *q, const struct job_prompts *p,
               struct resp_job *resp)
{
    struct job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->req = r;
    j->resp = resp;
    oai_head_init(&j->head, q->chat, q->include_usage, s->model_name);
    j->stream = q->stream;
    j->logprobs = q->logprobs;
    j->t_start = r->t_start;
    j->prompt_tokens = p->total;
    j->n_choices = p->n * q->n;
    j->ch = xcalloc(j->n_choices, sizeof(*j->ch));
    for (int i = 0; i < p->n; i++)
        for (int k = 0; k < q->n; k++) {
            struct choice *c = &j->ch[i * q->n + k];
            c->job = j;
            c->index = i * q->n + k;
            detok_init(&c->dt, s->model.tok, p->ids[i], p->n_ids[i]);
            stop_init(&c->sm, q->stop, q->n_stop);
            bool forced = q->tool_choice == OAI_TOOLS_REQUIRED || q->tool_choice == OAI_TOOLS_NAMED;
            enum tool_format tf = q->tool_choice == OAI_TOOLS_AUTO ? s->tool_format : TOOL_FORMAT_NONE;
            enum reasoning_format rf = q->chat ? s->reasoning : REASONING_NONE;
            if (forced || tf != TOOL_FORMAT_NONE || rf != REASONING_NONE || resp) {
                c->out = xmalloc(sizeof(*c->out));
                chat_out_init(c->out, rf, tf, q->stream || resp);
                if (forced) chat_out_force(c->out, q->tool_name);
            }
            submit(s, c, &p->er[i], q, k);
        }
    s->m.prompt_tokens += (uint64_t)p->total;
    struct jobs *js = &s->jobs;
    if (js->n == js->cap) {
        js->cap = js->cap ? 2 * js->cap : 64;
        js->list = xrealloc(js->list, js->cap * sizeof(*js->list));
    }
    js->list[js->n++] = j;
    r->on_abort = on_client_gone;
    r->abort_arg = j;
    if (j->stream) {
        char cors[512];
        cors_headers(s, r, cors, sizeof(cors));
        http_stream_begin(r, 200, "text/event-stream", cors);
    }
    if (resp) {
        struct strbuf ev = {0};
        resp_begin(resp, s->model_name, j->stream ? &ev : NULL);
        resp_send(j, &ev);
    }
    if (j->n_done == j->n_choices) job_reply(s, j);
    if (j->replied && j->n_final == j->n_choices) job_free(s, j);
}

void jobs_free_all(struct srv *s)
{
    while (s->jobs.n) job_free(s, s->jobs.list[0]);
    free(s->jobs.list);
    free(s->jobs.slots);
    s->jobs = (struct jobs){0};
}
