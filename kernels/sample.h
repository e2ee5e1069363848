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
 * the top_k-th are all kept. */
#ifndef TESSERA_SAMPLE_H
#define TESSERA_SAMPLE_H

#include <stdint.h>

struct sample_row {
    float temperature;        /* < 1e-5: greedy */
    int top_k;                /* <= 0: off */
    float top_p, min_p;       /* 1, 0: off */
    float u;                  /* the draw, in [0, 1) */
    float repetition_penalty, presence_penalty, frequency_penalty;
    int pen0, pen1;           /* the row's distinct tokens: entries [pen0, pen1) of pen_ids/pen_counts */
    int bias0, bias1;         /* its logit_bias: entries [bias0, bias1) of bias_ids/bias */
};

/* The lists the rows point into. pen_counts: occurrences in the output (0:
 * in the prompt only). */
struct sample_lists {
    const int32_t *pen_ids, *pen_counts;
    const int32_t *bias_ids;
    const float *bias;
};

#endif
