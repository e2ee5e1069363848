/* main.c: the tessera command line: dispatches to subcommands. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(int argc, char **argv)
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
    fprintf(stderr, "tessera: unknown command \"%s\" (try tessera --help)\n", cmd);
    return EXIT_USAGE;
}
