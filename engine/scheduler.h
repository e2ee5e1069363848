/* scheduler.h: continuous batching over the paged KV cache.
 *
 * Each call to sched_schedule() plans one forward step within a token budget
 * (max_num_batched_tokens) and a sequence cap (max_num_seqs):
 *   1. running sequences with one token left (decodes), in admission order;
 *   2. running sequences part-way through their prompt, a chunk each;
 *   3. waiting sequences, first come first served, after a prefix-cache
 *      lookup, while the budget, the cap and the free blocks last (none are
 *      admitted in a step that had to preempt).
 * When a running sequence cannot get its blocks, the most recently admitted
 * running sequence is preempted by recompute: its blocks are released and it
 * goes back to the front of the waiting queue, to be prefilled again (its
 * blocks, now cached, usually make that cheap).
 *
 * The plan is the flattened varlen batch model_forward() takes. After the
 * forward, sched_advance() marks the planned tokens computed and publishes
 * the blocks they filled to the prefix cache; the caller then samples the
 * sequences flagged in the plan and removes the finished ones. */
#ifndef TESSERA_SCHEDULER_H
#define TESSERA_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "kv_cache.h"
#include "model.h"
#include "sequence.h"

struct sched_config {
    int max_num_batched_tokens;
    int max_num_seqs;
    int max_model_len;
};

struct sched_stats {
    int running, waiting;
    int64_t preemptions;      /* sequences preempted so far */
    int64_t prefill_chunks;   /* prompt chunks that stopped short of the prompt's end */
    int64_t steps;
};

/* One step: the sequences in batch order with their token counts, and the
 * flattened batch for the model. sample[i] says whether seqs[i]'s last planned
 * token ends its known tokens; the logits of the sampled ones come back in
 * the same order. */
struct sched_plan {
    int n_seqs;
    struct sequence **seqs;
    int32_t *n_new;
    bool *sample;
    struct step_batch batch;
};

typedef struct sched sched;

sched *sched_create(const struct sched_config *c, kv_pool *pool);
void sched_destroy(sched *s);

/* Checks a request against the limits: 0, or ERR_INVALID with err_msg() set
 * when the prompt is empty, longer than max_model_len, or when the sequence
 * could outgrow the whole pool (max_tokens <= 0: up to max_model_len). */
int sched_check(const sched *s, int n_prompt, int max_tokens);
/* Queues seq (already checked) at the back of the waiting queue. */
void sched_add(sched *s, struct sequence *seq);
/* Takes seq out of its queue and releases its blocks (finish or abort). */
void sched_remove(sched *s, struct sequence *seq);

/* The next step's plan (n_seqs 0 when there is nothing to run); valid until
 * the next call. */
const struct sched_plan *sched_schedule(sched *s);
/* Marks the planned tokens computed and caches the blocks they filled. */
void sched_advance(sched *s);

struct sched_stats sched_stats(const sched *s);
bool sched_idle(const sched *s);

#endif
