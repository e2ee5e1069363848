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

uint16_t rand_half(uint64_t *rng, int lo, int hi, bool positive)
{
    float m = 1.0f + (float)(rng_next(rng) % 1024) / 1024.0f;
    float v = ldexpf(m, lo + (int)(rng_next(rng) % (uint64_t)(hi - lo)));
    if (!positive && (rng_next(rng) & 1)) v = -v;
    return f32_to_f16(v);
}

void fill_qblocks(void *w, enum dtype wt, size_t nb, uint64_t *rng)
{
    unsigned char *p = w;
    size_t bb = dtype_block_bytes(wt);
    for (size_t i = 0; i < nb * bb; i++) p[i] = (unsigned char)rng_next(rng);
    for (size_t b = 0; b < nb; b++) {
        unsigned char *blk = p + b * bb;
        bool zero = rng_next(rng) % 32 == 0;
        uint16_t d = 0, dmin = 0;
        switch (wt) {
        case DTYPE_Q8_0: d = rand_half(rng, -12, -4, false); break;
        case DTYPE_Q4_0: d = rand_half(rng, -10, -2, false); break;
        case DTYPE_Q4_K: d = rand_half(rng, -14, -6, false), dmin = rand_half(rng, -14, -6, false); break;
        case DTYPE_Q6_K: d = rand_half(rng, -14, -8, false); break;
        default: return;
        }
        if (zero) d = 0;
        /* d leads every block but Q6_K's, which ends with it (kernels/quant.h) */
        memcpy(blk + (wt == DTYPE_Q6_K ? bb - 2 : 0), &d, 2);
        if (wt == DTYPE_Q4_K) memcpy(blk + 2, &dmin, 2);
    }
}

bool qmatmul_close(const float *a, const float *b, const float *mag, int T, int N, int ldy, int n0, float rel,
                   const char *label)
{
    for (int t = 0; t < T; t++)
        for (int n = 0; n < ldy; n++) {
            size_t i = (size_t)t * ldy + n;
            bool ok = n >= n0 && n < N ? fabsf(a[i] - b[i]) <= rel * mag[(size_t)t * N + n] + 1e-30f
                                       : a[i] == (float)i;
            if (!ok) {
                fprintf(stderr, "%s: t=%d n=%d: %.9g vs %.9g (mag %g)\n", label, t, n, a[i], b[i],
                        n >= n0 && n < N ? mag[(size_t)t * N + n] : 0.0);
                return false;
            }
        }
    return true;
}

void fill_qacts(float *x, int T, int ldx, uint64_t *rng)
{
    for (int t = 0; t < T; t++)
        for (int k = 0; k < ldx; k += 32) {
            float s = ldexpf(1.0f, (int)(rng_next(rng) % 12) - 6);
            int n = ldx - k < 32 ? ldx - k : 32;
            if (rng_next(rng) % 16 == 0) s = 0.0f;
            fill_uniform(x + (size_t)t * ldx + k, (size_t)n, -s, s, rng);
        }
}

int argmax_of(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

bool logits_near(const float *got, const float *want, int n, int V, double rel, int agree_pct, const char *label)
{
    double ss = 0, sd = 0, worst = 0;
    int same = 0;
    size_t count = (size_t)n * V;
    for (size_t i = 0; i < count; i++) {
        double d = (double)got[i] - want[i];
        ss += (double)want[i] * want[i];
        sd += d * d;
        worst = fmax(worst, fabs(d));
    }
    double rms = sqrt(ss / count), rms_diff = sqrt(sd / count);
    for (int t = 0; t < n; t++) same += argmax_of(got + (size_t)t * V, V) == argmax_of(want + (size_t)t * V, V);
    fprintf(stderr, "%s: rms diff %.4g = %.4g x rms %.3f, max %.4g = %.3g x rms; greedy agrees %d/%d\n", label,
            rms_diff, rms_diff / rms, rms, worst, worst / rms, same, n);
    bool ok = rms_diff <= rel * rms && worst <= 10 * rel * rms && same * 100 >= n * agree_pct;
    if (!ok) fprintf(stderr, "%s: beyond the bound (rms diff <= %.3g x rms, max <= %.3g x rms, %d%% agree)\n", label,
                     rel, 10 * rel, agree_pct);
    return ok;
}
