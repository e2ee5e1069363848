/* model_config.h: config.json and generation_config.json of a Hugging Face
 * Llama-family folder -> struct model_config.
 *
 * Architectures: LlamaForCausalLM, MistralForCausalLM (both: optional
 * explicit head_dim), Qwen2ForCausalLM (biases on q/k/v) and
 * Qwen3ForCausalLM (per-head RMSNorm of q and k before RoPE; with
 * attention_bias, biases on q/k/v/o). The forward is the same Llama forward
 * with these switched on. */
#ifndef TESSERA_MODEL_CONFIG_H
#define TESSERA_MODEL_CONFIG_H

#include <stdbool.h>

#include "../kernels/dtype.h"

#define MODEL_MAX_EOS 8

enum rope_type { ROPE_DEFAULT = 0, ROPE_LINEAR, ROPE_LLAMA3 };

#define MODEL_MAX_FREQ_FACTORS 512

struct rope_scaling {
    enum rope_type type;
    float factor;
    float low_freq_factor, high_freq_factor; /* llama3 */
    int original_max_pos;                    /* llama3 */
    /* GGUF's rope_freqs tensor (llama.cpp's llama3 scaling, precomputed by
     * its converter): each inv_freq[i] is divided by freq_factors[i];
     * n_freq_factors = head_dim / 2, or 0 when there is none */
    int n_freq_factors;
    float freq_factors[MODEL_MAX_FREQ_FACTORS];
};

struct model_config {
    char arch[64]; /* "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM" */
    int hidden_size, intermediate_size, n_layers;
    int n_heads, n_kv_heads, head_dim;
    int vocab_size, max_pos;
    float rms_norm_eps, rope_theta;
    struct rope_scaling rope_scaling;
    bool tie_word_embeddings;
    bool qkv_bias;          /* q_proj/k_proj/v_proj.bias (Qwen2; Qwen3 with attention_bias) */
    bool o_bias;            /* o_proj.bias (Qwen3 with attention_bias) */
    bool qk_norm;           /* q_norm/k_norm.weight [head_dim] (Qwen3) */
    enum dtype torch_dtype; /* as declared; tensors carry their own */
    int bos_token_id;       /* -1 when unknown */
    int eos_ids[MODEL_MAX_EOS];
    int n_eos;
    /* generation_config.json sampling defaults; < 0 when not given */
    float gen_temperature, gen_top_p;
    int gen_top_k;
};

/* Reads dir/config.json (required) and dir/generation_config.json (optional,
 * its eos/bos ids win); or, when dir is FILE.gguf or a folder holding one
 * (gguf_model.h), the GGUF file's metadata. Returns 0 or a negative ERR_*
 * with err_msg() naming the file and the problem. */
int model_config_load(struct model_config *c, const char *dir);

/* inv_freq[hd/2] with rope_scaling applied, computed as transformers does. */
void model_config_rope_inv_freq(const struct model_config *c, float *inv_freq);

bool model_config_is_eos(const struct model_config *c, int id);

/* Weights of the model: embeddings, LM head (unless tied) and layers. */
int64_t model_config_num_params(const struct model_config *c);

#endif
