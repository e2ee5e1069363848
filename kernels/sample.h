/* sample.h: one row's sampling on the device, as the CUDA kernel
 * (kernels/cuda/sample.cu) and its CPU reference (kernels/cpu/sample_ref.c)
 * both do it.
 *
 * The row's logits are edited first: logit_bias added (in list order), then
 * each distinct token of the sequence once: the repetition penalty, and the
 * presence and frequency penalties if it occurs in the output (the host
 * sampler's order, engine/sampler.c). Greedy rows (temperature < 1e-5) take
 * the first maximum. Otherwise x = logit / temperature over the tokens above
 * -inf, and the kept tokens are those with x >= a threshold: the k-th
 * largest x (top_k), then the largest x whose tokens at or above it hold
 * top_p of the mass left (top_p), then max x + log(min_p) (min_p); each
 * threshold is found by bisection over the float order, so no sort. The
 * draw u in [0, 1) (from the sequence's own random stream, on the host)
 * picks the kept token where u times the kept mass falls in the cumulative
 * sum taken in token-id order. The same distribution as the host sampler's
 * (which sorts and cumulates largest first), except that tokens tied with
 * the top_k-th are all kept.
 *
 * A row with logprobs set also reports (struct sample_logprobs) the
 * log-softmax of its logits as the model gave them (before logit_bias and
 * penalties, as OpenAI and the host path report them): the sampled
 * token's, and the n_top likeliest tokens', largest first, ties by lower
 * id. */
#ifndef TESSERA_SAMPLE_H
#define TESSERA_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

struct sample_row {
    float temperature;        /* < 1e-5: greedy */
    int top_k;                /* <= 0: off */
    float top_p, min_p;       /* 1, 0: off */
    float u;                  /* the draw, in [0, 1) */
    float repetition_penalty, presence_penalty, frequency_penalty;
    int pen0, pen1;           /* the row's distinct tokens: entries [pen0, pen1) of pen_ids/pen_counts */
    int bias0, bias1;         /* its logit_bias: entries [bias0, bias1) of bias_ids/bias */
    bool logprobs;            /* report logprobs: the sampled token's and n_top others' */
    int n_top;                /* 0..SAMPLE_MAX_TOP */
};

#define SAMPLE_MAX_TOP 20

struct sample_logprobs {
    float logprob;                        /* the sampled token's */
    int32_t top_ids[SAMPLE_MAX_TOP];      /* [0, n_top) */
    float top_logprobs[SAMPLE_MAX_TOP];
};

/* The lists the rows point into. pen_counts: occurrences in the output (0:
 * in the prompt only). */
struct sample_lists {
    const int32_t *pen_ids, *pen_counts;
    const int32_t *bias_ids;
    const float *bias;
};

/* A step's sampling where the logits are (backend.h's sample op), in host
 * memory: each output row's parameters and draw, the lists they point
 * into, and where the rows' logprobs go. */
struct sample_batch {
    const struct sample_row *rows;     /* [rows] */
    struct sample_lists lists;
    int n_pen, n_bias;                 /* lengths of the lists */
    struct sample_logprobs *logprobs;  /* [rows], for the rows with logprobs set; NULL when none has */
};

#endif
