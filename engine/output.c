/* output.c: a step's forward and after it: logits -> token (sampler.c on
 * the host; on the device the argmax of plain greedy rows, or the whole
 * draw, logprobs included, where the backend samples and no row needs its
 * logits on the host: a grammar's), logprobs, stop and length checks, one
 * event per token; then the events go to the outbox. */
#include <math.h>
#include <string.h>

#include "engine_impl.h"
#include "../base/err.h"

struct engine_event *engine__new_event(engine *e, const struct sequence *s)
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

static bool is_stop(const struct sequence *s, int32_t tok)
{
    for (int i = 0; i < s->n_stop_ids; i++)
        if (s->stop_ids[i] == tok) return true;
    return false;
}

/* Greedy with nothing that needs the logits on the host: the token is the
 * row's argmax, which the forward can compute where the logits are. */
bool engine__plain_greedy(const struct sequence *s)
{
    const struct sampling_params *p = &s->sampler.p;
    return p->temperature < 1e-5f && p->repetition_penalty == 1.0f && p->presence_penalty == 0.0f &&
           p->frequency_penalty == 0.0f && s->n_bias == 0 && s->logprobs < 0 && !s->grammar;
}

/* One distinct token of a sequence (and how often it is in the output)
 * onto the penalty lists. */
static void add_penalty_token(void *ctx, int32_t id, int32_t count)
{
    engine *e = ctx;
    if (e->n_pen == e->cap_pen) {
        e->cap_pen = e->cap_pen ? 2 * e->cap_pen : 256;
        e->pen_ids = xrealloc(e->pen_ids, e->cap_pen * sizeof(int32_t));
        e->pen_counts = xrealloc(e->pen_counts, e->cap_pen * sizeof(int32_t));
    }
    e->pen_ids[e->n_pen] = id;
    e->pen_counts[e->n_pen++] = count;
}

/* s's row of a device-sampled step: its parameters, its distinct tokens
 * (when penalised), its logit_bias, and the draw from its own stream (as
 * the host sampler would take it, so a seed keeps its stream). */
static struct sample_row sample_row_of(engine *e, struct sequence *s)
{
    const struct sampling_params *p = &s->sampler.p;
    struct sample_row r = {.temperature = p->temperature, .top_k = p->top_k, .top_p = p->top_p,
                           .min_p = p->min_p, .repetition_penalty = p->repetition_penalty,
                           .presence_penalty = p->presence_penalty, .frequency_penalty = p->frequency_penalty,
                           .logprobs = s->logprobs >= 0, .n_top = s->logprobs};
    r.pen0 = e->n_pen;
    if (p->repetition_penalty != 1.0f || p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f)
        sampler_each_token(&e->scratch, s->tokens, s->n_tokens, s->n_prompt, add_penalty_token, e);
    r.pen1 = e->n_pen;
    r.bias0 = e->n_bias;
    for (int i = 0; i < s->n_bias; i++) {
        if (e->n_bias == e->cap_bias) {
            e->cap_bias = e->cap_bias ? 2 * e->cap_bias : 64;
            e->bias_ids = xrealloc(e->bias_ids, e->cap_bias * sizeof(int32_t));
            e->bias = xrealloc(e->bias, e->cap_bias * sizeof(float));
        }
        e->bias_ids[e->n_bias] = s->bias_ids[i];
        e->bias[e->n_bias++] = s->bias[i];
    }
    r.bias1 = e->n_bias;
    if (p->temperature >= 1e-5f) r.u = fminf((float)sampler_uniform(&s->sampler), 0x1.fffffep-1f);
    return r;
}

bool engine__forward(engine *e, const struct sched_plan *p, int *rc)
{
    bool greedy = true, device = model_samples_on_device(e->m);
    for (int i = 0; i < p->n_seqs; i++) {
        if (!p->sample[i]) continue;
        greedy &= engine__plain_greedy(p->seqs[i]);
        device &= !p->seqs[i]->grammar;
    }
    e->step_lps = NULL;
    if (greedy || !device) {
        *rc = model_forward(e->m, &p->batch, greedy ? NULL : e->logits, greedy ? e->argmax : NULL, NULL);
        return greedy;
    }
    e->n_pen = e->n_bias = 0;
    int k = 0;
    for (int i = 0; i < p->n_seqs; i++) {
        if (!p->sample[i]) continue;
        e->srows[k] = sample_row_of(e, p->seqs[i]);
        if (e->srows[k++].logprobs) e->step_lps = e->lps;
    }
    struct sample_batch sb = {e->srows, {e->pen_ids, e->pen_counts, e->bias_ids, e->bias}, e->n_pen, e->n_bias,
                              e->step_lps};
    *rc = model_forward(e->m, &p->batch, NULL, e->argmax, &sb);
    return true;
}

_Static_assert(ENGINE_MAX_LOGPROBS <= SAMPLE_MAX_TOP, "the device reports every logprob a request may ask");

bool engine__sample_one(engine *e, struct sequence *s, float *row, int32_t tok, const struct sample_logprobs *lp)
{
    int V = e->cfg->vocab_size;
    struct engine_event *ev = engine__new_event(e, s);
    float lse = 0;
    if (s->logprobs >= 0) {
        ev->n_top = s->logprobs;
        if (row) {
            memcpy(e->raw, row, V * sizeof(float));
            lse = logprobs_ref(row, V, ev->n_top, ev->top_ids, ev->top_logprobs);
        } else {
            memcpy(ev->top_ids, lp->top_ids, sizeof(int32_t) * ev->n_top);
            memcpy(ev->top_logprobs, lp->top_logprobs, sizeof(float) * ev->n_top);
        }
    }
    if (row) {
        for (int i = 0; i < s->n_bias; i++) row[s->bias_ids[i]] += s->bias[i];
        tok = s->grammar ? engine__grammar_mask(e, s, row) : -1;
        if (tok < 0) tok = sampler_sample(&s->sampler, &e->scratch, row, s->tokens, s->n_tokens, s->n_prompt);
    }
    if (s->n_tokens == s->cap) {
        s->cap *= 2;
        s->tokens = xrealloc(s->tokens, s->cap * sizeof(int32_t));
    }
    s->tokens[s->n_tokens++] = tok;
    ev->token = tok;
    ev->logprob = s->logprobs < 0 ? 0 : row ? e->raw[tok] - lse : lp->logprob;
    ev->n_generated = s->n_tokens - s->n_prompt;
    /* a grammar's end is the output's, even with ignore_eos */
    if (is_stop(s, tok) || (s->grammar && engine__grammar_accept(e, s, tok))) ev->finish = FINISH_STOP;
    else if (ev->n_generated >= s->max_tokens || s->n_tokens >= e->max_model_len) ev->finish = FINISH_LENGTH;
    e->generated_tokens++;
    return ev->finish != FINISH_NONE;
}

void engine__publish(engine *e)
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
    st->graph_steps = model_graph_replays(e->m);
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

