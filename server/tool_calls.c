/* tool_calls.c: the streaming tool-call parser (see tool_calls.h). One byte
 * at a time through a small state machine per format; a call's text is
 * checked by jansson when it ends (tool_calls_json.c). */
#include "tool_calls.h"

#include <string.h>

#include "../base/err.h"
#include "tool_calls_impl.h"

enum { ST_TEXT, ST_CALL, ST_PASS, ST_DONE };
/* ST_CALL's sub-states: where in the call's text the parser is */
enum { SUB_HERMES,        /* hermes: looking for </tool_call> */
       SUB_WS,            /* blanks before the JSON (llama3 after the tag or ';', mistral after [ARGS]) */
       SUB_JSON,          /* inside the JSON, scanning for its end */
       SUB_M_HEAD,        /* mistral after [TOOL_CALLS]: '[' (array) or a name */
       SUB_M_NAME,        /* mistral: the function name */
       SUB_M_ARGS_TAG };  /* mistral: inside [ARGS] */

static const char HERMES_OPEN[] = "<tool_call>", HERMES_CLOSE[] = "</tool_call>";
static const char MISTRAL_OPEN[] = "[TOOL_CALLS]", MISTRAL_ARGS[] = "[ARGS]";
static const char PYTHON_TAG[] = "<|python_tag|>";

static bool is_blank(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

/* The marker that opens a call in ST_TEXT (llama3: the optional tag). */
static const char *open_marker(const struct tool_parser *p)
{
    switch (p->format) {
    case TOOL_FORMAT_HERMES: return HERMES_OPEN;
    case TOOL_FORMAT_MISTRAL: return MISTRAL_OPEN;
    default: return PYTHON_TAG;
    }
}

void tool_parser_init(struct tool_parser *p, enum tool_format f)
{
    memset(p, 0, sizeof(*p));
    p->format = f;
    p->state = f == TOOL_FORMAT_NONE ? ST_PASS : ST_TEXT;
    /* blanks at the start are held as after a call: dropped if a call follows */
    p->after_call = f == TOOL_FORMAT_HERMES || f == TOOL_FORMAT_MISTRAL;
    p->max_call_bytes = (size_t)1 << 20;
    p->rng = tool__seed((uintptr_t)p);
}

void tool_parser_deinit(struct tool_parser *p)
{
    strbuf_free(&p->held);
    memset(p, 0, sizeof(*p));
}

/* Releases the held text as content. */
static void release_held(struct tool_parser *p, struct tool_events *ev)
{
    tool__emit_text(ev, TOOL_EV_CONTENT, 0, p->held.s, p->held.len);
    strbuf_reset(&p->held);
    p->match = 0;
    p->after_call = false;
}

/* The block being read is not a call: it is content, and the parser reads
 * on as plain text (llama3: the rest of the output is content). */
static void fail_block(struct tool_parser *p, struct tool_events *ev)
{
    release_held(p, ev);
    p->state = p->format == TOOL_FORMAT_LLAMA3_JSON ? ST_PASS : ST_TEXT;
}

/* A call (or several) parsed: the held text goes, and blanks after it will. */
static void end_block(struct tool_parser *p)
{
    strbuf_reset(&p->held);
    p->match = 0;
    p->after_call = true;
    p->state = ST_TEXT;
}

static void begin_call(struct tool_parser *p, int sub)
{
    p->state = ST_CALL;
    p->sub = sub;
    p->match = 0;
}

/* Starts scanning a JSON value whose first byte (just held) is '{' or '['. */
static void begin_json(struct tool_parser *p)
{
    p->sub = SUB_JSON;
    p->json_at = p->held.len - 1;
    p->depth = 1;
    p->in_str = p->esc = false;
}

/* Advances the JSON scan by c; true when the value just closed. Brackets
 * are only counted (jansson checks the text when it ends). */
static bool json_step(struct tool_parser *p, char c)
{
    if (p->in_str) {
        if (p->esc) p->esc = false;
        else if (c == '\\') p->esc = true;
        else if (c == '"') p->in_str = false;
        return false;
    }
    if (c == '"') p->in_str = true;
    else if (c == '{' || c == '[') p->depth++;
    else if (c == '}' || c == ']') return --p->depth == 0;
    return false;
}

/* The JSON in held[json_at..] closed: check it and emit, or fail. */
static void json_done(struct tool_parser *p, struct tool_events *ev)
{
    const char *js = p->held.s + p->json_at;
    size_t n = p->held.len - p->json_at;
    bool ok;
    if (p->format == TOOL_FORMAT_MISTRAL && js[0] == '[') {
        ok = tool__emit_array(p, ev, js, n);
    } else if (p->format == TOOL_FORMAT_MISTRAL) {
        /* name[ARGS]{...} or name{...}: the name follows the marker */
        size_t at = p->call_at + sizeof(MISTRAL_OPEN) - 1;
        while (is_blank(p->held.s[at])) at++;
        size_t k = at;
        while (is_name_char(p->held.s[k])) k++;
        ok = tool__emit_named(p, ev, p->held.s + at, k - at, js, n);
    } else {
        ok = tool__emit_object(p, ev, js, n);
    }
    if (ok) end_block(p);
    else fail_block(p, ev);
}

/* Llama 3 in ST_TEXT: at the start, blanks then <|python_tag|> or '{'
 * open a call; after a call, blanks then ';' open the next. Returns false
 * when c ends the calls (the rest is content). */
static bool llama_text_step(struct tool_parser *p, char c)
{
    bool open = false;
    if (!p->after_call) {
        if (c == PYTHON_TAG[p->match]) {
            strbuf_append(&p->held, &c, 1);
            if (++p->match == sizeof(PYTHON_TAG) - 1) begin_call(p, SUB_WS);
            return true;
        }
        if (p->match) return false;
        open = c == '{';
    } else {
        open = c == ';';
    }
    if (!open && !is_blank(c)) return false;
    strbuf_append(&p->held, &c, 1);
    if (open) {
        p->call_at = 0;
        begin_call(p, SUB_WS);
        if (c == '{') begin_json(p);
    }
    return true;
}

/* ST_TEXT: content, with a possible marker start (and, after a call,
 * blanks) held. The marker is matched by a counter: no marker repeats its
 * first byte, so the held partial marker is the only possible start. */
static void text_step(struct tool_parser *p, char c, struct tool_events *ev)
{
    if (p->held.len >= p->max_call_bytes && p->held.len >= 64) { /* blanks without end */
        fail_block(p, ev);
        if (p->state == ST_PASS) {
            tool__emit_text(ev, TOOL_EV_CONTENT, 0, &c, 1);
            return;
        }
    }
    if (p->format == TOOL_FORMAT_LLAMA3_JSON) {
        if (!llama_text_step(p, c)) {
            fail_block(p, ev);
            tool__emit_text(ev, TOOL_EV_CONTENT, 0, &c, 1);
        }
        return;
    }
    const char *m = open_marker(p);
    size_t mlen = strlen(m);
    if (c == m[p->match]) {
        if (!p->match) p->call_at = p->held.len;
        strbuf_append(&p->held, &c, 1);
        if (++p->match == mlen) begin_call(p, p->format == TOOL_FORMAT_HERMES ? SUB_HERMES : SUB_M_HEAD);
        return;
    }
    if (p->match) release_held(p, ev);
    if (c == m[0]) {
        text_step(p, c, ev);
        return;
    }
    if (p->after_call && is_blank(c)) {
        strbuf_append(&p->held, &c, 1);
        return;
    }
    release_held(p, ev);
    tool__emit_text(ev, TOOL_EV_CONTENT, 0, &c, 1);
}

/* hermes: the call ends at </tool_call>. */
static void hermes_step(struct tool_parser *p, char c, struct tool_events *ev)
{
    if (c != HERMES_CLOSE[p->match]) p->match = c == HERMES_CLOSE[0];
    else if (++p->match == sizeof(HERMES_CLOSE) - 1) {
        size_t at = p->call_at + sizeof(HERMES_OPEN) - 1;
        size_t n = p->held.len - at - (sizeof(HERMES_CLOSE) - 1);
        if (tool__emit_object(p, ev, p->held.s + at, n)) end_block(p);
        else fail_block(p, ev);
    }
}

/* mistral's head: '[' (array), or name chars then [ARGS] or '{'. Returns
 * false when c cannot continue the call. */
static bool mistral_step(struct tool_parser *p, char c)
{
    switch (p->sub) {
    case SUB_M_HEAD:
        if (c == '[') begin_json(p);
        else if (is_blank(c)) return true;
        else if (is_name_char(c)) p->sub = SUB_M_NAME;
        else return false;
        return true;
    case SUB_M_NAME:
        if (is_name_char(c)) return true;
        if (c == '{') begin_json(p);
        else if (c == '[') p->sub = SUB_M_ARGS_TAG, p->match = 1;
        else return false;
        return true;
    case SUB_M_ARGS_TAG:
        if (c != MISTRAL_ARGS[p->match]) return false;
        if (++p->match == sizeof(MISTRAL_ARGS) - 1) p->sub = SUB_WS;
        return true;
    }
    return false;
}

static void call_step(struct tool_parser *p, char c, struct tool_events *ev)
{
    strbuf_append(&p->held, &c, 1);
    if (p->held.len - p->call_at > p->max_call_bytes) {
        fail_block(p, ev);
        return;
    }
    bool ok = true;
    if (p->sub == SUB_HERMES) {
        hermes_step(p, c, ev);
    } else if (p->sub == SUB_JSON) {
        if (json_step(p, c)) json_done(p, ev);
    } else if (p->sub == SUB_WS) {
        if (c == '{') begin_json(p);
        else ok = is_blank(c);
    } else {
        ok = mistral_step(p, c);
    }
    if (!ok) {
        p->held.len--; /* c is not part of the block: read it again as text */
        fail_block(p, ev);
        if (p->state == ST_PASS) tool__emit_text(ev, TOOL_EV_CONTENT, 0, &c, 1);
        else text_step(p, c, ev);
    }
}

/* The fast path of ST_TEXT (hermes, mistral) when nothing is held: the
 * bytes before the next possible marker are content at once, as text_step
 * would release them one by one. Returns the bytes taken (0: none). */
static size_t text_run(struct tool_parser *p, const char *text, size_t len, struct tool_events *ev)
{
    if (p->format == TOOL_FORMAT_LLAMA3_JSON || p->held.len || (p->after_call && is_blank(text[0]))) return 0;
    const char *end = memchr(text, open_marker(p)[0], len);
    size_t k = end ? (size_t)(end - text) : len;
    if (k) {
        p->after_call = false;
        tool__emit_text(ev, TOOL_EV_CONTENT, 0, text, k);
    }
    return k;
}

void tool_parser_feed(struct tool_parser *p, const char *text, size_t len, struct tool_events *ev)
{
    for (size_t i = 0; i < len && p->state != ST_DONE; i++) {
        if (p->state == ST_PASS) {
            tool__emit_text(ev, TOOL_EV_CONTENT, 0, text + i, len - i);
            break;
        }
        size_t k = p->state == ST_TEXT ? text_run(p, text + i, len - i, ev) : 0;
        if (k) i += k - 1;
        else if (p->state == ST_TEXT) text_step(p, text[i], ev);
        else call_step(p, text[i], ev);
    }
    tool__fix(ev);
}

void tool_parser_finish(struct tool_parser *p, struct tool_events *ev)
{
    if (p->state == ST_CALL && p->sub == SUB_HERMES) {
        /* <tool_call>{...} with no </tool_call> (or part of it): a call if
         * the JSON is one */
        size_t at = p->call_at + sizeof(HERMES_OPEN) - 1;
        if (tool__emit_object(p, ev, p->held.s + at, p->held.len - at - p->match)) end_block(p);
    }
    bool blanks = p->after_call && p->n_calls;
    for (size_t i = 0; i < p->held.len && blanks; i++) blanks = is_blank(p->held.s[i]);
    if (blanks) strbuf_reset(&p->held);
    release_held(p, ev);
    p->state = ST_DONE;
    tool__fix(ev);
}

bool tool_parser_called(const struct tool_parser *p) { return p->n_calls > 0; }

int tool_calls_parse(enum tool_format f, const char *text, size_t len, tool_id_fn *make_id, void *id_ctx,
                     struct tool_events *ev)
{
    struct tool_parser p;
    tool_parser_init(&p, f);
    p.make_id = make_id;
    p.id_ctx = id_ctx;
    tool_parser_feed(&p, text, len, ev);
    tool_parser_finish(&p, ev);
    int n = p.n_calls;
    tool_parser_deinit(&p);
    return n;
}

bool tool_calls_forced(struct tool_parser *p, const char *name, const char *text, size_t n, struct tool_events *ev)
{
    bool ok = name ? tool__emit_named(p, ev, name, strlen(name), text, n) : tool__emit_array(p, ev, text, n);
    if (!ok && n) tool__emit_text(ev, TOOL_EV_CONTENT, 0, text, n);
    tool__fix(ev);
    return ok;
}
