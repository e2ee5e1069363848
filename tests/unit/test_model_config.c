/* test_model_config.c: what config.json switches on per architecture, and
 * the sliding-window fields (attention here is full: a window some layer
 * uses caps the context; one no layer uses changes nothing). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "../../engine/model_config.h"
#include "test_util.h"

/* Loads a config of arch with 2 layers, max_position_embeddings 1024 and
 * the extra JSON members `extra` (",\"key\": value..."); returns the rc. */
static int load(struct model_config *c, const char *arch, const char *extra)
{
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"architectures\": [\"%s\"], \"hidden_size\": 64, \"intermediate_size\": 128, "
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2, "
             "\"vocab_size\": 100, \"max_position_embeddings\": 1024%s}", arch, extra);
    char *dir = make_tmpdir();
    write_text(dir, "config.json", json);
    int rc = model_config_load(c, dir);
    rm_rf(dir);
    free(dir);
    return rc;
}

Test(model_config, architectures_switch_biases_and_norms)
{
    struct model_config c;
    cr_assert_eq(load(&c, "Qwen2ForCausalLM", ""), 0, "%s", err_msg());
    cr_assert(c.qkv_bias && !c.o_bias && !c.qk_norm);
    cr_assert_eq(c.head_dim, 16);
    cr_assert_eq(load(&c, "Qwen3ForCausalLM", ", \"head_dim\": 32"), 0, "%s", err_msg());
    cr_assert(!c.qkv_bias && !c.o_bias && c.qk_norm);
    cr_assert_eq(c.head_dim, 32);
    cr_assert_eq(load(&c, "Qwen3ForCausalLM", ""), 0, "%s", err_msg());
    cr_assert_eq(c.head_dim, 128, "transformers' Qwen3Config default");
    cr_assert_eq(load(&c, "Qwen3ForCausalLM", ", \"attention_bias\": true"), 0, "%s", err_msg());
    cr_assert(c.qkv_bias && c.o_bias && c.qk_norm);
    cr_assert_eq(load(&c, "LlamaForCausalLM", ", \"attention_bias\": false"), 0, "%s", err_msg());
    cr_assert(!c.qkv_bias && !c.o_bias && !c.qk_norm);
    cr_assert_eq(load(&c, "MistralForCausalLM", ", \"attention_bias\": true"), ERR_UNSUPPORTED);
}

Test(model_config, qwen_sliding_window_caps_only_when_a_layer_slides)
{
    struct model_config c;
    /* as shipped: use_sliding_window false, whatever the window */
    cr_assert_eq(load(&c, "Qwen2ForCausalLM", ", \"use_sliding_window\": false, \"sliding_window\": 64, "
                                              "\"max_window_layers\": 0"), 0, "%s", err_msg());
    cr_assert_eq(c.max_pos, 1024);
    /* on, but layers from 2 on slide: there are none */
    cr_assert_eq(load(&c, "Qwen2ForCausalLM", ", \"use_sliding_window\": true, \"sliding_window\": 64, "
                                              "\"max_window_layers\": 2"), 0, "%s", err_msg());
    cr_assert_eq(c.max_pos, 1024);
    /* layer 1 slides: the context is the window (max_window_layers defaults to 28) */
    cr_assert_eq(load(&c, "Qwen3ForCausalLM", ", \"use_sliding_window\": true, \"sliding_window\": 64, "
                                              "\"max_window_layers\": 1"), 0, "%s", err_msg());
    cr_assert_eq(c.max_pos, 64);
    cr_assert_eq(load(&c, "Qwen3ForCausalLM", ", \"use_sliding_window\": true, \"sliding_window\": 4096, "
                                              "\"max_window_layers\": 0"), 0, "%s", err_msg());
    cr_assert_eq(c.max_pos, 1024);
    cr_assert_eq(load(&c, "Qwen2ForCausalLM", ", \"use_sliding_window\": true, \"max_window_layers\": 1"), ERR_MODEL);
    cr_assert(strstr(err_msg(), "config.json: \"use_sliding_window\" is true but \"sliding_window\" is not set"),
              "%s", err_msg());
    /* Mistral: every layer slides */
    cr_assert_eq(load(&c, "MistralForCausalLM", ", \"sliding_window\": 64"), 0, "%s", err_msg());
    cr_assert_eq(c.max_pos, 64);
}
