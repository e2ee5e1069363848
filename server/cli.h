/* cli.h: the tessera command line: subcommands, and their options as tables
 * that one getopt_long loop parses (cli_parse), so that every command reads
 * "--name value", "--name=value" and short forms the same way and reports a
 * bad value the same way. */
#ifndef TESSERA_CLI_H
#define TESSERA_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../engine/engine.h"
#include "../kernels/dtype.h"

#define TESSERA_VERSION "0.1.0"

/* Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad model folder. */
enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);

/* What an option's value becomes; dst points to the type named. */
enum cli_type {
    CLI_SET,      /* no value: bool = true */
    CLI_CLEAR,    /* no value: bool = false */
    CLI_STR,      /* const char * (argv's) */
    CLI_INT,      /* int, in [lo, hi] */
    CLI_FLOAT,    /* float, in [lo, hi] */
    CLI_DOUBLE,   /* double, in [lo, hi] */
    CLI_U64,      /* uint64_t */
    CLI_BYTES,    /* int64_t, a positive count with an optional K/M/G suffix */
    CLI_DEVICE,   /* bool: cpu (false) or cuda (true) */
    CLI_DTYPE,    /* enum dtype: bfloat16, float16, float32 */
    CLI_RANKS,    /* checked only: must be the number of ranks mpirun started */
    CLI_QUANT,    /* enum dtype: q8_0, q4_0, fp8 (F8_ROWS) */
    CLI_KV_DTYPE, /* bool: auto (false) or fp8 / fp8_e4m3 (true) */
};

struct cli_opt {
    const char *name;    /* long name without "--" */
    char short_name;     /* 0: none */
    enum cli_type type;
    void *dst;
    double lo, hi;       /* CLI_INT, CLI_FLOAT, CLI_DOUBLE */
    bool *given;         /* set to true when the option appears; may be NULL */
};

/* Parses argv (argv[0] is the command) against opts[0..n): options in any
 * order, the one positional argument (MODEL_DIR) into *positional (left as
 * is when absent). -h/--help prints help and exits 0. 0, or -1 after
 * printing what is wrong. */
int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts, int n, const char **positional,
              void (*help)(FILE *f));
/* The same with up to n_positional positional arguments, in order, into
 * positional[0..n_positional) (those absent left as they are). */
int cli_parse_n(const char *cmd, int argc, char **argv, const struct cli_opt *opts, int n, const char **positional,
                int n_positional, void (*help)(FILE *f));

/* Where the model runs: --device, --threads, --dtype, --gpu-memory-utilization,
 * --enforce-eager, --kv-cache-dtype. */
struct cli_backend {
    int threads;         /* CPU: compute threads; 0 = the cores this process may use */
    bool cuda;           /* --device cuda */
    enum dtype dtype;    /* CUDA: weights and KV cache (bfloat16) */
    double gpu_mem_util; /* CUDA: share of the GPU's memory to use (0.9) */
    bool enforce_eager;  /* CUDA: no graphs for decode steps */
    bool kv_fp8;         /* CUDA: --kv-cache-dtype fp8 (E4M3); else the dtype's */
};
struct cli_backend cli_backend_default(void);
extern const char CLI_BACKEND_HELP[];
/* The backend's options (and --tensor-parallel-size) into opts; their count. */
int cli_backend_opts(struct cli_backend *bk, struct cli_opt *opts);

/* The engine options shared by the commands that batch (bench, serve). */
extern const char CLI_ENGINE_HELP[];
int cli_engine_opts(struct engine_config *c, struct cli_opt *opts);

#define CLI_MAX_OPTS 48

#endif
