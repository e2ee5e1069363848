/* cli.h: subcommands of the tessera binary and small option helpers. */
#ifndef TESSERA_CLI_H
#define TESSERA_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "../kernels/dtype.h"

#define TESSERA_VERSION "0.1.0"

/* Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad model folder. */
enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Option parsing: "--name value" or "--name=value". Returns true when argv[*i]
 * is option name; *val gets its value (and *i advances past it). */
bool cli_opt(int argc, char **argv, int *i, const char *name, const char **val);
bool cli_int(const char *name, const char *s, long lo, long hi, long *out);
bool cli_float(const char *name, const char *s, double lo, double hi, double *out);
bool cli_u64(const char *name, const char *s, uint64_t *out);

/* Where the model runs: --device, --threads, --dtype, --gpu-memory-utilization. */
struct cli_backend {
    long threads;        /* CPU: compute threads; 0 = the cores this process may use */
    bool cuda;           /* --device cuda */
    enum dtype dtype;    /* CUDA: weights and KV cache (bfloat16) */
    double gpu_mem_util; /* CUDA: share of the GPU's memory to use (0.9) */
};
/* Tensor parallelism: ranks other than 0 run this instead of their command
 * (after parsing the same options): load the model's slice on the backend,
 * follow rank 0's steps. An exit code. */
int cli_run_worker(const char *model_dir, const struct cli_backend *bk);
struct cli_backend cli_backend_default(void);
extern const char CLI_BACKEND_HELP[];
/* 1: argv[*i] was a backend option; 0: not one; -1: a bad value (printed). */
int cli_backend_opt(int argc, char **argv, int *i, struct cli_backend *o);
/* NULL with err_msg() set when the device cannot be used. */
struct backend *cli_backend_create(const struct cli_backend *o);

/* The engine options shared by the commands that batch (bench, serve),
 * backend options included. */
struct engine_config;
extern const char CLI_ENGINE_HELP[];
/* 1: argv[*i] was an engine or backend option; 0: not one; -1: a bad value
 * (message printed). */
int cli_engine_opt(int argc, char **argv, int *i, struct engine_config *c, struct cli_backend *bk);

#endif
