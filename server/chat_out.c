/* chat_out.c: reasoning and tool calls of a chat choice (see chat_out.h). */
#include "chat_out.h"

#include <string.h>

#include <stdlib.h>

#include "../base/err.h"
#include "oai_render.h"

void chat_out_init(struct chat_out *o, enum reasoning_format r, enum tool_format t, bool stream)
{
    memset(o, 0, sizeof(*o));
    reasoning_init(&o->rp, r);
    tool_parser_init(&o->tp, t);
    o->has_reasoning = r != REASONING_NONE;
    o->stream = stream;
    if (!stream) o->calls = json_array();
}

void chat_out_deinit(struct chat_out *o)
{
    reasoning_deinit(&o->rp);
    tool_parser_deinit(&o->tp);
    reasoning_out_free(&o->ro);
    tool_events_free(&o->ev);
    strbuf_free(&o->content);
    strbuf_free(&o->reasoning);
    strbuf_free(&o->held);
    free(o->forced_name);
    json_decref(o->calls);
    memset(o, 0, sizeof(*o));
}

void chat_out_force(struct chat_out *o, const char *name)
{
    o->forced = true;
    o->forced_name = name ? xstrdup(name) : NULL;
    o->has_reasoning = false;
}

/* The delta of a tool-call event (NULL for CALL_END, which sends nothing). */
static json_t *call_delta(const struct tool_event *e)
{
    json_t *call;
    if (e->kind == TOOL_EV_CALL_START)
        call = json_pack("{s:i, s:s, s:s, s:{s:s, s:s}}", "index", e->index, "id", e->id, "type", "function",
                         "function", "name", e->name, "arguments", "");
    else if (e->kind == TOOL_EV_ARGS)
        call = json_pack("{s:i, s:{s:o}}", "index", e->index, "function", "arguments", oai_text(e->text, e->len));
    else
        return NULL;
    return json_pack("{s:[o]}", "tool_calls", call);
}

/* A whole reply takes an event into its message. */
static void merge(struct chat_out *o, const struct tool_event *e)
{
    if (e->kind == TOOL_EV_CONTENT) {
        strbuf_append(&o->content, e->text, e->len);
    } else if (e->kind == TOOL_EV_CALL_START) {
        json_array_append_new(o->calls, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", e->id, "type", "function",
                                                  "function", "name", e->name, "arguments", ""));
    } else if (e->kind == TOOL_EV_ARGS) {
        json_t *f = json_object_get(json_array_get(o->calls, (size_t)e->index), "function");
        const char *was = json_string_value(json_object_get(f, "arguments"));
        struct strbuf b = {0};
        strbuf_append(&b, was, strlen(was));
        strbuf_append(&b, e->text, e->len);
        json_object_set_new(f, "arguments", oai_text(b.s, b.len));
        strbuf_free(&b);
    }
}

/* What the reasoning parser decided goes out; its content through the
 * tool-call parser (then finished when final). */
static void route(struct chat_out *o, bool final, json_t *deltas)
{
    struct strbuf *r = &o->ro.reasoning, *c = &o->ro.content;
    if (r->len) {
        if (o->stream) json_array_append_new(deltas, json_pack("{s:o}", "reasoning_content", oai_text(r->s, r->len)));
        else strbuf_append(&o->reasoning, r->s, r->len);
    }
    tool_events_reset(&o->ev);
    if (o->forced) {
        strbuf_append(&o->held, c->s, c->len);
        if (final) tool_calls_forced(&o->tp, o->forced_name, o->held.s ? o->held.s : "", o->held.len, &o->ev);
    } else {
        if (c->len) tool_parser_feed(&o->tp, c->s, c->len, &o->ev);
        if (final) tool_parser_finish(&o->tp, &o->ev);
    }
    for (int i = 0; i < o->ev.n; i++) {
        const struct tool_event *e = &o->ev.v[i];
        if (!o->stream) merge(o, e);
        else if (e->kind == TOOL_EV_CONTENT) json_array_append_new(deltas, json_pack("{s:o}", "content", oai_text(e->text, e->len)));
        else if (e->kind != TOOL_EV_CALL_END) json_array_append_new(deltas, call_delta(e));
    }
    strbuf_reset(r);
    strbuf_reset(c);
}

void chat_out_feed(struct chat_out *o, const char *text, size_t n, json_t *deltas)
{
    if (!n) return;
    if (o->forced) strbuf_append(&o->ro.content, text, n);
    else reasoning_feed(&o->rp, text, n, &o->ro);
    route(o, false, deltas);
}

void chat_out_finish(struct chat_out *o, json_t *deltas)
{
    if (!o->forced) reasoning_finish(&o->rp, &o->ro);
    route(o, true, deltas);
}

bool chat_out_called(const struct chat_out *o) { return tool_parser_called(&o->tp); }

json_t *chat_out_message(const struct chat_out *o)
{
    bool called = json_array_size(o->calls) > 0;
    json_t *m = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(m, "content",
                        called && !o->content.len ? json_null() : oai_text(o->content.s ? o->content.s : "", o->content.len));
    if (o->has_reasoning)
        json_object_set_new(m, "reasoning_content",
                            o->reasoning.len ? oai_text(o->reasoning.s, o->reasoning.len) : json_null());
    if (called) json_object_set(m, "tool_calls", o->calls);
    return m;
}
