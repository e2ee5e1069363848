/* cmd_serve.c: `tessera serve MODEL_DIR`: the OpenAI-compatible HTTP server.
 *
 * Threads: the libuv loop (this file, http.c) and the engine thread. The
 * model loads on a third thread while /health answers 503. The loop turns
 * requests into engine submissions (one per choice) and engine events into
 * replies: detokenizer -> stop-string matcher -> SSE chunk or accumulated
 * text, so a streamed reply and a whole one carry the same text. */
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <uv.h>

#include "../engine/comm.h"
#include "../engine/engine.h"
#include "../engine/err.h"
#include "../tokenizer/tokenizer.h"
#include "chat_template.h"
#include "cli.h"
#include "http.h"
#include "openai.h"
#include "sse.h"
#include "stop.h"

struct serve_opts {
    const char *model_dir, *host, *served_name, *api_key, *chat_template_file, *origins;
    long port, max_queue, max_connections;
    struct cli_backend bk;
    double shutdown_timeout, header_timeout, body_timeout, idle_timeout;
    struct engine_config ec;
};

// ---------------------------------------------------------------------------
// metrics

static const double BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define N_BUCKETS (int)(sizeof(BUCKETS) / sizeof(BUCKETS[0]))

struct hist {
    uint64_t counts[N_BUCKETS];
    uint64_t n;
    double sum;
};

static void hist_add(struct hist *h, double v)
{
    for (int i = 0; i < N_BUCKETS; i++)
        if (v <= BUCKETS[i]) h->counts[i]++;
    h->n++;
    h->sum += v;
}

struct metrics {
    int statuses[16];
    uint64_t status_counts[16];
    int n_statuses;
    uint64_t prompt_tokens, generation_tokens;
    struct hist ttft, itl, e2e;
};

static void count_status(struct metrics *m, int status)
{
    for (int i = 0; i < m->n_statuses; i++)
        if (m->statuses[i] == status) {
            m->status_counts[i]++;
            return;
        }
    if (m->n_statuses < 16) {
        m->statuses[m->n_statuses] = status;
        m->status_counts[m->n_statuses++] = 1;
    }
}

// ---------------------------------------------------------------------------
// state

struct job;

struct choice {
    struct job *job;
    int index;
    int64_t eid;            /* engine request id */
    bool final_seen;        /* the engine's last event for eid arrived */
    bool done;              /* finish reason known, reply part complete */
    const char *finish;
    struct detok dt;
    struct stop_matcher sm;
    char *text;             /* whole replies: the text so far */
    size_t len, cap;
    json_t *lp;             /* logprobs not yet sent (stream) or all of them */
    int n_tokens;
    size_t text_offset;     /* completions logprobs */
    double t_last;
    bool role_sent;
};

struct job {
    struct srv *s;
    struct http_request *req; /* NULL once answered or the client left */
    bool chat, stream, include_usage, replied;
    int logprobs;
    char id[64];
    long created;
    int n_choices, n_done, n_final;
    struct choice *ch;
    int prompt_tokens, cached_tokens;
    double t_start, t_first;
    char cors[512];
};

struct srv {
    struct serve_opts o;
    uv_loop_t *loop;
    uv_async_t wake, loaded;
    uv_signal_t sigint, sigterm;
    uv_timer_t shutdown_timer;
    uv_thread_t load_thread;
    http_server *http;
    struct backend *b;
    engine *eng;
    tokenizer *tok;
    const struct model_config *cfg;
    int max_len;
    enum chat_style style;
    char *model_name;
    atomic_bool ready;
    char load_err[1024];
    bool shutting_down, load_joined;
    int exit_code;
    struct job **jobs;
    int n_jobs, cap_jobs;
    int n_preps;                /* requests being prepared on worker threads */
    int32_t eos;                /* the tokenizer's eos id (-1: none) */
    int live_choices;
    struct metrics m;
};

// ---------------------------------------------------------------------------
// small helpers

/* A JSON string of s[0..n), valid UTF-8 guaranteed (bad bytes -> U+FFFD). */
static json_t *jstr(const char *s, size_t n)
{
    if (utf8_valid_prefix(s, n) == n) return json_stringn(s, n);
    char *buf = xmalloc(3 * n + 1);
    size_t k = utf8_sanitize(buf, 3 * n + 1, s, n);
    json_t *j = json_stringn(buf, k);
    free(buf);
    return j;
}

/* The text a token stands for, as logprobs show it, with its bytes. */
static json_t *token_entry(const struct srv *s, int32_t id, float lp, bool with_bytes, char *out, size_t cap)
{
    const char *piece = tok_id_to_piece(s->tok, id);
    if (!piece) piece = "";
    size_t k = 0;
    unsigned int byte;
    bool is_byte = sscanf(piece, "<0x%2X>", &byte) == 1 && strlen(piece) == 6; /* byte fallback */
    if (is_byte) {
        if (byte < 0x80) out[k++] = (char)byte;
        else k = (size_t)snprintf(out, cap, "bytes:\\x%02x", byte);
    } else {
        for (const char *p = piece; *p && k + 4 < cap;) {
            if (!strncmp(p, "\xE2\x96\x81", 3)) { /* U+2581, SentencePiece's space */
                out[k++] = ' ';
                p += 3;
            } else
                out[k++] = *p++;
        }
    }
    out[k] = '\0';
    json_t *e = json_object();
    json_object_set_new(e, "token", jstr(out, k));
    json_object_set_new(e, "logprob", json_real(isfinite(lp) ? lp : -9999.0));
    if (with_bytes) {
        json_t *b = json_array();
        if (is_byte) json_array_append_new(b, json_integer(byte));
        else
            for (size_t i = 0; i < k; i++) json_array_append_new(b, json_integer((unsigned char)out[i]));
        json_object_set_new(e, "bytes", b);
    }
    return e;
}

static void cors_headers(struct srv *s, const struct http_request *r, char *out, size_t cap)
{
    out[0] = '\0';
    const char *origin = http_header(r, "origin");
    const char *allowed = s->o.origins;
    if (!origin || !allowed || !*allowed) return;
    bool ok = !strcmp(allowed, "*");
    size_t ol = strlen(origin);
    for (const char *p = allowed; !ok && *p;) {
        size_t n = strcspn(p, ",");
        ok = n == ol && !strncmp(p, origin, n);
        p += n + (p[n] == ',');
    }
    if (!ok || strchr(origin, '\r') || strchr(origin, '\n') || ol > 256) return;
    snprintf(out, cap,
             "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\nAccess-Control-Expose-Headers: X-Request-Id\r\n",
             origin);
}

static void log_request(struct srv *s, const struct http_request *r, int status, int prompt, int completion,
                        double ttft)
{
    double total = mono_seconds() - r->t_start;
    count_status(&s->m, status);
    if (prompt >= 0 && status == 200) hist_add(&s->m.e2e, total);
    /* the path as sent, but no terminal control bytes or broken text in the log */
    char path[200];
    size_t k = 0;
    for (const char *p = r->path; *p && k + 5 < sizeof(path); p++) {
        unsigned char c = (unsigned char)*p;
        if (c > 0x20 && c < 0x7F && c != '\\') path[k++] = (char)c;
        else k += (size_t)snprintf(path + k, sizeof(path) - k, "\\x%02x", c);
    }
    path[k] = '\0';
    fprintf(stderr, "tessera: %s %s %d", r->method, path, status);
    if (prompt >= 0) fprintf(stderr, " prompt=%d completion=%d", prompt, completion);
    if (ttft >= 0) fprintf(stderr, " ttft=%.3fs", ttft);
    fprintf(stderr, " total=%.3fs id=%s\n", total, r->request_id);
}

static void reply_error(struct srv *s, struct http_request *r, const struct oai_error *e);

/* body: built by the caller; NULL (a json_pack that failed) becomes a 500. */
static void reply_json(struct srv *s, struct http_request *r, int status, json_t *body, int prompt, int completion,
                       double ttft)
{
    char cors[512];
    cors_headers(s, r, cors, sizeof(cors));
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        struct oai_error e;
        oai_fail(&e, 500, NULL, NULL, "the reply could not be encoded");
        reply_error(s, r, &e);
        return;
    }
    log_request(s, r, status, prompt, completion, ttft);
    http_respond(r, status, "application/json", cors, text, strlen(text));
    free(text);
}

static void reply_error(struct srv *s, struct http_request *r, const struct oai_error *e)
{
    char cors[512], extra[600];
    cors_headers(s, r, cors, sizeof(cors));
    snprintf(extra, sizeof(extra), "%s%s", cors,
             e->status == 405 ? "Allow: GET, HEAD, POST, OPTIONS\r\n" : e->status == 503 ? "Retry-After: 1\r\n" : "");
    char *text = oai_error_json(e);
    log_request(s, r, e->status, -1, -1, -1);
    http_respond(r, e->status, "application/json", extra, text, strlen(text));
    free(text);
}

// ---------------------------------------------------------------------------
// jobs: engine events -> replies

static void job_send(struct job *j, json_t *chunk)
{
    char *t = chunk ? json_dumps(chunk, JSON_COMPACT) : NULL;
    json_decref(chunk);
    if (!t) { /* a bug of ours: say so in the stream rather than send nothing */
        struct oai_error e;
        oai_fail(&e, 500, NULL, NULL, "a chunk could not be encoded");
        t = oai_error_json(&e);
    }
    size_t n;
    char *ev = sse_data(t, strlen(t), &n);
    if (j->req) http_stream_write(j->req, ev, n);
    free(ev);
    free(t);
}

static json_t *chunk_base(struct job *j)
{
    json_t *c = json_pack("{s:s, s:s, s:I, s:s}", "id", j->id, "object",
                          j->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)j->created,
                          "model", j->s->model_name);
    if (j->include_usage) json_object_set_new(c, "usage", json_null());
    return c;
}

/* The logprobs object of a chat choice or completion choice from entries. */
static json_t *logprobs_json(struct job *j, json_t *entries)
{
    if (j->chat) return json_pack("{s:O}", "content", entries);
    json_t *o = json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs", "top_logprobs", "text_offset");
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        json_array_append(json_object_get(o, "tokens"), json_object_get(e, "token"));
        json_array_append(json_object_get(o, "token_logprobs"), json_object_get(e, "logprob"));
        json_array_append(json_object_get(o, "text_offset"), json_object_get(e, "text_offset"));
        json_t *top = json_object(), *t;
        size_t k;
        json_array_foreach(json_object_get(e, "top_logprobs"), k, t)
            json_object_set(top, json_string_value(json_object_get(t, "token")), json_object_get(t, "logprob"));
        json_array_append_new(json_object_get(o, "top_logprobs"), top);
    }
    return o;
}

/* Streams text (and pending logprobs) of choice c, or keeps it for the whole reply. */
static void emit(struct choice *c, const char *text, size_t n, const char *finish)
{
    struct job *j = c->job;
    if (!j->stream) {
        if (n + c->len + 1 > c->cap) {
            c->cap = 2 * (n + c->len + 1);
            c->text = xrealloc(c->text, c->cap);
        }
        memcpy(c->text + c->len, text, n);
        c->len += n;
        return;
    }
    if (!j->req) return;
    bool has_lp = c->lp && json_array_size(c->lp);
    if (!n && !finish && !has_lp) return;
    if (j->chat && !c->role_sent) {
        json_t *first = chunk_base(j);
        json_object_set_new(first, "choices",
                            json_pack("[{s:i, s:{s:s, s:s}, s:n, s:n}]", "index", c->index, "delta", "role",
                                      "assistant", "content", "", "logprobs", "finish_reason"));
        job_send(j, first);
        c->role_sent = true;
    }
    json_t *ch = json_pack("{s:i}", "index", c->index);
    if (j->chat) {
        json_t *delta = json_object();
        if (n || !finish) json_object_set_new(delta, "content", jstr(text, n));
        json_object_set_new(ch, "delta", delta);
    } else {
        json_object_set_new(ch, "text", jstr(text, n));
    }
    json_object_set_new(ch, "logprobs", has_lp ? logprobs_json(j, c->lp) : json_null());
    if (has_lp) json_array_clear(c->lp);
    json_object_set_new(ch, "finish_reason", finish ? json_string(finish) : json_null());
    json_t *chunk = chunk_base(j);
    json_object_set_new(chunk, "choices", json_pack("[o]", ch));
    job_send(j, chunk);
}

static void job_free(struct srv *s, struct job *j)
{
    for (int i = 0; i < j->n_choices; i++) {
        detok_deinit(&j->ch[i].dt);
        stop_deinit(&j->ch[i].sm);
        free(j->ch[i].text);
        json_decref(j->ch[i].lp);
    }
    for (int i = 0; i < s->n_jobs; i++)
        if (s->jobs[i] == j) {
            s->jobs[i] = s->jobs[--s->n_jobs];
            break;
        }
    free(j->ch);
    free(j);
}

static json_t *usage_json(struct job *j)
{
    int completion = 0;
    for (int i = 0; i < j->n_choices; i++) completion += j->ch[i].n_tokens;
    json_t *u = json_pack("{s:i, s:i, s:i}", "prompt_tokens", j->prompt_tokens, "completion_tokens", completion,
                          "total_tokens", j->prompt_tokens + completion);
    if (j->cached_tokens)
        json_object_set_new(u, "prompt_tokens_details", json_pack("{s:i}", "cached_tokens", j->cached_tokens));
    return u;
}

/* Every choice is done: finish the reply. */
static void job_reply(struct srv *s, struct job *j)
{
    j->replied = true;
    struct http_request *r = j->req;
    if (!r) return;
    int completion = 0;
    for (int i = 0; i < j->n_choices; i++) completion += j->ch[i].n_tokens;
    double ttft = j->t_first > 0 ? j->t_first - j->t_start : -1;
    if (j->stream) {
        if (j->include_usage) {
            json_t *u = chunk_base(j);
            json_object_set_new(u, "choices", json_array());
            json_object_set_new(u, "usage", usage_json(j));
            job_send(j, u);
        }
        http_stream_write(r, "data: [DONE]\n\n", 14);
        log_request(s, r, 200, j->prompt_tokens, completion, ttft);
        http_stream_end(r);
    } else {
        json_t *choices = json_array();
        for (int i = 0; i < j->n_choices; i++) {
            struct choice *c = &j->ch[i];
            json_t *lp = c->lp ? logprobs_json(j, c->lp) : json_null();
            json_t *ch = j->chat ? json_pack("{s:i, s:{s:s, s:o}, s:o, s:s}", "index", i, "message", "role",
                                             "assistant", "content", jstr(c->text ? c->text : "", c->len),
                                             "logprobs", lp, "finish_reason", c->finish)
                                 : json_pack("{s:i, s:o, s:o, s:s}", "index", i, "text",
                                             jstr(c->text ? c->text : "", c->len), "logprobs", lp,
                                             "finish_reason", c->finish);
            json_array_append_new(choices, ch);
        }
        json_t *body = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", j->id, "object",
                                 j->chat ? "chat.completion" : "text_completion", "created", (json_int_t)j->created,
                                 "model", s->model_name, "choices", choices, "usage", usage_json(j));
        reply_json(s, r, 200, body, j->prompt_tokens, completion, ttft);
    }
    j->req = NULL;
}

static void choice_done(struct srv *s, struct choice *c, const char *finish)
{
    c->done = true;
    c->finish = finish;
    struct job *j = c->job;
    j->n_done++;
    if (j->stream) emit(c, "", 0, finish);
    if (j->n_done == j->n_choices) job_reply(s, j);
}

/* Detokenized text through the stop-string matcher to the reply. */
static void push_text(struct choice *c, const char *text, long n)
{
    size_t out_n;
    const char *out = stop_push(&c->sm, text, (size_t)n, &out_n);
    c->text_offset += out_n;
    emit(c, out, out_n, NULL);
}

static void on_token(struct srv *s, struct choice *c, const struct engine_event *ev)
{
    struct job *j = c->job;
    double t = mono_seconds();
    if (c->n_tokens == 0) {
        if (j->t_first == 0) {
            j->t_first = t;
            hist_add(&s->m.ttft, t - j->t_start);
        }
    } else {
        hist_add(&s->m.itl, t - c->t_last);
    }
    c->t_last = t;
    c->n_tokens = ev->n_generated;
    s->m.generation_tokens++;
    if (j->logprobs >= 0) {
        char buf[64];
        json_t *e = token_entry(s, ev->token, ev->logprob, j->chat, buf, sizeof(buf));
        json_t *top = json_array();
        for (int i = 0; i < ev->n_top; i++)
            json_array_append_new(top, token_entry(s, ev->top_ids[i], ev->top_logprobs[i], j->chat, buf, sizeof(buf)));
        json_object_set_new(e, "top_logprobs", top);
        if (!j->chat) json_object_set_new(e, "text_offset", json_integer((json_int_t)c->text_offset));
        if (!c->lp) c->lp = json_array();
        json_array_append_new(c->lp, e);
    }
    /* an eos or stop id ends the text without being part of it */
    if (ev->finish == FINISH_STOP) return;
    const char *piece;
    long n = detok_push(&c->dt, ev->token, &piece);
    push_text(c, piece, n);
    if (c->sm.matched) {
        engine_abort(s->eng, (uint64_t)c->eid);
        choice_done(s, c, "stop");
    }
}

/* Ends j's reply with error e: a stream gets an error event (the openai
 * client raises it) and [DONE], a whole reply the error; the choices still
 * running are aborted. */
static void job_fail(struct srv *s, struct job *j, const struct oai_error *e)
{
    if (j->stream && j->req) {
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
        if (!j->ch[i].final_seen) engine_abort(s->eng, (uint64_t)j->ch[i].eid);
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
        emit(c, out, out_n, NULL);
    }
    choice_done(s, c, f == FINISH_LENGTH && !c->sm.matched ? "length" : "stop");
}

static void on_engine_event(struct srv *s, const struct engine_event *ev)
{
    struct choice *c = NULL;
    for (int i = 0; i < s->n_jobs && !c; i++)
        for (int k = 0; k < s->jobs[i]->n_choices; k++)
            if (s->jobs[i]->ch[k].eid == (int64_t)ev->id && !s->jobs[i]->ch[k].final_seen) {
                c = &s->jobs[i]->ch[k];
                break;
            }
    if (!c) return;
    struct job *j = c->job;
    if (!c->done && ev->token >= 0) on_token(s, c, ev);
    if (ev->n_cached > 0 && c->index == 0) j->cached_tokens = ev->n_cached;
    if (ev->finish != FINISH_NONE) {
        c->final_seen = true;
        j->n_final++;
        s->live_choices--;
        if (!c->done) on_finish(s, c, ev->finish);
    }
    if (j->n_final == j->n_choices && (j->replied || !j->req)) job_free(s, j);
}

static void on_wake(uv_async_t *a)
{
    struct srv *s = a->data;
    struct engine_event ev[64];
    int n;
    while ((n = engine_poll(s->eng, ev, 64)) > 0)
        for (int i = 0; i < n; i++) on_engine_event(s, &ev[i]);
    if (s->shutting_down && !s->n_jobs && !s->n_preps) uv_stop(s->loop);
}

static void engine_wake(void *arg) { uv_async_send(arg); }

static void on_client_gone(struct http_request *r, void *arg)
{
    struct job *j = arg;
    struct srv *s = j->s;
    log_request(s, r, 499, j->prompt_tokens, 0, -1);
    j->req = NULL;
    for (int i = 0; i < j->n_choices; i++)
        if (!j->ch[i].final_seen) engine_abort(s->eng, (uint64_t)j->ch[i].eid);
    if (j->n_final == j->n_choices) job_free(s, j);
    if (s->shutting_down && !s->n_jobs && !s->n_preps) uv_stop(s->loop);
}

// ---------------------------------------------------------------------------
// generation and tokenize requests, prepared off the loop
//
// Parsing a body (up to 8 MiB of JSON), rendering the chat template and
// tokenizing all grow with the input, so they run on libuv's worker threads
// (prep_work) and the loop only takes the result (prep_done): /health,
// /metrics and every stream go on while a long prompt is read. The worker
// owns the request's body and reads only what never changes (the tokenizer,
// the model's limits, engine_check's constants); jobs and counters are
// touched on the loop alone.

enum prep_kind { PREP_CHAT, PREP_COMPLETIONS, PREP_TOKENIZE, PREP_DETOKENIZE };

struct prep {
    uv_work_t work;
    struct srv *s;
    struct http_request *req;       /* NULL once the client left */
    enum prep_kind kind;
    char *body;                     /* taken over from req */
    size_t body_len;
    bool failed;                    /* e says why */
    struct oai_error e;
    char *reply;                    /* tokenize routes: the 200 body, encoded */
    struct oai_request q;           /* generation: the request and its prompts */
    int n_prompts, total_prompt;
    int32_t **ids;
    int *n_ids;
    struct engine_request *er;
};

/* The ids of a prompt given as text or as ids (*ids malloc'd); -1 if the
 * tokenizer fails. */
static int tokenize_prompt(const tokenizer *tok, const struct oai_prompt *p, bool add_bos, int32_t **ids)
{
    if (p->ids) {
        *ids = xmalloc((p->n_ids ? p->n_ids : 1) * sizeof(int32_t));
        memcpy(*ids, p->ids, p->n_ids * sizeof(int32_t));
        return p->n_ids;
    }
    size_t len = strlen(p->text);
    int cap = (int)len + 8, n = -1;
    for (int attempt = 0; attempt < 2 && n < 0; attempt++) {
        *ids = xmalloc(cap * sizeof(int32_t));
        n = tok_encode(tok, p->text, len, add_bos, *ids, cap);
        if (n < 0) {
            free(*ids);
            *ids = NULL;
            cap = -n;
        }
    }
    return n < 0 ? -1 : n;
}

/* The context-length error for prompt p of n ids, as OpenAI words it. */
static int context_error(struct prep *p, int n)
{
    const char *what = p->kind == PREP_CHAT ? "messages" : "prompt";
    int max_len = p->s->max_len, max_tokens = p->q.max_tokens;
    if (n == 0) return oai_fail(&p->e, 400, what, NULL, "the prompt is empty");
    if (max_tokens > 0)
        return oai_fail(&p->e, 400, what, "context_length_exceeded",
                        "This model's maximum context length is %d tokens. However, you requested %d tokens (%d in "
                        "the %s, %d in the completion). Please reduce the length of the %s or completion.",
                        max_len, n + max_tokens, n, what, max_tokens, what);
    return oai_fail(&p->e, 400, what, "context_length_exceeded",
                    "This model's maximum context length is %d tokens. However, your %s resulted in %d tokens, "
                    "leaving no room for the completion.", max_len, what, n);
}

/* Parses, tokenizes and checks a generation request into p->er; -1 with
 * p->e filled. What the engine would refuse is a 400 before anything is
 * submitted; without max_tokens a choice may run to the end of the context
 * or of the KV pool. */
static int prep_generate(struct prep *p)
{
    struct srv *s = p->s;
    struct oai_request *q = &p->q;
    bool chat = p->kind == PREP_CHAT;
    if (oai_parse(q, chat, p->body, p->body_len, s->cfg->vocab_size, &p->e)) return -1;
    if (q->model && strcmp(q->model, s->model_name))
        return oai_fail(&p->e, 404, "model", "model_not_found", "The model `%s` does not exist.", q->model);
    p->n_prompts = chat ? 1 : q->n_prompts;
    p->ids = xcalloc(p->n_prompts, sizeof(int32_t *));
    p->n_ids = xcalloc(p->n_prompts, sizeof(int));
    p->er = xcalloc(p->n_prompts, sizeof(*p->er));
    for (int i = 0; i < p->n_prompts; i++) {
        int n = chat ? chat_render(s->style, q->msgs, q->n_msgs, s->tok, &p->ids[i])
                     : tokenize_prompt(s->tok, &q->prompts[i], tok_add_bos(s->tok), &p->ids[i]);
        if (n < 0) return oai_fail(&p->e, 400, chat ? "messages" : "prompt", NULL, "the prompt cannot be tokenized");
        p->n_ids[i] = n;
        p->total_prompt += n;
        if (n == 0 || n + (q->max_tokens > 0 ? q->max_tokens : 1) > s->max_len) return context_error(p, n);
    }
    int64_t room = engine_pool_tokens(s->eng) < s->max_len ? engine_pool_tokens(s->eng) : s->max_len;
    for (int i = 0; i < p->n_prompts; i++) {
        p->er[i] = (struct engine_request){.prompt = p->ids[i], .n_prompt = p->n_ids[i], .sampling = q->sp,
                                           .max_tokens = q->max_tokens > 0 ? q->max_tokens : (int)(room - p->n_ids[i]),
                                           .stop_ids = &s->eos, .n_stop_ids = s->eos >= 0 && !q->ignore_eos,
                                           .ignore_eos = q->ignore_eos, .logprobs = q->logprobs,
                                           .bias_ids = q->bias_ids, .bias = q->bias, .n_bias = q->n_bias};
        if (p->er[i].max_tokens < 1)
            return oai_fail(&p->e, 400, chat ? "messages" : "prompt", "context_length_exceeded",
                            "the prompt has %d tokens; the KV cache holds %lld in all", p->n_ids[i], (long long)room);
        if (engine_check(s->eng, &p->er[i])) return oai_fail(&p->e, 400, NULL, NULL, "%s", err_msg());
    }
    return 0;
}

/* The compact text of j (consumed), or NULL when j is NULL or cannot be encoded. */
static char *dump(json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return t;
}

/* /detokenize: ids -> text. */
static int prep_detokenize(struct prep *p, json_t *root)
{
    struct srv *s = p->s;
    json_t *t = json_object_get(root, "tokens"), *v;
    size_t n = json_array_size(t), i;
    int32_t *ids = xmalloc((n ? n : 1) * sizeof(int32_t));
    bool ok = json_is_array(t);
    json_array_foreach(t, i, v) {
        ok = ok && json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < s->cfg->vocab_size;
        ids[i] = ok ? (int32_t)json_integer_value(v) : 0;
    }
    if (!ok) {
        free(ids);
        return oai_fail(&p->e, 400, "tokens", NULL, "'tokens' must be a list of token ids in [0, %d)",
                        s->cfg->vocab_size);
    }
    long need = tok_decode(s->tok, ids, (int)n, NULL, 0);
    size_t cap = need < 0 ? (size_t)-need : (size_t)need;
    char *text = xmalloc(cap + 1);
    long len = tok_decode(s->tok, ids, (int)n, text, cap + 1);
    p->reply = dump(json_pack("{s:o}", "prompt", jstr(text, len > 0 ? (size_t)len : 0)));
    free(ids);
    free(text);
    return p->reply ? 0 : oai_fail(&p->e, 500, NULL, NULL, "the reply could not be encoded");
}

/* /tokenize: {"prompt": text} or {"messages": [...]} -> ids. */
static int prep_tokenize(struct prep *p, json_t *root)
{
    struct srv *s = p->s;
    int32_t *ids = NULL;
    int n;
    json_t *prompt = json_object_get(root, "prompt");
    if (json_is_string(prompt)) {
        struct oai_prompt op = {.text = (char *)json_string_value(prompt)};
        bool add_bos = !json_is_false(json_object_get(root, "add_special_tokens")) && tok_add_bos(s->tok);
        n = tokenize_prompt(s->tok, &op, add_bos, &ids);
        if (n < 0) return oai_fail(&p->e, 400, "prompt", NULL, "the prompt cannot be tokenized");
    } else if (json_object_get(root, "messages")) {
        if (oai_parse(&p->q, true, p->body, p->body_len, s->cfg->vocab_size, &p->e)) return -1;
        n = chat_render(s->style, p->q.msgs, p->q.n_msgs, s->tok, &ids);
        if (n < 0) return oai_fail(&p->e, 400, "messages", NULL, "the prompt cannot be tokenized");
    } else {
        return oai_fail(&p->e, 400, "prompt", NULL, "give 'prompt' (a string) or 'messages'");
    }
    json_t *tokens = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(tokens, json_integer(ids[i]));
    free(ids);
    p->reply = dump(json_pack("{s:o, s:i, s:i}", "tokens", tokens, "count", n, "max_model_len", s->max_len));
    return p->reply ? 0 : oai_fail(&p->e, 500, NULL, NULL, "the reply could not be encoded");
}

/* On a libuv worker thread. */
static void prep_work(uv_work_t *w)
{
    struct prep *p = w->data;
    if (p->kind == PREP_CHAT || p->kind == PREP_COMPLETIONS) {
        p->failed = prep_generate(p) != 0;
        return;
    }
    json_error_t je;
    json_t *root = json_loadb(p->body, p->body_len, 0, &je);
    if (!json_is_object(root)) p->failed = oai_fail(&p->e, 400, NULL, NULL, "the body must be a JSON object");
    else p->failed = (p->kind == PREP_DETOKENIZE ? prep_detokenize(p, root) : prep_tokenize(p, root)) != 0;
    json_decref(root);
}

static void prep_free(struct prep *p)
{
    for (int i = 0; p->ids && i < p->n_prompts; i++) free(p->ids[i]);
    free(p->ids);
    free(p->n_ids);
    free(p->er);
    oai_request_free(&p->q);
    free(p->reply);
    free(p->body);
    free(p);
}

static void prep_abandon(struct http_request *r, void *arg)
{
    struct prep *p = arg;
    log_request(p->s, r, 499, -1, -1, -1);
    p->req = NULL; /* the work goes on; prep_done drops its result */
}

/* A prepared generation request becomes a job: one engine submission per
 * prompt x n. */
static void start_job(struct srv *s, struct http_request *r, struct prep *p)
{
    struct oai_request *q = &p->q;
    bool chat = p->kind == PREP_CHAT;
    int n_choices = p->n_prompts * q->n;
    struct job *j = xcalloc(1, sizeof(*j));
    j->s = s;
    j->req = r;
    j->chat = chat;
    j->stream = q->stream;
    j->include_usage = q->include_usage;
    j->logprobs = q->logprobs;
    j->created = (long)time(NULL);
    j->t_start = r->t_start;
    j->prompt_tokens = p->total_prompt;
    snprintf(j->id, sizeof(j->id), "%s-%llx%06x", chat ? "chatcmpl" : "cmpl", (unsigned long long)uv_hrtime(),
             (unsigned)rand() & 0xffffff);
    j->n_choices = n_choices;
    j->ch = xcalloc(n_choices, sizeof(*j->ch));
    for (int i = 0; i < p->n_prompts; i++)
        for (int k = 0; k < q->n; k++) {
            struct choice *c = &j->ch[i * q->n + k];
            c->job = j;
            c->index = i * q->n + k;
            detok_init(&c->dt, s->tok, p->ids[i], p->n_ids[i]);
            stop_init(&c->sm, q->stop, q->n_stop);
            struct engine_request one = p->er[i];
            if (q->sp.has_seed) one.sampling.seed = q->sp.seed + (uint64_t)k;
            c->eid = engine_submit(s->eng, &one);
            if (c->eid < 0) { /* checked before: cannot happen, but must not hang the reply */
                c->final_seen = c->done = true;
                c->finish = "length";
                j->n_final++;
                j->n_done++;
            } else {
                s->live_choices++;
            }
        }
    s->m.prompt_tokens += (uint64_t)p->total_prompt;
    if (s->n_jobs == s->cap_jobs) {
        s->cap_jobs = s->cap_jobs ? 2 * s->cap_jobs : 64;
        s->jobs = xrealloc(s->jobs, s->cap_jobs * sizeof(*s->jobs));
    }
    s->jobs[s->n_jobs++] = j;
    r->on_abort = on_client_gone;
    r->abort_arg = j;
    if (j->stream) {
        char cors[512];
        cors_headers(s, r, cors, sizeof(cors));
        http_stream_begin(r, 200, "text/event-stream", cors);
    }
    if (j->n_done == j->n_choices) job_reply(s, j);
    if (j->replied && j->n_final == j->n_choices) job_free(s, j);
}

/* Back on the loop. */
static void prep_done(uv_work_t *w, int status)
{
    struct prep *p = w->data;
    struct srv *s = p->s;
    struct http_request *r = p->req;
    s->n_preps--;
    if (r) {
        r->on_abort = NULL;
        bool generate = p->kind == PREP_CHAT || p->kind == PREP_COMPLETIONS;
        int n_choices = generate && !p->failed ? p->n_prompts * p->q.n : 0;
        if (status < 0) p->failed = oai_fail(&p->e, 500, NULL, NULL, "the request could not be prepared");
        else if (s->shutting_down) p->failed = oai_fail(&p->e, 503, NULL, NULL, "the server is shutting down");
        else if (n_choices && s->live_choices + n_choices > s->o.ec.max_num_seqs + s->o.max_queue)
            p->failed = oai_fail(&p->e, 503, NULL, NULL,
                                 "the server is overloaded: %d requests are in progress; retry later",
                                 s->live_choices);
        if (p->failed) reply_error(s, r, &p->e);
        else if (generate) start_job(s, r, p);
        else {
            char cors[512];
            cors_headers(s, r, cors, sizeof(cors));
            log_request(s, r, 200, -1, -1, -1);
            http_respond(r, 200, "application/json", cors, p->reply, strlen(p->reply));
        }
    }
    prep_free(p);
    if (s->shutting_down && !s->n_jobs && !s->n_preps) uv_stop(s->loop);
}

/* Hands r's body to a worker thread; the reply comes from prep_done. */
static void prepare(struct srv *s, struct http_request *r, enum prep_kind kind)
{
    struct prep *p = xcalloc(1, sizeof(*p));
    p->s = s;
    p->req = r;
    p->kind = kind;
    p->body = r->body;
    p->body_len = r->body_len;
    r->body = NULL;
    r->body_len = r->body_cap = 0;
    p->work.data = p;
    r->on_abort = prep_abandon;
    r->abort_arg = p;
    s->n_preps++;
    if (uv_queue_work(s->loop, &p->work, prep_work, prep_done)) prep_done(&p->work, UV_ECANCELED);
}

// ---------------------------------------------------------------------------
// metrics

static void put_hist(char **buf, size_t *len, size_t *cap, const char *name, const char *help, const struct hist *h);

static void appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void appendf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        *cap = 2 * (*cap + (size_t)n);
        *buf = xrealloc(*buf, *cap);
    }
}

static void put_hist(char **buf, size_t *len, size_t *cap, const char *name, const char *help, const struct hist *h)
{
    appendf(buf, len, cap, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < N_BUCKETS; i++)
        appendf(buf, len, cap, "%s_bucket{le=\"%g\"} %llu\n", name, BUCKETS[i], (unsigned long long)h->counts[i]);
    appendf(buf, len, cap, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
            (unsigned long long)h->n, name, h->sum, name, (unsigned long long)h->n);
}

static void handle_metrics(struct srv *s, struct http_request *r)
{
    size_t len = 0, cap = 8192;
    char *b = xmalloc(cap);
    b[0] = '\0';
    appendf(&b, &len, &cap, "# HELP tessera_requests_total HTTP requests answered, by status.\n"
                            "# TYPE tessera_requests_total counter\n");
    for (int i = 0; i < s->m.n_statuses; i++)
        appendf(&b, &len, &cap, "tessera_requests_total{status=\"%d\"} %llu\n", s->m.statuses[i],
                (unsigned long long)s->m.status_counts[i]);
    appendf(&b, &len, &cap,
            "# HELP tessera_prompt_tokens_total Prompt tokens of accepted requests.\n"
            "# TYPE tessera_prompt_tokens_total counter\ntessera_prompt_tokens_total %llu\n"
            "# HELP tessera_generation_tokens_total Tokens generated.\n"
            "# TYPE tessera_generation_tokens_total counter\ntessera_generation_tokens_total %llu\n",
            (unsigned long long)s->m.prompt_tokens, (unsigned long long)s->m.generation_tokens);
    put_hist(&b, &len, &cap, "tessera_time_to_first_token_seconds", "Time to first token.", &s->m.ttft);
    put_hist(&b, &len, &cap, "tessera_inter_token_latency_seconds", "Time between tokens of a stream.", &s->m.itl);
    put_hist(&b, &len, &cap, "tessera_e2e_request_latency_seconds", "Request latency, end to end.", &s->m.e2e);
    if (atomic_load(&s->ready)) {
        struct engine_stats st = engine_stats(s->eng);
        appendf(&b, &len, &cap,
                "# HELP tessera_num_requests_running Sequences in the running batch.\n"
                "# TYPE tessera_num_requests_running gauge\ntessera_num_requests_running %d\n"
                "# HELP tessera_num_requests_waiting Sequences waiting to run.\n"
                "# TYPE tessera_num_requests_waiting gauge\ntessera_num_requests_waiting %d\n"
                "# HELP tessera_kv_cache_blocks_used KV cache blocks referenced by sequences.\n"
                "# TYPE tessera_kv_cache_blocks_used gauge\ntessera_kv_cache_blocks_used %d\n"
                "# HELP tessera_kv_cache_blocks_total KV cache blocks in the pool.\n"
                "# TYPE tessera_kv_cache_blocks_total gauge\ntessera_kv_cache_blocks_total %d\n"
                "# HELP tessera_kv_cache_usage_ratio Fraction of KV cache blocks in use.\n"
                "# TYPE tessera_kv_cache_usage_ratio gauge\ntessera_kv_cache_usage_ratio %.6f\n"
                "# HELP tessera_prefix_cache_queries_total Prompt tokens looked up in the prefix cache.\n"
                "# TYPE tessera_prefix_cache_queries_total counter\ntessera_prefix_cache_queries_total %lld\n"
                "# HELP tessera_prefix_cache_hits_total Prompt tokens found in the prefix cache.\n"
                "# TYPE tessera_prefix_cache_hits_total counter\ntessera_prefix_cache_hits_total %lld\n"
                "# HELP tessera_prefix_cache_hit_rate Hits over queries since start.\n"
                "# TYPE tessera_prefix_cache_hit_rate gauge\ntessera_prefix_cache_hit_rate %.6f\n"
                "# HELP tessera_num_preemptions_total Sequences preempted for KV cache blocks.\n"
                "# TYPE tessera_num_preemptions_total counter\ntessera_num_preemptions_total %lld\n",
                st.running, st.waiting, st.kv_blocks_used, st.kv_blocks_total,
                st.kv_blocks_total ? (double)st.kv_blocks_used / st.kv_blocks_total : 0.0,
                (long long)st.prefix_queries, (long long)st.prefix_hits,
                st.prefix_queries ? (double)st.prefix_hits / st.prefix_queries : 0.0, (long long)st.preemptions);
    }
    count_status(&s->m, 200);
    http_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b, len);
    free(b);
}

/* Authorization: Bearer KEY (the scheme in any case, RFC 9110), the key
 * compared in time that does not depend on where it differs. */
static bool authorized(struct srv *s, const struct http_request *r)
{
    if (!s->o.api_key) return true;
    const char *a = http_header(r, "authorization");
    if (!a || strncasecmp(a, "Bearer ", 7)) return false;
    const char *given = a + 7, *key = s->o.api_key;
    size_t n = strlen(given), k = strlen(key);
    unsigned char diff = n != k;
    for (size_t i = 0; i < k; i++) diff |= (unsigned char)key[i] ^ (unsigned char)given[i < n ? i : 0];
    return n && !diff;
}

static void handle(struct http_request *r, void *arg)
{
    struct srv *s = arg;
    struct oai_error e;
    const char *path = r->path;
    /* HEAD is GET without the body (http_respond leaves it out) */
    bool get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD"), post = !strcmp(r->method, "POST");
    if (!strcmp(r->method, "OPTIONS")) { /* CORS preflight */
        char cors[512], extra[1024];
        cors_headers(s, r, cors, sizeof(cors));
        const char *want = http_header(r, "access-control-request-headers");
        if (cors[0])
            snprintf(extra, sizeof(extra),
                     "%sAccess-Control-Allow-Methods: GET, HEAD, POST, OPTIONS\r\nAccess-Control-Allow-Headers: %s\r\n"
                     "Access-Control-Max-Age: 600\r\n", cors,
                     want && !strpbrk(want, "\r\n") && strlen(want) < 256 ? want
                                                                           : "Authorization, Content-Type, X-Request-Id");
        else
            snprintf(extra, sizeof(extra), "Allow: GET, HEAD, POST, OPTIONS\r\n");
        log_request(s, r, 204, -1, -1, -1);
        http_respond(r, 204, NULL, extra, "", 0);
        return;
    }
    static const struct {
        const char *path;
        bool post;
    } routes[] = {{"/health", false},          {"/metrics", false},   {"/v1/models", false},
                  {"/v1/chat/completions", true}, {"/v1/completions", true}, {"/tokenize", true},
                  {"/detokenize", true}};
    int route = -1;
    for (int i = 0; i < (int)(sizeof(routes) / sizeof(routes[0])); i++)
        if (!strcmp(path, routes[i].path)) route = i;
    if (route < 0) {
        oai_fail(&e, 404, NULL, NULL, "no route %s %s", r->method, path);
        reply_error(s, r, &e);
        return;
    }
    if (routes[route].post ? !post : !get) {
        oai_fail(&e, 405, NULL, NULL, "%s is not allowed on %s", r->method, path);
        reply_error(s, r, &e);
        return;
    }
    if (route == 0) {
        bool ready = atomic_load(&s->ready) && !s->shutting_down;
        log_request(s, r, ready ? 200 : 503, -1, -1, -1);
        http_respond(r, ready ? 200 : 503, "application/json", ready ? NULL : "Retry-After: 1\r\n",
                     ready ? "{}" : "{\"status\": \"loading\"}", ready ? 2 : 21);
        return;
    }
    if (!authorized(s, r)) {
        oai_fail(&e, 401, NULL, "invalid_api_key", "Incorrect API key provided.");
        reply_error(s, r, &e);
        return;
    }
    if (route == 1) {
        handle_metrics(s, r);
        return;
    }
    if (!atomic_load(&s->ready) || s->shutting_down) {
        oai_fail(&e, 503, NULL, NULL, s->shutting_down ? "the server is shutting down" : "the model is loading");
        reply_error(s, r, &e);
        return;
    }
    switch (route) {
    case 2:
        reply_json(s, r, 200,
                   json_pack("{s:s, s:[{s:s, s:s, s:I, s:s, s:i}]}", "object", "list", "data", "id", s->model_name,
                             "object", "model", "created", (json_int_t)time(NULL), "owned_by", "tessera",
                             "max_model_len", s->max_len),
                   -1, -1, -1);
        return;
    case 3: prepare(s, r, PREP_CHAT); return;
    case 4: prepare(s, r, PREP_COMPLETIONS); return;
    case 5: prepare(s, r, PREP_TOKENIZE); return;
    case 6: prepare(s, r, PREP_DETOKENIZE); return;
    }
}

// ---------------------------------------------------------------------------
// loading, signals, main

static void load_main(void *arg)
{
    struct srv *s = arg;
    char err[1024];
    const char *delay = getenv("TESSERA_TEST_LOAD_DELAY_MS"); /* tests: a slow load, to see /health say 503 */
    if (delay) uv_sleep((unsigned)atoi(delay));
    if (tok_load(&s->tok, s->o.model_dir, err, sizeof(err))) {
        snprintf(s->load_err, sizeof(s->load_err), "%s", err);
    } else {
        s->b = cli_backend_create(&s->o.bk);
        if (!s->b) {
            snprintf(s->load_err, sizeof(s->load_err), "%s", err_msg());
        } else if (engine_create(&s->eng, s->o.model_dir, s->b, &s->o.ec)) {
            snprintf(s->load_err, sizeof(s->load_err), "%s", err_msg());
            s->b->ops->destroy(s->b);
            s->b = NULL;
        } else if (tok_vocab_size(s->tok) > engine_model_config(s->eng)->vocab_size) {
            snprintf(s->load_err, sizeof(s->load_err), "%s/tokenizer.model: %d pieces but the model has vocab_size %d",
                     s->o.model_dir, tok_vocab_size(s->tok), engine_model_config(s->eng)->vocab_size);
        }
    }
    uv_async_send(&s->loaded);
}

/* A whole text file, or a pipe (no size known up front), at most 1 MiB;
 * NULL with err_msg() set. */
static char *read_text(const char *path)
{
    enum { MAX = 1 << 20 };
    FILE *f = fopen(path, "rb");
    if (!f) {
        err_set(ERR_IO, "%s: cannot be read", path);
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *t = xmalloc(cap + 1);
    for (size_t got; (got = fread(t + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap && cap < MAX) t = xrealloc(t, (cap *= 2) + 1);
        else if (len == cap) break;
    }
    bool bad = ferror(f) || len == MAX || memchr(t, '\0', len);
    fclose(f);
    t[len] = '\0';
    if (bad) {
        err_set(ERR_IO, "%s: not a text file of at most %d bytes", path, MAX);
        free(t);
        return NULL;
    }
    return t;
}

static void on_loaded(uv_async_t *a)
{
    struct srv *s = a->data;
    uv_thread_join(&s->load_thread);
    s->load_joined = true;
    if (s->load_err[0]) {
        fprintf(stderr, "tessera: %s\n", s->load_err);
        s->exit_code = EXIT_USAGE;
        uv_stop(s->loop);
        return;
    }
    s->cfg = engine_model_config(s->eng);
    s->max_len = engine_max_model_len(s->eng);
    s->eos = tok_eos_id(s->tok);
    /* the chat template: --chat-template FILE, else tokenizer_config.json's */
    char *tmpl = NULL;
    if (s->o.chat_template_file) {
        if (!(tmpl = read_text(s->o.chat_template_file))) {
            fprintf(stderr, "tessera: --chat-template %s\n", err_msg());
            s->exit_code = EXIT_USAGE;
            uv_stop(s->loop);
            return;
        }
    } else {
        char path[4096];
        snprintf(path, sizeof(path), "%s/tokenizer_config.json", s->o.model_dir);
        json_t *tc = json_load_file(path, 0, NULL);
        json_t *ct = json_object_get(tc, "chat_template");
        if (json_is_array(ct)) ct = json_object_get(json_array_get(ct, 0), "template");
        if (json_is_string(ct)) tmpl = xstrdup(json_string_value(ct));
        json_decref(tc);
    }
    s->style = chat_style_detect(tmpl);
    free(tmpl);
    engine_set_wake(s->eng, engine_wake, &s->wake);
    if (engine_start(s->eng)) {
        fprintf(stderr, "tessera: %s\n", err_msg());
        s->exit_code = EXIT_RUNTIME;
        uv_stop(s->loop);
        return;
    }
    atomic_store(&s->ready, true);
    fprintf(stderr, "tessera: ready: model \"%s\", context %d, chat format %s; point an OpenAI client at "
            "http://%s:%ld/v1\n", s->model_name, s->max_len, chat_style_name(s->style), s->o.host, s->o.port);
}

/* The shutdown deadline: every reply still open ends properly (a stream with
 * an error event and [DONE], a whole reply with a 503), the engine drops
 * their sequences, and the loop stops (the replies drain as the connections
 * close: http_server_close). */
static void on_shutdown_timer(uv_timer_t *t)
{
    struct srv *s = t->data;
    fprintf(stderr, "tessera: shutdown timeout: ending %d requests\n", s->n_jobs);
    struct oai_error e;
    oai_fail(&e, 503, NULL, NULL, "the server is shutting down; the reply was cut at the shutdown timeout");
    for (int i = 0; i < s->n_jobs; i++) {
        struct job *j = s->jobs[i];
        if (j->req) job_fail(s, j, &e);
    }
    uv_stop(s->loop);
}

static void on_signal(uv_signal_t *h, int sig)
{
    struct srv *s = h->data;
    if (s->shutting_down) return;
    s->shutting_down = true;
    fprintf(stderr, "tessera: %s: no new connections; finishing %d requests\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            s->n_jobs);
    http_server_stop_listening(s->http);
    if ((!s->n_jobs && !s->n_preps) || !atomic_load(&s->ready)) {
        uv_stop(s->loop);
        return;
    }
    uv_timer_start(&s->shutdown_timer, on_shutdown_timer, (uint64_t)(s->o.shutdown_timeout * 1000), 0);
}

/* Connections need a descriptor each: the open-files limit is raised to its
 * hard maximum (as nginx and others do) and the connection cap kept 64 below
 * it, for the model's files, the engine and the listener (said on stderr
 * unless it is the default that gives way). */
static int max_connections(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return (int)want;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    long room = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1 << 22) ? 1 << 22 : (long)rl.rlim_cur - 64;
    if (room < want) {
        if (want != 4096) fprintf(stderr, "tessera: --max-connections %ld is over what the open-files limit (%ld) allows: using %ld\n",
                want, (long)rl.rlim_cur, room < 1 ? 1 : room);
        want = room < 1 ? 1 : room;
    }
    return (int)want;
}

static void help(FILE *f)
{
    fprintf(f,
            "usage: tessera serve MODEL_DIR [options]\n"
            "\n"
            "Serves the model in MODEL_DIR over an OpenAI-compatible HTTP API:\n"
            "POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize;\n"
            "GET /v1/models, /health, /metrics.\n"
            "\n"
            "options:\n"
            "  --host ADDR                address to listen on (default 127.0.0.1)\n"
            "  --port N                   port (default 8000)\n"
            "  --served-model-name NAME   the model's name in the API (default: MODEL_DIR)\n"
            "  --api-key KEY              require \"Authorization: Bearer KEY\" (not on /health)\n"
            "  --chat-template FILE       a Jinja chat template whose format replaces the model's\n"
            "  --allowed-origins LIST     CORS: comma-separated origins, or * (default: none)\n"
            "  --max-queue N              requests waiting beyond max-num-seqs before 503 (default 1024)\n"
            "  --shutdown-timeout S       on SIGTERM/SIGINT, seconds to let requests finish (default 30)\n"
            "  --max-connections N        connections open at once; more get 503 (default 4096, at\n"
            "                             most what the open-files limit allows)\n"
            "  --header-timeout S         seconds for a request's headers to arrive (default 10)\n"
            "  --body-timeout S           seconds for a request's whole body to arrive (default 30)\n"
            "  --idle-timeout S           seconds a keep-alive connection may idle (default 60)\n"
            "\n%s\n%s",
            CLI_ENGINE_HELP, CLI_BACKEND_HELP);
}

static int parse(int argc, char **argv, struct serve_opts *o)
{
    const char *v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_engine_opt(argc, argv, &i, &o->ec, &o->bk);
        if (r < 0) return -1;
        if (r > 0) continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            exit(0);
        } else if (cli_opt(argc, argv, &i, "--host", &v)) {
            o->host = v;
        } else if (cli_opt(argc, argv, &i, "--port", &v)) {
            if (!cli_int("--port", v, 0, 65535, &o->port)) return -1;
        } else if (cli_opt(argc, argv, &i, "--served-model-name", &v)) {
            o->served_name = v;
        } else if (cli_opt(argc, argv, &i, "--api-key", &v)) {
            o->api_key = v;
        } else if (cli_opt(argc, argv, &i, "--chat-template", &v)) {
            o->chat_template_file = v;
        } else if (cli_opt(argc, argv, &i, "--allowed-origins", &v)) {
            o->origins = v;
        } else if (cli_opt(argc, argv, &i, "--max-queue", &v)) {
            if (!cli_int("--max-queue", v, 0, 1 << 20, &o->max_queue)) return -1;
        } else if (cli_opt(argc, argv, &i, "--shutdown-timeout", &v)) {
            if (!cli_float("--shutdown-timeout", v, 0, 86400, &o->shutdown_timeout)) return -1;
        } else if (cli_opt(argc, argv, &i, "--max-connections", &v)) {
            if (!cli_int("--max-connections", v, 1, 1 << 20, &o->max_connections)) return -1;
        } else if (cli_opt(argc, argv, &i, "--header-timeout", &v)) {
            if (!cli_float("--header-timeout", v, 0.01, 3600, &o->header_timeout)) return -1;
        } else if (cli_opt(argc, argv, &i, "--body-timeout", &v)) {
            if (!cli_float("--body-timeout", v, 0.01, 3600, &o->body_timeout)) return -1;
        } else if (cli_opt(argc, argv, &i, "--idle-timeout", &v)) {
            if (!cli_float("--idle-timeout", v, 0.01, 86400, &o->idle_timeout)) return -1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tessera serve: unknown option %s (see tessera serve --help)\n", a);
            return -1;
        } else if (!o->model_dir) {
            o->model_dir = a;
        } else {
            fprintf(stderr, "tessera serve: unexpected argument \"%s\"\n", a);
            return -1;
        }
    }
    if (!o->model_dir) {
        fprintf(stderr, "tessera serve: MODEL_DIR is required (see tessera serve --help)\n");
        return -1;
    }
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct srv *s = xcalloc(1, sizeof(*s));
    s->o = (struct serve_opts){.host = "127.0.0.1", .port = 8000, .max_queue = 1024, .max_connections = 4096,
                               .shutdown_timeout = 30, .header_timeout = 10, .body_timeout = 30, .idle_timeout = 60};
    s->o.ec = engine_config_default();
    s->o.bk = cli_backend_default();
    if (parse(argc, argv, &s->o)) {
        free(s);
        return EXIT_USAGE;
    }
    if (comm_rank() > 0) {
        int rc = cli_run_worker(s->o.model_dir, &s->o.bk);
        free(s);
        return rc;
    }
    srand((unsigned)uv_hrtime());
    s->model_name = xstrdup(s->o.served_name ? s->o.served_name : s->o.model_dir);
    s->loop = uv_default_loop();
    uv_async_init(s->loop, &s->wake, on_wake);
    uv_async_init(s->loop, &s->loaded, on_loaded);
    s->wake.data = s->loaded.data = s;
    uv_signal_init(s->loop, &s->sigint);
    uv_signal_init(s->loop, &s->sigterm);
    s->sigint.data = s->sigterm.data = s;
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_timer_init(s->loop, &s->shutdown_timer);
    s->shutdown_timer.data = s;
    signal(SIGPIPE, SIG_IGN);

    struct http_limits lim = http_limits_default();
    lim.header_timeout_ms = (int)(s->o.header_timeout * 1000);
    lim.body_timeout_ms = (int)(s->o.body_timeout * 1000);
    lim.idle_timeout_ms = (int)(s->o.idle_timeout * 1000);
    lim.max_connections = max_connections(s->o.max_connections);
    const char *err;
    if (http_server_start(&s->http, s->loop, s->o.host, (int)s->o.port, &lim, handle, s, &err)) {
        fprintf(stderr, "tessera: cannot listen on %s:%ld: %s\n", s->o.host, s->o.port, err);
        return EXIT_RUNTIME;
    }
    fprintf(stderr, "tessera: listening on http://%s:%ld; loading %s\n", s->o.host, s->o.port, s->o.model_dir);
    if (uv_thread_create(&s->load_thread, load_main, s)) {
        fprintf(stderr, "tessera: cannot start the loading thread\n");
        s->exit_code = EXIT_RUNTIME;
        s->load_joined = true;
    } else {
        uv_run(s->loop, UV_RUN_DEFAULT);
    }

    /* stopped: close the connections (aborting what is left), then the engine, then the handles */
    if (!s->load_joined) uv_thread_join(&s->load_thread);
    if (s->eng) engine_set_wake(s->eng, NULL, NULL);
    http_server_close(s->http);
    uv_run(s->loop, UV_RUN_NOWAIT);
    while (s->n_preps) uv_run(s->loop, UV_RUN_ONCE); /* worker threads read the engine */
    if (s->eng) engine_destroy(s->eng);
    s->eng = NULL;
    uv_close((uv_handle_t *)&s->wake, NULL);
    uv_close((uv_handle_t *)&s->loaded, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->shutdown_timer, NULL);
    uv_run(s->loop, UV_RUN_DEFAULT);
    while (s->n_jobs) job_free(s, s->jobs[0]);
    uv_loop_close(s->loop);
    if (s->b) s->b->ops->destroy(s->b);
    if (s->tok) tok_free(s->tok);
    int code = s->exit_code;
    free(s->jobs);
    free(s->model_name);
    free(s);
    if (!code) fprintf(stderr, "tessera: stopped\n");
    return code;
}
