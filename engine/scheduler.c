/* scheduler.c: queues, token budget, chunked prefill, preemption by
 * recompute, and the flattened step plan. */
#include "scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "../base/err.h"

enum { Q_NONE, Q_WAITING, Q_RUNNING };

struct queue {
    struct sequence *head, *tail;
    int n;
};

struct sched {
    struct sched_config c;
    kv_pool *pool;
    int block_size, max_blocks;
    struct queue waiting, running;
    struct sched_stats stats;
    struct sched_plan plan;
    int budget;
    /* plan storage */
    int32_t *ids, *pos, *tok_seq, *bt, *outputs;
    int64_t *slots;
};

// ---------------------------------------------------------------------------
// queues

static void q_unlink(struct queue *q, struct sequence *s)
{
    if (s->prev) s->prev->next = s->next;
    else q->head = s->next;
    if (s->next) s->next->prev = s->prev;
    else q->tail = s->prev;
    s->prev = s->next = NULL;
    q->n--;
}

static void q_push(struct queue *q, struct sequence *s, bool front)
{
    s->prev = front ? NULL : q->tail;
    s->next = front ? q->head : NULL;
    if (front) {
        if (q->head) q->head->prev = s;
        else q->tail = s;
        q->head = s;
    } else {
        if (q->tail) q->tail->next = s;
        else q->head = s;
        q->tail = s;
    }
    q->n++;
}

static struct queue *queue_of(sched *s, struct sequence *seq)
{
    return seq->queue == Q_WAITING ? &s->waiting : seq->queue == Q_RUNNING ? &s->running : NULL;
}

// ---------------------------------------------------------------------------

sched *sched_create(const struct sched_config *c, kv_pool *pool)
{
    CHECK(c->max_num_batched_tokens > 0 && c->max_num_seqs > 0 && c->max_model_len > 0);
    sched *s = xcalloc(1, sizeof(*s));
    s->c = *c;
    s->pool = pool;
    s->block_size = kv_pool_block_size(pool);
    s->max_blocks = (c->max_model_len + s->block_size - 1) / s->block_size;
    int T = c->max_num_batched_tokens, S = c->max_num_seqs;
    s->plan.seqs = xcalloc(S, sizeof(*s->plan.seqs));
    s->plan.n_new = xcalloc(S, sizeof(int32_t));
    s->plan.sample = xcalloc(S, sizeof(bool));
    s->ids = xmalloc(T * sizeof(int32_t));
    s->pos = xmalloc(T * sizeof(int32_t));
    s->tok_seq = xmalloc(T * sizeof(int32_t));
    s->slots = xmalloc(T * sizeof(int64_t));
    s->outputs = xmalloc(S * sizeof(int32_t));
    s->bt = xmalloc((size_t)S * s->max_blocks * sizeof(int32_t));
    return s;
}

void sched_destroy(sched *s)
{
    if (!s) return;
    free(s->plan.seqs);
    free(s->plan.n_new);
    free(s->plan.sample);
    free(s->ids);
    free(s->pos);
    free(s->tok_seq);
    free(s->slots);
    free(s->outputs);
    free(s->bt);
    free(s);
}

int sched_check(const sched *s, int n_prompt, int max_tokens)
{
    if (n_prompt <= 0) return err_set(ERR_INVALID, "the prompt is empty");
    if (n_prompt > s->c.max_model_len)
        return err_set(ERR_INVALID, "the prompt has %d tokens, more than the context length %d",
                       n_prompt, s->c.max_model_len);
    /* no max_tokens: it may run to the end of the context */
    int64_t longest = max_tokens > 0 ? (int64_t)n_prompt + max_tokens : s->c.max_model_len;
    if (longest > s->c.max_model_len) longest = s->c.max_model_len;
    int64_t blocks = (longest + s->block_size - 1) / s->block_size;
    if (blocks > kv_pool_num_blocks(s->pool))
        return err_set(ERR_INVALID, "the request may need %lld KV cache blocks of %d tokens; the pool has %d",
                       (long long)blocks, s->block_size, kv_pool_num_blocks(s->pool));
    return 0;
}

void sched_add(sched *s, struct sequence *seq)
{
    seq->queue = Q_WAITING;
    q_push(&s->waiting, seq, false);
}

/* Drops seq from the plan being built (it was preempted after being planned). */
static void unplan(sched *s, struct sequence *seq)
{
    struct sched_plan *p = &s->plan;
    for (int i = 0; i < p->n_seqs; i++) {
        if (p->seqs[i] != seq) continue;
        s->budget += p->n_new[i];
        memmove(p->seqs + i, p->seqs + i + 1, (p->n_seqs - i - 1) * sizeof(*p->seqs));
        memmove(p->n_new + i, p->n_new + i + 1, (p->n_seqs - i - 1) * sizeof(*p->n_new));
        p->n_seqs--;
        return;
    }
}

void sched_remove(sched *s, struct sequence *seq)
{
    struct queue *q = queue_of(s, seq);
    if (q) q_unlink(q, seq);
    seq->queue = Q_NONE;
    kv_seq_release(s->pool, &seq->kv);
}

static void preempt(sched *s, struct sequence *victim)
{
    unplan(s, victim);
    q_unlink(&s->running, victim);
    kv_seq_release(s->pool, &victim->kv);
    victim->n_computed = 0;
    victim->n_preempted++;
    victim->queue = Q_WAITING;
    q_push(&s->waiting, victim, true);
    s->stats.preemptions++;
}

static void plan_add(sched *s, struct sequence *seq, int n_new)
{
    struct sched_plan *p = &s->plan;
    p->seqs[p->n_seqs] = seq;
    p->n_new[p->n_seqs] = n_new;
    p->n_seqs++;
    s->budget -= n_new;
}

/* Plans up to budget tokens of running sequence seq, preempting from the
 * back of the running queue for blocks. False when seq itself was preempted. */
static bool plan_running(sched *s, struct sequence *seq, bool *preempted)
{
    int n_new = seq->n_tokens - seq->n_computed;
    if (n_new > s->budget) n_new = s->budget;
    while (!kv_seq_reserve(s->pool, &seq->kv, seq->n_computed + n_new)) {
        struct sequence *victim = s->running.tail;
        preempt(s, victim);
        *preempted = true;
        if (victim == seq) return false;
    }
    plan_add(s, seq, n_new);
    return true;
}

static void build_batch(sched *s)
{
    struct sched_plan *p = &s->plan;
    int T = 0, n_out = 0, max_blocks = 1;
    for (int i = 0; i < p->n_seqs; i++)
        if (p->seqs[i]->kv.n_blocks > max_blocks) max_blocks = p->seqs[i]->kv.n_blocks;
    for (int i = 0; i < p->n_seqs; i++) {
        struct sequence *seq = p->seqs[i];
        for (int j = 0; j < p->n_new[i]; j++, T++) {
            int position = seq->n_computed + j;
            s->ids[T] = seq->tokens[position];
            s->pos[T] = position;
            s->slots[T] = kv_seq_slot(s->pool, &seq->kv, position);
            s->tok_seq[T] = i;
        }
        p->sample[i] = seq->n_computed + p->n_new[i] == seq->n_tokens;
        if (p->sample[i]) s->outputs[n_out++] = T - 1;
        else s->stats.prefill_chunks++;
        int32_t *row = s->bt + (size_t)i * max_blocks;
        memcpy(row, seq->kv.blocks, seq->kv.n_blocks * sizeof(int32_t));
        memset(row + seq->kv.n_blocks, 0, (max_blocks - seq->kv.n_blocks) * sizeof(int32_t));
    }
    p->batch = (struct step_batch){
        .n_tokens = T, .token_ids = s->ids, .positions = s->pos, .slots = s->slots,
        .tok_seq = s->tok_seq, .n_seqs = p->n_seqs, .block_tables = s->bt,
        .max_blocks = max_blocks, .n_outputs = n_out, .output_tokens = s->outputs,
    };
}

const struct sched_plan *sched_schedule(sched *s)
{
    struct sched_plan *p = &s->plan;
    p->n_seqs = 0;
    s->budget = s->c.max_num_batched_tokens;
    bool preempted = false;

    /* 1. decodes, 2. prompt chunks of running sequences; each pass walks the
     * running queue in admission order (preemption only cuts its tail) */
    for (int pass = 0; pass < 2; pass++) {
        struct sequence *next;
        for (struct sequence *seq = s->running.head; seq && s->budget > 0; seq = next) {
            next = seq->next;
            bool decode = seq->n_tokens - seq->n_computed == 1;
            if (decode != (pass == 0)) continue;
            if (!plan_running(s, seq, &preempted)) break;
            if (next && next->queue != Q_RUNNING) break; /* the rest was preempted */
        }
    }

    /* 3. admit waiting sequences in order while everything lasts */
    while (!preempted && s->waiting.head && s->budget > 0 && s->running.n < s->c.max_num_seqs) {
        struct sequence *seq = s->waiting.head;
        int hit = kv_seq_match_prefix(s->pool, &seq->kv, seq->tokens, seq->n_tokens);
        seq->n_computed = hit;
        if (!seq->admitted) seq->n_cached = hit;
        int n_new = seq->n_tokens - seq->n_computed;
        if (n_new > s->budget) n_new = s->budget;
        if (!kv_seq_reserve(s->pool, &seq->kv, seq->n_computed + n_new)) {
            /* keep the matched blocks out of others' way until it fits */
            kv_seq_release(s->pool, &seq->kv);
            seq->n_computed = 0;
            break;
        }
        q_unlink(&s->waiting, seq);
        seq->queue = Q_RUNNING;
        seq->admitted = true;
        q_push(&s->running, seq, false);
        plan_add(s, seq, n_new);
    }

    build_batch(s);
    if (p->n_seqs) s->stats.steps++;
    return p;
}

void sched_advance(sched *s)
{
    struct sched_plan *p = &s->plan;
    for (int i = 0; i < p->n_seqs; i++) {
        struct sequence *seq = p->seqs[i];
        seq->n_computed += p->n_new[i];
        kv_seq_commit(s->pool, &seq->kv, seq->tokens, seq->n_computed);
    }
}

struct sched_stats sched_stats(const sched *s)
{
    struct sched_stats st = s->stats;
    st.running = s->running.n;
    st.waiting = s->waiting.n;
    return st;
}

bool sched_idle(const sched *s) { return !s->running.n && !s->waiting.n; }
