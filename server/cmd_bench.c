/* cmd_bench.c: `tessera bench MODEL_DIR`: offline serving benchmark. N
 * requests of random prompt tokens, C in flight at once (a new one is
 * submitted as soon as one finishes), greedy, a fixed number of output
 * tokens each; prints requests/s, token throughput and TTFT/TPOT
 * percentiles, as vLLM's `bench throughput` / `bench serve` report them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/comm.h"
#include "../engine/engine.h"
#include "../engine/model_config.h"
#include "../base/err.h"
#include "cli.h"
#include "launch.h"

struct bench_opts {
    const char *model_dir;
    int n, concurrency, input_len, output_len, logprobs;
    float temperature, top_p;
    struct cli_backend bk;
    uint64_t seed;
    bool json;
    struct engine_config ec;
};

static void help(FILE *f)
{
    fprintf(f,
            "usage: tessera bench MODEL_DIR [options]\n"
            "\n"
            "Runs NUM_PROMPTS requests of INPUT_LEN random prompt tokens through the engine,\n"
            "CONCURRENCY at a time, each generating OUTPUT_LEN tokens (eos ignored),\n"
            "and reports requests/s, tokens/s, time to first token (TTFT) and time per\n"
            "output token after the first (TPOT).\n"
            "\n"
            "options:\n"
            "  --num-prompts N            requests (default 64)\n"
            "  --concurrency C            requests in flight (default 16)\n"
            "  --input-len L              prompt tokens per request, BOS included (default 128)\n"
            "  --output-len O             generated tokens per request (default 64)\n"
            "  --seed S                   prompt contents (default 0)\n"
            "  --temperature T            sampling temperature (default 0: greedy)\n"
            "  --top-p P                  nucleus sampling (default 1: off)\n"
            "  --logprobs N               ask for the N top logprobs of every token (default: none)\n"
            "  --json                     also print the results as one JSON line\n"
            "\n%s\n%s",
            CLI_ENGINE_HELP, CLI_BACKEND_HELP);
}

static int parse(int argc, char **argv, struct bench_opts *o)
{
    struct cli_opt t[CLI_MAX_OPTS] = {
        {"num-prompts", 0, CLI_INT, &o->n, 1, 1 << 20, NULL},
        {"concurrency", 0, CLI_INT, &o->concurrency, 1, 1 << 16, NULL},
        {"input-len", 0, CLI_INT, &o->input_len, 1, 1 << 24, NULL},
        {"output-len", 0, CLI_INT, &o->output_len, 1, 1 << 24, NULL},
        {"seed", 0, CLI_U64, &o->seed, 0, 0, NULL},
        {"json", 0, CLI_SET, &o->json, 0, 0, NULL},
        {"temperature", 0, CLI_FLOAT, &o->temperature, sampling_range("temperature")->lo,
         sampling_range("temperature")->hi, NULL},
        {"top-p", 0, CLI_FLOAT, &o->top_p, sampling_range("top_p")->lo, sampling_range("top_p")->hi, NULL},
        {"logprobs", 0, CLI_INT, &o->logprobs, 0, ENGINE_MAX_LOGPROBS, NULL},
    };
    int n = 9;
    n += cli_engine_opts(&o->ec, t + n);
    n += cli_backend_opts(&o->bk, t + n);
    if (cli_parse("bench", argc, argv, t, n, &o->model_dir, help)) return -1;
    if (!o->model_dir) {
        fprintf(stderr, "tessera bench: MODEL_DIR is required (see tessera bench --help)\n");
        return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct dist {
    double mean, p50, p90, p99;
};

/* Mean and percentiles (linear interpolation between closest ranks) of x[n]; sorts x. */
static struct dist summarize(double *x, int n)
{
    struct dist d = {0};
    if (n == 0) return d;
    qsort(x, n, sizeof(double), cmp_double);
    for (int i = 0; i < n; i++) d.mean += x[i] / n;
    double *ps[] = {&d.p50, &d.p90, &d.p99}, qs[] = {0.50, 0.90, 0.99};
    for (int k = 0; k < 3; k++) {
        double r = qs[k] * (n - 1);
        int lo = (int)r;
        int hi = lo + 1 < n ? lo + 1 : lo;
        *ps[k] = x[lo] + (x[hi] - x[lo]) * (r - lo);
    }
    return d;
}

struct slot {
    int64_t id;
    int n_out;
    double t_submit, t_first, t_last;
};

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* What a run measured. */
struct tally {
    struct slot *req;              /* per request, by submission order */
    double *ttft, *tpot;
    int finished, n_tpot, n_first;
    long out_tokens, tokens_at_all_first;
    double t0, t_all_first, dur;
};

/* Takes the step's events into t; the exit code (an aborted request fails the run). */
static int take_events(engine *e, struct tally *t, int n)
{
    struct engine_event ev[256];
    double now = mono_seconds();
    int k, rc = 0;
    while ((k = engine_poll(e, ev, 256)) > 0)
        for (int j = 0; j < k; j++) {
            struct slot *s = &t->req[ev[j].id - t->req[0].id]; /* ids are consecutive */
            if (ev[j].token >= 0) {
                t->out_tokens++;
                if (s->n_out++ == 0) {
                    s->t_first = now;
                    if (++t->n_first == n) { /* one wave's decode phase starts */
                        t->t_all_first = now;
                        t->tokens_at_all_first = t->out_tokens;
                    }
                }
                s->t_last = now;
            }
            if (ev[j].finish == FINISH_ABORT) rc = EXIT_RUNTIME;
            if (ev[j].finish == FINISH_NONE) continue;
            t->ttft[t->finished++] = s->t_first - s->t_submit;
            if (s->n_out > 1) t->tpot[t->n_tpot++] = (s->t_last - s->t_first) / (s->n_out - 1);
        }
    return rc;
}

/* Keeps o->concurrency requests of random prompts in flight until o->n ended. */
static int drive(const struct bench_opts *o, engine *e, struct tally *t)
{
    const struct model_config *cfg = engine_model_config(e);
    int n = o->n, L = o->input_len, submitted = 0, rc = 0;
    int32_t *prompt = xmalloc(L * sizeof(int32_t));
    uint64_t rng = o->seed;
    struct engine_request r = {.prompt = prompt, .n_prompt = L, .sampling = sampling_params_default(),
                               .max_tokens = o->output_len, .ignore_eos = true, .logprobs = o->logprobs};
    r.sampling.temperature = o->temperature, r.sampling.top_p = o->top_p;
    t->t0 = mono_seconds();
    while (t->finished < n && !rc) {
        for (; submitted < n && submitted - t->finished < o->concurrency; submitted++) {
            prompt[0] = cfg->bos_token_id >= 0 ? cfg->bos_token_id : 1;
            for (int i = 1; i < L; i++) prompt[i] = 3 + (int32_t)(splitmix(&rng) % (uint64_t)(cfg->vocab_size - 3));
            t->req[submitted].t_submit = mono_seconds();
            if ((t->req[submitted].id = engine_submit(e, &r)) < 0) {
                fprintf(stderr, "tessera: %s\n", err_msg());
                rc = EXIT_USAGE;
                break;
            }
        }
        if (rc || engine_step(e) < 0) break;
        rc = take_events(e, t, n);
    }
    t->dur = mono_seconds() - t->t0;
    free(prompt);
    return rc;
}

static void report(const struct bench_opts *o, struct tally *t, const struct engine_stats *st)
{
    int n = o->n, L = o->input_len;
    double dur = t->dur;
    struct dist a = summarize(t->ttft, t->finished), p = summarize(t->tpot, t->n_tpot);
    printf("requests:           %d (%d in flight), %d prompt + %d output tokens each\n", n, o->concurrency, L,
           o->output_len);
    printf("duration:           %.3f s\n", dur);
    printf("requests/s:         %.3f\n", n / dur);
    printf("output tokens/s:    %.1f\n", t->out_tokens / dur);
    printf("total tokens/s:     %.1f\n", ((double)n * L + t->out_tokens) / dur);
    /* one wave (all requests in flight at once): the generation rate once every
     * prompt is in, what llama-batched-bench calls S_TG */
    double end = t->t0 + dur, decode_rate = 0;
    if (n <= o->concurrency && end > t->t_all_first)
        decode_rate = (t->out_tokens - t->tokens_at_all_first) / (end - t->t_all_first);
    if (decode_rate > 0) printf("decode tokens/s:    %.1f (after every request's first token)\n", decode_rate);
    printf("TTFT ms:            mean %.1f  p50 %.1f  p90 %.1f  p99 %.1f\n", a.mean * 1e3, a.p50 * 1e3,
           a.p90 * 1e3, a.p99 * 1e3);
    printf("TPOT ms:            mean %.2f  p50 %.2f  p90 %.2f  p99 %.2f\n", p.mean * 1e3, p.p50 * 1e3,
           p.p90 * 1e3, p.p99 * 1e3);
    printf("engine:             %lld steps (%lld replayed from graphs), %lld preemptions, %lld prompt chunks, "
           "prefix hits %lld of %lld tokens\n", (long long)st->steps, (long long)st->graph_steps,
           (long long)st->preemptions, (long long)st->prefill_chunks,
           (long long)st->prefix_hits, (long long)st->prefix_queries);
    if (st->steps)
        printf("step ms:            schedule %.3f  forward %.3f  sample %.3f (engine thread, mean per step)\n",
               st->t_schedule * 1e3 / st->steps, st->t_forward * 1e3 / st->steps, st->t_sample * 1e3 / st->steps);
    if (o->json)
        printf("{\"num_prompts\": %d, \"concurrency\": %d, \"input_len\": %d, \"output_len\": %d, "
               "\"duration_s\": %.6f, \"requests_per_s\": %.6f, \"output_tokens_per_s\": %.3f, "
               "\"total_tokens_per_s\": %.3f, \"decode_tokens_per_s\": %.3f, \"ttft_ms\": {\"mean\": %.3f, \"p50\": %.3f, \"p90\": %.3f, "
               "\"p99\": %.3f}, \"tpot_ms\": {\"mean\": %.3f, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f}, "
               "\"preemptions\": %lld}\n",
               n, o->concurrency, L, o->output_len, dur, n / dur, t->out_tokens / dur,
               ((double)n * L + t->out_tokens) / dur, decode_rate, a.mean * 1e3, a.p50 * 1e3, a.p90 * 1e3, a.p99 * 1e3,
               p.mean * 1e3, p.p50 * 1e3, p.p90 * 1e3, p.p99 * 1e3, (long long)st->preemptions);
}

static int run(struct bench_opts *o)
{
    char err[1024];
    struct launched l;
    if (launch(&l, o->model_dir, &o->bk, &o->ec, false, err, sizeof(err))) {
        fprintf(stderr, "tessera: %s\n", err);
        return EXIT_USAGE;
    }
    struct tally t = {.req = xcalloc(o->n, sizeof(struct slot)), .ttft = xmalloc(o->n * sizeof(double)),
                      .tpot = xmalloc(o->n * sizeof(double))};
    int rc = drive(o, l.eng, &t);
    struct engine_stats st = engine_stats(l.eng);
    if (!rc) report(o, &t, &st);
    free(t.req);
    free(t.ttft);
    free(t.tpot);
    launch_free(&l);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    struct bench_opts o = {.n = 64, .concurrency = 16, .input_len = 128, .output_len = 64, .logprobs = -1, .top_p = 1};
    o.ec = engine_config_default();
    o.bk = cli_backend_default();
    if (parse(argc, argv, &o)) return EXIT_USAGE;
    if (comm_rank() > 0) return launch_worker(o.model_dir, &o.bk);
    return run(&o);
}
