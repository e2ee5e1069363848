/* gguf_model.h: a GGUF model file (base/gguf.h) -> struct model_config and
 * a tensor table under Hugging Face names (safetensors.h), so that
 * weights.c slices and checks GGUF weights exactly as it does safetensors.
 *
 * Architectures llama, qwen2, qwen3; tensor types F32, F16, BF16, Q8_0,
 * Q4_0, Q4_K and Q6_K (other quantized types are refused by name).
 * llama.cpp's converter permutes
 * the rows of llama's q and k weights (HF's rotate-half RoPE layout ->
 * ggml's interleaved one); the table undoes it, so the forward is the same
 * one and the tokens are those of the safetensors folder. */
#ifndef TESSERA_GGUF_MODEL_H
#define TESSERA_GGUF_MODEL_H

#include <stddef.h>

#include "model_config.h"
#include "safetensors.h"

/* Whether path names a GGUF model: FILE.gguf (a regular file), or a folder
 * holding exactly one *.gguf and no model.safetensors(.index.json).
 * 1: yes, its file in out; 0: no (a safetensors folder, or nothing there:
 * the safetensors loader says what is missing); negative ERR_*: a folder
 * with several .gguf files, or a path too long. */
int gguf_model_path(const char *path, char *out, size_t cap);

/* The config from file's metadata: general.architecture and its
 * {arch}.* hyperparameters, rope_freqs, tokenizer.ggml.* special ids,
 * general.sampling.*. 0 or a negative ERR_* naming the file and problem. */
int gguf_model_config(struct model_config *c, const char *file);

/* Maps file and builds the table of the tensors that c needs, under their
 * HF names; st_close() closes the file. */
int gguf_model_open(safetensors **out, const char *file, const struct model_config *c);

#endif
