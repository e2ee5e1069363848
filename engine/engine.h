/* engine.h: the serving engine: requests in, tokens out. An opaque handle
 * (llama.h's style): engine_create makes one, engine_destroy frees it and
 * everything it made; pointers it returns are borrowed and valid until then.
 *
 * The engine owns the model, the KV block pool and the scheduler. Each step
 * it drains submitted requests and aborts, plans a batch (scheduler.h), runs
 * one forward, samples the sequences that reached the end of their known
 * tokens, and posts one event per sampled token to an outbox. It runs on its
 * own thread (engine_start) or is stepped by the caller (engine_step); the
 * two are not mixed. submit, abort, poll and stats are thread-safe; the wake
 * hook is called on the engine thread after each step that posted events
 * (the server binds it to uv_async_send). */
#ifndef TESSERA_ENGINE_H
#define TESSERA_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "sampler.h"
#include "../kernels/dtype.h"

struct backend;      /* backend.h: where the model runs; the caller's */
struct grammar_spec; /* grammar/grammar.h: constrained decoding */
typedef struct grammar grammar;
struct model_config; /* model_config.h */

/* How a request ended. */
enum finish_reason { FINISH_NONE = 0, FINISH_STOP, FINISH_LENGTH, FINISH_ABORT };

#define ENGINE_MAX_LOGPROBS 20

struct engine_config {
    int max_num_batched_tokens; /* tokens per step (512) */
    int max_num_seqs;           /* sequences running at once (64) */
    int max_model_len;          /* 0: the model's max_position_embeddings */
    int64_t kv_cache_memory;    /* bytes of K/V; 0: enough for max_num_seqs full contexts,
                                 * at most a quarter of the available memory (shared
                                 * by the tensor-parallel ranks) */
    bool prefix_caching;        /* (true) */
    int block_size;             /* tokens per KV block (16) */
    bool log;                   /* startup line on stderr (true) */
    int32_t eos_id;             /* a stop id besides the model's eos ids (the tokenizer's); -1: none */
    enum dtype quantization;    /* DTYPE_Q8_0, DTYPE_Q4_0 or (CUDA) DTYPE_F8_ROWS: F32/F16/BF16 matmul
                                 * weights quantized at load (weights_quantize); DTYPE_F32 (default):
                                 * as stored */
};
struct engine_config engine_config_default(void);

struct engine_request {
    const int32_t *prompt;
    int n_prompt;
    struct sampling_params sampling;
    int max_tokens;             /* generated tokens at most; <= 0: up to the end of the context or
                                 * of the KV pool, whichever comes first */
    const int32_t *stop_ids;    /* stop token ids besides the eos ids (copied) */
    int n_stop_ids;
    bool ignore_eos;            /* do not stop on the model's and the config's eos ids */
    int logprobs;               /* -1: none; else the top-n alternatives (n <= 20) */
    const int32_t *bias_ids;    /* logit_bias: added to these ids' logits before sampling */
    const float *bias;
    int n_bias;
    grammar *grammar;           /* the output follows it (engine_grammar); NULL: free text. The
                                 * sequence takes its own reference */
};

/* One sampled token, or the end of a request. */
struct engine_event {
    uint64_t id;
    int32_t token;              /* -1 when none (abort) */
    float logprob;              /* of token, from the model's raw distribution */
    int n_top;
    int32_t top_ids[ENGINE_MAX_LOGPROBS];
    float top_logprobs[ENGINE_MAX_LOGPROBS];
    enum finish_reason finish;  /* FINISH_NONE while the request goes on */
    int n_prompt, n_cached, n_generated;
};

struct engine_stats {
    int running, waiting;
    int64_t preemptions, prefill_chunks, steps;
    int64_t graph_steps;        /* steps replayed from a CUDA graph */
    int kv_blocks_total, kv_blocks_used, kv_blocks_cached;
    int64_t prefix_queries, prefix_hits;  /* in tokens */
    int64_t prompt_tokens, generation_tokens; /* computed so far */
    /* engine-thread time in seconds, summed over steps: planning the step,
     * the forward (until the logits are on the host), sampling the tokens */
    double t_schedule, t_forward, t_sample;
};

typedef struct engine engine;

/* Loads dir's model on b with c's limits, sizes the KV pool and creates the
 * scheduler. 0, or a negative ERR_* with err_msg() set. */
int engine_create(engine **out, const char *dir, struct backend *b, const struct engine_config *c);
/* A tensor-parallel worker (comm_rank() > 0): loads its slice of dir with
 * the limits rank 0's engine_create decides, then runs each step rank 0
 * broadcasts until rank 0's engine is destroyed. 0, or a negative ERR_*. */
int engine_worker_run(const char *dir, struct backend *b);
/* Stops the thread if started; frees everything (b stays the caller's). */
void engine_destroy(engine *e);

/* Borrowed: valid until engine_destroy. */
const struct model_config *engine_model_config(const engine *e);
int engine_max_model_len(const engine *e);
int engine_vocab_size(const engine *e);

/* Constrained decoding. The bytes each of the tokenizer's n tokens adds to
 * the output (n may be below the model's vocabulary: the rest never
 * appear), copied; without them no grammar compiles. Before engine_start. */
void engine_set_token_bytes(engine *e, int n, const uint8_t *const *bytes, const uint32_t *lens);
/* The compiled grammar of spec from the engine's cache, compiled on a miss
 * (on the calling thread; any thread). NULL with err when the spec does not
 * compile (err: grammar_compile's message). Each reference is given back
 * with engine_grammar_release once the request that uses it is submitted
 * (or not). */
grammar *engine_grammar(engine *e, const struct grammar_spec *spec, char *err, size_t cap);
void engine_grammar_release(engine *e, grammar *g);

/* Why engine_check refuses a request. */
enum engine_refusal {
    ENGINE_OK = 0,
    ENGINE_EMPTY_PROMPT,
    ENGINE_OVER_CONTEXT,  /* prompt + max_tokens (or + 1 without it) over the context */
    ENGINE_OVER_POOL,     /* no room for one token in the KV pool (no max_tokens) */
    ENGINE_BAD_REQUEST,   /* sampling parameters, logprobs count, token ids, a pool too small
                           * for prompt + max_tokens: err_msg() says which */
};
struct engine_verdict {
    enum engine_refusal why;
    int n_prompt, max_tokens;   /* the request's */
    int64_t limit;              /* OVER_CONTEXT: the context length; OVER_POOL: the tokens the
                                 * pool holds (at most the context) */
};
/* 0 if engine_submit would accept r, else a negative ERR_* with err_msg()
 * saying why and, when v is not NULL, v filled for the caller to word its
 * own error. The checks run in the order of enum engine_refusal. */
int engine_check(const engine *e, const struct engine_request *r, struct engine_verdict *v);
/* Validates (engine_check) and queues a request: its id (> 0), or the error. */
int64_t engine_submit(engine *e, const struct engine_request *r);
/* Tokens the whole KV pool holds. */
int64_t engine_pool_tokens(const engine *e);
/* Ends request id (if still live) with FINISH_ABORT at the next step. */
void engine_abort(engine *e, uint64_t id);
/* Moves up to cap pending events into ev; returns how many. */
int engine_poll(engine *e, struct engine_event *ev, int cap);
void engine_set_wake(engine *e, void (*fn)(void *arg), void *arg);
struct engine_stats engine_stats(engine *e);

/* Caller-driven mode: takes in submitted requests and aborts and runs one
 * step. Returns 1 if a forward ran, 0 when idle, negative on error. */
int engine_step(engine *e);
/* Thread mode: starts the engine thread. */
int engine_start(engine *e);

#endif
