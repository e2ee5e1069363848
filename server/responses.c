/* responses.c: Responses requests -> chat requests, the stored
 * conversations, and GET / DELETE /v1/responses/{id} (see responses.h). */
#include "responses.h"

#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "serve.h"

#define RESP_MAX_ITEMS 10000   /* input items of a request, history included */
#define RESP_MAX_METADATA 16   /* OpenAI's limits on metadata */

// ---------------------------------------------------------------------------
// input items -> chat messages

/* A message's content as chat content: a string stays; text parts
 * (input_text, output_text, text, refusal) become chat text parts. */
static json_t *chat_content(json_t *content, size_t i, struct oai_error *e)
{
    if (json_is_string(content)) return json_incref(content);
    if (!json_is_array(content)) {
        oai_fail(e, 400, "input", NULL, "input[%zu].content must be a string or a list of content parts", i);
        return NULL;
    }
    json_t *parts = json_array(), *p;
    size_t k;
    json_array_foreach(content, k, p) {
        const char *ty = json_string_value(json_object_get(p, "type"));
        json_t *text = json_object_get(p, ty && !strcmp(ty, "refusal") ? "refusal" : "text");
        if (!ty || !json_is_string(text) || (strcmp(ty, "input_text") && strcmp(ty, "output_text") &&
                                             strcmp(ty, "text") && strcmp(ty, "refusal"))) {
            json_decref(parts);
            oai_fail(e, 400, "input", NULL, "input[%zu].content[%zu]: only text parts (input_text, output_text) are "
                     "supported, got '%s'", i, k, ty ? ty : "(no type)");
            return NULL;
        }
        json_array_append_new(parts, json_pack("{s:s, s:O}", "type", "text", "text", text));
    }
    return parts;
}

static int add_message(json_t *msgs, json_t *item, size_t i, struct oai_error *e)
{
    const char *role = json_string_value(json_object_get(item, "role"));
    if (!role || (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system") &&
                  strcmp(role, "developer")))
        return oai_fail(e, 400, "input", NULL, "input[%zu].role must be 'user', 'assistant', 'system' or "
                        "'developer', got '%s'", i, role ? role : "(none)");
    json_t *content = chat_content(json_object_get(item, "content"), i, e);
    if (!content) return -1;
    json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", role, "content", content));
    return 0;
}

/* A function_call item: a tool call of the assistant message before it, or
 * of a new one. */
static int add_call(json_t *msgs, json_t *item, size_t i, struct oai_error *e)
{
    json_t *id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
    json_t *args = json_object_get(item, "arguments");
    if (!json_is_string(id) || !json_is_string(name) || !json_is_string(args))
        return oai_fail(e, 400, "input", NULL, "input[%zu]: a function_call item needs string 'call_id', 'name' and "
                        "'arguments'", i);
    json_t *last = json_array_get(msgs, json_array_size(msgs) - 1);
    if (!last || strcmp(json_string_value(json_object_get(last, "role")), "assistant")) {
        last = json_pack("{s:s, s:n}", "role", "assistant", "content");
        json_array_append_new(msgs, last);
    }
    json_t *calls = json_object_get(last, "tool_calls");
    if (!calls) json_object_set_new(last, "tool_calls", calls = json_array());
    json_array_append_new(calls, json_pack("{s:O, s:s, s:{s:O, s:O}}", "id", id, "type", "function", "function",
                                           "name", name, "arguments", args));
    return 0;
}

static int add_call_output(json_t *msgs, json_t *item, size_t i, struct oai_error *e)
{
    json_t *id = json_object_get(item, "call_id");
    if (!json_is_string(id))
        return oai_fail(e, 400, "input", NULL, "input[%zu]: a function_call_output item needs a string 'call_id'", i);
    json_t *content = chat_content(json_object_get(item, "output"), i, e);
    if (!content) return -1;
    json_array_append_new(msgs, json_pack("{s:s, s:O, s:o}", "role", "tool", "tool_call_id", id, "content", content));
    return 0;
}

/* Each item as chat messages; reasoning items are not shown to the model
 * again (as chat templates drop earlier reasoning). */
static int add_items(json_t *msgs, json_t *items, struct oai_error *e)
{
    size_t i;
    json_t *item;
    json_array_foreach(items, i, item) {
        const char *ty = json_string_value(json_object_get(item, "type"));
        if (!json_is_object(item)) return oai_fail(e, 400, "input", NULL, "input[%zu] must be an object", i);
        if (!ty && json_object_get(item, "role")) ty = "message";
        int rc = !ty ? oai_fail(e, 400, "input", NULL, "input[%zu] has no 'type'", i)
                 : !strcmp(ty, "message") ? add_message(msgs, item, i, e)
                 : !strcmp(ty, "function_call") ? add_call(msgs, item, i, e)
                 : !strcmp(ty, "function_call_output") ? add_call_output(msgs, item, i, e)
                 : !strcmp(ty, "reasoning") ? 0
                 : oai_fail(e, 400, "input", "invalid_value", "input[%zu]: the item type '%s' is not supported here "
                            "(message, function_call, function_call_output, reasoning)", i, ty);
        if (rc) return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------
// the other fields

/* tools in the Responses shape -> chat tools; tool_choice likewise. */
static int chat_tools(json_t *root, json_t *chat, struct oai_error *e)
{
    json_t *tools = json_object_get(root, "tools"), *tc = json_object_get(root, "tool_choice"), *t;
    size_t i;
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) return oai_fail(e, 400, "tools", NULL, "'tools' must be a list of tools");
        json_t *out = json_array();
        json_object_set_new(chat, "tools", out);
        json_array_foreach(tools, i, t) {
            const char *ty = json_string_value(json_object_get(t, "type"));
            if (!ty || strcmp(ty, "function"))
                return oai_fail(e, 400, "tools", NULL, "tools[%zu]: only tools of type 'function' are supported, "
                                "got '%s'", i, ty ? ty : "(none)");
            json_t *f = json_object();
            const char *keys[] = {"name", "description", "parameters"};
            for (int k = 0; k < 3; k++)
                if (json_object_get(t, keys[k])) json_object_set(f, keys[k], json_object_get(t, keys[k]));
            json_array_append_new(out, json_pack("{s:s, s:o}", "type", "function", "function", f));
        }
    }
    /* "auto" and "none" without tools say nothing (agent clients send them so); chat would refuse them */
    const char *ts = json_string_value(tc);
    if (ts && !json_array_size(tools) && (!strcmp(ts, "auto") || !strcmp(ts, "none"))) return 0;
    if (!tc || json_is_null(tc) || ts) {
        if (tc) json_object_set(chat, "tool_choice", tc);
        return 0;
    }
    const char *ty = json_string_value(json_object_get(tc, "type"));
    json_t *name = json_object_get(tc, "name");
    if (!ty || strcmp(ty, "function") || !json_is_string(name))
        return oai_fail(e, 400, "tool_choice", NULL, "'tool_choice' must be 'none', 'auto', 'required' or "
                        "{\"type\": \"function\", \"name\": ...}");
    json_object_set_new(chat, "tool_choice", json_pack("{s:s, s:{s:O}}", "type", "function", "function", "name", name));
    return 0;
}

/* text.format -> response_format. */
static int chat_format(json_t *root, json_t *chat, struct oai_error *e)
{
    json_t *text = json_object_get(root, "text");
    if (!text || json_is_null(text)) return 0;
    json_t *f = json_object_get(text, "format");
    if (!json_is_object(text) || (f && !json_is_null(f) && !json_is_object(f)))
        return oai_fail(e, 400, "text", NULL, "'text' must be an object, 'text.format' an object with a 'type'");
    const char *ty = json_string_value(json_object_get(f, "type"));
    if (!f || json_is_null(f) || (ty && !strcmp(ty, "text"))) return 0;
    if (ty && !strcmp(ty, "json_object")) {
        json_object_set_new(chat, "response_format", json_pack("{s:s}", "type", "json_object"));
        return 0;
    }
    if (!ty || strcmp(ty, "json_schema"))
        return oai_fail(e, 400, "text", NULL, "'text.format.type' must be 'text', 'json_object' or 'json_schema'");
    json_t *js = json_object();
    const char *keys[] = {"name", "schema", "strict"};
    for (int k = 0; k < 3; k++)
        if (json_object_get(f, keys[k])) json_object_set(js, keys[k], json_object_get(f, keys[k]));
    json_object_set_new(chat, "response_format", json_pack("{s:s, s:o}", "type", "json_schema", "json_schema", js));
    return 0;
}

/* The echoed fields the chat pipeline does not check: 0, or -1 with e. */
static int check_echo(json_t *echo, json_t *root, struct oai_error *e)
{
    json_t *md = json_object_get(echo, "metadata"), *v;
    const char *k, *trunc = json_string_value(json_object_get(echo, "truncation"));
    bool md_ok = json_is_object(md) && json_object_size(md) <= RESP_MAX_METADATA;
    json_object_foreach(md, k, v) md_ok = md_ok && json_is_string(v) && strlen(k) <= 64 && json_string_length(v) <= 512;
    if (!md_ok)
        return oai_fail(e, 400, "metadata", NULL, "'metadata' must be an object of at most 16 string values");
    v = json_object_get(echo, "instructions");
    if (!json_is_string(v) && !json_is_null(v))
        return oai_fail(e, 400, "instructions", NULL, "'instructions' must be a string");
    if (!json_is_object(json_object_get(echo, "reasoning")))
        return oai_fail(e, 400, "reasoning", NULL, "'reasoning' must be an object ({\"effort\": ...})");
    if (!json_is_boolean(json_object_get(echo, "store")))
        return oai_fail(e, 400, "store", NULL, "'store' must be a boolean");
    v = json_object_get(echo, "previous_response_id");
    if (!json_is_string(v) && !json_is_null(v))
        return oai_fail(e, 400, "previous_response_id", NULL, "'previous_response_id' must be a string");
    if (!trunc || (strcmp(trunc, "disabled") && strcmp(trunc, "auto")))
        return oai_fail(e, 400, "truncation", NULL, "'truncation' must be 'auto' or 'disabled'");
    if (json_is_true(json_object_get(root, "background")))
        return oai_fail(e, 400, "background", NULL, "background responses are not supported");
    return 0;
}

/* The fields the response object repeats, with OpenAI's defaults for those
 * not given; NULL with e filled when one is wrong. */
static json_t *echo_fields(json_t *root, struct oai_error *e)
{
    static const char *const keys[] = {"instructions", "max_output_tokens", "metadata", "parallel_tool_calls",
                                       "previous_response_id", "reasoning", "store", "temperature", "text",
                                       "tool_choice", "tools", "top_p", "truncation", "user"};
    json_t *echo = json_pack("{s:n, s:n, s:{}, s:b, s:n, s:{s:n, s:n}, s:b, s:f, s:{s:{s:s}}, s:s, s:[], s:f, "
                             "s:s, s:n, s:b}", "instructions", "max_output_tokens", "metadata", "parallel_tool_calls",
                             1, "previous_response_id", "reasoning", "effort", "summary", "store", 1, "temperature",
                             1.0, "text", "format", "type", "text", "tool_choice", "auto", "tools", "top_p", 1.0,
                             "truncation", "disabled", "user", "background", 0);
    for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        json_t *v = json_object_get(root, keys[k]);
        if (v && !json_is_null(v)) json_object_set(echo, keys[k], v);
    }
    if (check_echo(echo, root, e)) {
        json_decref(echo);
        return NULL;
    }
    return echo;
}

// ---------------------------------------------------------------------------
// the request

/* The conversation so far into h (an empty array): the stored one of
 * previous_response_id, then this request's input (a string is one user
 * message). */
static int history(struct resp_store *st, json_t *root, json_t *h, struct oai_error *e)
{
    json_t *input = json_object_get(root, "input"), *prev = json_object_get(root, "previous_response_id");
    if (!json_is_string(input) && !json_is_array(input))
        return oai_fail(e, 400, "input", NULL, "'input' must be a string or a list of items");
    if (json_is_string(prev)) {
        char *text = resp_store_get(st, json_string_value(prev), 1);
        json_t *items = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        bool found = json_is_array(items);
        json_array_extend(h, items);
        json_decref(items);
        if (!found)
            return oai_fail(e, 404, "previous_response_id", "previous_response_not_found",
                            "Previous response with id '%s' not found.", json_string_value(prev));
    }
    if (json_is_string(input)) json_array_append_new(h, json_pack("{s:s, s:s, s:O}", "type", "message", "role", "user",
                                                                  "content", input));
    else json_array_extend(h, input);
    if (json_array_size(h) > RESP_MAX_ITEMS)
        return oai_fail(e, 400, "input", NULL, "at most %d input items, history included", RESP_MAX_ITEMS);
    return 0;
}

/* The chat body's fields taken as they are, and those renamed. */
static void copy_fields(json_t *root, json_t *chat)
{
    static const char *const same[] = {"model", "stream", "temperature", "top_p", "parallel_tool_calls", "user",
                                       "seed", "top_k", "min_p", "repetition_penalty", "presence_penalty",
                                       "frequency_penalty", "ignore_eos", "structured_outputs"};
    for (size_t k = 0; k < sizeof(same) / sizeof(same[0]); k++)
        if (json_object_get(root, same[k])) json_object_set(chat, same[k], json_object_get(root, same[k]));
    if (json_object_get(root, "max_output_tokens"))
        json_object_set(chat, "max_tokens", json_object_get(root, "max_output_tokens"));
}

static int translate(struct resp_store *st, json_t *root, struct resp_job *rj, json_t *chat, struct oai_error *e)
{
    if (!(rj->echo = echo_fields(root, e))) return -1;
    rj->store = json_is_true(json_object_get(rj->echo, "store"));
    rj->history = json_array();
    if (history(st, root, rj->history, e)) return -1;
    json_t *msgs = json_array();
    json_object_set_new(chat, "messages", msgs);
    json_t *instr = json_object_get(root, "instructions");
    if (json_is_string(instr)) json_array_append_new(msgs, json_pack("{s:s, s:O}", "role", "system", "content", instr));
    if (add_items(msgs, rj->history, e)) return -1;
    copy_fields(root, chat);
    return chat_tools(root, chat, e) || chat_format(root, chat, e) ? -1 : 0;
}

int responses_translate(struct resp_store *st, const char *body, size_t len, struct resp_job **out, char **chat_body,
                        struct oai_error *e)
{
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je), *chat = json_object();
    struct resp_job *rj = xcalloc(1, sizeof(*rj));
    int rc = !root ? oai_fail(e, 400, NULL, NULL, "malformed JSON at line %d, column %d: %s", je.line, je.column,
                              je.text)
             : !json_is_object(root) ? oai_fail(e, 400, NULL, NULL, "the request body must be a JSON object")
                                     : translate(st, root, rj, chat, e);
    *chat_body = rc ? NULL : json_dumps(chat, JSON_COMPACT);
    json_decref(root);
    json_decref(chat);
    if (!rc && !*chat_body) rc = oai_fail(e, 500, NULL, NULL, "the request could not be encoded");
    if (rc) {
        resp_job_free(rj);
        rj = NULL;
    }
    *out = rj;
    return rc;
}

void responses_fix_param(struct oai_error *e)
{
    static const char *const names[][2] = {{"messages", "input"}, {"max_tokens", "max_output_tokens"},
                                           {"response_format", "text"}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(e->param, names[i][0])) snprintf(e->param, sizeof(e->param), "%s", names[i][1]);
}

void resp_job_free(struct resp_job *rj)
{
    if (!rj) return;
    json_decref(rj->echo);
    json_decref(rj->history);
    json_decref(rj->output);
    strbuf_free(&rj->text);
    free(rj);
}

void responses_keep(struct resp_store *st, const struct resp_job *rj, json_t *object)
{
    json_t *conv = json_copy(rj->history);
    json_array_extend(conv, rj->output);
    char *r = json_dumps(object, JSON_COMPACT), *c = json_dumps(conv, JSON_COMPACT);
    if (r && c) resp_store_put(st, rj->id, r, c);
    free(r);
    free(c);
    json_decref(conv);
}

// ---------------------------------------------------------------------------
// GET and DELETE /v1/responses/{id}

static const char *path_id(const struct http_request *r) { return r->path + strlen("/v1/responses/"); }

static void not_found(struct srv *s, struct http_request *r)
{
    struct oai_error e;
    oai_fail(&e, 404, NULL, NULL, "No response found with id '%s'.", path_id(r));
    reply_error(s, r, &e);
}

void responses_get_route(struct srv *s, struct http_request *r)
{
    char *text = resp_store_get(&s->responses, path_id(r), 0);
    if (!text) {
        not_found(s, r);
        return;
    }
    reply_text(s, r, 200, text);
    free(text);
}

void responses_delete_route(struct srv *s, struct http_request *r)
{
    if (!resp_store_delete(&s->responses, path_id(r))) {
        not_found(s, r);
        return;
    }
    reply_json(s, r, 200, json_pack("{s:s, s:s, s:b}", "id", path_id(r), "object", "response", "deleted", 1), -1, -1,
               -1);
}
