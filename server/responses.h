/* responses.h: OpenAI's Responses API (POST /v1/responses, GET and DELETE
 * /v1/responses/{id}) over the chat pipeline.
 *
 * responses.c translates a Responses request into the chat request that
 * completions.c already prepares: `input` items become messages
 * (function_call items an assistant's tool_calls, function_call_output
 * items "tool" messages), `instructions` a leading system message, and
 * `tools`, `tool_choice`, `text.format`, `max_output_tokens` their chat
 * counterparts; a previous_response_id puts the stored conversation first.
 * The fields the response object repeats are kept as they were given.
 *
 * responses_render.c turns the job's chat deltas (chat_out.h, which parses
 * tool calls and reasoning) into output items, and in a stream into the
 * Responses events (`event: TYPE` + `data: {...}` with an increasing
 * sequence_number; no [DONE]). Streamed and whole replies build their items
 * by the same calls, so the two cannot differ. */
#ifndef TESSERA_RESPONSES_H
#define TESSERA_RESPONSES_H

#include <jansson.h>
#include <stdbool.h>

#include "../base/strbuf.h"
#include "openai.h"
#include "responses_store.h"

enum resp_open { RESP_OPEN_NONE, RESP_OPEN_MESSAGE, RESP_OPEN_REASONING, RESP_OPEN_CALL };

/* One response being made (n is always 1). */
struct resp_job {
    char id[48];             /* resp_... (set by resp_begin) */
    long created_at;
    const char *model;       /* borrowed */
    bool store;
    json_t *echo;            /* the request's fields the response object repeats */
    json_t *history;         /* input items: the previous conversation, then this input */
    json_t *output;          /* output items so far */
    enum resp_open open;     /* the last output item, while it grows */
    struct strbuf text;      /* its text or arguments so far */
    int seq;                 /* the next event's sequence_number */
    int n_items;             /* for item ids */
};

/* On the preparation thread: the chat body (malloc'd JSON text) of a
 * Responses body, and the response's state (*out, malloc'd). 0, or -1 with
 * e filled (param named as in the Responses request). */
int responses_translate(struct resp_store *st, const char *body, size_t len, struct resp_job **out, char **chat_body,
                        struct oai_error *e);
/* An error of the chat pipeline renamed to the Responses field it is about
 * (messages -> input, max_tokens -> max_output_tokens, ...). */
void responses_fix_param(struct oai_error *e);
void resp_job_free(struct resp_job *rj);
/* Keeps a finished response (its object) and its conversation in st. */
void responses_keep(struct resp_store *st, const struct resp_job *rj, json_t *object);

/* responses_render.c. ev NULL: a whole reply (no events written). */
/* The id and time; a stream's response.created and response.in_progress. */
void resp_begin(struct resp_job *rj, const char *model, struct strbuf *ev);
/* Chat deltas ({"content"}, {"reasoning_content"}, {"tool_calls"}) into
 * output items and their events. Consumes deltas. */
void resp_feed(struct resp_job *rj, json_t *deltas, struct strbuf *ev);
/* The end: finish is the chat finish_reason ("length": status incomplete).
 * Writes the terminal event; returns the response object (the caller's). */
json_t *resp_end(struct resp_job *rj, const char *finish, int input_tokens, int output_tokens, int cached_tokens,
                 struct strbuf *ev);
/* A stream that fails: response.failed with e's message. */
void resp_failed(struct resp_job *rj, const struct oai_error *e, struct strbuf *ev);

#endif
