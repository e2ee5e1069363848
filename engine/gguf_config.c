/* gguf_config.c: GGUF metadata -> struct model_config (gguf_model.h).
 *
 * The keys are those llama.cpp's convert_hf_to_gguf.py writes for llama,
 * qwen2 and qwen3 (a Mistral folder converts to llama). */
#include <dirent.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "../base/err.h"
#include "../base/gguf.h"
#include "gguf_model.h"

struct meta {
    const gguf *g;
    const char *path;
    char arch[16];
};

/* s (at most 32 bytes of it) fit for a one-line message */
static const char *shown(struct gguf_str s, char buf[40])
{
    size_t n = s.len > 32 ? 32 : (size_t)s.len;
    for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)s.ptr[i] < 0x20 || s.ptr[i] == 0x7f ? '?' : s.ptr[i];
    strcpy(buf + n, s.len > 32 ? "..." : "");
    return buf;
}

/* "{arch}.name" */
static const char *key(const struct meta *m, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", m->arch, name);
    return buf;
}

/* An integer key in [lo, 2^30]; absent: dflt, or an error when dflt < 0. */
static int get_int(const struct meta *m, const char *name, int *out, int lo, int dflt)
{
    char k[128];
    key(m, name, k, sizeof(k));
    int64_t v;
    if (gguf_find_key(m->g, k) < 0) {
        if (dflt < 0) return err_set(ERR_MODEL, "%s: missing key \"%s\"", m->path, k);
        *out = dflt;
        return 0;
    }
    int rc = gguf_get_int(m->g, k, &v);
    if (rc) return rc;
    if (v < lo || v > (1 << 30))
        return err_set(ERR_MODEL, "%s: \"%s\" = %lld is out of range", m->path, k, (long long)v);
    *out = (int)v;
    return 0;
}

/* A float key (any width); absent: dflt, or an error when required. */
static int get_float(const struct meta *m, const char *k, float *out, bool required, float dflt)
{
    double v;
    if (gguf_find_key(m->g, k) < 0) {
        if (required) return err_set(ERR_MODEL, "%s: missing key \"%s\"", m->path, k);
        *out = dflt;
        return 0;
    }
    int rc = gguf_get_float(m->g, k, &v);
    if (rc) return rc;
    if (!isfinite(v)) return err_set(ERR_MODEL, "%s: \"%s\" is not finite", m->path, k);
    *out = (float)v;
    return 0;
}

static int parse_arch(struct meta *m, struct model_config *c)
{
    struct gguf_str a;
    int rc = gguf_get_str(m->g, "general.architecture", &a);
    if (rc) return rc;
    static const char *const names[][2] = {{"llama", "LlamaForCausalLM"}, {"qwen2", "Qwen2ForCausalLM"},
                                           {"qwen3", "Qwen3ForCausalLM"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (a.len == strlen(names[i][0]) && !memcmp(a.ptr, names[i][0], a.len)) {
            snprintf(m->arch, sizeof(m->arch), "%s", names[i][0]);
            snprintf(c->arch, sizeof(c->arch), "%s", names[i][1]);
            return 0;
        }
    }
    char buf[40];
    return err_set(ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (llama, qwen2, qwen3)", m->path,
                   shown(a, buf));
}

/* rope.scaling.* (linear; none) and llama3's rope_freqs tensor. */
static int parse_rope(const struct meta *m, struct model_config *c)
{
    char k[128];
    struct rope_scaling *r = &c->rope_scaling;
    r->type = ROPE_DEFAULT;
    r->factor = 1.0f;
    int rc = get_float(m, key(m, "rope.freq_base", k, sizeof(k)), &c->rope_theta, false, 10000.0f);
    if (rc) return rc;
    struct gguf_str ty = {"none", 4};
    if (gguf_find_key(m->g, key(m, "rope.scaling.type", k, sizeof(k))) >= 0 && (rc = gguf_get_str(m->g, k, &ty)))
        return rc;
    bool linear = ty.len == 6 && !memcmp(ty.ptr, "linear", 6);
    char buf[40];
    if (!linear && !(ty.len == 4 && !memcmp(ty.ptr, "none", 4)))
        return err_set(ERR_UNSUPPORTED, "%s: rope scaling \"%s\" is not supported (none, linear)", m->path,
                       shown(ty, buf));
    if (linear) {
        r->type = ROPE_LINEAR;
        if ((rc = get_float(m, key(m, "rope.scaling.factor", k, sizeof(k)), &r->factor, true, 1.0f))) return rc;
    } else if (gguf_find_key(m->g, key(m, "rope.scale_linear", k, sizeof(k))) >= 0) { /* older files */
        r->type = ROPE_LINEAR;
        if ((rc = get_float(m, k, &r->factor, true, 1.0f))) return rc;
    }
    if (!(r->factor > 0)) return err_set(ERR_MODEL, "%s: the rope scaling factor must be > 0", m->path);
    const struct gguf_tensor *f = gguf_find_tensor(m->g, "rope_freqs.weight");
    if (!f) return 0;
    int half = c->head_dim / 2;
    if (f->type != GGML_F32 || f->n_dims != 1 || f->ne[0] != half || half > MODEL_MAX_FREQ_FACTORS)
        return err_set(ERR_MODEL, "%s: tensor \"rope_freqs.weight\" must be F32 [%d]", m->path, half);
    memcpy(r->freq_factors, f->data, (size_t)half * sizeof(float));
    for (int i = 0; i < half; i++)
        if (!(r->freq_factors[i] > 0) || !isfinite(r->freq_factors[i]))
            return err_set(ERR_MODEL, "%s: tensor \"rope_freqs.weight\" holds a factor that is not > 0", m->path);
    r->n_freq_factors = half;
    return 0;
}

/* Vocabulary from the embedding, tied output, and the optional tensors. */
static int parse_tensors(const struct meta *m, struct model_config *c)
{
    const struct gguf_tensor *e = gguf_find_tensor(m->g, "token_embd.weight");
    if (!e) return err_set(ERR_MODEL, "%s: tensor \"token_embd.weight\" is missing", m->path);
    if (e->n_dims != 2 || e->ne[0] != c->hidden_size || e->ne[1] < 1 || e->ne[1] > (1 << 30))
        return err_set(ERR_MODEL, "%s: tensor \"token_embd.weight\" is not [vocab, %d]", m->path, c->hidden_size);
    c->vocab_size = (int)e->ne[1];
    char k[128];
    int v;
    int rc = get_int(m, "vocab_size", &v, 1, c->vocab_size);
    if (rc) return rc;
    if (v != c->vocab_size)
        return err_set(ERR_MODEL, "%s: \"%s\" = %d but token_embd.weight has %d rows", m->path,
                       key(m, "vocab_size", k, sizeof(k)), v, c->vocab_size);
    c->tie_word_embeddings = !gguf_find_tensor(m->g, "output.weight");
    c->torch_dtype = e->type == GGML_F16 ? DTYPE_F16 : e->type == GGML_BF16 ? DTYPE_BF16 : DTYPE_F32;
    bool qwen2 = !strcmp(m->arch, "qwen2"), qwen3 = !strcmp(m->arch, "qwen3");
    c->qkv_bias = qwen2 || gguf_find_tensor(m->g, "blk.0.attn_q.bias");
    c->o_bias = gguf_find_tensor(m->g, "blk.0.attn_output.bias") != NULL;
    c->qk_norm = qwen3;
    return 0;
}

/* tokenizer.ggml.{bos,eos,eot,eom}_token_id: the model stops on each of eos/eot/eom */
static int parse_special(const struct meta *m, struct model_config *c)
{
    static const char *const stops[] = {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                        "tokenizer.ggml.eom_token_id"};
    int64_t v;
    int rc;
    c->bos_token_id = -1;
    if (gguf_find_key(m->g, "tokenizer.ggml.bos_token_id") >= 0) {
        if ((rc = gguf_get_int(m->g, "tokenizer.ggml.bos_token_id", &v))) return rc;
        c->bos_token_id = v >= 0 && v < c->vocab_size ? (int)v : -1;
    }
    for (int i = 0; i < 3; i++) {
        if (gguf_find_key(m->g, stops[i]) < 0) continue;
        if ((rc = gguf_get_int(m->g, stops[i], &v))) return rc;
        if (v < 0 || v >= c->vocab_size)
            return err_set(ERR_MODEL, "%s: \"%s\" = %lld is outside the vocabulary (%d)", m->path, stops[i],
                           (long long)v, c->vocab_size);
        if (!model_config_is_eos(c, (int)v)) c->eos_ids[c->n_eos++] = (int)v;
    }
    if ((rc = get_float(m, "general.sampling.temp", &c->gen_temperature, false, -1.0f)) ||
        (rc = get_float(m, "general.sampling.top_p", &c->gen_top_p, false, -1.0f)))
        return rc;
    if (gguf_find_key(m->g, "general.sampling.top_k") >= 0) {
        if ((rc = gguf_get_int(m->g, "general.sampling.top_k", &v))) return rc;
        c->gen_top_k = v >= 0 && v <= (1 << 30) ? (int)v : -1;
    }
    return 0;
}

static int parse_sizes(const struct meta *m, struct model_config *c)
{
    char k[128];
    int rc, vlen, rope_dim;
    if ((rc = get_int(m, "embedding_length", &c->hidden_size, 1, -1)) ||
        (rc = get_int(m, "feed_forward_length", &c->intermediate_size, 1, -1)) ||
        (rc = get_int(m, "block_count", &c->n_layers, 1, -1)) ||
        (rc = get_int(m, "attention.head_count", &c->n_heads, 1, -1)) ||
        (rc = get_int(m, "attention.head_count_kv", &c->n_kv_heads, 1, c->n_heads)) ||
        (rc = get_int(m, "context_length", &c->max_pos, 1, 2048)) ||
        (rc = get_int(m, "attention.key_length", &c->head_dim, 1, c->hidden_size / c->n_heads)) ||
        (rc = get_int(m, "attention.value_length", &vlen, 1, c->head_dim)) ||
        (rc = get_int(m, "rope.dimension_count", &rope_dim, 1, c->head_dim)) ||
        (rc = get_float(m, key(m, "attention.layer_norm_rms_epsilon", k, sizeof(k)), &c->rms_norm_eps, true, 0)))
        return rc;
    if (c->n_heads % c->n_kv_heads)
        return err_set(ERR_MODEL, "%s: head_count (%d) is not a multiple of head_count_kv (%d)", m->path,
                       c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2 || c->head_dim == 0 || vlen != c->head_dim || rope_dim != c->head_dim)
        return err_set(ERR_UNSUPPORTED, "%s: key_length %d, value_length %d and rope.dimension_count %d must be "
                       "one even number", m->path, c->head_dim, vlen, rope_dim);
    return 0;
}

int gguf_model_config(struct model_config *c, const char *file)
{
    memset(c, 0, sizeof(*c));
    c->gen_temperature = c->gen_top_p = -1.0f;
    c->gen_top_k = -1;
    gguf *g;
    int rc = gguf_open(&g, file, false);
    if (rc) return rc;
    struct meta m = {.g = g, .path = file};
    if (!(rc = parse_arch(&m, c)) && !(rc = parse_sizes(&m, c)) && !(rc = parse_rope(&m, c)) &&
        !(rc = parse_tensors(&m, c)))
        rc = parse_special(&m, c);
    gguf_close(g);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* The one *.gguf in dir (count: how many there are). */
static int find_gguf(const char *dir, char *out, size_t cap, int *count)
{
    DIR *d = opendir(dir);
    *count = 0;
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!ends_with(e->d_name, ".gguf")) continue;
        if (++*count == 1 && (size_t)snprintf(out, cap, "%s/%s", dir, e->d_name) >= cap) *count = -1;
        if (*count < 0) break;
    }
    closedir(d);
    if (*count < 0) return err_set(ERR_INVALID, "%s: path too long", dir);
    return 0;
}

int gguf_model_path(const char *path, char *out, size_t cap)
{
    struct stat sb;
    if (stat(path, &sb) != 0) return 0;
    if (S_ISREG(sb.st_mode)) {
        if (!ends_with(path, ".gguf")) return 0;
        if ((size_t)snprintf(out, cap, "%s", path) >= cap) return err_set(ERR_INVALID, "%s: path too long", path);
        return 1;
    }
    char probe[4096];
    const char *st_names[] = {"model.safetensors", "model.safetensors.index.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(probe, sizeof(probe), "%s/%s", path, st_names[i]);
        if (stat(probe, &sb) == 0) return 0; /* a safetensors folder, as ever */
    }
    int n, rc = find_gguf(path, out, cap, &n);
    if (rc) return rc;
    if (n > 1)
        return err_set(ERR_INVALID, "%s: %d .gguf files in the folder and no model.safetensors: name the file",
                       path, n);
    return n == 1;
}
