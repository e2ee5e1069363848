/* chat_out.h: a chat choice's text when the model may think or call tools.
 *
 * The text after stop strings goes through the reasoning parser
 * (reasoning.h), which splits off reasoning_content, and the rest through
 * the tool-call parser (tool_calls.h). What comes out is what an OpenAI
 * stream sends, in order: {"reasoning_content": ...}, {"content": ...} and
 * {"tool_calls": [{index, id, type, function: {name, arguments: ""}}]} then
 * {"tool_calls": [{index, function: {arguments}}]}. A stream sends those
 * deltas as they come; a whole reply merges them into one message, as a
 * client merges a stream, so the two cannot differ. */
#ifndef TESSERA_CHAT_OUT_H
#define TESSERA_CHAT_OUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "reasoning.h"
#include "tool_calls.h"

struct chat_out {
    struct reasoning_parser rp;
    struct tool_parser tp;
    struct reasoning_out ro;   /* scratch of one feed */
    struct tool_events ev;     /* scratch of one feed */
    bool has_reasoning;        /* a reasoning parser runs: messages carry reasoning_content */
    bool forced;               /* the output is a forced call (chat_out_force) */
    char *forced_name;         /* the named function, or NULL: a list of calls */
    struct strbuf held;        /* a forced call's output so far */
    bool stream;
    /* whole replies: the message so far */
    struct strbuf content, reasoning;
    json_t *calls;
};

void chat_out_init(struct chat_out *o, enum reasoning_format r, enum tool_format t, bool stream);
void chat_out_deinit(struct chat_out *o);
/* The output is a forced call, shaped by constrained decoding: name's
 * arguments, or (name NULL, tool_choice "required") a JSON array of
 * {"name", "parameters"}. Its call(s) go out whole at the end, or its text
 * as content when it is none (cut by max_tokens). No reasoning is split. */
void chat_out_force(struct chat_out *o, const char *name);
/* The next text of the output. A stream's deltas are appended to deltas (a
 * JSON array); a whole reply's are merged into its message. */
void chat_out_feed(struct chat_out *o, const char *text, size_t n, json_t *deltas);
/* The end of the output: what the parsers held back. */
void chat_out_finish(struct chat_out *o, json_t *deltas);
/* Whether the output called a tool (finish_reason "tool_calls"). */
bool chat_out_called(const struct chat_out *o);
/* A whole reply's message: role, content (null when empty and tools were
 * called), reasoning_content (with a reasoning parser), tool_calls (when
 * any). */
json_t *chat_out_message(const struct chat_out *o);

#endif
