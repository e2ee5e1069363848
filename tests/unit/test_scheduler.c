/* test_scheduler.c: token budget, FCFS order, chunked prefill, preemption
 * victims, rejection, and a randomized run that checks what every planned
 * token would read from the KV cache. No model: the tests play the engine's
 * part (advance, append a token, retire). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "../../engine/scheduler.h"
#include "test_util.h"

static struct sequence *seq_new(uint64_t id, const int32_t *ids, int n)
{
    struct sequence *s = calloc(1, sizeof(*s));
    s->id = id;
    s->cap = n + 64;
    s->tokens = malloc(s->cap * sizeof(int32_t));
    for (int i = 0; i < n; i++) s->tokens[i] = ids ? ids[i] : (int32_t)(id * 1000 + i);
    s->n_tokens = s->n_prompt = n;
    return s;
}

static void seq_del(struct sequence *s)
{
    free(s->tokens);
    free(s);
}

static void append(struct sequence *s, int32_t tok)
{
    if (s->n_tokens == s->cap) {
        s->cap *= 2;
        s->tokens = realloc(s->tokens, s->cap * sizeof(int32_t));
    }
    s->tokens[s->n_tokens++] = tok;
}

/* advance, then give every sampled sequence one more token */
static void finish_step(sched *s, const struct sched_plan *p)
{
    sched_advance(s);
    for (int i = 0; i < p->n_seqs; i++)
        if (p->sample[i]) append(p->seqs[i], 7);
}

static int planned(const struct sched_plan *p, const struct sequence *seq)
{
    for (int i = 0; i < p->n_seqs; i++)
        if (p->seqs[i] == seq) return p->n_new[i];
    return 0;
}

Test(scheduler, budget_decodes_first_then_chunks_in_arrival_order)
{
    kv_pool *pool = kv_pool_create(64, 4, false);
    struct sched_config c = {.max_num_batched_tokens = 8, .max_num_seqs = 8, .max_model_len = 64};
    sched *s = sched_create(&c, pool);
    struct sequence *a = seq_new(1, NULL, 5), *b = seq_new(2, NULL, 20), *d = seq_new(3, NULL, 3);
    sched_add(s, a);
    sched_add(s, b);
    sched_add(s, d);

    const struct sched_plan *p = sched_schedule(s);
    cr_assert_eq(p->n_seqs, 2);
    cr_assert_eq(planned(p, a), 5);
    cr_assert_eq(planned(p, b), 3, "b gets what is left of the budget");
    cr_assert(p->sample[0] && !p->sample[1]);
    cr_assert_eq(p->batch.n_tokens, 8);
    cr_assert_eq(p->batch.n_outputs, 1);
    cr_assert_eq(p->batch.output_tokens[0], 4);
    cr_assert_eq(p->batch.positions[5], 0);
    cr_assert_eq(p->batch.tok_seq[5], 1);
    finish_step(s, p);

    /* a decodes first, b's next chunk fills the rest, d still waits */
    p = sched_schedule(s);
    cr_assert_eq(p->seqs[0], a);
    cr_assert_eq(planned(p, a), 1);
    cr_assert_eq(planned(p, b), 7);
    cr_assert_eq(planned(p, d), 0);
    cr_assert_eq(p->batch.positions[1], 3);
    finish_step(s, p);
    p = sched_schedule(s);
    cr_assert_eq(planned(p, a), 1);
    cr_assert_eq(planned(p, b), 7);
    finish_step(s, p);
    /* b's last 3 prompt tokens leave room for d */
    p = sched_schedule(s);
    cr_assert_eq(planned(p, b), 3);
    cr_assert_eq(planned(p, d), 3);
    cr_assert_eq(p->n_seqs, 3);
    cr_assert(p->sample[0] && p->sample[1] && p->sample[2]);
    finish_step(s, p);
    cr_assert_eq(sched_stats(s).prefill_chunks, 3);
    cr_assert_eq(sched_stats(s).preemptions, 0);

    sched_remove(s, a);
    sched_remove(s, b);
    sched_remove(s, d);
    cr_assert(sched_idle(s));
    cr_assert_eq(kv_pool_num_free(pool), 64);
    sched_destroy(s);
    kv_pool_destroy(pool);
    seq_del(a);
    seq_del(b);
    seq_del(d);
}

Test(scheduler, max_num_seqs_caps_admission)
{
    kv_pool *pool = kv_pool_create(64, 4, false);
    struct sched_config c = {.max_num_batched_tokens = 100, .max_num_seqs = 2, .max_model_len = 64};
    sched *s = sched_create(&c, pool);
    struct sequence *q[3];
    for (int i = 0; i < 3; i++) sched_add(s, q[i] = seq_new(i + 1, NULL, 2));
    const struct sched_plan *p = sched_schedule(s);
    cr_assert_eq(p->n_seqs, 2);
    cr_assert_eq(sched_stats(s).waiting, 1);
    finish_step(s, p);
    sched_remove(s, q[0]);
    p = sched_schedule(s);
    cr_assert_eq(p->n_seqs, 2);
    cr_assert_eq(planned(p, q[2]), 2);
    for (int i = 0; i < 3; i++) {
        sched_remove(s, q[i]);
        seq_del(q[i]);
    }
    sched_destroy(s);
    kv_pool_destroy(pool);
}

Test(scheduler, preempts_the_latest_admitted_and_requeues_in_order)
{
    kv_pool *pool = kv_pool_create(4, 4, false);
    struct sched_config c = {.max_num_batched_tokens = 64, .max_num_seqs = 8, .max_model_len = 64};
    sched *s = sched_create(&c, pool);
    struct sequence *a = seq_new(1, NULL, 4), *b = seq_new(2, NULL, 8), *d = seq_new(3, NULL, 4);
    sched_add(s, a);
    sched_add(s, b);
    sched_add(s, d);
    const struct sched_plan *p = sched_schedule(s); /* 1 + 2 + 1 blocks: the whole pool */
    cr_assert_eq(p->n_seqs, 3);
    cr_assert_eq(kv_pool_num_free(pool), 0);
    finish_step(s, p);

    /* every decode needs a new block: a takes d's, then b has to preempt itself */
    p = sched_schedule(s);
    cr_assert_eq(p->n_seqs, 1);
    cr_assert_eq(p->seqs[0], a);
    cr_assert_eq(sched_stats(s).preemptions, 2);
    cr_assert_eq(d->n_computed, 0);
    cr_assert_eq(b->n_computed, 0);
    cr_assert_eq(d->n_preempted, 1);
    cr_assert_eq(b->kv.n_blocks, 0);
    cr_assert_eq(sched_stats(s).waiting, 2);
    finish_step(s, p);

    /* a finishes: b comes back before d, recomputing prompt and output */
    sched_remove(s, a);
    p = sched_schedule(s);
    cr_assert_eq(p->seqs[0], b);
    cr_assert_eq(planned(p, b), 9);
    cr_assert_eq(planned(p, d), 0, "d would need a fourth block");
    finish_step(s, p);
    sched_remove(s, b);
    p = sched_schedule(s);
    cr_assert_eq(planned(p, d), 5);
    sched_remove(s, d);
    cr_assert_eq(kv_pool_num_free(pool), 4);
    sched_destroy(s);
    kv_pool_destroy(pool);
    seq_del(a);
    seq_del(b);
    seq_del(d);
}

Test(scheduler, rejects_what_can_never_run)
{
    kv_pool *pool = kv_pool_create(4, 4, false);
    struct sched_config c = {.max_num_batched_tokens = 64, .max_num_seqs = 8, .max_model_len = 32};
    sched *s = sched_create(&c, pool);
    cr_assert_eq(sched_check(s, 0, 10), ERR_INVALID);
    cr_assert_eq(sched_check(s, 33, 1), ERR_INVALID);
    cr_assert(strstr(err_msg(), "context length 32"), "%s", err_msg());
    cr_assert_eq(sched_check(s, 10, 7), ERR_INVALID, "17 tokens need 5 blocks of 4; the pool has 4");
    cr_assert(strstr(err_msg(), "pool has 4"), "%s", err_msg());
    cr_assert_eq(sched_check(s, 10, 6), 0);
    cr_assert_eq(sched_check(s, 16, 0), ERR_INVALID, "without max_tokens it may grow to 32 tokens: 8 blocks");
    sched_destroy(s);
    kv_pool_destroy(pool);
}

/* Randomized: submits, aborts and finishes under a small pool and budget, with
 * prefix caching, while a shadow KV cache records what each planned token
 * writes (a hash of its sequence's tokens up to it). After each step every
 * planned token must see, through its block table, exactly its own prefix;
 * at the end no block may be referenced. */
static uint64_t prefix_hash(const struct sequence *q, int pos)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i <= pos; i++) h = (h ^ (uint32_t)q->tokens[i]) * 1099511628211ull;
    return h;
}

Test(scheduler, random_operations_keep_cache_and_blocks_consistent)
{
    enum { NB = 20, BS = 4, MAXLIVE = 24 };
    kv_pool *pool = kv_pool_create(NB, BS, true);
    struct sched_config c = {.max_num_batched_tokens = 24, .max_num_seqs = 6, .max_model_len = 40};
    sched *s = sched_create(&c, pool);
    uint64_t shadow[NB * BS];
    memset(shadow, 0, sizeof(shadow));
    struct sequence *live[MAXLIVE];
    int n_live = 0, ops = 0, next_id = 1, n_steps = 0, n_aborts = 0, n_finished = 0;
    uint64_t rng = 42;
    while (ops < 10000) {
        uint64_t r = rng_next(&rng) % 100;
        if (r < 20 && n_live < MAXLIVE) { /* submit: prompts share prefixes from a 3-token alphabet */
            int n = 1 + (int)(rng_next(&rng) % 24), max_tokens = 1 + (int)(rng_next(&rng) % 16);
            int32_t ids[24];
            for (int i = 0; i < n; i++) ids[i] = (int32_t)(rng_next(&rng) % (i < 8 ? 1 : 3));
            if (sched_check(s, n, max_tokens)) continue;
            struct sequence *q = seq_new(next_id++, ids, n);
            q->max_tokens = max_tokens;
            sched_add(s, q);
            live[n_live++] = q;
            ops++;
        } else if (r < 28 && n_live) { /* abort anything, waiting or running */
            int k = (int)(rng_next(&rng) % n_live);
            sched_remove(s, live[k]);
            seq_del(live[k]);
            live[k] = live[--n_live];
            ops++;
            n_aborts++;
        } else { /* one step */
            const struct sched_plan *p = sched_schedule(s);
            const struct step_batch *b = &p->batch;
            if (!p->n_seqs) continue;
            n_steps++;
            for (int t = 0; t < b->n_tokens; t++) {
                const struct sequence *q = p->seqs[b->tok_seq[t]];
                cr_assert_eq(b->token_ids[t], q->tokens[b->positions[t]]);
                shadow[b->slots[t]] = prefix_hash(q, b->positions[t]);
            }
            for (int t = 0; t < b->n_tokens; t++) {
                const struct sequence *q = p->seqs[b->tok_seq[t]];
                const int32_t *row = b->block_tables + (size_t)b->tok_seq[t] * b->max_blocks;
                for (int pos = 0; pos <= b->positions[t]; pos++) {
                    int64_t slot = (int64_t)row[pos / BS] * BS + pos % BS;
                    cr_assert_eq(shadow[slot], prefix_hash(q, pos), "seq %llu reads a wrong K/V at position %d",
                                 (unsigned long long)q->id, pos);
                }
            }
            finish_step(s, p);
            for (int i = 0; i < p->n_seqs; i++) {
                struct sequence *q = p->seqs[i];
                bool done = p->sample[i] && (q->n_tokens - q->n_prompt >= q->max_tokens ||
                                             q->n_tokens >= c.max_model_len || rng_next(&rng) % 10 == 0);
                if (!done) continue;
                for (int k = 0; k < n_live; k++)
                    if (live[k] == q) live[k] = live[--n_live];
                sched_remove(s, q);
                seq_del(q);
                ops++;
                n_finished++;
            }
        }
    }
    struct sched_stats st = sched_stats(s);
    struct kv_pool_stats ps = kv_pool_stats(pool);
    cr_log_info("%d steps, %d aborts, %d finished, %lld preemptions, %lld chunks, prefix hits %lld/%lld tokens, "
                "%lld evictions", n_steps, n_aborts, n_finished, (long long)st.preemptions,
                (long long)st.prefill_chunks, (long long)ps.hits, (long long)ps.queries, (long long)ps.evictions);
    cr_assert_gt(st.preemptions, 0);
    cr_assert_gt(st.prefill_chunks, 0);
    cr_assert_gt(ps.hits, 0);
    cr_assert_gt(ps.evictions, 0);
    for (int k = 0; k < n_live; k++) {
        sched_remove(s, live[k]);
        seq_del(live[k]);
    }
    cr_assert(sched_idle(s));
    cr_assert_eq(kv_pool_num_used(pool), 0, "blocks still referenced");
    cr_assert_eq(kv_pool_num_free(pool) + kv_pool_num_cached(pool), NB);
    cr_assert_gt(kv_pool_num_cached(pool), 0);
    sched_destroy(s);
    kv_pool_destroy(pool);
}
