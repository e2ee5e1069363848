/* openai.h: OpenAI request bodies -> validated requests; error bodies.
 *
 * oai_parse() reads a /v1/chat/completions or /v1/completions body with
 * jansson and checks every field it knows (type and range); unknown fields
 * are ignored, as OpenAI-compatible servers do. A failure fills a struct
 * oai_error the caller turns into {"error": {message, type, param, code}}. */
#ifndef TESSERA_OPENAI_H
#define TESSERA_OPENAI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../engine/sampler.h"
#include "chat_template.h"

#define OAI_MAX_N 16
#define OAI_MAX_STOP 16               /* stop strings per request */
#define OAI_MAX_STOP_BYTES 1024       /* bytes of one stop string */
#define OAI_MAX_PROMPT_BYTES (4 << 20) /* text of all prompts or messages of a request */

struct oai_error {
    int status;
    const char *type;   /* "invalid_request_error", ... */
    const char *code;   /* NULL, "context_length_exceeded", "model_not_found", ... */
    char param[64];     /* "" for null */
    char message[512];
};

/* Fills e; returns -1 for the caller's convenience. */
int oai_fail(struct oai_error *e, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

struct oai_prompt {
    char *text;          /* a text prompt, or NULL */
    int32_t *ids;        /* token ids given directly, or NULL */
    int n_ids;
};

/* tool_choice: "auto" (the default with tools), "none" (the default without),
 * "required", or a named function. */
enum oai_tool_choice { OAI_TOOLS_NONE, OAI_TOOLS_AUTO, OAI_TOOLS_REQUIRED, OAI_TOOLS_NAMED };

#define OAI_MAX_TOOLS 128
#define OAI_MAX_CHOICES 1024          /* structured_outputs.choice entries */

/* What the output must follow (response_format, vLLM's structured_outputs). */
enum oai_format { OAI_FORMAT_TEXT, OAI_FORMAT_JSON_OBJECT, OAI_FORMAT_JSON_SCHEMA, OAI_FORMAT_REGEX, OAI_FORMAT_CHOICE };

struct oai_request {
    bool chat;
    json_t *root;
    const char *model;           /* NULL when not given */
    struct chat_msg *msgs;       /* chat */
    int n_msgs;
    char **owned;                /* message texts joined from content parts */
    int n_owned;
    struct oai_prompt *prompts;  /* completions: one or more */
    int n_prompts;
    int max_tokens;              /* -1: not given */
    struct sampling_params sp;
    int n;
    const char *stop[OAI_MAX_STOP];
    int n_stop;
    bool stream, include_usage, ignore_eos;
    int logprobs;                /* -1: none; else top alternatives per token */
    int32_t *bias_ids;
    float *bias;
    int n_bias;
    /* chat: tools, checked ([{type: "function", function: {name, description,
     * parameters}}], names [A-Za-z0-9_-]{1,64}, unique); borrowed from root,
     * NULL when none are given (or the list is empty) */
    json_t *tools;
    enum oai_tool_choice tool_choice;
    const char *tool_name;       /* OAI_TOOLS_NAMED: the function */
    bool parallel_tool_calls;    /* default true */
    /* the output's format: the schema as JSON text, the regex, or the
     * choices as a JSON array (malloc'd; NULL for text and json_object) */
    enum oai_format format;
    char *format_text;
    const char *format_param;    /* the field that asked for it, for errors */
    bool compact_json;           /* structured_outputs.disable_any_whitespace: no blanks between JSON tokens */
};

/* 0, or -1 with e filled. vocab bounds token ids in prompts and logit_bias. */
int oai_parse(struct oai_request *r, bool chat, const char *body, size_t len, int vocab, struct oai_error *e);
void oai_request_free(struct oai_request *r);

#endif
