/* cli.c: option tables of cli.h, parsed with getopt_long. */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/comm.h"
#include "../base/err.h"

const char CLI_BACKEND_HELP[] =
    "device options:\n"
    "  --device cpu|cuda          where the model runs (default cpu)\n"
    "  --threads N                CPU compute threads (default: the cores this process may use)\n"
    "  --dtype T                  CUDA weights and KV cache: bfloat16 (default), float16, float32\n"
    "  --gpu-memory-utilization F CUDA: share of the GPU memory for weights and KV cache (default 0.9)\n"
    "  --enforce-eager            CUDA: run decode steps op by op, not replayed from CUDA graphs\n"
    "  --kv-cache-dtype auto|fp8  CUDA: the KV cache as --dtype (auto) or as fp8 E4M3 (half the\n"
    "                             memory: twice the cached tokens; per-layer K and V scales set\n"
    "                             from the first step)\n"
    "  --tensor-parallel-size N   ranks the model is split over: must be the number that mpirun\n"
    "                             started (mpirun -np N tessera ...); default: that number\n";

const char CLI_ENGINE_HELP[] =
    "engine options:\n"
    "  --max-num-seqs N           sequences running at once (default 64)\n"
    "  --max-num-batched-tokens N tokens per forward step; longer prompts are chunked (default 512)\n"
    "  --max-model-len N          context length (default: the model's)\n"
    "  --kv-cache-memory BYTES    K/V cache size, suffix K/M/G allowed (default: max-num-seqs full\n"
    "                             contexts, at most a quarter of the available memory, or on CUDA\n"
    "                             what --gpu-memory-utilization leaves after the weights)\n"
    "  --no-prefix-caching        do not reuse the K/V of shared prompt prefixes\n"
    "  --quantization q8_0|q4_0|fp8  quantize the F32/F16/BF16 matmul weights at load (fp8: e4m3\n"
    "                             with a scale per output channel, CUDA only; GGUF files\n"
    "                             that are already quantized run as they are)\n";

struct cli_backend cli_backend_default(void)
{
    return (struct cli_backend){.threads = 0, .cuda = false, .dtype = DTYPE_BF16, .gpu_mem_util = 0.9};
}

int cli_backend_opts(struct cli_backend *bk, struct cli_opt *o)
{
    o[0] = (struct cli_opt){"threads", 0, CLI_INT, &bk->threads, 1, 1024, NULL};
    o[1] = (struct cli_opt){"device", 0, CLI_DEVICE, &bk->cuda, 0, 0, NULL};
    o[2] = (struct cli_opt){"dtype", 0, CLI_DTYPE, &bk->dtype, 0, 0, NULL};
    o[3] = (struct cli_opt){"gpu-memory-utilization", 0, CLI_DOUBLE, &bk->gpu_mem_util, 0.05, 1.0, NULL};
    o[4] = (struct cli_opt){"tensor-parallel-size", 0, CLI_RANKS, NULL, 1, 4096, NULL};
    o[5] = (struct cli_opt){"enforce-eager", 0, CLI_SET, &bk->enforce_eager, 0, 0, NULL};
    o[6] = (struct cli_opt){"kv-cache-dtype", 0, CLI_KV_DTYPE, &bk->kv_fp8, 0, 0, NULL};
    return 7;
}

int cli_engine_opts(struct engine_config *c, struct cli_opt *o)
{
    o[0] = (struct cli_opt){"max-num-seqs", 0, CLI_INT, &c->max_num_seqs, 1, 4096, NULL};
    o[1] = (struct cli_opt){"max-num-batched-tokens", 0, CLI_INT, &c->max_num_batched_tokens, 1, 1 << 20, NULL};
    o[2] = (struct cli_opt){"max-model-len", 0, CLI_INT, &c->max_model_len, 1, 1 << 24, NULL};
    o[3] = (struct cli_opt){"kv-cache-memory", 0, CLI_BYTES, &c->kv_cache_memory, 0, 0, NULL};
    o[4] = (struct cli_opt){"no-prefix-caching", 0, CLI_CLEAR, &c->prefix_caching, 0, 0, NULL};
    o[5] = (struct cli_opt){"quantization", 0, CLI_QUANT, &c->quantization, 0, 0, NULL};
    return 6;
}

/* BYTES with an optional K, M or G (powers of 1024) suffix. */
static bool parse_bytes(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mult = 1;
    if (*end == 'K' || *end == 'k') mult = 1024.0, end++;
    else if (*end == 'M' || *end == 'm') mult = 1048576.0, end++;
    else if (*end == 'G' || *end == 'g') mult = 1073741824.0, end++;
    if (*end == 'i' && mult > 1) end++;
    if (*end == 'B') end++;
    if (errno || end == s || *end || !(v > 0) || v * mult > 9e18) return false;
    *out = (int64_t)(v * mult);
    return true;
}

static int bad_number(const struct cli_opt *o, const char *v, const char *what)
{
    if (o->type == CLI_INT)
        fprintf(stderr, "tessera: --%s must be an integer in [%ld, %ld], got \"%s\"\n", o->name, (long)o->lo,
                (long)o->hi, v);
    else
        fprintf(stderr, "tessera: --%s must be %s, got \"%s\"\n", o->name, what, v);
    return -1;
}

/* The words of the options that take one, and what each stores: a bool
 * (CLI_DEVICE, CLI_KV_DTYPE) or an enum dtype. */
static const struct {
    enum cli_type type;
    const char *word;
    int value;
} WORDS[] = {
    {CLI_DEVICE, "cpu", 0}, {CLI_DEVICE, "cuda", 1},
    {CLI_DTYPE, "bfloat16", DTYPE_BF16}, {CLI_DTYPE, "bf16", DTYPE_BF16},
    {CLI_DTYPE, "float16", DTYPE_F16}, {CLI_DTYPE, "half", DTYPE_F16}, {CLI_DTYPE, "fp16", DTYPE_F16},
    {CLI_DTYPE, "float32", DTYPE_F32}, {CLI_DTYPE, "float", DTYPE_F32}, {CLI_DTYPE, "fp32", DTYPE_F32},
    {CLI_QUANT, "q8_0", DTYPE_Q8_0}, {CLI_QUANT, "Q8_0", DTYPE_Q8_0}, {CLI_QUANT, "q4_0", DTYPE_Q4_0},
    {CLI_QUANT, "Q4_0", DTYPE_Q4_0}, {CLI_QUANT, "fp8", DTYPE_F8_ROWS},
    {CLI_KV_DTYPE, "auto", 0}, {CLI_KV_DTYPE, "fp8", 1}, {CLI_KV_DTYPE, "fp8_e4m3", 1},
};

static int store_word(const struct cli_opt *o, const char *v)
{
    for (size_t i = 0; i < sizeof(WORDS) / sizeof(WORDS[0]); i++) {
        if (WORDS[i].type != o->type || strcmp(WORDS[i].word, v)) continue;
        if (o->type == CLI_DEVICE || o->type == CLI_KV_DTYPE) *(bool *)o->dst = WORDS[i].value;
        else *(enum dtype *)o->dst = (enum dtype)WORDS[i].value;
        return 0;
    }
    return bad_number(o, v, o->type == CLI_DEVICE ? "cpu or cuda"
                            : o->type == CLI_DTYPE ? "bfloat16, float16 or float32"
                            : o->type == CLI_QUANT ? "q8_0, q4_0 or fp8"
                                                   : "auto or fp8");
}

/* Stores the value v of option o. 0, or -1 after saying why not. */
static int store(const struct cli_opt *o, const char *v)
{
    char *end;
    errno = 0;
    char range[96];
    snprintf(range, sizeof(range), "a number in [%g, %g]", o->lo, o->hi);
    switch (o->type) {
    case CLI_SET: *(bool *)o->dst = true; return 0;
    case CLI_CLEAR: *(bool *)o->dst = false; return 0;
    case CLI_STR: *(const char **)o->dst = v; return 0;
    case CLI_INT: {
        long l = strtol(v, &end, 10);
        if (errno || end == v || *end || l < o->lo || l > o->hi) return bad_number(o, v, "");
        *(int *)o->dst = (int)l;
        return 0;
    }
    case CLI_FLOAT:
    case CLI_DOUBLE: {
        double d = strtod(v, &end);
        if (errno || end == v || *end || !(d >= o->lo && d <= o->hi)) return bad_number(o, v, range);
        if (o->type == CLI_FLOAT) *(float *)o->dst = (float)d;
        else *(double *)o->dst = d;
        return 0;
    }
    case CLI_U64: {
        unsigned long long u = strtoull(v, &end, 10);
        if (errno || end == v || *end || *v == '-') return bad_number(o, v, "a non-negative integer");
        *(uint64_t *)o->dst = u;
        return 0;
    }
    case CLI_BYTES:
        return parse_bytes(v, o->dst) ? 0 : bad_number(o, v, "a positive byte count (e.g. 4G)");
    case CLI_DEVICE:
    case CLI_DTYPE:
    case CLI_QUANT:
    case CLI_KV_DTYPE:
        return store_word(o, v);
    case CLI_RANKS: {
        long l = strtol(v, &end, 10);
        if (errno || end == v || *end || l < o->lo || l > o->hi) return bad_number(o, v, "");
        if (l == comm_world()) return 0;
        fprintf(stderr, "tessera: --tensor-parallel-size %ld, but this job has %d rank%s: start it with "
                "mpirun -np %ld\n", l, comm_world(), comm_world() == 1 ? "" : "s", l);
        return -1;
    }
    }
    return -1;
}

int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts, int n, const char **positional,
              void (*help)(FILE *f))
{
    return cli_parse_n(cmd, argc, argv, opts, n, positional, 1, help);
}

int cli_parse_n(const char *cmd, int argc, char **argv, const struct cli_opt *opts, int n, const char **positional,
                int n_positional, void (*help)(FILE *f))
{
    struct option lo[CLI_MAX_OPTS + 2];
    char shorts[2 * CLI_MAX_OPTS + 4] = ":h";
    size_t k = 2;
    CHECK(n <= CLI_MAX_OPTS);
    for (int i = 0; i < n; i++) {
        bool value = opts[i].type != CLI_SET && opts[i].type != CLI_CLEAR;
        lo[i] = (struct option){opts[i].name, value ? required_argument : no_argument, NULL, 256 + i};
        if (opts[i].short_name) {
            shorts[k++] = opts[i].short_name;
            if (value) shorts[k++] = ':';
        }
    }
    shorts[k] = '\0';
    lo[n] = (struct option){"help", no_argument, NULL, 'h'};
    lo[n + 1] = (struct option){0};
    opterr = 0;
    optind = 1;
    for (int c; (c = getopt_long(argc, argv, shorts, lo, NULL)) != -1;) {
        int i = c >= 256 ? c - 256 : -1;
        for (int j = 0; j < n && i < 0; j++)
            if (opts[j].short_name == c) i = j;
        if (c == 'h') {
            help(stdout);
            exit(0);
        } else if (c == ':') {
            fprintf(stderr, "tessera: option %s needs a value\n", argv[optind - 1]);
            return -1;
        } else if (c == '?' || i < 0) {
            fprintf(stderr, "tessera %s: unknown option %s (see tessera %s --help)\n", cmd, argv[optind - 1], cmd);
            return -1;
        }
        if (store(&opts[i], optarg)) return -1;
        if (opts[i].given) *opts[i].given = true;
    }
    for (int i = optind, k = 0; i < argc; i++) {
        while (k < n_positional && positional[k]) k++;
        if (k == n_positional) {
            fprintf(stderr, "tessera %s: unexpected argument \"%s\"\n", cmd, argv[i]);
            return -1;
        }
        positional[k] = argv[i];
    }
    return 0;
}
