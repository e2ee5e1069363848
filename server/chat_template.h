/* chat_template.h: chat messages -> prompt token ids.
 *
 * The common chat formats, recognised from the Jinja chat_template of
 * tokenizer_config.json (or a --chat-template file) by their markers, and
 * rendered as those templates render them: Llama-2-chat ([INST] with
 * <<SYS>>), Mistral-Instruct ([INST] without), Zephyr/TinyLlama (<|user|>),
 * ChatML (<|im_start|>) and Llama-3 (<|start_header_id|>). bos_token and
 * eos_token in a template become the tokenizer's BOS/EOS ids; the text
 * between them is encoded without BOS. A model without a template gets
 * CHAT_DEFAULT:
 *     BOS "{system}\n\n" "User: {user}\n" "Assistant: {assistant}\n" ... "Assistant:"
 * A general Jinja renderer is a later step. */
#ifndef TESSERA_CHAT_TEMPLATE_H
#define TESSERA_CHAT_TEMPLATE_H

#include <stdint.h>

#include "../tokenizer/tokenizer.h"

enum chat_style { CHAT_DEFAULT, CHAT_LLAMA2, CHAT_MISTRAL, CHAT_ZEPHYR, CHAT_CHATML, CHAT_LLAMA3 };

/* The style of a Jinja template (NULL or unrecognised: CHAT_DEFAULT). */
enum chat_style chat_style_detect(const char *jinja);
const char *chat_style_name(enum chat_style s);

struct chat_msg {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
};

/* Prompt ids of messages m[0..n) followed by the assistant's turn; *ids is
 * malloc'd. Returns the count. */
int chat_render(enum chat_style s, const struct chat_msg *m, int n, const tokenizer *tok, int32_t **ids);

#endif
