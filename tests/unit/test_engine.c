/* test_engine.c: the engine on the real stories260K model: batch invariance
 * (alone = together = together under preemption and chunked prefill),
 * prefix caching, and the threaded API with aborts. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/backend.h"
#include "../../engine/engine.h"
#include "../../engine/grammar/grammar.h"
#include "../../tokenizer/tokenizer.h"
#include "../../base/err.h"
#include "test_util.h"

enum { N_REQ = 64, MAX_PROMPT = 70, PROMPT_CAP = 256, MAX_OUT = 24 };

struct req {
    int32_t prompt[PROMPT_CAP];
    int n_prompt, max_tokens;
    bool logprobs;     /* ask for logprobs: the engine then samples from host logits */
    grammar *grammar;  /* constrained: the output follows it, drawn at temperature 1 with seed i */
    uint64_t seed;
    int32_t out[MAX_OUT];
    int n_out;
    enum finish_reason finish;
};

static struct backend *backend; /* of the engine open now */

static engine *open_engine(int kv_blocks, int budget, int max_seqs, bool prefix)
{
    struct engine_config c = engine_config_default();
    c.max_num_batched_tokens = budget;
    c.max_num_seqs = max_seqs;
    c.prefix_caching = prefix;
    c.log = false;
    /* stories260K: 5 layers, 4 KV heads of 8: 20 KiB of K/V per 16-token block */
    c.kv_cache_memory = (int64_t)kv_blocks * 2 * 5 * 4 * 8 * 4 * 16;
    backend = backend_cpu_create(2);
    engine *e;
    cr_assert_eq(engine_create(&e, stories260k_dir(), backend, &c), 0, "%s", err_msg());
    return e;
}

static void close_engine(engine *e)
{
    engine_destroy(e);
    backend->ops->destroy(backend);
}

static struct engine_request greedy(const struct req *r)
{
    struct engine_request q = {.prompt = r->prompt, .n_prompt = r->n_prompt, .sampling = sampling_params_default(),
                               .max_tokens = r->max_tokens, .ignore_eos = true, .logprobs = r->logprobs ? 0 : -1};
    q.sampling.temperature = 0;
    if (r->grammar) {
        q.grammar = r->grammar;
        q.sampling.temperature = 1;
        q.sampling.seed = r->seed;
        q.sampling.has_seed = true;
    }
    return q;
}

/* Submits reqs[0..n) at once and steps until all finish; out/finish filled. */
static void run_all(engine *e, struct req *reqs, int n)
{
    int64_t ids[N_REQ];
    for (int i = 0; i < n; i++) {
        reqs[i].n_out = 0;
        reqs[i].finish = FINISH_NONE;
        struct engine_request q = greedy(&reqs[i]);
        ids[i] = engine_submit(e, &q);
        cr_assert_gt(ids[i], 0, "%s", err_msg());
    }
    int left = n;
    struct engine_event ev[64];
    while (left) {
        cr_assert_geq(engine_step(e), 0);
        int k;
        while ((k = engine_poll(e, ev, 64)) > 0)
            for (int j = 0; j < k; j++) {
                int i = 0;
                while (i < n && ids[i] != (int64_t)ev[j].id) i++;
                cr_assert_lt(i, n);
                if (ev[j].token >= 0) {
                    cr_assert_lt(reqs[i].n_out, MAX_OUT);
                    reqs[i].out[reqs[i].n_out++] = ev[j].token;
                }
                if (ev[j].finish) {
                    reqs[i].finish = ev[j].finish;
                    left--;
                }
            }
    }
}

static void make_requests(struct req *reqs)
{
    uint64_t rng = 7;
    for (int i = 0; i < N_REQ; i++) {
        reqs[i].n_prompt = 1 + (int)(rng_next(&rng) % MAX_PROMPT);
        reqs[i].max_tokens = 1 + (int)(rng_next(&rng) % MAX_OUT);
        reqs[i].prompt[0] = 1; /* BOS */
        for (int t = 1; t < reqs[i].n_prompt; t++) reqs[i].prompt[t] = 3 + (int32_t)(rng_next(&rng) % 500);
    }
}

Test(engine, batch_invariance_alone_together_preempted_chunked)
{
    static struct req alone[N_REQ], together[N_REQ], squeezed[N_REQ];
    make_requests(alone);

    engine *e = open_engine(1024, 512, 64, false);
    for (int i = 0; i < N_REQ; i++) run_all(e, &alone[i], 1);
    close_engine(e);
    for (int i = 0; i < N_REQ; i++) {
        cr_assert_eq(alone[i].n_out, alone[i].max_tokens);
        cr_assert_eq(alone[i].finish, FINISH_LENGTH);
    }

    memcpy(together, alone, sizeof(alone));
    e = open_engine(1024, 512, 64, true);
    run_all(e, together, N_REQ);
    struct engine_stats st = engine_stats(e);
    cr_assert_eq(st.preemptions, 0);
    cr_assert_eq(st.kv_blocks_used, 0);
    close_engine(e);

    /* 24 blocks for 64 sequences of up to 6 blocks, 32 tokens a step */
    memcpy(squeezed, alone, sizeof(alone));
    e = open_engine(24, 32, 64, true);
    run_all(e, squeezed, N_REQ);
    st = engine_stats(e);
    cr_log_info("squeezed: %lld steps, %lld preemptions, %lld prompt chunks, prefix hits %lld of %lld tokens",
                (long long)st.steps, (long long)st.preemptions, (long long)st.prefill_chunks,
                (long long)st.prefix_hits, (long long)st.prefix_queries);
    cr_assert_gt(st.preemptions, 0, "the pool was meant to force preemptions");
    cr_assert_gt(st.prefill_chunks, 0, "the budget was meant to force chunked prefill");
    cr_assert_eq(st.kv_blocks_used, 0);
    close_engine(e);

    /* every other request asks for logprobs: those steps take the argmax of
     * the host's logits instead of the backend's argmax op */
    static struct req mixed[N_REQ];
    memcpy(mixed, alone, sizeof(alone));
    for (int i = 0; i < N_REQ; i += 2) mixed[i].logprobs = true;
    e = open_engine(1024, 512, 64, true);
    run_all(e, mixed, N_REQ);
    close_engine(e);

    for (int i = 0; i < N_REQ; i++) {
        cr_assert_eq(together[i].n_out, alone[i].n_out);
        cr_assert_eq(squeezed[i].n_out, alone[i].n_out);
        cr_assert_eq(mixed[i].n_out, alone[i].n_out);
        for (int t = 0; t < alone[i].n_out; t++) {
            cr_assert_eq(together[i].out[t], alone[i].out[t], "request %d token %d: together differs", i, t);
            cr_assert_eq(squeezed[i].out[t], alone[i].out[t], "request %d token %d: squeezed differs", i, t);
            cr_assert_eq(mixed[i].out[t], alone[i].out[t], "request %d token %d: with logprobs differs", i, t);
        }
    }
}

/* The tokenizer's bytes for e's grammars, and the grammar of schema. */
static grammar *constrain(engine *e, const char *schema)
{
    tokenizer *tok;
    char err[256];
    cr_assert_eq(tok_load(&tok, stories260k_dir(), err, sizeof(err)), 0, "%s", err);
    struct tok_vocab_bytes vb;
    tok_vocab_bytes_init(&vb, tok);
    const uint8_t **b = calloc((size_t)vb.n, sizeof(*b));
    uint32_t *l = calloc((size_t)vb.n, sizeof(*l));
    for (int i = 0; i < vb.n; i++)
        if (vb.len[i] > 0) b[i] = (const uint8_t *)vb.data + vb.off[i], l[i] = (uint32_t)vb.len[i];
    engine_set_token_bytes(e, vb.n, b, l);
    free(b);
    free(l);
    tok_vocab_bytes_deinit(&vb);
    tok_free(tok);
    struct grammar_spec spec = grammar_spec_default(GRAMMAR_JSON_SCHEMA, schema);
    spec.max_ws = 0;
    grammar *g = engine_grammar(e, &spec, err, sizeof(err));
    cr_assert_not_null(g, "%s", err);
    return g;
}

/* Constrained sequences (temperature 1, seeded) draw the same tokens alone
 * and squeezed (preempted, prefilled in chunks): the matcher stays with the
 * sequence's tokens; an output the grammar ended is its whole value. */
Test(engine, constrained_alone_equals_preempted_chunked)
{
    static const char schema[] = "{\"type\": \"object\", \"additionalProperties\": false, \"required\": [\"a\", \"b\"], "
                                 "\"properties\": {\"a\": {\"type\": \"integer\", \"minimum\": 0, \"maximum\": 99},"
                                 " \"b\": {\"enum\": [\"x\", \"yy\"]}}}";
    static struct req alone[N_REQ], squeezed[N_REQ];
    make_requests(alone);
    engine *e = open_engine(1024, 512, 64, false);
    grammar *g = constrain(e, schema);
    for (int i = 0; i < N_REQ; i++) {
        alone[i].grammar = g;
        alone[i].seed = (uint64_t)i;
        alone[i].max_tokens = MAX_OUT; /* room for most values to end */
        run_all(e, &alone[i], 1);
    }
    engine_grammar_release(e, g);
    close_engine(e);

    memcpy(squeezed, alone, sizeof(alone));
    e = open_engine(24, 32, 64, true);
    g = constrain(e, schema);
    for (int i = 0; i < N_REQ; i++) squeezed[i].grammar = g;
    run_all(e, squeezed, N_REQ);
    struct engine_stats st = engine_stats(e);
    cr_assert_gt(st.preemptions, 0, "the pool was meant to force preemptions");
    cr_assert_gt(st.prefill_chunks, 0, "the budget was meant to force chunked prefill");
    engine_grammar_release(e, g);
    close_engine(e);

    int ended = 0;
    for (int i = 0; i < N_REQ; i++) {
        cr_assert_eq(squeezed[i].n_out, alone[i].n_out, "request %d", i);
        cr_assert_eq(squeezed[i].finish, alone[i].finish, "request %d", i);
        for (int t = 0; t < alone[i].n_out; t++)
            cr_assert_eq(squeezed[i].out[t], alone[i].out[t], "request %d token %d: squeezed differs", i, t);
        if (alone[i].finish == FINISH_STOP) { /* the last token is an end of sequence (1 or 2: generation_config) */
            ended++;
            int32_t last = alone[i].out[alone[i].n_out - 1];
            cr_assert(last == 1 || last == 2, "request %d: ended on token %d, not an EOS id", i, last);
        }
    }
    cr_assert_gt(ended, N_REQ / 2, "only %d outputs reached the end of their value", ended);
}

Test(engine, prefix_cache_computes_only_the_new_tokens)
{
    static struct req a, b, b_nocache;
    uint64_t rng = 11;
    a.n_prompt = 200;
    a.prompt[0] = 1;
    for (int t = 1; t < 200; t++) a.prompt[t] = 3 + (int32_t)(rng_next(&rng) % 500);
    a.max_tokens = 4;
    memcpy(&b, &a, sizeof(a)); /* shares 190 tokens: 11 full blocks */
    for (int t = 190; t < 200; t++) b.prompt[t] = 3 + (int32_t)(rng_next(&rng) % 500);
    b.max_tokens = 8;
    memcpy(&b_nocache, &b, sizeof(b));

    engine *e = open_engine(256, 512, 8, true);
    run_all(e, &a, 1);
    struct engine_stats before = engine_stats(e);
    struct engine_request q = greedy(&b);
    int64_t id = engine_submit(e, &q);
    cr_assert_gt(id, 0);
    struct engine_event ev;
    int n_cached = -1;
    b.n_out = 0;
    for (bool done = false; !done;) {
        engine_step(e);
        while (engine_poll(e, &ev, 1)) {
            n_cached = ev.n_cached;
            if (ev.token >= 0) b.out[b.n_out++] = ev.token;
            done = ev.finish != FINISH_NONE;
        }
    }
    struct engine_stats after = engine_stats(e);
    cr_assert_eq(n_cached, 176);
    /* 24 prompt tokens, then 7 decodes */
    cr_assert_eq(after.prompt_tokens - before.prompt_tokens, 200 - 176 + 7);
    cr_assert_eq(after.prefix_hits - before.prefix_hits, 176);
    close_engine(e);

    e = open_engine(256, 512, 8, false);
    run_all(e, &b_nocache, 1);
    close_engine(e);
    cr_assert_eq(b.n_out, b_nocache.n_out);
    for (int t = 0; t < b.n_out; t++) cr_assert_eq(b.out[t], b_nocache.out[t], "token %d", t);
}

struct waker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int wakes;
};

static void wake(void *arg)
{
    struct waker *w = arg;
    pthread_mutex_lock(&w->mu);
    w->wakes++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

Test(engine, thread_mode_streams_and_aborts)
{
    static struct req r;
    r.n_prompt = 5;
    for (int t = 0; t < 5; t++) r.prompt[t] = 1 + t;
    engine *e = open_engine(256, 512, 8, true);
    struct waker w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    engine_set_wake(e, wake, &w);
    cr_assert_eq(engine_start(e), 0);

    struct engine_request q = greedy(&r);
    q.max_tokens = 0; /* up to the context: only the abort ends it */
    q.logprobs = 3;
    int64_t long_id = engine_submit(e, &q);
    q.max_tokens = 3;
    int64_t short_id = engine_submit(e, &q);
    cr_assert(long_id > 0 && short_id > 0 && long_id != short_id);
    q.n_prompt = 0;
    cr_assert_lt(engine_submit(e, &q), 0, "an empty prompt is refused at submit");

    int long_tokens = 0, short_tokens = 0;
    enum finish_reason long_end = FINISH_NONE, short_end = FINISH_NONE;
    bool aborted = false;
    while (long_end == FINISH_NONE || short_end == FINISH_NONE) {
        pthread_mutex_lock(&w.mu);
        while (!w.wakes) pthread_cond_wait(&w.cv, &w.mu);
        w.wakes = 0;
        pthread_mutex_unlock(&w.mu);
        struct engine_event ev[16];
        int k;
        while ((k = engine_poll(e, ev, 16)) > 0)
            for (int j = 0; j < k; j++) {
                bool is_long = (int64_t)ev[j].id == long_id;
                if (ev[j].token >= 0) {
                    *(is_long ? &long_tokens : &short_tokens) += 1;
                    cr_assert_eq(ev[j].n_top, 3);
                    cr_assert_eq(ev[j].top_ids[0], ev[j].token, "greedy picks the top logprob");
                    cr_assert_float_eq(ev[j].logprob, ev[j].top_logprobs[0], 1e-6);
                    cr_assert(ev[j].top_logprobs[0] <= 0 && ev[j].top_logprobs[1] <= ev[j].top_logprobs[0]);
                }
                if (ev[j].finish) *(is_long ? &long_end : &short_end) = ev[j].finish;
            }
        if (long_tokens >= 10 && !aborted) {
            engine_abort(e, (uint64_t)long_id);
            aborted = true;
        }
    }
    cr_assert_eq(short_tokens, 3);
    cr_assert_eq(short_end, FINISH_LENGTH);
    cr_assert_eq(long_end, FINISH_ABORT);
    cr_assert_lt(long_tokens, 200, "the abort ends the request promptly");
    struct engine_stats st = engine_stats(e);
    cr_assert_eq(st.kv_blocks_used, 0);
    cr_assert_eq(st.running + st.waiting, 0);
    close_engine(e);
}
