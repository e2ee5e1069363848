/* oai_render.h: OpenAI response bodies: chunks, whole replies, logprobs,
 * usage, errors, and their SSE framing. Every text that goes in (generated
 * text, token pieces) comes out as valid UTF-8: bad bytes become U+FFFD. */
#ifndef TESSERA_OAI_RENDER_H
#define TESSERA_OAI_RENDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../tokenizer/tokenizer.h"
#include "openai.h"

/* What every chunk and reply of one request repeats. */
struct oai_head {
    char id[64];            /* chatcmpl-... or cmpl-... */
    long created;
    const char *model;      /* borrowed */
    bool chat, include_usage;
};
void oai_head_init(struct oai_head *h, bool chat, bool include_usage, const char *model);

/* A JSON string of s[0..n), valid UTF-8 guaranteed. */
json_t *oai_text(const char *s, size_t n);
/* A token as logprobs show it ({token, logprob[, bytes]}). */
json_t *oai_token(const tokenizer *tok, int32_t id, float lp, bool with_bytes);
/* The logprobs object of a choice from token entries (each with
 * top_logprobs, and text_offset for completions). */
json_t *oai_logprobs(bool chat, json_t *entries);
json_t *oai_usage(int prompt_tokens, int completion_tokens, int cached_tokens);
/* A chunk of a stream with choices (consumed; an empty array for the usage
 * chunk, whose usage then follows). */
json_t *oai_chunk(const struct oai_head *h, json_t *choices, json_t *usage);
/* One choice's delta: text (chat: content; omitted when empty at the end),
 * logprobs (consumed, may be NULL) and the finish reason (NULL: none). */
json_t *oai_chunk_choice(const struct oai_head *h, int index, const char *text, size_t n, json_t *logprobs,
                         const char *finish);
/* One chat choice's delta (consumed; NULL: {}). */
json_t *oai_chunk_delta(int index, json_t *delta, json_t *logprobs, const char *finish);
/* The first chunk of a chat choice: the assistant's role. */
json_t *oai_chunk_role(int index);
/* A whole reply's choice and the reply. */
json_t *oai_reply_choice(const struct oai_head *h, int index, const char *text, size_t n, json_t *logprobs,
                         const char *finish);
/* A whole chat reply's choice with its message (consumed). */
json_t *oai_reply_message(int index, json_t *message, json_t *logprobs, const char *finish);
json_t *oai_reply(const struct oai_head *h, json_t *choices, json_t *usage);
/* The JSON body of an error (malloc'd). */
char *oai_error_json(const struct oai_error *e);
/* One SSE event of json (consumed; NULL, a failed encoding, becomes an error
 * event): malloc'd bytes, their count in *len. */
char *oai_sse(json_t *event, size_t *len);

#endif
