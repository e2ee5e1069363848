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
#include <stddef.h>
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

/* The accepted range of each real-valued parameter, for every front end
 * (OpenAI's ranges: the server and the command line read them from here).
 * name is the JSON field; the option is the same with '-' for '_'. */
struct sampling_range {
    const char *name;
    float lo, hi;
    size_t offset;      /* of the float in struct sampling_params */
};
extern const struct sampling_range SAMPLING_RANGES[];
extern const int SAMPLING_N_RANGES;
/* The range of field name (NULL: none). */
const struct sampling_range *sampling_range(const char *name);

/* NULL when valid, else the name of the first bad field. */
const char *sampling_params_check(const struct sampling_params *p);

struct cand {
    float logit;
    int32_t id;
    double e;           /* exp(logit - max), computed once per draw */
};

/* One sequence's sampler: its parameters and random stream. What the
 * penalties need is the sequence's own token list, passed at each draw, so a
 * queued request costs no vocabulary-sized memory. */
struct sampler {
    struct sampling_params p;
    uint64_t rng[4];
};

/* Work space of one thread that samples (the engine's): vocabulary-sized
 * arrays, all zero between draws. */
struct sampler_scratch {
    int vocab;
    struct cand *cand;   /* [vocab] */
    int32_t *counts;     /* [vocab] occurrences in the output */
    uint8_t *seen;       /* [vocab] in the prompt or the output */
};

void sampler_scratch_init(struct sampler_scratch *w, int vocab);
void sampler_scratch_deinit(struct sampler_scratch *w);

void sampler_init(struct sampler *s, const struct sampling_params *p);
/* Picks a token from logits[w->vocab] (modified in place). tokens[0..n):
 * the sequence so far, its first n_prompt the prompt: the repetition penalty
 * counts them all, presence and frequency penalties only the output. */
int32_t sampler_sample(struct sampler *s, struct sampler_scratch *w, float *logits, const int32_t *tokens, int n,
                       int n_prompt);
/* Calls fn once for each distinct id of tokens[0..n) (ids outside the
 * vocabulary skipped), in first-seen order, with how often it occurs in the
 * output tokens[n_prompt..n): what the penalties read. w's counters are
 * all zero again after. */
void sampler_each_token(struct sampler_scratch *w, const int32_t *tokens, int n, int n_prompt,
                        void (*fn)(void *ctx, int32_t id, int32_t count), void *ctx);
/* Uniform in [0, 1) from the sampler's stream. */
double sampler_uniform(struct sampler *s);

#endif
