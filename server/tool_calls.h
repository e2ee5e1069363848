/* tool_calls.h: tool calls found in a model's output text, as it streams.
 *
 * Three output formats, named as vLLM's --tool-call-parser names them:
 *   hermes       (Hermes, Qwen2.5, Qwen3): text, then one or more
 *                <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
 *   llama3_json  (Llama 3.1/3.2): the whole output, after optional blanks and
 *                an optional <|python_tag|>, is {"name": "f", "parameters":
 *                {...}} ("arguments" accepted too), several joined by ';'
 *   mistral      [TOOL_CALLS] then a JSON array [{"name": "f", "arguments":
 *                {...}}, ...] (v0.3), or [TOOL_CALLS]f[ARGS]{...} / f{...}
 *                (tokenizer v11+), repeated for several calls
 *
 * Text goes in as the detokenizer produces it (after stop strings); events
 * come out in the order an OpenAI stream sends them: content, then for each
 * call its start (index, id, name), its arguments and its end. Content is
 * only text that cannot be markup: a possible beginning of a marker is held
 * back until the next piece decides, as stop.c holds stop-string prefixes.
 *
 * A call is released whole once its text is complete and checked: the JSON
 * parses (jansson), "name" is a non-empty string and the arguments are an
 * object (or a string holding one). Its arguments then come as one fragment:
 * the object written as vLLM writes it, Python's json.dumps(args,
 * ensure_ascii=False) (", " and ": " separators, keys in order, UTF-8 kept,
 * reals in repr's shortest form), so they are always valid JSON and the
 * one-shot and streamed strings are the same bytes. (Integers beyond 64
 * bits and reals beyond a double make jansson, so the call, fail.) A block
 * that does not check (malformed JSON, not a call, unterminated at the end,
 * longer than max_call_bytes) comes back as plain content, markers and all;
 * never an error. Blanks before, between and after calls are dropped (held
 * until the next text decides); other text after a call is content (vLLM
 * drops it in one-shot replies).
 *
 * Why whole calls: a call whose arguments were half streamed cannot become
 * content again, nor be made valid JSON without guessing, when it turns
 * out malformed or is cut by max_tokens. The events allow several ARGS
 * fragments per call, so a later incremental mode keeps this API.
 *
 * The decisions depend on the text only, never on how it was cut: any
 * chunking gives the same events once adjacent content (or argument)
 * events are merged, and tool_calls_parse (the same machine fed at once)
 * gives exactly those.
 *
 * Cost: each byte is looked at a bounded number of times (the markers are
 * matched by a counter: their first byte never recurs in them), and a
 * call's text is parsed once, when it ends: O(output bytes) in all. What is
 * held back is a marker prefix and blanks, or the call being read: at most
 * max_call_bytes (or 64) either way; past that it is content. */
#ifndef TESSERA_TOOL_CALLS_H
#define TESSERA_TOOL_CALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/strbuf.h"

enum tool_format {
    TOOL_FORMAT_NONE = 0, /* no parsing: everything is content */
    TOOL_FORMAT_HERMES,
    TOOL_FORMAT_LLAMA3_JSON,
    TOOL_FORMAT_MISTRAL,
};

/* "hermes", "llama3_json", "mistral" (and "none"): 0, or ERR_INVALID with
 * err_msg() naming the choices. */
int tool_format_from_name(const char *name, enum tool_format *out);
const char *tool_format_name(enum tool_format f);
/* The format a chat template's text implies: <tool_call> -> hermes;
 * [TOOL_CALLS] -> mistral; <|python_tag|>, or Llama 3's "parameters" JSON
 * instructions -> llama3_json; else none. */
enum tool_format tool_format_detect(const char *template_text);

enum tool_event_kind {
    TOOL_EV_CONTENT,    /* text: plain content */
    TOOL_EV_CALL_START, /* index, id, name */
    TOOL_EV_ARGS,       /* index, text: a piece of function.arguments */
    TOOL_EV_CALL_END,   /* index */
};

#define TOOL_CALL_ID_LEN 29 /* "call_" + 24 alphanumerics */

struct tool_event {
    enum tool_event_kind kind;
    int index;               /* the call's place among this output's calls, from 0 (CONTENT: 0) */
    const char *text;        /* CONTENT, ARGS: len bytes (not NUL-terminated) */
    size_t len;
    const char *name;        /* CALL_START: NUL-terminated UTF-8 */
    char id[TOOL_CALL_ID_LEN + 1]; /* CALL_START */
    size_t off_, name_off_;  /* private: offsets into buf */
};

/* Events appended by tool_parser_feed/finish. An event that continues the
 * last one (content after content, arguments of the same call) is merged
 * into it. The pointers in v[] are borrowed: valid until the next append or
 * tool_events_reset/free. Zero-initialised is empty. */
struct tool_events {
    struct tool_event *v;
    int n, cap;
    struct strbuf buf; /* the texts and names */
};

void tool_events_reset(struct tool_events *ev);
void tool_events_free(struct tool_events *ev);

/* Writes a call id (TOOL_CALL_ID_LEN chars and a NUL) for call `index`. */
typedef void tool_id_fn(void *ctx, int index, char *out);

struct tool_parser {
    enum tool_format format;
    size_t max_call_bytes;  /* a longer call (or run of held blanks) is content (default 1 MiB) */
    tool_id_fn *make_id;    /* NULL (default): call_ + 24 random alphanumerics */
    void *id_ctx;
    /* private state */
    int state, sub, n_calls;
    size_t match;           /* bytes of the marker being matched */
    size_t depth;           /* JSON nesting while scanning for a call's end */
    bool in_str, esc, after_call;
    size_t call_at, json_at; /* in held: the call's first byte, its JSON's */
    struct strbuf held;
    uint64_t rng;
};

/* A parser for format f (TOOL_FORMAT_NONE passes text through). Set
 * make_id/id_ctx or max_call_bytes after init to change them. The struct
 * may be moved (it holds no pointer into itself). */
void tool_parser_init(struct tool_parser *p, enum tool_format f);
void tool_parser_deinit(struct tool_parser *p);
/* Feeds the next piece of output; appends the events it decides to ev. */
void tool_parser_feed(struct tool_parser *p, const char *text, size_t len, struct tool_events *ev);
/* End of the output: a call still being read is checked as it stands (a
 * complete hermes call lacking only </tool_call> counts), else returned as
 * content with whatever else is held. Further feeds are ignored. */
void tool_parser_finish(struct tool_parser *p, struct tool_events *ev);
/* Whether any call was emitted (finish_reason "tool_calls"). */
bool tool_parser_called(const struct tool_parser *p);

/* One-shot, for replies that are not streamed: init, feed, finish (the
 * same machine, so it cannot disagree with a stream). Returns the number of
 * calls; ev gets the events, merged: the content before the first call is
 * one event; content between or after calls is text that was not a call.
 * ids from make_id (NULL: random). */
int tool_calls_parse(enum tool_format f, const char *text, size_t len, tool_id_fn *make_id, void *id_ctx,
                     struct tool_events *ev);

/* The output of a forced call (tool_choice "required" or a named function,
 * which constrained decoding shapes as vLLM does): with name, the output is
 * that function's arguments object; without, a JSON array of {"name",
 * "parameters"} objects. Appends the calls' events, as tool_parser_feed
 * would (arguments as json.dumps writes them), or, when the text is not
 * that (cut by max_tokens), the text as content; false then. p gives the
 * ids and counts the calls. */
bool tool_calls_forced(struct tool_parser *p, const char *name, const char *text, size_t n, struct tool_events *ev);

#endif
