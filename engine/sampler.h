/* sampler.h: logits -> next token.
 *
 * Order of operations (vLLM's and transformers' order): repetition penalty
 * over prompt and output tokens, presence and frequency penalties over output
 * tokens, then temperature (0 = greedy argmax, lowest id on ties), top-k,
 * top-p, min-p, and a draw from a per-sequence xoshiro256** stream: the same
 * seed gives the same tokens. */
#ifndef TESSERA_SAMPLER_H
#define TESSERA_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

struct sampling_params {
    float temperature;        /* 0: greedy */
    int top_k;                /* <= 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off */
    float presence_penalty;   /* 0: off */
    float frequency_penalty;  /* 0: off */
    uint64_t seed;
    bool has_seed;            /* false: seeded from the clock */
};

/* temperature 1, everything else off (OpenAI's defaults). */
struct sampling_params sampling_params_default(void);

/* NULL when valid, else the name of the first bad field. */
const char *sampling_params_check(const struct sampling_params *p);

struct cand {
    float logit;
    int32_t id;
};

struct sampler {
    struct sampling_params p;
    int vocab;
    uint64_t rng[4];
    int32_t *counts;   /* [vocab] occurrences in the output */
    uint8_t *seen;     /* [vocab] in prompt or output */
    struct cand *cand; /* [vocab] scratch */
};

void sampler_init(struct sampler *s, const struct sampling_params *p, int vocab,
                  const int32_t *prompt, int n_prompt);
void sampler_deinit(struct sampler *s);
/* Picks a token from logits[vocab] (modified in place). */
int32_t sampler_sample(struct sampler *s, float *logits);
/* Records an emitted token for the penalties. */
void sampler_accept(struct sampler *s, int32_t id);
/* Uniform in [0, 1) from the sampler's stream. */
double sampler_uniform(struct sampler *s);

#endif
