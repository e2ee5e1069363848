/* model_config.c: config.json / generation_config.json parsing and checks. */
#include "model_config.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "../base/err.h"
#include "gguf_model.h"

/* Loads a JSON object file. Missing + optional: *out = NULL, returns 0. */
static int load_json(json_t **out, const char *path, bool optional)
{
    *out = NULL;
    if (access(path, F_OK) != 0) {
        if (optional) return 0;
        return err_set(ERR_IO, "%s: missing", path);
    }
    json_error_t e;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    if (!j)
        return err_set(ERR_FORMAT, "%s: bad JSON: %s (line %d, column %d)", path, e.text, e.line, e.column);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(ERR_FORMAT, "%s: top level is not a JSON object", path);
    }
    *out = j;
    return 0;
}

static int get_int(json_t *o, const char *path, const char *key, int *out, bool required, int dflt)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return err_set(ERR_MODEL, "%s: missing key \"%s\"", path, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 30))
        return err_set(ERR_MODEL, "%s: \"%s\" must be a non-negative integer", path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_float(json_t *o, const char *path, const char *key, float *out, float dflt)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v)) return err_set(ERR_MODEL, "%s: \"%s\" must be a number", path, key);
    *out = (float)json_number_value(v);
    return 0;
}

/* eos_token_id: an integer or a list of them. */
static int get_eos(json_t *o, const char *path, struct model_config *c)
{
    json_t *v = json_object_get(o, "eos_token_id");
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        c->eos_ids[0] = (int)json_integer_value(v);
        c->n_eos = 1;
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > MODEL_MAX_EOS)
        return err_set(ERR_MODEL, "%s: \"eos_token_id\" must be an integer or a list of at most %d", path, MODEL_MAX_EOS);
    c->n_eos = 0;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e)) return err_set(ERR_MODEL, "%s: \"eos_token_id\" holds a non-integer", path);
        c->eos_ids[c->n_eos++] = (int)json_integer_value(e);
    }
    return 0;
}

static int parse_rope_scaling(json_t *o, const char *path, struct model_config *c)
{
    json_t *rs = json_object_get(o, "rope_scaling");
    c->rope_scaling.type = ROPE_DEFAULT;
    if (!rs || json_is_null(rs)) return 0;
    if (!json_is_object(rs)) return err_set(ERR_MODEL, "%s: \"rope_scaling\" must be an object or null", path);
    json_t *t = json_object_get(rs, "rope_type");
    if (!t) t = json_object_get(rs, "type");
    if (!json_is_string(t)) return err_set(ERR_MODEL, "%s: rope_scaling has no \"rope_type\"", path);
    const char *ty = json_string_value(t);
    struct rope_scaling *r = &c->rope_scaling;
    int rc = get_float(rs, path, "factor", &r->factor, 1.0f);
    if (rc) return rc;
    if (!(r->factor > 0)) return err_set(ERR_MODEL, "%s: rope_scaling.factor must be > 0", path);
    if (!strcmp(ty, "default")) return 0;
    if (!strcmp(ty, "linear")) {
        r->type = ROPE_LINEAR;
        return 0;
    }
    if (!strcmp(ty, "llama3")) {
        r->type = ROPE_LLAMA3;
        if ((rc = get_float(rs, path, "low_freq_factor", &r->low_freq_factor, 1.0f)) ||
            (rc = get_float(rs, path, "high_freq_factor", &r->high_freq_factor, 4.0f)) ||
            (rc = get_int(rs, path, "original_max_position_embeddings", &r->original_max_pos, true, 0)))
            return rc;
        if (!(r->high_freq_factor > r->low_freq_factor))
            return err_set(ERR_MODEL, "%s: rope_scaling needs high_freq_factor > low_freq_factor", path);
        return 0;
    }
    return err_set(ERR_UNSUPPORTED, "%s: rope_scaling type \"%s\" is not supported (default, linear, llama3)", path, ty);
}

/* architectures[0] and what it switches on in the forward. */
static int parse_arch(json_t *o, const char *path, struct model_config *c)
{
    json_t *archs = json_object_get(o, "architectures");
    json_t *a0 = json_is_array(archs) ? json_array_get(archs, 0) : NULL;
    if (!json_is_string(a0)) return err_set(ERR_MODEL, "%s: missing \"architectures\"", path);
    snprintf(c->arch, sizeof(c->arch), "%s", json_string_value(a0));
    bool qwen2 = !strcmp(c->arch, "Qwen2ForCausalLM"), qwen3 = !strcmp(c->arch, "Qwen3ForCausalLM");
    if (!qwen2 && !qwen3 && strcmp(c->arch, "LlamaForCausalLM") && strcmp(c->arch, "MistralForCausalLM"))
        return err_set(ERR_UNSUPPORTED, "%s: architecture \"%s\" is not supported (LlamaForCausalLM, "
                       "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)", path, c->arch);
    json_t *bias = json_object_get(o, "attention_bias"), *mbias = json_object_get(o, "mlp_bias");
    if ((bias && !json_is_boolean(bias)) || (mbias && !json_is_boolean(mbias)))
        return err_set(ERR_MODEL, "%s: \"%s\" must be true or false", path,
                       bias && !json_is_boolean(bias) ? "attention_bias" : "mlp_bias");
    if (json_is_true(mbias)) return err_set(ERR_UNSUPPORTED, "%s: \"mlp_bias\": true is not supported", path);
    /* Qwen2 has q/k/v biases whatever attention_bias says (transformers ignores it) */
    if (json_is_true(bias) && !qwen2 && !qwen3)
        return err_set(ERR_UNSUPPORTED, "%s: \"attention_bias\": true is not supported for %s", path, c->arch);
    c->qkv_bias = qwen2 || (qwen3 && json_is_true(bias));
    c->o_bias = qwen3 && json_is_true(bias);
    c->qk_norm = qwen3;
    return 0;
}

/* Sliding windows. Attention here is full, so a window that some layer uses
 * caps the context at its length, where it has no effect. Mistral: every
 * layer uses sliding_window. Qwen2/Qwen3 (transformers' Qwen2Attention):
 * layers from max_window_layers (default 28) on, and only when
 * use_sliding_window is true; otherwise the fields have no effect. */
static int parse_window(json_t *o, const char *path, struct model_config *c)
{
    int sw = 0, first = 0, rc;
    if ((rc = get_int(o, path, "sliding_window", &sw, false, 0))) return rc;
    if (!strcmp(c->arch, "Qwen2ForCausalLM") || !strcmp(c->arch, "Qwen3ForCausalLM")) {
        json_t *use = json_object_get(o, "use_sliding_window");
        if (use && !json_is_boolean(use))
            return err_set(ERR_MODEL, "%s: \"use_sliding_window\" must be true or false", path);
        if ((rc = get_int(o, path, "max_window_layers", &first, false, 28))) return rc;
        if (!json_is_true(use) || first >= c->n_layers) return 0;
        if (sw == 0)
            return err_set(ERR_MODEL, "%s: \"use_sliding_window\" is true but \"sliding_window\" is not set", path);
    }
    if (sw > 0 && sw < c->max_pos) c->max_pos = sw;
    return 0;
}

static int parse_config(json_t *o, const char *path, struct model_config *c)
{
    int rc = parse_arch(o, path, c);
    if (rc) return rc;
    if ((rc = get_int(o, path, "hidden_size", &c->hidden_size, true, 0)) ||
        (rc = get_int(o, path, "intermediate_size", &c->intermediate_size, true, 0)) ||
        (rc = get_int(o, path, "num_hidden_layers", &c->n_layers, true, 0)) ||
        (rc = get_int(o, path, "num_attention_heads", &c->n_heads, true, 0)) ||
        (rc = get_int(o, path, "num_key_value_heads", &c->n_kv_heads, false, c->n_heads)) ||
        (rc = get_int(o, path, "vocab_size", &c->vocab_size, true, 0)) ||
        (rc = get_int(o, path, "max_position_embeddings", &c->max_pos, false, 2048)) ||
        (rc = get_int(o, path, "bos_token_id", &c->bos_token_id, false, -1)) ||
        (rc = get_float(o, path, "rms_norm_eps", &c->rms_norm_eps, 1e-6f)) ||
        (rc = get_float(o, path, "rope_theta", &c->rope_theta, 10000.0f)) ||
        (rc = get_eos(o, path, c)) || (rc = parse_rope_scaling(o, path, c)))
        return rc;
    if (c->hidden_size <= 0 || c->intermediate_size <= 0 || c->n_layers <= 0 || c->n_heads <= 0 ||
        c->n_kv_heads <= 0 || c->vocab_size <= 0 || c->max_pos <= 0)
        return err_set(ERR_MODEL, "%s: sizes must be positive", path);
    if (c->n_heads % c->n_kv_heads)
        return err_set(ERR_MODEL, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                       path, c->n_heads, c->n_kv_heads);
    /* transformers' Qwen3Config defaults head_dim to 128, the others to hidden / heads */
    if ((rc = get_int(o, path, "head_dim", &c->head_dim, false, c->qk_norm ? 128 : c->hidden_size / c->n_heads)))
        return rc;
    if (c->head_dim <= 0 || c->head_dim % 2)
        return err_set(ERR_MODEL, "%s: head_dim %d must be even and positive", path, c->head_dim);
    if (!json_object_get(o, "head_dim") && !c->qk_norm && c->hidden_size % c->n_heads)
        return err_set(ERR_MODEL, "%s: hidden_size %d is not a multiple of num_attention_heads %d (give head_dim)",
                       path, c->hidden_size, c->n_heads);
    json_t *act = json_object_get(o, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return err_set(ERR_UNSUPPORTED, "%s: hidden_act must be \"silu\"", path);
    json_t *tie = json_object_get(o, "tie_word_embeddings");
    c->tie_word_embeddings = tie ? json_is_true(tie) : false;
    json_t *td = json_object_get(o, "torch_dtype");
    if (!td) td = json_object_get(o, "dtype");
    c->torch_dtype = DTYPE_F32;
    if (json_is_string(td)) {
        const char *s = json_string_value(td);
        if (!strcmp(s, "float16")) c->torch_dtype = DTYPE_F16;
        else if (!strcmp(s, "bfloat16")) c->torch_dtype = DTYPE_BF16;
        else if (strcmp(s, "float32"))
            return err_set(ERR_UNSUPPORTED, "%s: torch_dtype \"%s\" is not supported (float32, float16, bfloat16)", path, s);
    }
    return parse_window(o, path, c);
}

int model_config_load(struct model_config *c, const char *dir)
{
    memset(c, 0, sizeof(*c));
    c->gen_temperature = c->gen_top_p = -1.0f;
    c->gen_top_k = -1;
    char gguf_file[4096];
    int is_gguf = gguf_model_path(dir, gguf_file, sizeof(gguf_file));
    if (is_gguf) return is_gguf < 0 ? is_gguf : gguf_model_config(c, gguf_file);
    char path[4096], gpath[4096];
    snprintf(path, sizeof(path), "%s/config.json", dir);
    snprintf(gpath, sizeof(gpath), "%s/generation_config.json", dir);
    json_t *cfg, *gen = NULL;
    int rc = load_json(&cfg, path, false);
    if (rc) return rc;
    rc = parse_config(cfg, path, c);
    json_decref(cfg);
    if (!rc) rc = load_json(&gen, gpath, true);
    if (!rc && gen) {
        int bos;
        if (!(rc = get_int(gen, gpath, "bos_token_id", &bos, false, c->bos_token_id)) &&
            !(rc = get_eos(gen, gpath, c)) &&
            !(rc = get_float(gen, gpath, "temperature", &c->gen_temperature, -1.0f)) &&
            !(rc = get_float(gen, gpath, "top_p", &c->gen_top_p, -1.0f)))
            rc = get_int(gen, gpath, "top_k", &c->gen_top_k, false, -1);
        c->bos_token_id = bos;
    }
    json_decref(gen);
    if (rc) return rc;
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] < 0 || c->eos_ids[i] >= c->vocab_size)
            return err_set(ERR_MODEL, "%s: eos_token_id %d is outside the vocabulary (%d)", path, c->eos_ids[i], c->vocab_size);
    return 0;
}

void model_config_rope_inv_freq(const struct model_config *c, float *inv_freq)
{
    int half = c->head_dim / 2;
    const struct rope_scaling *r = &c->rope_scaling;
    for (int i = 0; i < half; i++) {
        /* transformers: 1 / base ** (arange(0, dim, 2).float() / dim), in fp32 */
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        if (r->type == ROPE_LINEAR) {
            f /= r->factor;
        } else if (r->type == ROPE_LLAMA3) {
            float low_wavelen = r->original_max_pos / r->low_freq_factor;
            float high_wavelen = r->original_max_pos / r->high_freq_factor;
            float wavelen = 2.0f * (float)M_PI / f;
            if (wavelen > low_wavelen) {
                f = f / r->factor;
            } else if (wavelen >= high_wavelen) {
                float smooth = (r->original_max_pos / wavelen - r->low_freq_factor) /
                               (r->high_freq_factor - r->low_freq_factor);
                f = (1.0f - smooth) * f / r->factor + smooth * f;
            }
        }
        if (r->n_freq_factors) f /= r->freq_factors[i]; /* llama.cpp: theta / freq_factors[i] */
        inv_freq[i] = f;
    }
}

bool model_config_is_eos(const struct model_config *c, int id)
{
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos_ids[i] == id) return true;
    return false;
}

int64_t model_config_num_params(const struct model_config *c)
{
    int64_t H = c->hidden_size, hd = c->head_dim, I = c->intermediate_size;
    int64_t attn = H * hd * (2 * c->n_heads + 2 * c->n_kv_heads), mlp = 3 * H * I;
    return (int64_t)c->vocab_size * H * (c->tie_word_embeddings ? 1 : 2) + c->n_layers * (attn + mlp + 2 * H) + H;
}
