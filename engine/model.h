/* model.h: a loaded Llama-family model and its forward over one step.
 *
 * model_forward() runs one forward over a flattened batch: any mix of prefill
 * chunks and decode tokens of several sequences (the step plan). Each token
 * carries its position and KV slot; each sequence its block table row. The
 * logits of the tokens listed in output_tokens come back to the host. */
#ifndef TESSERA_MODEL_H
#define TESSERA_MODEL_H

#include <stdint.h>

#include "backend.h"
#include "model_config.h"

typedef struct model model;

struct model_params {
    int num_kv_blocks;   /* KV pool size in blocks */
    int block_size;      /* tokens per KV block (16) */
    int max_step_tokens; /* most tokens in one forward */
    int max_seqs;        /* most sequences in one forward */
    int rank, world;     /* tensor-parallel slice to load */
    enum dtype quantize; /* DTYPE_Q8_0 / DTYPE_Q4_0: weights_quantize at load; DTYPE_F32: none */
};

/* Host-side step plan, as the scheduler produces it. */
struct step_batch {
    int n_tokens;
    const int32_t *token_ids;    /* [n_tokens] */
    const int32_t *positions;    /* [n_tokens] */
    const int64_t *slots;        /* [n_tokens] KV slot to write */
    const int32_t *tok_seq;      /* [n_tokens] index of the token's sequence */
    int n_seqs;
    const int32_t *block_tables; /* [n_seqs, max_blocks] */
    int max_blocks;
    int n_outputs;
    const int32_t *output_tokens; /* [n_outputs] tokens whose logits are wanted */
};

/* Loads config, weights (this rank's slice) and allocates the KV cache on b.
 * Returns 0 or a negative ERR_* with err_msg() naming the file and problem. */
int model_load(model **out, const char *dir, struct backend *b, const struct model_params *p);
void model_destroy(model *m);

const struct model_config *model_get_config(const model *m);
/* Most blocks one sequence can use (max positions / block size). */
int model_max_blocks_per_seq(const model *m);

/* logits (unless NULL): host [n_outputs, vocab_size]; ids (unless NULL):
 * host [n_outputs], each output row's token, taken where the logits are (a
 * step then copies one id a row instead of the vocabulary): drawn by
 * sample's rules when sample is not NULL (only where
 * model_samples_on_device), else the row's argmax_ref. Returns 0 or
 * ERR_INVALID for a batch that exceeds the limits given at load. */
int model_forward(model *m, const struct step_batch *sb, float *logits, int32_t *ids,
                  const struct sample_batch *sample);
/* Whether the backend samples where the logits are. */
bool model_samples_on_device(const model *m);

/* Decode steps replayed from a graph so far (decode_graph.c; 0 on backends
 * without graphs). */
int64_t model_graph_replays(const model *m);

/* Tensor parallelism (comm.h): with world > 1, model_forward on rank 0 first
 * broadcasts the plan, and the other ranks run model_serve_worker: each
 * plan, the same forward on their slice (its all-reduces meet rank 0's),
 * no logits; until rank 0's model_destroy says stop (0), or a bad plan. */
int model_serve_worker(model *m);

#endif
