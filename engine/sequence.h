/* sequence.h: one request's state inside the engine.
 *
 * tokens holds the prompt then every generated token; n_computed counts the
 * leading tokens whose K/V is in the cache. A sequence with n_computed <
 * n_tokens - 1 is (still, or again after a preemption) prefilling; one with
 * n_computed == n_tokens - 1 decodes its last token. Either way the next step
 * computes tokens n_computed.. and samples when it reaches the end. */
#ifndef TESSERA_SEQUENCE_H
#define TESSERA_SEQUENCE_H

#include <stdint.h>

#include "engine.h"
#include "grammar/grammar.h"
#include "kv_cache.h"
#include "sampler.h"


struct sequence {
    uint64_t id;
    int32_t *tokens;
    int n_tokens, cap, n_prompt;
    int n_computed;
    int max_tokens;          /* generated tokens at most */
    int n_cached;            /* prompt tokens served by the prefix cache, first admission */
    bool admitted;           /* has been scheduled at least once */
    int n_preempted;
    struct kv_seq kv;
    /* sampling and stopping, used by the engine */
    struct sampler sampler;
    int32_t *stop_ids;
    int n_stop_ids;
    int logprobs;            /* top alternatives to report; -1: no logprobs */
    int32_t *bias_ids;       /* logit_bias */
    float *bias;
    int n_bias;
    grammar *grammar;        /* constrained decoding (a reference), or NULL */
    struct grammar_matcher *gm; /* its matcher, made at the first sample */
    /* the scheduler's queue (waiting or running) */
    struct sequence *prev, *next;
    int queue;
};

#endif
