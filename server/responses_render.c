/* responses_render.c: output items and the Responses stream events (see
 * responses.h). Items grow one at a time: a message (one output_text
 * part), a reasoning item (one reasoning_text part) or a function call;
 * a delta of another kind closes the open item and opens the next. */
#include "responses.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "../base/err.h"
#include "oai_render.h"

/* One event: `event: TYPE` and its data, fields (consumed) after type and
 * sequence_number. */
static void emit(struct resp_job *rj, struct strbuf *ev, const char *type, json_t *fields)
{
    if (!ev) {
        json_decref(fields);
        return;
    }
    json_t *o = json_pack("{s:s, s:i}", "type", type, "sequence_number", rj->seq++);
    json_object_update(o, fields);
    json_decref(fields);
    char *t = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    strbuf_printf(ev, "event: %s\ndata: %s\n\n", type, t ? t : "{\"type\":\"error\",\"message\":\"encoding\"}");
    free(t);
}

static void make_id(char *out, size_t cap, const char *prefix)
{
    snprintf(out, cap, "%s_%llx%06x", prefix, (unsigned long long)uv_hrtime(), (unsigned)rand() & 0xffffff);
}

/* The response object without output and usage (what the lifecycle events
 * carry while it runs). */
static json_t *base_object(const struct resp_job *rj, const char *status)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:n, s:n, s:s}", "id", rj->id, "object", "response", "created_at",
                          (json_int_t)rj->created_at, "status", status, "error", "incomplete_details", "model",
                          rj->model);
    json_object_update(o, rj->echo);
    json_object_set_new(o, "output", json_array());
    json_object_set_new(o, "usage", json_null());
    return o;
}

void resp_begin(struct resp_job *rj, const char *model, struct strbuf *ev)
{
    make_id(rj->id, sizeof(rj->id), "resp");
    rj->created_at = (long)time(NULL);
    rj->model = model;
    rj->output = json_array();
    emit(rj, ev, "response.created", json_pack("{s:o}", "response", base_object(rj, "in_progress")));
    emit(rj, ev, "response.in_progress", json_pack("{s:o}", "response", base_object(rj, "in_progress")));
}

static int cur_index(const struct resp_job *rj) { return (int)json_array_size(rj->output) - 1; }
static json_t *cur(const struct resp_job *rj) { return json_array_get(rj->output, json_array_size(rj->output) - 1); }
static const char *cur_id(const struct resp_job *rj) { return json_string_value(json_object_get(cur(rj), "id")); }

/* The open item's one content part, as it is now. */
static json_t *part(const struct resp_job *rj, const char *text)
{
    if (rj->open == RESP_OPEN_REASONING) return json_pack("{s:s, s:s}", "type", "reasoning_text", "text", text);
    return json_pack("{s:s, s:s, s:[]}", "type", "output_text", "text", text, "annotations");
}

static void close_item(struct resp_job *rj, struct strbuf *ev, const char *status)
{
    if (rj->open == RESP_OPEN_NONE) return;
    json_t *item = cur(rj), *text = oai_text(rj->text.s ? rj->text.s : "", rj->text.len);
    int at = cur_index(rj);
    const char *id = cur_id(rj);
    if (rj->open == RESP_OPEN_CALL) {
        emit(rj, ev, "response.function_call_arguments.done", json_pack("{s:s, s:i, s:O, s:O}", "item_id", id,
             "output_index", at, "arguments", text, "name", json_object_get(item, "name")));
        json_object_set(item, "arguments", text);
    } else {
        bool msg = rj->open == RESP_OPEN_MESSAGE;
        json_t *done = json_pack("{s:s, s:i, s:i, s:O}", "item_id", id, "output_index", at, "content_index", 0, "text",
                                 text);
        if (msg) json_object_set_new(done, "logprobs", json_array());
        emit(rj, ev, msg ? "response.output_text.done" : "response.reasoning_text.done", done);
        json_t *p = part(rj, json_string_value(text));
        emit(rj, ev, "response.content_part.done", json_pack("{s:s, s:i, s:i, s:O}", "item_id", id, "output_index", at,
                                                             "content_index", 0, "part", p));
        json_object_set_new(item, "content", json_pack("[o]", p));
    }
    json_decref(text);
    json_object_set_new(item, "status", json_string(status));
    emit(rj, ev, "response.output_item.done", json_pack("{s:i, s:O}", "output_index", at, "item", item));
    rj->open = RESP_OPEN_NONE;
    strbuf_reset(&rj->text);
}

/* A new item (consumed) of kind k after the open one. */
static void open_item(struct resp_job *rj, struct strbuf *ev, enum resp_open k, json_t *item)
{
    close_item(rj, ev, "completed");
    json_array_append_new(rj->output, item);
    rj->open = k;
    rj->n_items++;
    emit(rj, ev, "response.output_item.added", json_pack("{s:i, s:O}", "output_index", cur_index(rj), "item", item));
    if (k != RESP_OPEN_CALL)
        emit(rj, ev, "response.content_part.added", json_pack("{s:s, s:i, s:i, s:o}", "item_id", cur_id(rj),
             "output_index", cur_index(rj), "content_index", 0, "part", part(rj, "")));
}

static void open_text(struct resp_job *rj, struct strbuf *ev, enum resp_open k)
{
    char id[64];
    make_id(id, sizeof(id), k == RESP_OPEN_MESSAGE ? "msg" : "rs");
    if (k == RESP_OPEN_MESSAGE)
        open_item(rj, ev, k, json_pack("{s:s, s:s, s:s, s:s, s:[]}", "id", id, "type", "message", "role", "assistant",
                                       "status", "in_progress", "content"));
    else
        open_item(rj, ev, k, json_pack("{s:s, s:s, s:[], s:[], s:s}", "id", id, "type", "reasoning", "summary",
                                       "content", "status", "in_progress"));
}

/* Text of kind k (a message's, reasoning's, or a call's arguments). */
static void add_text(struct resp_job *rj, struct strbuf *ev, enum resp_open k, json_t *delta)
{
    const char *s = json_string_value(delta);
    if (!s || !*s) return;
    if (rj->open != k) open_text(rj, ev, k);
    strbuf_append(&rj->text, s, json_string_length(delta));
    if (k == RESP_OPEN_CALL)
        emit(rj, ev, "response.function_call_arguments.delta", json_pack("{s:s, s:i, s:O}", "item_id", cur_id(rj),
             "output_index", cur_index(rj), "delta", delta));
    else if (k == RESP_OPEN_MESSAGE)
        emit(rj, ev, "response.output_text.delta", json_pack("{s:s, s:i, s:i, s:O, s:[]}", "item_id", cur_id(rj),
             "output_index", cur_index(rj), "content_index", 0, "delta", delta, "logprobs"));
    else
        emit(rj, ev, "response.reasoning_text.delta", json_pack("{s:s, s:i, s:i, s:O}", "item_id", cur_id(rj),
             "output_index", cur_index(rj), "content_index", 0, "delta", delta));
}

/* A chat tool-call delta: a start (with id and name) opens a call item. */
static void add_call(struct resp_job *rj, struct strbuf *ev, json_t *call)
{
    json_t *f = json_object_get(call, "function"), *id = json_object_get(call, "id");
    if (json_is_string(id)) {
        char fc[64];
        make_id(fc, sizeof(fc), "fc");
        open_item(rj, ev, RESP_OPEN_CALL, json_pack("{s:s, s:s, s:O, s:O, s:s, s:s}", "id", fc, "type",
                                                    "function_call", "call_id", id, "name", json_object_get(f, "name"),
                                                    "arguments", "", "status", "in_progress"));
    }
    if (rj->open == RESP_OPEN_CALL) add_text(rj, ev, RESP_OPEN_CALL, json_object_get(f, "arguments"));
}

void resp_feed(struct resp_job *rj, json_t *deltas, struct strbuf *ev)
{
    size_t i, k;
    json_t *d, *call;
    json_array_foreach(deltas, i, d) {
        add_text(rj, ev, RESP_OPEN_REASONING, json_object_get(d, "reasoning_content"));
        add_text(rj, ev, RESP_OPEN_MESSAGE, json_object_get(d, "content"));
        json_array_foreach(json_object_get(d, "tool_calls"), k, call) add_call(rj, ev, call);
    }
    json_decref(deltas);
}

json_t *resp_end(struct resp_job *rj, const char *finish, int input_tokens, int output_tokens, int cached_tokens,
                 struct strbuf *ev)
{
    bool cut = !strcmp(finish, "length");
    if (!json_array_size(rj->output)) open_text(rj, ev, RESP_OPEN_MESSAGE); /* nothing said: an empty message */
    close_item(rj, ev, cut ? "incomplete" : "completed");
    json_t *o = base_object(rj, cut ? "incomplete" : "completed");
    if (cut) json_object_set_new(o, "incomplete_details", json_pack("{s:s}", "reason", "max_output_tokens"));
    json_object_set(o, "output", rj->output);
    json_object_set_new(o, "usage", json_pack("{s:i, s:{s:i, s:i}, s:i, s:{s:i}, s:i}", "input_tokens", input_tokens,
                                              "input_tokens_details", "cached_tokens", cached_tokens,
                                              "cache_write_tokens", 0, "output_tokens", output_tokens,
                                              "output_tokens_details", "reasoning_tokens", 0, "total_tokens",
                                              input_tokens + output_tokens));
    emit(rj, ev, cut ? "response.incomplete" : "response.completed", json_pack("{s:O}", "response", o));
    return o;
}

void resp_failed(struct resp_job *rj, const struct oai_error *e, struct strbuf *ev)
{
    json_t *o = base_object(rj, "failed");
    json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", "server_error", "message", e->message));
    json_object_set(o, "output", rj->output);
    emit(rj, ev, "response.failed", json_pack("{s:o}", "response", o));
}
