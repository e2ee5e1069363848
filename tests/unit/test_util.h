/* test_util.h: helpers shared by the unit tests. */
#ifndef TESSERA_TEST_UTIL_H
#define TESSERA_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../kernels/dtype.h"

/* ../shared/models/stories260K, or $TESSERA_STORIES260K. */
const char *stories260k_dir(void);

/* A fresh empty directory under /tmp; removed by rm_rf. */
char *make_tmpdir(void);
void rm_rf(const char *dir);
void write_file(const char *dir, const char *name, const void *data, size_t n);
void write_text(const char *dir, const char *name, const char *text);
/* Reads a whole file; NULL if missing. */
void *read_file(const char *path, size_t *n);

/* A tensor to write with write_safetensors. */
struct test_tensor {
    const char *name;
    const char *dtype; /* "F32", "F16", "BF16", or anything for error cases */
    int ndim;
    int64_t shape[4];
    const void *data;  /* NULL: zero bytes */
    size_t nbytes;     /* bytes of data */
};
void write_safetensors(const char *path, const struct test_tensor *t, int n);

/* A half float of magnitude in [2^lo, 2^hi), random sign unless positive. */
uint16_t rand_half(uint64_t *rng, int lo, int hi, bool positive);
/* nb random blocks of a quantized type (kernels/quant.h): random bytes,
 * finite scales of a sane magnitude, about one block in 32 with d = 0. */
void fill_qblocks(void *w, enum dtype wt, size_t nb, uint64_t *rng);
/* Activations x[T, ldx] for the quantized kernels: random in groups of 32
 * of every scale (2^-6 .. 2^5), about one group in 16 all zero. */
void fill_qacts(float *x, int T, int ldx, uint64_t *rng);
/* The first index of the largest of x[0..n). */
int argmax_of(const float *x, int n);
/* Quantized kernel outputs: |a - b| <= rel * mag + tiny at rows [0, T),
 * columns [n0, N) of [T, ldy] (mag: [T, N]), and every other element as it
 * was filled (y[i] = i). Prints the first miss with label. */
bool qmatmul_close(const float *a, const float *b, const float *mag, int T, int N, int ldy, int n0, float rel,
                   const char *label);

/* Logits got against want ([n, V]): the RMS of the difference <= rel x the
 * RMS of want, no value off by more than 10 x that, and the same argmax at
 * agree_pct % of the rows or more (near-ties may flip). Prints the measures
 * under label, and what failed. */
bool logits_near(const float *got, const float *want, int n, int V, double rel, int agree_pct, const char *label);

/* Deterministic uniform floats in [lo, hi). */
void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state);
uint64_t rng_next(uint64_t *state);

/* Max |a - b| / (atol + rtol * |b|) over n values: <= 1 means close. Prints
 * the first mismatches with label. */
bool all_close(const float *a, const float *b, size_t n, float atol, float rtol, const char *label);

/* A golden model's reference, tests/data/golden/<name>/reference.json and
 * its logits file (scripts/make_golden.py). */
struct golden_ref {
    int n;          /* prompt length */
    int32_t *ids;   /* [n] the prompt */
    int vocab;
    int n_rows;     /* positions whose logits were kept: all n, or logit_rows */
    int32_t *rows;  /* [n_rows] */
    float *logits;  /* [n_rows, vocab] transformers' fp32 logits */
};
/* 0, or -1 with why in err (a missing or malformed file). */
int golden_ref_load(struct golden_ref *g, const char *dir, char *err, size_t errlen);
void golden_ref_free(struct golden_ref *g);
/* The kept rows of got: [n, vocab] (all positions) into out: [n_rows, vocab]. */
void golden_ref_pick(const struct golden_ref *g, const float *got, float *out);
/* Whether got ([n, vocab] logits of the whole prompt) is within atol of the
 * reference's kept rows; *max_err gets the largest difference. */
bool golden_close(const struct golden_ref *g, const float *got, float atol, const char *label, float *max_err);
/* max |a - b| over n values. */
float max_abs_diff(const float *a, const float *b, size_t n);

#endif
