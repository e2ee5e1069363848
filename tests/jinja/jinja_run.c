/* jinja_run.c: the Jinja renderer over JSONL, for tests/jinja (conformance
 * with Python's jinja2) and benchmarks/bench_jinja.py.
 *
 *   build/jinja-run [--repeat N] < cases.jsonl > results.jsonl
 *
 * Each input line: {"template": PATH} or {"template_text": TEXT}, "context":
 * {...}, optional "now" (epoch seconds for strftime_now; default 0). Each
 * output line: {"ok": TEXT} or {"error": MESSAGE}; with --repeat N the case
 * is rendered N times and "us" adds the median microseconds of one render
 * (compiled once, timed around jinja_render alone). Compiled templates are
 * kept by path. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../base/err.h"
#include "../../base/strbuf.h"
#include "../../tokenizer/jinja/jinja.h"

#define MAX_CACHED 512

struct cached {
    char *path;
    jinja_template *t;
    char err[512];
};

static struct cached cache[MAX_CACHED];
static int ncached;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct strbuf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        strbuf_append(&b, tmp, n);
    fclose(f);
    *len = b.len;
    return strbuf_take(&b);
}

/* The compiled template of a path (NULL with *err when it does not compile). */
static jinja_template *by_path(const char *path, const char **err)
{
    for (int i = 0; i < ncached; i++)
        if (!strcmp(cache[i].path, path)) {
            *err = cache[i].err;
            return cache[i].t;
        }
    struct cached *c = &cache[ncached < MAX_CACHED ? ncached++ : MAX_CACHED - 1];
    size_t len = 0;
    char *text = read_file(path, &len);
    c->path = xstrdup(path);
    c->err[0] = 0;
    c->t = NULL;
    if (!text)
        snprintf(c->err, sizeof(c->err), "cannot read %s", path);
    else
        c->t = jinja_compile(text, len, c->err, sizeof(c->err));
    free(text);
    *err = c->err;
    return c->t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static json_t *run_case(json_t *in, int repeat)
{
    const char *path = json_string_value(json_object_get(in, "template"));
    const char *text = json_string_value(json_object_get(in, "template_text"));
    json_t *ctx = json_object_get(in, "context");
    time_t now = (time_t)json_integer_value(json_object_get(in, "now"));
    char err[1024] = "";
    const char *cerr = err;
    jinja_template *own = NULL, *t;
    if (path)
        t = by_path(path, &cerr);
    else
        t = own = jinja_compile(text ? text : "", text ? json_string_length(json_object_get(in, "template_text")) : 0,
                                err, sizeof(err));
    if (!t)
        return json_pack("{s:s}", "error", cerr);
    double *us = calloc((size_t)repeat, sizeof(double));
    struct strbuf out = {0};
    int rc = 0;
    for (int i = 0; i < repeat; i++) {
        strbuf_reset(&out);
        double t0 = mono_seconds();
        rc = jinja_render(t, ctx ? ctx : json_object(), now, &out, err, sizeof(err));
        us[i] = (mono_seconds() - t0) * 1e6;
    }
    qsort(us, (size_t)repeat, sizeof(double), cmp_double);
    json_t *res = rc == 0 ? json_pack("{s:s%}", "ok", out.s ? out.s : "", out.len) : json_pack("{s:s}", "error", err);
    if (!res) /* output that is not UTF-8 */
        res = json_pack("{s:s}", "error", "(output is not valid UTF-8)");
    if (repeat > 1)
        json_object_set_new(res, "us", json_real(us[repeat / 2]));
    strbuf_free(&out);
    free(us);
    jinja_free(own);
    return res;
}

int main(int argc, char **argv)
{
    int repeat = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--repeat N] < cases.jsonl > results.jsonl\n", argv[0]);
            return 2;
        }
    }
    if (repeat < 1)
        repeat = 1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        json_error_t jerr;
        json_t *in = json_loadb(line, (size_t)n, 0, &jerr);
        json_t *res = in ? run_case(in, repeat) : json_pack("{s:s}", "error", jerr.text);
        char *s = json_dumps(res, JSON_COMPACT);
        puts(s);
        free(s);
        json_decref(res);
        json_decref(in);
    }
    free(line);
    for (int i = 0; i < ncached; i++) {
        jinja_free(cache[i].t);
        free(cache[i].path);
    }
    return 0;
}
