/* test_util.c: file, random and comparison helpers for the unit tests. */
#include "test_util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *stories260k_dir(void)
{
    const char *e = getenv("TESSERA_STORIES260K");
    return e ? e : "../shared/models/stories260K";
}

char *make_tmpdir(void)
{
    char *t = strdup("/tmp/tessera-test-XXXXXX");
    if (!t || !mkdtemp(t)) abort();
    return t;
}

void rm_rf(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "rm_rf %s failed\n", dir);
}

void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) abort();
    fclose(f);
}

void write_text(const char *dir, const char *name, const char *text)
{
    write_file(dir, name, text, strlen(text));
}

void *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(len + 1);
    if (!buf || fread(buf, 1, len, f) != (size_t)len) abort();
    buf[len] = 0;
    fclose(f);
    if (n) *n = (size_t)len;
    return buf;
}

void write_safetensors(const char *path, const struct test_tensor *t, int n)
{
    char *hdr = malloc(65536);
    size_t off = 0, h = 0;
    h += sprintf(hdr + h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; i < n; i++) {
        h += sprintf(hdr + h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) h += sprintf(hdr + h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        h += sprintf(hdr + h, "],\"data_offsets\":[%zu,%zu]}", off, off + t[i].nbytes);
        off += t[i].nbytes;
    }
    h += sprintf(hdr + h, "}");
    while (h % 8) hdr[h++] = ' ';
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    uint64_t hl = h;
    fwrite(&hl, 8, 1, f);
    fwrite(hdr, 1, h, f);
    for (int i = 0; i < n; i++) {
        if (t[i].data) {
            fwrite(t[i].data, 1, t[i].nbytes, f);
        } else {
            for (size_t j = 0; j < t[i].nbytes; j++) fputc(0, f);
        }
    }
    fclose(f);
    free(hdr);
}

uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)((rng_next(state) >> 40) * 0x1.0p-24);
}

bool all_close(const float *a, const float *b, size_t n, float atol, float rtol, const char *label)
{
    int bad = 0;
    float worst = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float err = fabsf(a[i] - b[i]), lim = atol + rtol * fabsf(b[i]);
        if (!(err <= lim) || isnan(a[i]) != isnan(b[i])) {
            if (bad < 5) fprintf(stderr, "%s: [%zu] got %.8g want %.8g (err %.3g > %.3g)\n", label, i, a[i], b[i], err, lim);
            bad++;
        }
        if (err > worst) worst = err;
    }
    if (bad) fprintf(stderr, "%s: %d of %zu values differ, max abs error %.3g\n", label, bad, n, worst);
    return bad == 0;
}

int golden_ref_load(struct golden_ref *g, const char *dir, char *err, size_t errlen)
{
    memset(g, 0, sizeof(*g));
    char path[4200];
    snprintf(path, sizeof(path), "%s/reference.json", dir);
    json_error_t je;
    json_t *ref = json_load_file(path, 0, &je), *jids = json_object_get(ref, "prompt_ids");
    json_t *jrows = json_object_get(ref, "logit_rows"), *jfile = json_object_get(ref, "logits_file");
    if (!ref || !json_is_array(jids) || !json_is_string(jfile)) {
        snprintf(err, errlen, "%s: %s", path, ref ? "no prompt_ids or logits_file" : je.text);
        json_decref(ref);
        return -1;
    }
    g->n = (int)json_array_size(jids);
    g->vocab = (int)json_integer_value(json_object_get(ref, "vocab_size"));
    g->ids = malloc(g->n * sizeof(int32_t));
    for (int i = 0; i < g->n; i++) g->ids[i] = (int32_t)json_integer_value(json_array_get(jids, i));
    g->n_rows = jrows ? (int)json_array_size(jrows) : g->n;
    g->rows = malloc(g->n_rows * sizeof(int32_t));
    for (int i = 0; i < g->n_rows; i++) g->rows[i] = jrows ? (int32_t)json_integer_value(json_array_get(jrows, i)) : i;
    snprintf(path, sizeof(path), "%s/%s", dir, json_string_value(jfile));
    json_decref(ref);
    size_t nbytes = 0;
    g->logits = read_file(path, &nbytes);
    if (!g->logits || nbytes != (size_t)g->n_rows * g->vocab * sizeof(float)) {
        snprintf(err, errlen, "%s: missing, or not %d x %d floats", path, g->n_rows, g->vocab);
        golden_ref_free(g);
        return -1;
    }
    return 0;
}

void golden_ref_free(struct golden_ref *g)
{
    free(g->ids);
    free(g->rows);
    free(g->logits);
    memset(g, 0, sizeof(*g));
}

void golden_ref_pick(const struct golden_ref *g, const float *got, float *out)
{
    for (int i = 0; i < g->n_rows; i++)
        memcpy(out + (size_t)i * g->vocab, got + (size_t)g->rows[i] * g->vocab, g->vocab * sizeof(float));
}

float max_abs_diff(const float *a, const float *b, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

bool golden_close(const struct golden_ref *g, const float *got, float atol, const char *label, float *max_err)
{
    size_t n = (size_t)g->n_rows * g->vocab;
    float *picked = malloc(n * sizeof(float));
    if (!picked) abort();
    golden_ref_pick(g, got, picked);
    *max_err = max_abs_diff(picked, g->logits, n);
    bool ok = all_close(picked, g->logits, n, atol, 0, label);
    free(picked);
    return ok;
}
