/* cmd_generate.c: `tessera generate MODEL_DIR -p PROMPT`: one prompt, text
 * printed as it is produced, speed on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/backend.h"
#include "../engine/comm.h"
#include "../engine/err.h"
#include "../engine/engine.h"
#include "../tokenizer/tokenizer.h"
#include "cli.h"

struct gen_opts {
    const char *model_dir, *prompt;
    long max_tokens;
    struct cli_backend bk;
    struct sampling_params sp;
    bool ignore_eos, print_ids, echo;
};

static void help(FILE *f)
{
    fprintf(f,
            "usage: tessera generate MODEL_DIR -p PROMPT [options]\n"
            "\n"
            "Generates a continuation of PROMPT with the model in MODEL_DIR (a Hugging Face\n"
            "Llama-family folder: config.json, *.safetensors, tokenizer.model). Text goes to\n"
            "stdout as it is produced; prefill and decode speed go to stderr.\n"
            "\n"
            "options:\n"
            "  -p, --prompt TEXT          the prompt (required)\n"
            "  -n, --max-tokens N         tokens to generate (default 128)\n"
            "  --temperature T            0 = greedy (default 0.8, or generation_config.json's)\n"
            "  --top-k K                  keep the K most likely tokens, 0 = off (default 40)\n"
            "  --top-p P                  nucleus sampling, 1 = off (default 0.95)\n"
            "  --min-p P                  drop tokens below P x the top probability (default 0.05)\n"
            "  --repetition-penalty R     1 = off (default 1)\n"
            "  --presence-penalty X       -2..2 (default 0)\n"
            "  --frequency-penalty X      -2..2 (default 0)\n"
            "  --seed S                   same seed, same tokens (default: from the clock)\n"
            "  --ignore-eos               do not stop at end-of-sequence tokens\n"
            "  --no-echo                  do not print the prompt before the continuation\n"
            "  --ids                      print generated token ids instead of text\n"
            "\n%s"
            "\n"
            "exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad model folder\n",
            CLI_BACKEND_HELP);
}

static int parse(int argc, char **argv, struct gen_opts *o)
{
    const char *v;
    double d;
    long l;
    int r;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            help(stdout);
            exit(0);
        } else if (cli_opt(argc, argv, &i, "-p", &v) || cli_opt(argc, argv, &i, "--prompt", &v)) {
            o->prompt = v;
        } else if (cli_opt(argc, argv, &i, "-n", &v) || cli_opt(argc, argv, &i, "--max-tokens", &v)) {
            if (!cli_int("--max-tokens", v, 0, 1 << 24, &o->max_tokens)) return -1;
        } else if (cli_opt(argc, argv, &i, "--temperature", &v)) {
            if (!cli_float("--temperature", v, 0, 100, &d)) return -1;
            o->sp.temperature = (float)d;
        } else if (cli_opt(argc, argv, &i, "--top-k", &v)) {
            if (!cli_int("--top-k", v, 0, 1 << 30, &l)) return -1;
            o->sp.top_k = (int)l;
        } else if (cli_opt(argc, argv, &i, "--top-p", &v)) {
            if (!cli_float("--top-p", v, 1e-6, 1, &d)) return -1;
            o->sp.top_p = (float)d;
        } else if (cli_opt(argc, argv, &i, "--min-p", &v)) {
            if (!cli_float("--min-p", v, 0, 1, &d)) return -1;
            o->sp.min_p = (float)d;
        } else if (cli_opt(argc, argv, &i, "--repetition-penalty", &v)) {
            if (!cli_float("--repetition-penalty", v, 1e-3, 100, &d)) return -1;
            o->sp.repetition_penalty = (float)d;
        } else if (cli_opt(argc, argv, &i, "--presence-penalty", &v)) {
            if (!cli_float("--presence-penalty", v, -2, 2, &d)) return -1;
            o->sp.presence_penalty = (float)d;
        } else if (cli_opt(argc, argv, &i, "--frequency-penalty", &v)) {
            if (!cli_float("--frequency-penalty", v, -2, 2, &d)) return -1;
            o->sp.frequency_penalty = (float)d;
        } else if (cli_opt(argc, argv, &i, "--seed", &v)) {
            if (!cli_u64("--seed", v, &o->sp.seed)) return -1;
            o->sp.has_seed = true;
        } else if ((r = cli_backend_opt(argc, argv, &i, &o->bk))) {
            if (r < 0) return -1;
        } else if (!strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
        } else if (!strcmp(a, "--no-echo")) {
            o->echo = false;
        } else if (!strcmp(a, "--ids")) {
            o->print_ids = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "tessera generate: unknown option %s (see tessera generate --help)\n", a);
            return -1;
        } else if (!o->model_dir) {
            o->model_dir = a;
        } else {
            fprintf(stderr, "tessera generate: unexpected argument \"%s\"\n", a);
            return -1;
        }
    }
    if (!o->model_dir || !o->prompt) {
        fprintf(stderr, "tessera generate: MODEL_DIR and -p PROMPT are required (see tessera generate --help)\n");
        return -1;
    }
    return 0;
}

static void put(const char *s, long n)
{
    fwrite(s, 1, n, stdout);
    fflush(stdout);
}

/* Sampling defaults: llama.cpp's, then generation_config.json's, then flags. */
static void default_sampling(struct gen_opts *o, const struct model_config *c, const struct sampling_params *given,
                             const bool *set)
{
    struct sampling_params d = sampling_params_default();
    d.temperature = c->gen_temperature >= 0 ? c->gen_temperature : 0.8f;
    d.top_k = c->gen_top_k >= 0 ? c->gen_top_k : 40;
    d.top_p = c->gen_top_p > 0 ? c->gen_top_p : 0.95f;
    d.min_p = 0.05f;
    if (set[0]) d.temperature = given->temperature;
    if (set[1]) d.top_k = given->top_k;
    if (set[2]) d.top_p = given->top_p;
    if (set[3]) d.min_p = given->min_p;
    d.repetition_penalty = given->repetition_penalty;
    d.presence_penalty = given->presence_penalty;
    d.frequency_penalty = given->frequency_penalty;
    d.seed = given->seed;
    d.has_seed = given->has_seed;
    o->sp = d;
}

static int run(struct gen_opts *o, const bool *set)
{
    char err[1024];
    tokenizer *tok;
    if (tok_load(&tok, o->model_dir, err, sizeof(err))) {
        fprintf(stderr, "tessera: %s\n", err);
        return EXIT_USAGE;
    }
    struct backend *b = cli_backend_create(&o->bk);
    if (!b) {
        fprintf(stderr, "tessera: %s\n", err_msg());
        tok_free(tok);
        return EXIT_USAGE;
    }
    struct engine_config ec = engine_config_default();
    ec.max_num_seqs = 1;
    ec.log = false;
    engine *e;
    if (engine_create(&e, o->model_dir, b, &ec)) {
        fprintf(stderr, "tessera: %s\n", err_msg());
        b->ops->destroy(b);
        tok_free(tok);
        return EXIT_USAGE;
    }
    const struct model_config *cfg = engine_model_config(e);
    int rc = 0;
    if (tok_vocab_size(tok) > cfg->vocab_size) {
        fprintf(stderr, "tessera: %s/tokenizer.model: %d pieces but the model has vocab_size %d\n",
                o->model_dir, tok_vocab_size(tok), cfg->vocab_size);
        rc = EXIT_USAGE;
    }
    int cap = (int)strlen(o->prompt) + 8;
    int32_t *ids = xmalloc(cap * sizeof(int32_t));
    int n_prompt = tok_encode(tok, o->prompt, strlen(o->prompt), tok_add_bos(tok), ids, cap);
    CHECK(n_prompt >= 0);
    default_sampling(o, cfg, &o->sp, set);
    int32_t tok_eos = tok_eos_id(tok);
    struct engine_request req = {.prompt = ids, .n_prompt = n_prompt, .sampling = o->sp,
                                 .max_tokens = (int)o->max_tokens, .stop_ids = &tok_eos,
                                 .n_stop_ids = tok_eos >= 0 && !o->ignore_eos, .ignore_eos = o->ignore_eos,
                                 .logprobs = -1};
    if (!rc && o->max_tokens > 0 && engine_submit(e, &req) < 0) {
        fprintf(stderr, "tessera: %s\n", err_msg());
        rc = EXIT_RUNTIME;
    }
    struct detok dt;
    detok_init(&dt, tok, ids, n_prompt);
    if (o->echo && !o->print_ids) put(o->prompt, (long)strlen(o->prompt));

    double t0 = mono_seconds(), t1 = t0;
    int n_gen = 0;
    bool done = rc || o->max_tokens == 0;
    const char *text;
    long len;
    while (!done) {
        if (engine_step(e) < 0) {
            rc = EXIT_RUNTIME;
            break;
        }
        struct engine_event ev;
        while (engine_poll(e, &ev, 1) == 1) {
            if (ev.token >= 0) {
                if (++n_gen == 1) t1 = mono_seconds();
                bool eos = ev.finish == FINISH_STOP;
                if (o->print_ids) printf("%s%d", n_gen > 1 ? " " : "", ev.token);
                else if (!eos && (len = detok_push(&dt, ev.token, &text)) > 0) put(text, len);
            }
            if (ev.finish != FINISH_NONE) done = true;
            if (ev.finish == FINISH_ABORT) rc = EXIT_RUNTIME;
        }
    }
    if (!o->print_ids && (len = detok_flush(&dt, &text)) > 0) put(text, len);
    double t2 = mono_seconds();
    printf("\n");
    fflush(stdout);
    if (!rc)
        fprintf(stderr, "prefill: %d tokens in %.3f s (%.1f tok/s); decode: %d tokens in %.3f s (%.1f tok/s)\n",
                n_prompt, t1 - t0, n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen > 0 ? n_gen - 1 : 0,
                t2 - t1, (n_gen > 1 ? n_gen - 1 : 0) / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    detok_deinit(&dt);
    engine_destroy(e);
    b->ops->destroy(b);
    tok_free(tok);
    free(ids);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    struct gen_opts o = {.max_tokens = 128, .bk = cli_backend_default(), .echo = true};
    o.sp = sampling_params_default();
    o.sp.temperature = -1; /* unset markers */
    o.sp.top_k = -1;
    o.sp.top_p = -1;
    o.sp.min_p = -1;
    if (parse(argc, argv, &o)) return EXIT_USAGE;
    if (comm_rank() > 0) return cli_run_worker(o.model_dir, &o.bk);
    bool set[4] = {o.sp.temperature >= 0, o.sp.top_k >= 0, o.sp.top_p >= 0, o.sp.min_p >= 0};
    return run(&o, set);
}
