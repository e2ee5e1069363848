/* cmd_tokenize.c: `tessera tokenize MODEL_DIR [TEXT]`: the token ids of a
 * text, or of each JSON string of a JSONL stream with the text the ids
 * decode to (--jsonl), the texts of lists of ids (--decode), or the bytes
 * each id adds to a text (--token-bytes); --bench times the encoding (or
 * the --token-bytes table) alone. Only the tokenizer is loaded. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../tokenizer/tokenizer.h"
#include "cli.h"

struct tok_opts {
    const char *pos[2];       /* MODEL_DIR, TEXT */
    const char *impl;         /* --tokenizer */
    bool no_special, jsonl, decode, token_bytes;
    int bench;                /* repeats; 0: off */
};

/* The inputs of one run: texts (borrowed or owned by the run). */
struct inputs {
    char **text;
    size_t *len;
    int n, cap;
};

static void help(FILE *f)
{
    fprintf(f,
            "usage: tessera tokenize MODEL_DIR [TEXT] [options]\n"
            "\n"
            "Prints the token ids of TEXT (or of stdin, as it is, when TEXT is absent), space-separated\n"
            "on one line, with the tokenizer of MODEL_DIR (tokenizer.json, tokenizer.model or its one .gguf\n"
            "file's metadata; MODEL_DIR may be a .gguf file).\n"
            "\n"
            "options:\n"
            "  --no-special               no BOS or other tokens the tokenizer adds (add_special_tokens=False);\n"
            "                             otherwise tokenizer_config.json / the post-processor decides\n"
            "  --tokenizer auto|json|sentencepiece|gguf\n"
            "                             which file: auto (default) takes tokenizer.json when present,\n"
            "                             then tokenizer.model, then the .gguf file\n"
            "  --jsonl                    stdin: one JSON string a line; stdout: one line each,\n"
            "                             {\"ids\":[...],\"text\":\"...\"} (text: the ids decoded, special\n"
            "                             tokens skipped)\n"
            "  --decode                   stdin: one JSON array of ids a line; stdout: one JSON string each\n"
            "  --token-bytes              no input; one line per id of the vocabulary: the bytes the token\n"
            "                             adds to a text after other tokens, in hex (an empty line: none),\n"
            "                             or - for a token that never adds text (special, control, a gap)\n"
            "  --bench N                  encode the input(s) N times; print as JSON the load time and\n"
            "                             the seconds of each repeat (no ids); with --token-bytes, build\n"
            "                             the table N times instead\n"
            "\n"
            "exit codes: 0 ok, 1 runtime failure, 2 bad usage, bad input or bad model folder\n");
}

static int parse(int argc, char **argv, struct tok_opts *o)
{
    struct cli_opt t[] = {
        {"no-special", 0, CLI_SET, &o->no_special, 0, 0, NULL},
        {"tokenizer", 0, CLI_STR, &o->impl, 0, 0, NULL},
        {"jsonl", 0, CLI_SET, &o->jsonl, 0, 0, NULL},
        {"decode", 0, CLI_SET, &o->decode, 0, 0, NULL},
        {"token-bytes", 0, CLI_SET, &o->token_bytes, 0, 0, NULL},
        {"bench", 0, CLI_INT, &o->bench, 1, 1 << 20, NULL},
    };
    if (cli_parse_n("tokenize", argc, argv, t, (int)(sizeof(t) / sizeof(t[0])), o->pos, 2, help)) return -1;
    if (!o->pos[0]) {
        fprintf(stderr, "tessera tokenize: MODEL_DIR is required (see tessera tokenize --help)\n");
        return -1;
    }
    if ((o->jsonl || o->decode) && o->pos[1]) {
        fprintf(stderr, "tessera tokenize: --jsonl and --decode read stdin: no TEXT argument\n");
        return -1;
    }
    if (o->token_bytes && (o->jsonl || o->decode || o->pos[1])) {
        fprintf(stderr, "tessera tokenize: --token-bytes takes no input: no TEXT, --jsonl or --decode\n");
        return -1;
    }
    if (o->jsonl && o->decode) {
        fprintf(stderr, "tessera tokenize: --jsonl and --decode do not go together\n");
        return -1;
    }
    if (o->decode && o->bench) {
        fprintf(stderr, "tessera tokenize: --bench times encoding: not with --decode\n");
        return -1;
    }
    return 0;
}

/* --tokenizer's value as an enum tok_impl; -1 when it is none of them. */
static int impl_of(const char *name)
{
    if (!name || !strcmp(name, "auto")) return TOK_AUTO;
    if (!strcmp(name, "json")) return TOK_HF_JSON;
    if (!strcmp(name, "sentencepiece") || !strcmp(name, "spm")) return TOK_SENTENCEPIECE;
    if (!strcmp(name, "gguf")) return TOK_GGUF;
    fprintf(stderr, "tessera: --tokenizer must be auto, json, sentencepiece or gguf, got \"%s\"\n", name);
    return -1;
}

/* All of f, malloc'd and NUL-terminated; *len its length (NULs included). */
static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) buf = xrealloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* The text of ids as a JSON string (invalid UTF-8 repaired); NULL on failure. */
static json_t *decoded(const tokenizer *t, const int32_t *ids, int n)
{
    long need = tok_decode(t, ids, n, NULL, 0);
    size_t cap = (size_t)(need < 0 ? -need : need) + 1;
    char *raw = xmalloc(cap), *clean = xmalloc(3 * cap + 1);
    long len = tok_decode(t, ids, n, raw, cap);
    json_t *j = NULL;
    if (len >= 0) {
        size_t m = utf8_sanitize(clean, 3 * cap + 1, raw, (size_t)len);
        j = json_stringn(clean, m);
    }
    free(raw);
    free(clean);
    return j;
}

/* Prints j compact on one line (consumed). 0, or -1 when it cannot be encoded. */
static int put_json(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!s) return -1;
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    return 0;
}

/* One --jsonl line: a JSON string -> {"ids":[...],"text":"..."}. */
static int encode_line(const tokenizer *t, json_t *in, bool add_bos)
{
    if (!json_is_string(in)) return ERR_INVALID;
    int32_t *ids;
    int n = tok_encode_all(t, json_string_value(in), json_string_length(in), add_bos, &ids);
    if (n < 0) return ERR_FORMAT;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
    json_t *text = decoded(t, ids, n);
    free(ids);
    return put_json(json_pack("{s:o,s:o*}", "ids", arr, "text", text)) ? ERR_FORMAT : 0;
}

/* One --decode line: a JSON array of ids -> the JSON string they decode to. */
static int decode_line(const tokenizer *t, json_t *in)
{
    size_t n = json_array_size(in), i;
    json_t *v;
    if (!json_is_array(in)) return ERR_INVALID;
    int32_t *ids = xmalloc((n ? n : 1) * sizeof(int32_t));
    bool ok = true;
    json_array_foreach(in, i, v) {
        ok = ok && json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < INT32_MAX;
        ids[i] = ok ? (int32_t)json_integer_value(v) : 0;
    }
    json_t *text = ok ? decoded(t, ids, (int)n) : NULL;
    free(ids);
    if (!ok) return ERR_INVALID;
    return put_json(text) ? ERR_FORMAT : 0;
}

/* Reads stdin line by line: --jsonl or --decode. The exit code. */
static int run_lines(const tokenizer *t, const struct tok_opts *o, bool add_bos)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    for (long no = 1; !rc && (len = getline(&line, &cap, stdin)) >= 0; no++) {
        json_error_t je;
        json_t *in = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        int r = !in ? ERR_INVALID : o->decode ? decode_line(t, in) : encode_line(t, in, add_bos);
        json_decref(in);
        if (r == ERR_INVALID)
            fprintf(stderr, "tessera: stdin line %ld: %s\n", no,
                    !in ? je.text : o->decode ? "not a JSON array of token ids" : "not a JSON string");
        else if (r)
            fprintf(stderr, "tessera: stdin line %ld: the tokenizer failed\n", no);
        rc = r == ERR_INVALID ? EXIT_USAGE : r ? EXIT_RUNTIME : 0;
    }
    free(line);
    fflush(stdout);
    return rc;
}

static void inputs_add(struct inputs *in, char *text, size_t len)
{
    if (in->n == in->cap) {
        in->cap = in->cap ? 2 * in->cap : 64;
        in->text = xrealloc(in->text, (size_t)in->cap * sizeof(char *));
        in->len = xrealloc(in->len, (size_t)in->cap * sizeof(size_t));
    }
    in->text[in->n] = text;
    in->len[in->n++] = len;
}

static void inputs_free(struct inputs *in)
{
    for (int i = 0; i < in->n; i++) free(in->text[i]);
    free(in->text);
    free(in->len);
}

/* --bench with --jsonl: the JSON strings of stdin's lines. 0 or the exit code. */
static int read_jsonl(struct inputs *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (long no = 1; (len = getline(&line, &cap, stdin)) >= 0; no++) {
        json_t *j = json_loadb(line, (size_t)len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!json_is_string(j)) {
            fprintf(stderr, "tessera: stdin line %ld: not a JSON string\n", no);
            json_decref(j);
            free(line);
            return EXIT_USAGE;
        }
        size_t n = json_string_length(j);
        char *s = xmalloc(n + 1);
        memcpy(s, json_string_value(j), n + 1);
        inputs_add(in, s, n);
        json_decref(j);
    }
    free(line);
    return 0;
}

/* Encodes every input o->bench times; prints {"load_s", "encode_s": [each
 * repeat], "inputs", "bytes", "tokens"}. The exit code. */
static int bench(const tokenizer *t, const struct tok_opts *o, bool add_bos, struct inputs *in, double load_s)
{
    json_t *times = json_array();
    long bytes = 0, tokens = 0;
    for (int i = 0; i < in->n; i++) bytes += (long)in->len[i];
    for (int r = 0; r < o->bench; r++) {
        double t0 = mono_seconds();
        long count = 0;
        for (int i = 0; i < in->n; i++) {
            int32_t *ids;
            int n = tok_encode_all(t, in->text[i], in->len[i], add_bos, &ids);
            free(ids);
            if (n < 0) {
                fprintf(stderr, "tessera: input %d: the tokenizer failed\n", i + 1);
                json_decref(times);
                return EXIT_RUNTIME;
            }
            count += n;
        }
        json_array_append_new(times, json_real(mono_seconds() - t0));
        tokens = count;
    }
    json_t *j = json_pack("{s:f,s:o,s:i,s:I,s:I}", "load_s", load_s, "encode_s", times, "inputs", in->n, "bytes",
                          (json_int_t)bytes, "tokens", (json_int_t)tokens);
    return put_json(j) ? EXIT_RUNTIME : 0;
}

/* Plain mode (or --bench): TEXT or all of stdin. The exit code. */
static int run_text(const tokenizer *t, const struct tok_opts *o, bool add_bos, double load_s)
{
    struct inputs in = {0};
    int rc = 0;
    if (o->bench && o->jsonl) rc = read_jsonl(&in);
    else if (o->pos[1]) inputs_add(&in, strdup(o->pos[1]), strlen(o->pos[1]));
    else {
        size_t len;
        char *s = read_all(stdin, &len);
        inputs_add(&in, s, len);
    }
    if (!rc && o->bench) rc = bench(t, o, add_bos, &in, load_s);
    else if (!rc) {
        int32_t *ids;
        int n = tok_encode_all(t, in.text[0], in.len[0], add_bos, &ids);
        if (n < 0) {
            fprintf(stderr, "tessera: the text cannot be tokenized\n");
            rc = EXIT_RUNTIME;
        }
        for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
        if (n >= 0) printf("\n");
        free(ids);
    }
    inputs_free(&in);
    return rc;
}

/* --token-bytes: the table, one line per id; with --bench, its build times
 * as JSON {"load_s", "build_s": [each repeat], "ids", "bytes"}. The exit code. */
static int run_token_bytes(const tokenizer *t, const struct tok_opts *o, double load_s)
{
    struct tok_vocab_bytes vb;
    json_t *times = json_array();
    for (int r = 0; r < (o->bench ? o->bench : 1); r++) {
        if (r) tok_vocab_bytes_deinit(&vb);
        double t0 = mono_seconds();
        tok_vocab_bytes_init(&vb, t);
        json_array_append_new(times, json_real(mono_seconds() - t0));
    }
    int rc = 0;
    if (o->bench) {
        rc = put_json(json_pack("{s:f,s:o,s:i,s:I}", "load_s", load_s, "build_s", times, "ids", vb.n, "bytes",
                                (json_int_t)vb.size)) ? EXIT_RUNTIME : 0;
    } else {
        json_decref(times);
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < vb.n; i++) {
            if (vb.len[i] < 0) fputc('-', stdout);
            for (int32_t k = 0; k < vb.len[i]; k++) {
                unsigned char c = (unsigned char)vb.data[vb.off[i] + (uint32_t)k];
                fputc(hex[c >> 4], stdout);
                fputc(hex[c & 15], stdout);
            }
            fputc('\n', stdout);
        }
        fflush(stdout);
    }
    tok_vocab_bytes_deinit(&vb);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    struct tok_opts o = {0};
    if (parse(argc, argv, &o)) return EXIT_USAGE;
    int impl = impl_of(o.impl);
    if (impl < 0) return EXIT_USAGE;
    char err[1024];
    tokenizer *t;
    double t0 = mono_seconds();
    if (tok_load_as(&t, o.pos[0], (enum tok_impl)impl, err, sizeof(err))) {
        fprintf(stderr, "tessera: %s\n", err);
        return EXIT_USAGE;
    }
    double load_s = mono_seconds() - t0;
    bool add_bos = !o.no_special && tok_add_bos(t);
    int rc = o.token_bytes                      ? run_token_bytes(t, &o, load_s)
             : (o.jsonl || o.decode) && !o.bench ? run_lines(t, &o, add_bos)
                                                 : run_text(t, &o, add_bos, load_s);
    tok_free(t);
    return rc;
}
