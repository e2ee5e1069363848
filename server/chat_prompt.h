/* chat_prompt.h: a chat request -> its prompt: the model's own Jinja chat
 * template (tokenizer/jinja), rendered with the request's messages, tools,
 * add_generation_prompt and chat_template_kwargs as transformers'
 * apply_chat_template renders it, then tokenized without special tokens
 * (the template writes them). Without a template, or with one our renderer
 * cannot compile (a warning says why), the built-in formats of
 * chat_template.h. */
#ifndef TESSERA_CHAT_PROMPT_H
#define TESSERA_CHAT_PROMPT_H

#include "../tokenizer/jinja/jinja.h"
#include "chat_template.h"
#include "openai.h"
#include "tool_calls.h"

struct chat_format {
    jinja_template *tmpl, *tool_tmpl; /* compiled; tool_tmpl: "tool_use", for requests with tools */
    enum chat_style style;            /* when tmpl is NULL */
    char source[256];                 /* where the template came from, for messages */
    enum tool_format tools;           /* the tool-call format the template writes (tool_format_detect) */
};

/* The template of --chat-template FILE (file != NULL) or of the model's
 * folder (tok_chat_template). Returns 0, or -1 when file cannot be read
 * (err_msg() says why). */
int chat_format_load(struct chat_format *f, const char *file, const tokenizer *tok);
void chat_format_free(struct chat_format *f);
/* "jinja (SOURCE)" or the built-in style's name. */
const char *chat_format_name(const struct chat_format *f, char *buf, size_t cap);

/* The prompt ids of q (a parsed chat request) into *ids (malloc'd), and its
 * text into text when text != NULL (templates only; the built-in formats
 * leave it empty). Returns the count, or -1 with *err = the template's own
 * message (raise_exception's text, or what failed where). */
int chat_prompt(const struct chat_format *f, const struct oai_request *q, const tokenizer *tok, int32_t **ids,
                struct strbuf *text, char *err, size_t err_cap);

#endif
