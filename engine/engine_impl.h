/* engine_impl.h: the engine's state, shared by its files (engine.c: life,
 * inbox, outbox and the step; output.c: logits -> tokens -> events;
 * ranks.c: loading on every tensor-parallel rank; kv_budget.c: the KV
 * pool's size). Not for use outside engine/. */
#ifndef TESSERA_ENGINE_IMPL_H
#define TESSERA_ENGINE_IMPL_H

#include <pthread.h>

#include "engine.h"
#include "grammar/grammar.h"
#include "kv_cache.h"
#include "model.h"
#include "scheduler.h"
#include "sequence.h"

struct engine {
    model *m;
    const struct model_config *cfg;
    kv_pool *pool;
    sched *sched;
    int max_model_len;
    int32_t eos_id;             /* engine_config's: a stop id besides the model's */
    float *logits;              /* host [max_num_seqs, vocab] */
    int32_t *argmax;            /* host [max_num_seqs]: greedy steps' tokens */
    float *raw;                 /* host [vocab]: a row before sampling, for logprobs */
    struct sampler_scratch scratch; /* the sampler's [vocab] work space */
    /* sequences the engine thread knows (waiting or running) */
    struct sequence **live;
    int n_live, cap_live;
    int64_t computed_tokens, generated_tokens;
    double t_schedule, t_forward, t_sample; /* engine_stats */

    /* inbox: guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct sequence **inbox;
    int n_inbox, cap_inbox;
    uint64_t *aborts;
    int n_aborts, cap_aborts;
    uint64_t next_id;
    bool stop, started;
    pthread_t thread;

    /* outbox and stats: guarded by out_mu */
    pthread_mutex_t out_mu;
    struct engine_event *out;
    int n_out, cap_out;
    struct engine_stats stats;
    void (*wake)(void *);
    void *wake_arg;

    /* events of the current step, engine thread only */
    struct engine_event *step_ev;
    int n_step_ev, cap_step_ev;

    /* a step's sampling on the device (output.c), engine thread only */
    struct sample_row *srows;   /* [max_num_seqs] */
    struct sample_logprobs *lps; /* [max_num_seqs]: the rows' logprobs */
    struct sample_logprobs *step_lps; /* lps when this step's rows report some, else NULL */
    int32_t *pen_ids, *pen_counts, *bias_ids;
    float *bias;
    int n_pen, cap_pen, n_bias, cap_bias;

    /* constrained decoding (structured.c): the token bytes and a mask
     * (engine thread); the compiled grammars, guarded by grammar_mu */
    struct grammar_vocab *gvocab;
    uint32_t *mask;
    int32_t end_id;             /* the EOS a finished grammar takes */
    pthread_mutex_t grammar_mu;
    struct grammar_entry *grammars;
    int n_grammars, cap_grammars;
    uint64_t grammar_clock;
};

#define GROW(arr, n, cap)                                               \
    do {                                                                \
        if ((n) == (cap)) {                                             \
            (cap) = (cap) ? 2 * (cap) : 16;                             \
            (arr) = xrealloc((arr), (size_t)(cap) * sizeof(*(arr)));    \
        }                                                               \
    } while (0)

/* output.c */
struct engine_event *engine__new_event(engine *e, const struct sequence *s);
/* Samples s's next token from its logits row (or takes tok, taken on the
 * device with its logprobs in lp when asked, when row is NULL) and posts
 * it; true if s ended. */
bool engine__sample_one(engine *e, struct sequence *s, float *row, int32_t tok, const struct sample_logprobs *lp);
/* Greedy with nothing that needs the logits on the host. */
bool engine__plain_greedy(const struct sequence *s);
/* The step's forward: the tokens of the sampled rows into e->argmax (true:
 * greedy, or drawn on the device where every sampled row can be) or their
 * logits into e->logits (false). *rc: model_forward's. */
bool engine__forward(engine *e, const struct sched_plan *p, int *rc);
/* Moves the step's events to the outbox, refreshes the stats, wakes the reader. */
void engine__publish(engine *e);

/* structured.c: the id to take instead of sampling (EOS, when s's grammar
 * must end), else -1 with row masked; then whether tok ended the output. */
int32_t engine__grammar_mask(engine *e, struct sequence *s, float *row);
bool engine__grammar_accept(engine *e, struct sequence *s, int32_t tok);
void engine__grammars_free(engine *e);
/* Another reference to g (from engine_grammar), any thread. */
void engine__grammar_ref(engine *e, grammar *g);

/* ranks.c: rank 0 with mp decided, a worker with mp to receive: every rank
 * loads its slice with rank 0's limits, then checks it read rank 0's model. */
int engine__load_on_every_rank(model **m, const char *dir, struct backend *b, struct model_params *mp);

/* kv_budget.c: the KV pool's blocks for c's limits on b, for the model at
 * dir (its weights' size on the backend counts against a GPU's memory). */
struct kv_budget {
    int64_t per_block;       /* bytes of K and V of one block, this rank's KV heads */
    int64_t blocks_per_seq;  /* blocks of one full context */
    int64_t num_blocks;
};
int kv_budget(struct kv_budget *kb, const struct model_config *cfg, const char *dir, struct backend *b,
              const struct engine_config *c, int max_len);

#endif
