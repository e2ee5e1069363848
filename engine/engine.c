/* engine.c: the engine's life (create, destroy, the thread), its inbox
 * (submit, abort) and outbox (poll, stats), and the step: inbox ->
 * scheduler -> forward -> sampler (output.c) -> outbox. */
#include "engine.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "engine_impl.h"
#include "../base/err.h"

struct engine_config engine_config_default(void)
{
    return (struct engine_config){.max_num_batched_tokens = 512, .max_num_seqs = 64,
                                  .prefix_caching = true, .block_size = 16, .log = true, .eos_id = -1};
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
    if (c->quantization == DTYPE_F8_ROWS && !strcmp(b->ops->name, "cpu"))
        return err_set(ERR_UNSUPPORTED, "--quantization fp8 needs --device cuda (the CPU backend has no fp8 matmul)");
    int max_len = c->max_model_len ? c->max_model_len : cfg.max_pos;
    if (max_len > cfg.max_pos)
        return err_set(ERR_INVALID, "--max-model-len %d exceeds the model's max_position_embeddings %d",
                       max_len, cfg.max_pos);

    struct kv_budget kb;
    if ((rc = kv_budget(&kb, &cfg, dir, b, c, max_len))) return rc;
    int world = comm_world();
    int64_t num_blocks = kb.num_blocks;

    engine *e = xcalloc(1, sizeof(*e));
    e->max_model_len = max_len;
    e->eos_id = c->eos_id;
    struct model_params mp = {.num_kv_blocks = (int)num_blocks, .block_size = c->block_size,
                              .max_step_tokens = c->max_num_batched_tokens, .max_seqs = c->max_num_seqs,
                              .rank = 0, .world = world, .quantize = c->quantization};
    if ((rc = engine__load_on_every_rank(&e->m, dir, b, &mp))) {
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
    e->srows = xmalloc((size_t)c->max_num_seqs * sizeof(*e->srows));
    e->lps = xmalloc((size_t)c->max_num_seqs * sizeof(*e->lps));
    sampler_scratch_init(&e->scratch, e->cfg->vocab_size);
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_mutex_init(&e->out_mu, NULL);
    pthread_mutex_init(&e->grammar_mu, NULL);
    e->end_id = -1;
    e->next_id = 1;
    e->stats.kv_blocks_total = (int)num_blocks;
    if (c->log)
        fprintf(stderr, "tessera: KV cache: %lld blocks of %d tokens (%.1f MiB), %lld tokens: %.2f full contexts of %d; "
                "prefix caching %s\n", (long long)num_blocks, c->block_size, num_blocks * kb.per_block / 1048576.0,
                (long long)num_blocks * c->block_size, (double)num_blocks / kb.blocks_per_seq, max_len,
                c->prefix_caching ? "on" : "off");
    *out = e;
    return 0;
}

static void seq_free(engine *e, struct sequence *s)
{
    free(s->tokens);
    free(s->stop_ids);
    free(s->bias_ids);
    free(s->bias);
    if (s->gm) gm_free(s->gm);
    if (s->grammar) engine_grammar_release(e, s->grammar);
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
        seq_free(e, e->live[i]);
    }
    for (int i = 0; i < e->n_inbox; i++) seq_free(e, e->inbox[i]);
    free(e->live);
    free(e->inbox);
    free(e->aborts);
    free(e->out);
    free(e->step_ev);
    free(e->logits);
    free(e->argmax);
    free(e->srows);
    free(e->lps);
    free(e->pen_ids);
    free(e->pen_counts);
    free(e->bias_ids);
    free(e->bias);
    free(e->raw);
    sampler_scratch_deinit(&e->scratch);
    sched_destroy(e->sched);
    kv_pool_destroy(e->pool);
    model_destroy(e->m);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->out_mu);
    engine__grammars_free(e);
    pthread_mutex_destroy(&e->grammar_mu);
    free(e);
}

const struct model_config *engine_model_config(const engine *e) { return e->cfg; }
int engine_max_model_len(const engine *e) { return e->max_model_len; }
int engine_vocab_size(const engine *e) { return e->cfg->vocab_size; }

int64_t engine_pool_tokens(const engine *e)
{
    return (int64_t)kv_pool_num_blocks(e->pool) * kv_pool_block_size(e->pool);
}

/* The tokens a request may generate: max_tokens, or without it up to the
 * end of the context or of the KV pool, whichever comes first. */
static int64_t effective_max_tokens(const engine *e, const struct engine_request *r)
{
    int64_t pool = engine_pool_tokens(e), room = pool < e->max_model_len ? pool : e->max_model_len;
    return r->max_tokens > 0 ? r->max_tokens : room - r->n_prompt;
}

static int refuse(struct engine_verdict *v, enum engine_refusal why, const struct engine_request *r, int64_t limit)
{
    if (v) *v = (struct engine_verdict){why, r->n_prompt, r->max_tokens, limit};
    return ERR_INVALID;
}

int engine_check(const engine *e, const struct engine_request *r, struct engine_verdict *v)
{
    if (v) *v = (struct engine_verdict){ENGINE_OK, r->n_prompt, r->max_tokens, 0};
    if (r->n_prompt <= 0) {
        err_set(ERR_INVALID, "the prompt is empty");
        return refuse(v, ENGINE_EMPTY_PROMPT, r, 0);
    }
    if ((int64_t)r->n_prompt + (r->max_tokens > 0 ? r->max_tokens : 1) > e->max_model_len) {
        err_set(ERR_INVALID, "the prompt has %d tokens and asks for %d more; the context holds %d", r->n_prompt,
                r->max_tokens > 0 ? r->max_tokens : 1, e->max_model_len);
        return refuse(v, ENGINE_OVER_CONTEXT, r, e->max_model_len);
    }
    int64_t pool = engine_pool_tokens(e), room = pool < e->max_model_len ? pool : e->max_model_len;
    if (effective_max_tokens(e, r) < 1) {
        err_set(ERR_INVALID, "the prompt has %d tokens; the KV cache holds %lld in all", r->n_prompt, (long long)room);
        return refuse(v, ENGINE_OVER_POOL, r, room);
    }
    const char *bad = sampling_params_check(&r->sampling);
    if (bad) {
        err_set(ERR_INVALID, "bad sampling parameter %s", bad);
    } else if (r->logprobs > ENGINE_MAX_LOGPROBS) {
        bad = "logprobs";
        err_set(ERR_INVALID, "logprobs must be at most %d", ENGINE_MAX_LOGPROBS);
    } else if (sched_check(e->sched, r->n_prompt, (int)effective_max_tokens(e, r))) {
        bad = "pool"; /* its message is set */
    }
    for (int i = 0; !bad && i < r->n_prompt + r->n_bias; i++) {
        int32_t id = i < r->n_prompt ? r->prompt[i] : r->bias_ids[i - r->n_prompt];
        if (id >= 0 && id < e->cfg->vocab_size) continue;
        err_set(ERR_INVALID, "%s token %d is outside the vocabulary", i < r->n_prompt ? "prompt" : "logit_bias", id);
        bad = "token";
    }
    return bad ? refuse(v, ENGINE_BAD_REQUEST, r, 0) : 0;
}

int64_t engine_submit(engine *e, const struct engine_request *r)
{
    int rc = engine_check(e, r, NULL);
    if (rc) return rc;

    struct sequence *s = xcalloc(1, sizeof(*s));
    s->cap = r->n_prompt + 16;
    s->tokens = xmalloc(s->cap * sizeof(int32_t));
    memcpy(s->tokens, r->prompt, r->n_prompt * sizeof(int32_t));
    s->n_tokens = s->n_prompt = r->n_prompt;
    s->max_tokens = (int)effective_max_tokens(e, r);
    /* stop ids: the caller's, then (unless ignored) the model's eos ids and the tokenizer's */
    s->stop_ids = xmalloc((r->n_stop_ids + e->cfg->n_eos + 1) * sizeof(int32_t));
    if (r->n_stop_ids) memcpy(s->stop_ids, r->stop_ids, r->n_stop_ids * sizeof(int32_t));
    s->n_stop_ids = r->n_stop_ids;
    for (int i = 0; !r->ignore_eos && i <= e->cfg->n_eos; i++) {
        int32_t id = i < e->cfg->n_eos ? e->cfg->eos_ids[i] : e->eos_id;
        bool dup = id < 0;
        for (int k = 0; k < s->n_stop_ids && !dup; k++) dup = s->stop_ids[k] == id;
        if (!dup) s->stop_ids[s->n_stop_ids++] = id;
    }
    s->logprobs = r->logprobs;
    if (r->n_bias) {
        s->n_bias = r->n_bias;
        s->bias_ids = xmalloc(r->n_bias * sizeof(int32_t));
        s->bias = xmalloc(r->n_bias * sizeof(float));
        memcpy(s->bias_ids, r->bias_ids, r->n_bias * sizeof(int32_t));
        memcpy(s->bias, r->bias, r->n_bias * sizeof(float));
    }
    sampler_init(&s->sampler, &r->sampling);
    if ((s->grammar = r->grammar)) engine__grammar_ref(e, s->grammar); /* the sequence's own reference */

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

/* Removes s from the scheduler and the live list and frees it. */
static void retire(engine *e, struct sequence *s)
{
    sched_remove(e->sched, s);
    for (int i = 0; i < e->n_live; i++)
        if (e->live[i] == s) {
            e->live[i] = e->live[--e->n_live];
            break;
        }
    seq_free(e, s);
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
                engine__new_event(e, e->live[j])->finish = FINISH_ABORT;
                retire(e, e->live[j]);
                break;
            }
    free(in);
    free(ab);
}

int engine_step(engine *e)
{
    double t0 = mono_seconds();
    take_inbox(e);
    const struct sched_plan *p = sched_schedule(e->sched);
    double t1 = mono_seconds(), t2 = t1;
    int rc = 0;
    if (p->n_seqs) {
        bool ids = engine__forward(e, p, &rc); /* tokens already taken, or logits */
        t2 = mono_seconds();
        if (rc) { /* a plan the model refuses is a bug: end its sequences */
            fprintf(stderr, "tessera: engine step failed: %s\n", err_msg());
            for (int i = p->n_seqs - 1; i >= 0; i--) {
                engine__new_event(e, p->seqs[i])->finish = FINISH_ABORT;
                retire(e, p->seqs[i]);
            }
        } else {
            sched_advance(e->sched);
            e->computed_tokens += p->batch.n_tokens;
            int k = 0;
            for (int i = 0; i < p->n_seqs; i++) { /* retire() leaves the plan's arrays alone */
                if (!p->sample[i]) continue;
                float *row = ids ? NULL : e->logits + (size_t)k * e->cfg->vocab_size;
                const struct sample_logprobs *lp = e->step_lps ? &e->step_lps[k] : NULL;
                if (engine__sample_one(e, p->seqs[i], row, ids ? e->argmax[k] : 0, lp)) retire(e, p->seqs[i]);
                k++;
            }
            rc = 1;
        }
    }
    e->t_schedule += t1 - t0;
    e->t_forward += t2 - t1;
    e->t_sample += mono_seconds() - t2;
    engine__publish(e);
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
