/* gguf_model.c: a GGUF file's tensors -> a table under Hugging Face names
 * (gguf_model.h), with llama's q/k rows put back in HF order. */
#include "gguf_model.h"

#include <string.h>

#include "../base/err.h"
#include "../base/gguf.h"

/* ggml name stem of a layer tensor -> HF's (".weight"/".bias" kept) */
static const char *const LAYER_NAMES[][2] = {
    {"attn_norm", "input_layernorm"},      {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},        {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},        {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},   {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},         {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

/* HF name of a GGUF tensor name; false for names the forward does not use. */
static bool hf_name(const char *name, char *out, size_t cap)
{
    static const char *const top[][2] = {{"token_embd.weight", "model.embed_tokens.weight"},
                                         {"output_norm.weight", "model.norm.weight"},
                                         {"output.weight", "lm_head.weight"}};
    for (size_t i = 0; i < 3; i++)
        if (!strcmp(name, top[i][0])) return snprintf(out, cap, "%s", top[i][1]) > 0;
    int layer, n = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &n) != 1 || n == 0 || layer < 0) return false;
    const char *stem = name + n, *ext = strrchr(stem, '.');
    if (!ext || (strcmp(ext, ".weight") && strcmp(ext, ".bias"))) return false;
    for (size_t i = 0; i < sizeof(LAYER_NAMES) / sizeof(LAYER_NAMES[0]); i++) {
        size_t k = strlen(LAYER_NAMES[i][0]);
        if ((size_t)(ext - stem) == k && !strncmp(stem, LAYER_NAMES[i][0], k))
            return snprintf(out, cap, "model.layers.%d.%s%s", layer, LAYER_NAMES[i][1], ext) > 0;
    }
    return false;
}

/* The rows of llama's q (n_head = heads) or k (n_head = KV heads) weight or
 * bias back in HF order. convert_hf_to_gguf.py's LlamaModel.permute
 * reshapes [n_head, 2, hd/2, cols] -> [n_head, hd/2, 2, cols]: GGUF row
 * h*hd + 2i + j holds HF row h*hd + j*hd/2 + i (RoPE's rotate-half pairs
 * (i, i + hd/2) stored interleaved, as ggml's RoPE reads them). */
static int unpermute(safetensors *st, struct st_tensor *t, int n_head)
{
    int64_t rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
    if (n_head <= 0 || rows % (2 * (int64_t)n_head))
        return err_set(ERR_MODEL, "%s: tensor \"%s\": %lld rows do not split into %d heads of even size", t->file,
                       t->orig_name, (long long)rows, n_head);
    int64_t hd = rows / n_head, half = hd / 2;
    size_t row_bytes = dtype_row_bytes(t->dtype, cols);
    char *dst = st_table_alloc(st, t->nbytes);
    const char *src = t->data;
    for (int64_t h = 0; h < n_head; h++)
        for (int64_t j = 0; j < 2; j++)
            for (int64_t i = 0; i < half; i++)
                memcpy(dst + (h * hd + j * half + i) * row_bytes, src + (h * hd + 2 * i + j) * row_bytes, row_bytes);
    st_release(st, t->data, t->nbytes); /* the mapped copy is not read again */
    t->data = dst;
    return 0;
}

/* The dtype of a GGUF tensor type, or -1: one we cannot compute with. */
static int dtype_of(uint32_t type)
{
    switch (type) {
    case GGML_F32: return DTYPE_F32;
    case GGML_F16: return DTYPE_F16;
    case GGML_BF16: return DTYPE_BF16;
    case GGML_Q8_0: return DTYPE_Q8_0;
    case GGML_Q4_0: return DTYPE_Q4_0;
    case GGML_Q4_K: return DTYPE_Q4_K;
    case GGML_Q6_K: return DTYPE_Q6_K;
    default: return -1;
    }
}

/* One GGUF tensor -> a table entry named hf (shape reversed to row-major). */
static int add_tensor(safetensors *st, const struct gguf_tensor *gt, const char *hf, const struct model_config *c,
                      const char *path)
{
    const struct ggml_type_info *ti = ggml_type_get(gt->type);
    int dt = dtype_of(gt->type);
    if (dt < 0)
        return err_set(ERR_UNSUPPORTED, "%s: tensor \"%s\" is %s: %s GGUF tensors are not supported (F32, F16, "
                       "BF16, Q8_0, Q4_0, Q4_K, Q6_K)", path, gt->name, ti->name, ti->quantized ? "these quantized" : "these");
    if (dtype_is_quant(dt) && gt->n_dims != 2)
        return err_set(ERR_MODEL, "%s: tensor \"%s\" is %s with %d dimensions: quantized tensors must be matrices", path,
                       gt->name, ti->name, gt->n_dims);
    struct st_tensor *t = st_table_add(st, hf);
    t->orig_name = gt->name;
    t->dtype_ok = true;
    t->dtype = dt;
    snprintf(t->dtype_name, sizeof(t->dtype_name), "%s", ti->name);
    t->ndim = gt->n_dims;
    for (int i = 0; i < gt->n_dims; i++) t->shape[i] = gt->ne[gt->n_dims - 1 - i];
    t->data = gt->data;
    t->nbytes = gt->nbytes;
    if (strcmp(c->arch, "LlamaForCausalLM") || t->ndim > 2) return 0;
    if (strstr(hf, ".q_proj.")) return unpermute(st, t, c->n_heads);
    if (strstr(hf, ".k_proj.")) return unpermute(st, t, c->n_kv_heads);
    return 0;
}

/* Every tensor c needs, by its GGUF name: a missing one is named as the
 * file names it. */
static int check_present(const gguf *g, const struct model_config *c)
{
    const char *need[16];
    int n = 0;
    const char *always[] = {"attn_norm.weight", "ffn_norm.weight", "attn_q.weight", "attn_k.weight",
                            "attn_v.weight", "attn_output.weight", "ffn_gate.weight", "ffn_up.weight",
                            "ffn_down.weight"};
    for (int i = 0; i < 9; i++) need[n++] = always[i];
    if (c->qkv_bias) need[n++] = "attn_q.bias", need[n++] = "attn_k.bias", need[n++] = "attn_v.bias";
    if (c->o_bias) need[n++] = "attn_output.bias";
    if (c->qk_norm) need[n++] = "attn_q_norm.weight", need[n++] = "attn_k_norm.weight";
    if (!gguf_find_tensor(g, "output_norm.weight"))
        return err_set(ERR_MODEL, "%s: tensor \"output_norm.weight\" is missing", gguf_path(g));
    for (int l = 0; l < c->n_layers; l++) {
        for (int i = 0; i < n; i++) {
            char name[64];
            snprintf(name, sizeof(name), "blk.%d.%s", l, need[i]);
            if (!gguf_find_tensor(g, name))
                return err_set(ERR_MODEL, "%s: tensor \"%s\" is missing", gguf_path(g), name);
        }
    }
    return 0;
}

static void close_gguf(void *g) { gguf_close(g); }

int gguf_model_open(safetensors **out, const char *file, const struct model_config *c)
{
    gguf *g;
    int rc = gguf_open(&g, file, true);
    if (rc) return rc;
    if ((rc = check_present(g, c))) {
        gguf_close(g);
        return rc;
    }
    size_t size;
    const void *base = gguf_base(g, &size);
    safetensors *st = st_table_new(file, base, size, gguf_is_mapped(g), close_gguf, g);
    for (int64_t i = 0; i < gguf_tensor_count(g) && !rc; i++) {
        const struct gguf_tensor *gt = gguf_tensor_at(g, i);
        char hf[128];
        if (hf_name(gt->name, hf, sizeof(hf))) rc = add_tensor(st, gt, hf, c, file);
    }
    if (rc) {
        st_close(st);
        return rc;
    }
    *out = st;
    return 0;
}
