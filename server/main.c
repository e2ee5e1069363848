/* main.c: the tessera command line: dispatches to subcommands. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/comm.h"
#include "../base/err.h"
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
            "  tokenize MODEL_DIR [TEXT]      token ids of a text (or of stdin), or texts of ids\n"
            "\n"
            "  tessera COMMAND --help         options of a command\n"
            "  tessera --version              print the version\n",
            TESSERA_VERSION);
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
    if (!strcmp(cmd, "tokenize")) return cmd_tokenize(argc - 1, argv + 1);
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
