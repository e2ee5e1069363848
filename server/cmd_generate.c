/* cmd_generate.c: `tessera generate MODEL_DIR -p PROMPT`: one prompt, text
 * printed as it is produced, speed on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/backend.h"
#include "../engine/comm.h"
#include "../base/err.h"
#include "../engine/engine.h"
#include "../engine/model_config.h"
#include "../tokenizer/tokenizer.h"
#include "cli.h"
#include "launch.h"

struct gen_opts {
    const char *model_dir, *prompt;
    int max_tokens;
    struct cli_backend bk;
    struct sampling_params sp;
    bool set[4];              /* temperature, top-k, top-p, min-p given */
    bool ignore_eos, print_ids, echo;
    enum dtype quantization;  /* --quantization (DTYPE_F32: none) */
};

static void help(FILE *f)
{
    fprintf(f,
            "usage: tessera generate MODEL_DIR -p PROMPT [options]\n"
            "\n"
            "Generates a continuation of PROMPT with the model in MODEL_DIR (a Hugging Face\n"
            "Llama-family folder: config.json, *.safetensors, tokenizer.model or tokenizer.json;\n"
            "or a GGUF file: F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K). Text goes to stdout as it is\n"
            "produced; prefill and decode speed go to stderr.\n"
            "\n"
            "options:\n"
            "  -p, --prompt TEXT          the prompt (required)\n"
            "  -n, --max-tokens N         tokens to generate (default 128)\n"
            "  --temperature T            0 = greedy, at most 2 (default 0.8, or generation_config.json's)\n"
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
            "  --quantization q8_0|q4_0|fp8  quantize the F32/F16/BF16 matmul weights at load (fp8: CUDA)\n"
            "\n%s"
            "\n"
            "exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad model folder\n",
            CLI_BACKEND_HELP);
}

static int parse(int argc, char **argv, struct gen_opts *o)
{
    struct sampling_params *sp = &o->sp;
    struct cli_opt t[CLI_MAX_OPTS] = {
        {"prompt", 'p', CLI_STR, &o->prompt, 0, 0, NULL},
        {"max-tokens", 'n', CLI_INT, &o->max_tokens, 0, 1 << 24, NULL},
        {"top-k", 0, CLI_INT, &sp->top_k, 0, 1 << 30, &o->set[1]},
        {"seed", 0, CLI_U64, &sp->seed, 0, 0, &sp->has_seed},
        {"ignore-eos", 0, CLI_SET, &o->ignore_eos, 0, 0, NULL},
        {"no-echo", 0, CLI_CLEAR, &o->echo, 0, 0, NULL},
        {"ids", 0, CLI_SET, &o->print_ids, 0, 0, NULL},
        {"quantization", 0, CLI_QUANT, &o->quantization, 0, 0, NULL},
    };
    int n = 8;
    /* the real-valued sampling options: names and ranges from the engine (sampler.h) */
    static char names[8][32];
    for (int i = 0; i < SAMPLING_N_RANGES; i++) {
        const struct sampling_range *r = &SAMPLING_RANGES[i];
        snprintf(names[i], sizeof(names[i]), "%s", r->name);
        for (char *c = names[i]; *c; c++) *c = *c == '_' ? '-' : *c;
        bool *given = !strcmp(r->name, "temperature") ? &o->set[0] : !strcmp(r->name, "top_p") ? &o->set[2]
                      : !strcmp(r->name, "min_p") ? &o->set[3] : NULL;
        t[n++] = (struct cli_opt){names[i], 0, CLI_FLOAT, (char *)sp + r->offset, r->lo, r->hi, given};
    }
    n += cli_backend_opts(&o->bk, t + n);
    if (cli_parse("generate", argc, argv, t, n, &o->model_dir, help)) return -1;
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
static void default_sampling(struct gen_opts *o, const struct model_config *c)
{
    const struct sampling_params *given = &o->sp;
    const bool *set = o->set;
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

/* Steps the engine until the request ends, printing its text (or ids) as it
 * comes; *t_first gets the time of the first token. The exit code. */
static int stream(const struct gen_opts *o, engine *e, struct detok *dt, double *t_first, int *n_gen)
{
    const char *text;
    long len;
    for (bool done = false; !done;) {
        if (engine_step(e) < 0) return EXIT_RUNTIME;
        struct engine_event ev;
        while (engine_poll(e, &ev, 1) == 1) {
            if (ev.token >= 0) {
                if (++*n_gen == 1) *t_first = mono_seconds();
                if (o->print_ids) printf("%s%d", *n_gen > 1 ? " " : "", ev.token);
                else if (ev.finish != FINISH_STOP && (len = detok_push(dt, ev.token, &text)) > 0) put(text, len);
            }
            if (ev.finish == FINISH_ABORT) return EXIT_RUNTIME;
            if (ev.finish != FINISH_NONE) done = true;
        }
    }
    return 0;
}

static int run(struct gen_opts *o)
{
    char err[1024];
    struct engine_config ec = engine_config_default();
    ec.max_num_seqs = 1;
    ec.log = false;
    ec.quantization = o->quantization;
    struct launched l;
    if (launch(&l, o->model_dir, &o->bk, &ec, true, err, sizeof(err))) {
        fprintf(stderr, "tessera: %s\n", err);
        return EXIT_USAGE;
    }
    int32_t *ids;
    int rc = 0, n_prompt = tok_encode_all(l.tok, o->prompt, strlen(o->prompt), tok_add_bos(l.tok), &ids);
    if (n_prompt < 0) {
        fprintf(stderr, "tessera: the prompt cannot be tokenized\n");
        n_prompt = 0;
        rc = EXIT_USAGE;
    }
    default_sampling(o, engine_model_config(l.eng));
    /* -n N: at most N tokens, and no further than the context */
    int room = engine_max_model_len(l.eng) - n_prompt, max_tokens = o->max_tokens < room ? o->max_tokens : room;
    struct engine_request req = {.prompt = ids, .n_prompt = n_prompt, .sampling = o->sp,
                                 .max_tokens = max_tokens > 0 ? max_tokens : 1, .ignore_eos = o->ignore_eos,
                                 .logprobs = -1};
    if (!rc && o->max_tokens > 0 && engine_submit(l.eng, &req) < 0) {
        fprintf(stderr, "tessera: %s\n", err_msg());
        rc = EXIT_RUNTIME;
    }
    struct detok dt;
    detok_init(&dt, l.tok, ids, n_prompt);
    if (o->echo && !o->print_ids) put(o->prompt, (long)strlen(o->prompt));
    double t0 = mono_seconds(), t1 = t0;
    int n_gen = 0;
    if (!rc && o->max_tokens > 0) rc = stream(o, l.eng, &dt, &t1, &n_gen);
    const char *text;
    long len;
    if (!o->print_ids && (len = detok_flush(&dt, &text)) > 0) put(text, len);
    double t2 = mono_seconds();
    printf("\n");
    fflush(stdout);
    if (!rc)
        fprintf(stderr, "prefill: %d tokens in %.3f s (%.1f tok/s); decode: %d tokens in %.3f s (%.1f tok/s)\n",
                n_prompt, t1 - t0, n_prompt / (t1 - t0 > 0 ? t1 - t0 : 1e-9), n_gen > 0 ? n_gen - 1 : 0,
                t2 - t1, (n_gen > 1 ? n_gen - 1 : 0) / (t2 - t1 > 0 ? t2 - t1 : 1e-9));
    detok_deinit(&dt);
    launch_free(&l);
    free(ids);
    return rc;
}

int cmd_generate(int argc, char **argv)
{
    struct gen_opts o = {.max_tokens = 128, .bk = cli_backend_default(), .echo = true};
    o.sp = sampling_params_default();
    if (parse(argc, argv, &o)) return EXIT_USAGE;
    if (comm_rank() > 0) return launch_worker(o.model_dir, &o.bk);
    return run(&o);
}
