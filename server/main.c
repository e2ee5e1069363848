/* main.c: the tessera command line: dispatches to subcommands. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/comm.h"
#include "../engine/engine.h"
#include "../engine/err.h"
#include "cli.h"

static void usage(FILE *f)
{
    fprintf(f,
            "tessera %s: LLM text generation for Hugging Face Llama-family models\n"
            "\n"
            "usage: tessera COMMAND [OPTIONS]\n"
            "\n"
            "commands:\n"
            "  generate MODEL_DIR -p PROMPT   generate text from a prompt\n"
            "  serve MODEL_DIR                OpenAI-compatible HTTP server\n"
            "  bench MODEL_DIR                offline throughput and latency of batched requests\n"
            "\n"
            "  tessera COMMAND --help         options of a command\n"
            "  tessera --version              print the version\n",
            TESSERA_VERSION);
}

bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return false;
    if (a[n] == '=') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != '\0') return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "tessera: option %s needs a value\n", name);
        exit(EXIT_USAGE);
    }
    *val = argv[++*i];
    return true;
}

bool cli_int(const char *name, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "tessera: %s must be an integer in [%ld, %ld], got \"%s\"\n", name, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_float(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "tessera: %s must be a number in [%g, %g], got \"%s\"\n", name, lo, hi, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_u64(const char *name, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-') {
        fprintf(stderr, "tessera: %s must be a non-negative integer, got \"%s\"\n", name, s);
        return false;
    }
    *out = v;
    return true;
}

const char CLI_BACKEND_HELP[] =
    "device options:\n"
    "  --device cpu|cuda          where the model runs (default cpu)\n"
    "  --threads N                CPU compute threads (default: the cores this process may use)\n"
    "  --dtype T                  CUDA weights and KV cache: bfloat16 (default), float16, float32\n"
    "  --gpu-memory-utilization F CUDA: share of the GPU memory for weights and KV cache (default 0.9)\n"
    "  --tensor-parallel-size N   ranks the model is split over: must be the number that mpirun\n"
    "                             started (mpirun -np N tessera ...); default: that number\n";

struct cli_backend cli_backend_default(void)
{
    return (struct cli_backend){.threads = 0, .cuda = false, .dtype = DTYPE_BF16, .gpu_mem_util = 0.9};
}

int cli_backend_opt(int argc, char **argv, int *i, struct cli_backend *o)
{
    const char *v;
    long l;
    if (cli_opt(argc, argv, i, "--threads", &v)) return cli_int("--threads", v, 1, 1024, &o->threads) ? 1 : -1;
    if (cli_opt(argc, argv, i, "--tensor-parallel-size", &v)) {
        if (!cli_int("--tensor-parallel-size", v, 1, 4096, &l)) return -1;
        if (l != comm_world()) {
            fprintf(stderr, "tessera: --tensor-parallel-size %ld, but this job has %d rank%s: start it with "
                    "mpirun -np %ld\n", l, comm_world(), comm_world() == 1 ? "" : "s", l);
            return -1;
        }
        return 1;
    }
    if (cli_opt(argc, argv, i, "--device", &v)) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda")) {
            fprintf(stderr, "tessera: --device must be cpu or cuda, got \"%s\"\n", v);
            return -1;
        }
        o->cuda = !strcmp(v, "cuda");
        return 1;
    }
    if (cli_opt(argc, argv, i, "--dtype", &v)) {
        if (!strcmp(v, "bfloat16") || !strcmp(v, "bf16")) o->dtype = DTYPE_BF16;
        else if (!strcmp(v, "float16") || !strcmp(v, "half") || !strcmp(v, "fp16")) o->dtype = DTYPE_F16;
        else if (!strcmp(v, "float32") || !strcmp(v, "float") || !strcmp(v, "fp32")) o->dtype = DTYPE_F32;
        else {
            fprintf(stderr, "tessera: --dtype must be bfloat16, float16 or float32, got \"%s\"\n", v);
            return -1;
        }
        return 1;
    }
    if (cli_opt(argc, argv, i, "--gpu-memory-utilization", &v))
        return cli_float("--gpu-memory-utilization", v, 0.05, 1.0, &o->gpu_mem_util) ? 1 : -1;
    return 0;
}

struct backend *cli_backend_create(const struct cli_backend *o)
{
    if (!o->cuda) return backend_cpu_create((int)o->threads);
#ifdef TESSERA_CUDA
    return backend_cuda_create(comm_local_rank(), o->dtype, o->gpu_mem_util); /* a GPU per rank of the node */
#else
    err_set(ERR_UNSUPPORTED, "this build has no CUDA backend: build with make CUDA=1 (or make emu for the "
            "emulated one)");
    return NULL;
#endif
}

int cli_run_worker(const char *model_dir, const struct cli_backend *bk)
{
    signal(SIGINT, SIG_IGN); /* mpirun passes signals to every rank: rank 0 decides when the job ends */
    signal(SIGTERM, SIG_IGN);
    struct backend *b = cli_backend_create(bk);
    int rc = b ? engine_worker_run(model_dir, b) : -1;
    if (rc) fprintf(stderr, "tessera: rank %d: %s\n", comm_rank(), err_msg());
    if (b) b->ops->destroy(b);
    return rc ? EXIT_USAGE : 0;
}

const char CLI_ENGINE_HELP[] =
    "engine options:\n"
    "  --max-num-seqs N           sequences running at once (default 64)\n"
    "  --max-num-batched-tokens N tokens per forward step; longer prompts are chunked (default 512)\n"
    "  --max-model-len N          context length (default: the model's)\n"
    "  --kv-cache-memory BYTES    K/V cache size, suffix K/M/G allowed (default: max-num-seqs full\n"
    "                             contexts, at most a quarter of the available memory, or on CUDA\n"
    "                             what --gpu-memory-utilization leaves after the weights)\n"
    "  --no-prefix-caching        do not reuse the K/V of shared prompt prefixes\n";

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
    if (errno || end == s || *end || !(v > 0) || v * mult > 9e18) {
        fprintf(stderr, "tessera: --kv-cache-memory must be a positive byte count (e.g. 4G), got \"%s\"\n", s);
        return false;
    }
    *out = (int64_t)(v * mult);
    return true;
}

int cli_engine_opt(int argc, char **argv, int *i, struct engine_config *c, struct cli_backend *bk)
{
    const char *v;
    long l;
    int r = cli_backend_opt(argc, argv, i, bk);
    if (r) return r;
    if (cli_opt(argc, argv, i, "--max-num-seqs", &v)) {
        if (!cli_int("--max-num-seqs", v, 1, 4096, &l)) return -1;
        c->max_num_seqs = (int)l;
        return 1;
    }
    if (cli_opt(argc, argv, i, "--max-num-batched-tokens", &v)) {
        if (!cli_int("--max-num-batched-tokens", v, 1, 1 << 20, &l)) return -1;
        c->max_num_batched_tokens = (int)l;
        return 1;
    }
    if (cli_opt(argc, argv, i, "--max-model-len", &v)) {
        if (!cli_int("--max-model-len", v, 1, 1 << 24, &l)) return -1;
        c->max_model_len = (int)l;
        return 1;
    }
    if (cli_opt(argc, argv, i, "--kv-cache-memory", &v)) return parse_bytes(v, &c->kv_cache_memory) ? 1 : -1;
    if (!strcmp(argv[*i], "--no-prefix-caching")) {
        c->prefix_caching = false;
        return 1;
    }
    return 0;
}

static int run_command(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("tessera %s\n", TESSERA_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "generate")) return cmd_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve")) return cmd_serve(argc - 1, argv + 1);
    fprintf(stderr, "tessera: unknown command \"%s\" (try tessera --help)\n", cmd);
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (comm_init(&argc, &argv)) {
        fprintf(stderr, "tessera: %s\n", err_msg());
        comm_abort(EXIT_RUNTIME);
    }
    int rc = run_command(argc, argv);
    if (rc && comm_world() > 1) { /* no rank may wait for this one */
        fprintf(stderr, "tessera: rank %d of %d failed (exit %d): ending every rank\n", comm_rank(), comm_world(),
                rc);
        comm_abort(rc);
    }
    comm_finalize();
    return rc;
}
