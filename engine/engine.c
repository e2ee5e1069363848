/* engine.c: inbox -> scheduler -> forward -> sampler -> outbox. */
#include "engine.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "err.h"
#include "kv_cache.h"
#include "model.h"
#include "scheduler.h"

struct engine {
    model *m;
    const struct model_config *cfg;
    kv_pool *pool;
    sched *sched;
    int max_model_len;
    float *logits;              /* host [max_num_seqs, vocab] */
    int32_t *argmax;            /* host [max_num_seqs]: greedy steps' tokens */
    float *raw;                 /* host [vocab]: a row before sampling, for logprobs */
    struct sampler_scratch scratch; /* the sampler's [vocab] work space */
    /* sequences the engine thread knows (waiting or running) */
    struct sequence **live;
    int n_live, cap_live;
    int64_t computed_tokens, generated_tokens;
    double t_schedule, t_forward, t_sample; /* engine_stats */

    /* inbox: guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sequence **inbox;
    int n_inbox, cap_inbox;
    uint64_t *aborts;
    int n_aborts, cap_aborts;
    uint64_t next_id;
    bool stop, started;
    pthread_t thread;

    /* outbox and stats: guarded by out_mu */
    pthread_mutex_t out_mu;
    struct engine_event *out;
    int n_out, cap_out;
    struct engine_stats stats;
    void (*wake)(void *);
    void *wake_arg;

    /* events of the current step, engine thread only */
    struct engine_event *step_ev;
    int n_step_ev, cap_step_ev;
};

struct engine_config engine_config_default(void)
{
    return (struct engine_config){.max_num_batched_tokens = 512, .max_num_seqs = 64,
                                  .prefix_caching = true, .block_size = 16, .log = true};
}

/* MemAvailable from /proc/meminfo in bytes; 0 when unknown. */
static int64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    long long kb = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

#define GROW(arr, n, cap)                                               \
    do {                                                                \
        if ((n) == (cap)) {                                             \
            (cap) = (cap) ? 2 * (cap) : 16;                             \
            (arr) = xrealloc((arr), (size_t)(cap) * sizeof(*(arr)));    \
        }                                                               \
    } while (0)

/* Rank 0 with mp decided, a worker with mp to receive: every rank loads its
 * slice with rank 0's limits, then checks that it read rank 0's model. */
static int load_on_every_rank(model **m, const char *dir, struct backend *b, struct model_params *mp)
{
    comm_bcast(mp, sizeof(*mp));
    mp->rank = comm_rank();
    int rc = model_load(m, dir, b, mp);
    if (rc || mp->world == 1) return rc;
    const struct model_config *c = model_get_config(*m);
    int32_t mine[8] = {c->n_layers, c->hidden_size, c->intermediate_size, c->n_heads, c->n_kv_heads, c->head_dim,
                       c->vocab_size, c->max_pos}, first[8];
    memcpy(first, mine, sizeof(mine));
    comm_bcast(first, sizeof(first)); /* rank 0's shape */
    if (memcmp(mine, first, sizeof(mine))) {
        model_destroy(*m);
        *m = NULL;
        return err_set(ERR_MODEL, "rank %d: %s/config.json differs from rank 0's (layers, sizes, heads or vocab)",
                       mp->rank, dir);
    }
    return 0;
}

int engine_worker_run(const char *dir, struct backend *b)
{
    struct model_params mp = {0};
    model *m;
    int rc = load_on_every_rank(&m, dir, b, &mp);
    if (rc) return rc;
    rc = model_serve_worker(m);
    model_destroy(m);
    return rc;
}

int engine_create(engine **out, const char *dir, struct backend *b, const struct engine_config *c)
{
    *out = NULL;
    struct model_config cfg;
    int rc = model_config_load(&cfg, dir);
    if (rc) return rc;
    if (c->max_num_batched_tokens < 1 || c->max_num_seqs < 1 || c->block_size < 1 || c->max_model_len < 0 ||
        c->kv_cache_memory < 0)
        return err_set(ERR_INVALID, "engine limits must be positive");
    int max_len = c->max_model_len ? c->max_model_len : cfg.max_pos;
    if (max_len > cfg.max_pos)
        return err_set(ERR_INVALID, "--max-model-len %d exceeds the model's max_position_embeddings %d",
                       max_len, cfg.max_pos);

    /* K and V, every layer, in the backend's cache type, of this rank's KV heads */
    int world = comm_world(), kv_heads = cfg.n_kv_heads >= world ? cfg.n_kv_heads / world : 1;
    int64_t per_block = 2LL * cfg.n_layers * kv_heads * cfg.head_dim * (int64_t)dtype_size(b->kv_dtype) *
                        c->block_size;
    int64_t blocks_per_seq = (max_len + c->block_size - 1) / c->block_size;
    int64_t want = c->kv_cache_memory;
    if (!want) {
        want = blocks_per_seq * c->max_num_seqs * per_block;
        /* this rank's weights: a slice of the layers, the whole embedding and LM head */
        int64_t shared = (int64_t)cfg.vocab_size * cfg.hidden_size * (cfg.tie_word_embeddings ? 1 : 2);
        int64_t params = (model_config_num_params(&cfg) - shared) / world + shared;
        /* CPU: the ranks may share the machine's memory */
        int64_t avail = b->ops->kv_budget ? b->ops->kv_budget(b, params) : mem_available() / 4 / world;
        if (avail > 0 && want > avail) want = avail;
        if (b->ops->kv_budget && avail <= 0) want = 0;
    }
    int64_t num_blocks = want / per_block;
    if (num_blocks < 1)
        return err_set(ERR_INVALID, "KV cache memory of %lld bytes holds no block (one block: %lld bytes)",
                       (long long)want, (long long)per_block);
    if (num_blocks > INT32_MAX / c->block_size) num_blocks = INT32_MAX / c->block_size;

    engine *e = xcalloc(1, sizeof(*e));
    e->max_model_len = max_len;
    struct model_params mp = {.num_kv_blocks = (int)num_blocks, .block_size = c->block_size,
                              .max_step_tokens = c->max_num_batched_tokens, .max_seqs = c->max_num_seqs,
                              .rank = 0, .world = world};
    if ((rc = load_on_every_rank(&e->m, dir, b, &mp))) {
        free(e);
        return rc;
    }
    e->cfg = model_get_config(e->m);
    e->pool = kv_pool_create((int)num_blocks, c->block_size, c->prefix_caching);
    struct sched_config sc = {c->max_num_batched_tokens, c->max_num_seqs, max_len};
    e->sched = sched_create(&sc, e->pool);
    e->logits = xmalloc((size_t)c->max_num_seqs * e->cfg->vocab_size * sizeof(float));
    e->raw = xmalloc((size_t)e->cfg->vocab_size * sizeof(float));
    e->argmax = xmalloc((size_t)c->max_num_seqs * sizeof(int32_t));
    sampler_scratch_init(&e->scratch, e->cfg->vocab_size);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_mutex_init(&e->out_mu, NULL);
    e->next_id = 1;
    e->stats.kv_blocks_total = (int)num_blocks;
    if (c->log)
        fprintf(stderr, "tessera: KV cache: %lld blocks of %d tokens (%.1f MiB), %lld tokens: %.2f full contexts of %d; "
                "prefix caching %s\n", (long long)num_blocks, c->block_size, num_blocks * per_block / 1048576.0,
                (long long)num_blocks * c->block_size, (double)num_blocks / blocks_per_seq, max_len,
                c->prefix_caching ? "on" : "off");
    *out = e;
    return 0;
}

static void seq_free(struct sequence *s)
{
    free(s->tokens);
    free(s->stop_ids);
    free(s->bias_ids);
    free(s->bias);
    free(s);
}

void engine_destroy(engine *e)
{
    if (!e) return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    for (int i = 0; i < e->n_live; i++) {
        sched_remove(e->sched, e->live[i]);
        seq_free(e->live[i]);
    }
    for (int i = 0; i < e->n_inbox; i++) seq_free(e->inbox[i]);
    free(e->live);
    free(e->inbox);
    free(e->aborts);
    free(e->out);
    free(e->step_ev);
    free(e->logits);
    free(e->argmax);
    free(e->raw);
    sampler_scratch_deinit(&e->scratch);
    sched_destroy(e->sched);
    kv_pool_destroy(e->pool);
    model_destroy(e->m);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->out_mu);
    free(e);
}

const struct model_config *engine_model_config(const engine *e) { return e->cfg; }
int engine_max_model_len(const engine *e) { return e->max_model_len; }

int64_t engine_pool_tokens(const engine *e)
{
    return (int64_t)kv_pool_num_blocks(e->pool) * kv_pool_block_size(e->pool);
}

int engine_check(const engine *e, const struct engine_request *r)
{
    const char *bad = sampling_params_check(&r->sampling);
    if (bad) return err_set(ERR_INVALID, "bad sampling parameter %s", bad);
    if (r->logprobs > ENGINE_MAX_LOGPROBS)
        return err_set(ERR_INVALID, "logprobs must be at most %d", ENGINE_MAX_LOGPROBS);
    int rc = sched_check(e->sched, r->n_prompt, r->max_tokens);
    if (rc) return rc;
    for (int i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= e->cfg->vocab_size)
            return err_set(ERR_INVALID, "prompt token %d is outside the vocabulary", r->prompt[i]);
    for (int i = 0; i < r->n_bias; i++)
        if (r->bias_ids[i] < 0 || r->bias_ids[i] >= e->cfg->vocab_size)
            return err_set(ERR_INVALID, "logit_bias token %d is outside the vocabulary", r->bias_ids[i]);
    return 0;
}

int64_t engine_submit(engine *e, const struct engine_request *r)
{
    int rc = engine_check(e, r);
    if (rc) return rc;

    struct sequence *s = xcalloc(1, sizeof(*s));
    s->cap = r->n_prompt + 16;
    s->tokens = xmalloc(s->cap * sizeof(int32_t));
    memcpy(s->tokens, r->prompt, r->n_prompt * sizeof(int32_t));
    s->n_tokens = s->n_prompt = r->n_prompt;
    s->max_tokens = r->max_tokens > 0 ? r->max_tokens : e->max_model_len;
    s->n_stop_ids = r->n_stop_ids + (r->ignore_eos ? 0 : e->cfg->n_eos);
    s->stop_ids = xmalloc((s->n_stop_ids + 1) * sizeof(int32_t));
    if (r->n_stop_ids) memcpy(s->stop_ids, r->stop_ids, r->n_stop_ids * sizeof(int32_t));
    if (!r->ignore_eos) memcpy(s->stop_ids + r->n_stop_ids, e->cfg->eos_ids, e->cfg->n_eos * sizeof(int32_t));
    s->logprobs = r->logprobs;
    if (r->n_bias) {
        s->n_bias = r->n_bias;
        s->bias_ids = xmalloc(r->n_bias * sizeof(int32_t));
        s->bias = xmalloc(r->n_bias * sizeof(float));
        memcpy(s->bias_ids, r->bias_ids, r->n_bias * sizeof(int32_t));
        memcpy(s->bias, r->bias, r->n_bias * sizeof(float));
    }
    sampler_init(&s->sampler, &r->sampling);

    pthread_mutex_lock(&e->mu);
    uint64_t id = s->id = e->next_id++; /* s belongs to the engine thread once unlocked */
    GROW(e->inbox, e->n_inbox, e->cap_inbox);
    e->inbox[e->n_inbox++] = s;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return (int64_t)id;
}

void engine_abort(engine *e, uint64_t id)
{
    pthread_mutex_lock(&e->mu);
    GROW(e->aborts, e->n_aborts, e->cap_aborts);
    e->aborts[e->n_aborts++] = id;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

int engine_poll(engine *e, struct engine_event *ev, int cap)
{
    pthread_mutex_lock(&e->out_mu);
    int n = e->n_out < cap ? e->n_out : cap;
    if (n == 0) {
        pthread_mutex_unlock(&e->out_mu);
        return 0;
    }
    memcpy(ev, e->out, n * sizeof(*ev));
    memmove(e->out, e->out + n, (e->n_out - n) * sizeof(*ev));
    e->n_out -= n;
    pthread_mutex_unlock(&e->out_mu);
    return n;
}

void engine_set_wake(engine *e, void (*fn)(void *arg), void *arg)
{
    pthread_mutex_lock(&e->out_mu);
    e->wake = fn;
    e->wake_arg = arg;
    pthread_mutex_unlock(&e->out_mu);
}

struct engine_stats engine_stats(engine *e)
{
    pthread_mutex_lock(&e->out_mu);
    struct engine_stats st = e->stats;
    pthread_mutex_unlock(&e->out_mu);
    return st;
}

// ---------------------------------------------------------------------------
// the step, on the engine thread

static struct engine_event *new_event(engine *e, const struct sequence *s)
{
    GROW(e->step_ev, e->n_step_ev, e->cap_step_ev);
    struct engine_event *ev = &e->step_ev[e->n_step_ev++];
    memset(ev, 0, sizeof(*ev));
    ev->id = s->id;
    ev->token = -1;
    ev->n_prompt = s->n_prompt;
    ev->n_cached = s->n_cached;
    ev->n_generated = s->n_tokens - s->n_prompt;
    return ev;
}

/* Removes s from the scheduler and the live list and frees it. */
static void retire(engine *e, struct sequence *s)
{
    sched_remove(e->sched, s);
    for (int i = 0; i < e->n_live; i++)
        if (e->live[i] == s) {
            e->live[i] = e->live[--e->n_live];
            break;
        }
    seq_free(s);
}

static void take_inbox(engine *e)
{
    pthread_mutex_lock(&e->mu);
    struct sequence **in = e->inbox;
    int n_in = e->n_inbox;
    uint64_t *ab = e->aborts;
    int n_ab = e->n_aborts;
    e->inbox = NULL;
    e->n_inbox = e->cap_inbox = 0;
    e->aborts = NULL;
    e->n_aborts = e->cap_aborts = 0;
    pthread_mutex_unlock(&e->mu);

    for (int i = 0; i < n_in; i++) {
        sched_add(e->sched, in[i]);
        GROW(e->live, e->n_live, e->cap_live);
        e->live[e->n_live++] = in[i];
    }
    for (int i = 0; i < n_ab; i++)
        for (int j = 0; j < e->n_live; j++)
            if (e->live[j]->id == ab[i]) {
                new_event(e, e->live[j])->finish = FINISH_ABORT;
                retire(e, e->live[j]);
                break;
            }
    free(in);
    free(ab);
}

/* The n largest entries of x[V], largest first (ties: lower id). */
static void top_n(const float *x, int V, int n, int32_t *ids, float *vals)
{
    int k = 0;
    for (int i = 0; i < V; i++) {
        if (k == n && !(x[i] > vals[n - 1])) continue;
        int j = k < n ? k++ : n - 1;
        while (j > 0 && x[i] > vals[j - 1]) {
            ids[j] = ids[j - 1];
            vals[j] = vals[j - 1];
            j--;
        }
        ids[j] = i;
        vals[j] = x[i];
    }
}

static float log_sum_exp(const float *x, int V)
{
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)x[i] - mx);
    return mx + (float)log(s);
}

static bool is_stop(const struct sequence *s, int32_t tok)
{
    for (int i = 0; i < s->n_stop_ids; i++)
        if (s->stop_ids[i] == tok) return true;
    return false;
}

/* Greedy with nothing that needs the logits on the host: the token is the
 * row's argmax, which the forward can compute where the logits are. */
static bool plain_greedy(const struct sequence *s)
{
    const struct sampling_params *p = &s->sampler.p;
    return p->temperature < 1e-5f && p->repetition_penalty == 1.0f && p->presence_penalty == 0.0f &&
           p->frequency_penalty == 0.0f && s->n_bias == 0 && s->logprobs < 0;
}

/* Samples s's next token from its logits row (or takes tok, the argmax, when
 * row is NULL: plain greedy) and posts it; true if s ended. */
static bool sample_one(engine *e, struct sequence *s, float *row, int32_t tok)
{
    int V = e->cfg->vocab_size;
    struct engine_event *ev = new_event(e, s);
    float lse = 0;
    if (row && s->logprobs >= 0) {
        memcpy(e->raw, row, V * sizeof(float));
        lse = log_sum_exp(row, V);
        ev->n_top = s->logprobs;
        if (ev->n_top) top_n(row, V, ev->n_top, ev->top_ids, ev->top_logprobs);
        for (int i = 0; i < ev->n_top; i++) ev->top_logprobs[i] -= lse;
    }
    if (row) {
        for (int i = 0; i < s->n_bias; i++) row[s->bias_ids[i]] += s->bias[i];
        tok = sampler_sample(&s->sampler, &e->scratch, row, s->tokens, s->n_tokens, s->n_prompt);
    }
    if (s->n_tokens == s->cap) {
        s->cap *= 2;
        s->tokens = xrealloc(s->tokens, s->cap * sizeof(int32_t));
    }
    s->tokens[s->n_tokens++] = tok;
    ev->token = tok;
    ev->logprob = s->logprobs >= 0 ? e->raw[tok] - lse : 0;
    ev->n_generated = s->n_tokens - s->n_prompt;
    if (is_stop(s, tok)) ev->finish = FINISH_STOP;
    else if (ev->n_generated >= s->max_tokens || s->n_tokens >= e->max_model_len) ev->finish = FINISH_LENGTH;
    e->generated_tokens++;
    return ev->finish != FINISH_NONE;
}

static void publish(engine *e)
{
    struct sched_stats ss = sched_stats(e->sched);
    struct kv_pool_stats ps = kv_pool_stats(e->pool);
    pthread_mutex_lock(&e->out_mu);
    for (int i = 0; i < e->n_step_ev; i++) {
        GROW(e->out, e->n_out, e->cap_out);
        e->out[e->n_out++] = e->step_ev[i];
    }
    struct engine_stats *st = &e->stats;
    st->running = ss.running;
    st->waiting = ss.waiting;
    st->preemptions = ss.preemptions;
    st->prefill_chunks = ss.prefill_chunks;
    st->steps = ss.steps;
    st->kv_blocks_used = kv_pool_num_used(e->pool);
    st->kv_blocks_cached = kv_pool_num_cached(e->pool);
    st->prefix_queries = ps.queries;
    st->prefix_hits = ps.hits;
    st->prompt_tokens = e->computed_tokens;
    st->generation_tokens = e->generated_tokens;
    st->t_schedule = e->t_schedule;
    st->t_forward = e->t_forward;
    st->t_sample = e->t_sample;
    void (*wake)(void *) = e->n_step_ev ? e->wake : NULL;
    void *arg = e->wake_arg;
    pthread_mutex_unlock(&e->out_mu);
    e->n_step_ev = 0;
    if (wake) wake(arg);
}

int engine_step(engine *e)
{
    double t0 = mono_seconds();
    take_inbox(e);
    const struct sched_plan *p = sched_schedule(e->sched);
    double t1 = mono_seconds(), t2 = t1;
    int rc = 0;
    if (p->n_seqs) {
        bool greedy = true;
        for (int i = 0; i < p->n_seqs && greedy; i++) greedy = !p->sample[i] || plain_greedy(p->seqs[i]);
        rc = greedy ? model_forward(e->m, &p->batch, NULL, e->argmax)
                    : model_forward(e->m, &p->batch, e->logits, NULL);
        t2 = mono_seconds();
        if (rc) { /* a plan the model refuses is a bug: end its sequences */
            fprintf(stderr, "tessera: engine step failed: %s\n", err_msg());
            for (int i = p->n_seqs - 1; i >= 0; i--) {
                new_event(e, p->seqs[i])->finish = FINISH_ABORT;
                retire(e, p->seqs[i]);
            }
        } else {
            sched_advance(e->sched);
            e->computed_tokens += p->batch.n_tokens;
            int k = 0;
            for (int i = 0; i < p->n_seqs; i++) { /* retire() leaves the plan's arrays alone */
                if (!p->sample[i]) continue;
                float *row = greedy ? NULL : e->logits + (size_t)k * e->cfg->vocab_size;
                if (sample_one(e, p->seqs[i], row, greedy ? e->argmax[k] : 0)) retire(e, p->seqs[i]);
                k++;
            }
            rc = 1;
        }
    }
    e->t_schedule += t1 - t0;
    e->t_forward += t2 - t1;
    e->t_sample += mono_seconds() - t2;
    publish(e);
    return rc;
}

static void *engine_main(void *arg)
{
    engine *e = arg;
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->stop && !e->n_inbox && !e->n_aborts && sched_idle(e->sched)) pthread_cond_wait(&e->cv, &e->mu);
        bool stop = e->stop;
        pthread_mutex_unlock(&e->mu);
        if (stop) return NULL;
        engine_step(e);
    }
}

int engine_start(engine *e)
{
    if (pthread_create(&e->thread, NULL, engine_main, e)) return err_set(ERR_NOMEM, "cannot start the engine thread");
    e->started = true;
    return 0;
}
