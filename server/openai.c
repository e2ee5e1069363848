/* openai.c: request validation and error bodies. */
#include "openai.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/engine.h"
#include "../base/err.h"
#include "../tokenizer/tokenizer.h"

int oai_fail(struct oai_error *e, int status, const char *param, const char *code, const char *fmt, ...)
{
    e->status = status;
    e->type = status == 401 ? "invalid_request_error"
              : status == 404 ? "invalid_request_error"
              : status >= 500 ? "server_error" : "invalid_request_error";
    e->code = code;
    snprintf(e->param, sizeof(e->param), "%s", param ? param : "");
    /* the message may quote the client's bytes: valid UTF-8, cut between characters */
    char text[2 * sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
    utf8_sanitize(e->message, sizeof(e->message), text, len);
    return -1;
}

// ---------------------------------------------------------------------------
// field readers: each returns 0 when absent or valid, -1 with e filled

static int get_number(json_t *o, const char *k, double lo, double hi, float *out, struct oai_error *e)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return oai_fail(e, 400, k, NULL, "'%s' must be a number", k);
    double d = json_number_value(v);
    if (!(d >= lo && d <= hi)) return oai_fail(e, 400, k, NULL, "'%s' must be between %g and %g, got %g", k, lo, hi, d);
    *out = (float)d;
    return 0;
}

static int get_int(json_t *o, const char *k, long long lo, long long hi, long long *out, struct oai_error *e)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return oai_fail(e, 400, k, NULL, "'%s' must be an integer", k);
    long long i = json_integer_value(v);
    if (i < lo || i > hi) return oai_fail(e, 400, k, NULL, "'%s' must be between %lld and %lld, got %lld", k, lo, hi, i);
    *out = i;
    return 0;
}

static int get_bool(json_t *o, const char *k, bool *out, struct oai_error *e)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return oai_fail(e, 400, k, NULL, "'%s' must be a boolean", k);
    *out = json_is_true(v);
    return 0;
}

static int parse_ids(json_t *arr, int vocab, struct oai_prompt *p, struct oai_error *e)
{
    size_t n = json_array_size(arr);
    p->ids = xmalloc((n ? n : 1) * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= vocab)
            return oai_fail(e, 400, "prompt", NULL, "prompt token ids must be integers in [0, %d)", vocab);
        p->ids[i] = (int32_t)json_integer_value(v);
    }
    p->n_ids = (int)n;
    return 0;
}

static int parse_prompt(struct oai_request *r, int vocab, struct oai_error *e)
{
    json_t *p = json_object_get(r->root, "prompt");
    if (!p || json_is_null(p)) return oai_fail(e, 400, "prompt", NULL, "'prompt' is required");
    if (json_is_string(p)) {
        r->prompts = xcalloc(1, sizeof(*r->prompts));
        r->prompts[0].text = xstrdup(json_string_value(p));
        r->n_prompts = 1;
        return 0;
    }
    if (!json_is_array(p) || !json_array_size(p))
        return oai_fail(e, 400, "prompt", NULL,
                        "'prompt' must be a string, a list of strings, a list of token ids or a list of such lists");
    json_t *first = json_array_get(p, 0);
    if (json_is_integer(first)) { /* one prompt of ids */
        r->prompts = xcalloc(1, sizeof(*r->prompts));
        r->n_prompts = 1;
        return parse_ids(p, vocab, &r->prompts[0], e);
    }
    size_t n = json_array_size(p);
    if (n > 64) return oai_fail(e, 400, "prompt", NULL, "at most 64 prompts per request");
    r->prompts = xcalloc(n, sizeof(*r->prompts));
    r->n_prompts = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(p, i);
        if (json_is_string(v)) r->prompts[i].text = xstrdup(json_string_value(v));
        else if (json_is_array(v)) {
            if (parse_ids(v, vocab, &r->prompts[i], e)) return -1;
        } else
            return oai_fail(e, 400, "prompt", NULL, "'prompt' list items must be strings or lists of token ids");
    }
    return 0;
}

static int parse_output(struct oai_request *r, struct oai_error *e);

/* A tool or function name as OpenAI accepts it: [A-Za-z0-9_-]{1,64}. */
static bool tool_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 64) return false;
    for (size_t i = 0; i < n; i++)
        if (!(name[i] == '_' || name[i] == '-' || (name[i] >= '0' && name[i] <= '9') ||
              ((name[i] | 0x20) >= 'a' && (name[i] | 0x20) <= 'z')))
            return false;
    return true;
}

/* The fields of a message that belong to tool calling: an assistant's
 * tool_calls ([{id, type: "function", function: {name, arguments: a string}}])
 * and a tool result's tool_call_id. */
static int check_tool_fields(json_t *msg, const char *role, size_t i, struct oai_error *e)
{
    json_t *calls = json_object_get(msg, "tool_calls"), *name = json_object_get(msg, "name");
    if (name && !json_is_null(name) && !json_is_string(name))
        return oai_fail(e, 400, "messages", NULL, "messages[%zu].name must be a string", i);
    if (!strcmp(role, "tool") && !json_is_string(json_object_get(msg, "tool_call_id")))
        return oai_fail(e, 400, "messages", NULL, "messages[%zu].tool_call_id is required for role 'tool'", i);
    if (!calls || json_is_null(calls)) return 0;
    if (strcmp(role, "assistant") || !json_is_array(calls))
        return oai_fail(e, 400, "messages", NULL, "messages[%zu].tool_calls must be a list, on an assistant message",
                        i);
    size_t k;
    json_t *c;
    json_array_foreach(calls, k, c) {
        json_t *f = json_object_get(c, "function"), *id = json_object_get(c, "id"), *ty = json_object_get(c, "type");
        if (!json_is_object(f) || !json_is_string(json_object_get(f, "name")) ||
            !json_is_string(json_object_get(f, "arguments")) || (id && !json_is_string(id)) ||
            (ty && (!json_is_string(ty) || strcmp(json_string_value(ty), "function"))))
            return oai_fail(e, 400, "messages", NULL,
                            "messages[%zu].tool_calls[%zu] must be {\"id\": string, \"type\": \"function\", "
                            "\"function\": {\"name\": string, \"arguments\": string}}", i, k);
    }
    return 0;
}

/* tools, tool_choice, parallel_tool_calls (chat). */
static int parse_tools(struct oai_request *r, struct oai_error *e)
{
    json_t *tools = json_object_get(r->root, "tools"), *tc = json_object_get(r->root, "tool_choice");
    r->parallel_tool_calls = true;
    if (get_bool(r->root, "parallel_tool_calls", &r->parallel_tool_calls, e)) return -1;
    if (tools && !json_is_null(tools)) {
        if (!json_is_array(tools)) return oai_fail(e, 400, "tools", NULL, "'tools' must be a list of tools");
        if (json_array_size(tools) > OAI_MAX_TOOLS)
            return oai_fail(e, 400, "tools", NULL, "at most %d tools per request", OAI_MAX_TOOLS);
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            json_t *f = json_object_get(t, "function"), *ty = json_object_get(t, "type");
            json_t *d = json_object_get(f, "description"), *p = json_object_get(f, "parameters");
            const char *name = json_string_value(json_object_get(f, "name"));
            if (!json_is_object(t) || !json_is_string(ty) || strcmp(json_string_value(ty), "function") ||
                !json_is_object(f))
                return oai_fail(e, 400, "tools", NULL, "tools[%zu] must be {\"type\": \"function\", \"function\": "
                                "{\"name\": ..., \"parameters\": {...}}}", i);
            if (!tool_name_ok(name))
                return oai_fail(e, 400, "tools", NULL, "tools[%zu].function.name must match ^[a-zA-Z0-9_-]{1,64}$", i);
            if ((d && !json_is_null(d) && !json_is_string(d)) || (p && !json_is_null(p) && !json_is_object(p)))
                return oai_fail(e, 400, "tools", NULL,
                                "tools[%zu].function: 'description' must be a string, 'parameters' an object", i);
            for (size_t k = 0; k < i; k++)
                if (!strcmp(name, json_string_value(json_object_get(
                                      json_object_get(json_array_get(tools, k), "function"), "name"))))
                    return oai_fail(e, 400, "tools", NULL, "tools[%zu]: the function name '%s' is used twice", i, name);
        }
        if (json_array_size(tools)) r->tools = tools;
    }
    r->tool_choice = r->tools ? OAI_TOOLS_AUTO : OAI_TOOLS_NONE;
    if (!tc || json_is_null(tc)) return 0;
    const char *cs = json_string_value(tc);
    const char *named = json_string_value(json_object_get(json_object_get(tc, "function"), "name"));
    if (cs && !strcmp(cs, "none")) r->tool_choice = OAI_TOOLS_NONE;
    else if (cs && !strcmp(cs, "auto")) r->tool_choice = OAI_TOOLS_AUTO;
    else if (cs && !strcmp(cs, "required")) r->tool_choice = OAI_TOOLS_REQUIRED;
    else if (json_is_object(tc) && named) {
        r->tool_choice = OAI_TOOLS_NAMED;
        r->tool_name = named;
    } else
        return oai_fail(e, 400, "tool_choice", NULL, "'tool_choice' must be 'none', 'auto', 'required' or "
                        "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (r->tool_choice != OAI_TOOLS_NONE && !r->tools)
        return oai_fail(e, 400, "tool_choice", NULL, "'tool_choice' is only allowed when 'tools' are specified");
    if (r->tool_choice == OAI_TOOLS_NAMED) {
        size_t i;
        json_t *t;
        json_array_foreach(r->tools, i, t)
            if (!strcmp(named, json_string_value(json_object_get(json_object_get(t, "function"), "name")))) return 0;
        return oai_fail(e, 400, "tool_choice", NULL, "'tool_choice' names the function '%s', which is not in 'tools'",
                        named);
    }
    return 0;
}

/* response_format: {"type": "text" | "json_object" | "json_schema",
 * "json_schema": {"name", "schema", "strict"}}. */
static int parse_response_format(struct oai_request *r, json_t *rf, struct oai_error *e)
{
    const char *ty = json_string_value(json_object_get(rf, "type"));
    json_t *js = json_object_get(rf, "json_schema"), *schema = json_object_get(js, "schema");
    r->format_param = "response_format";
    if (!json_is_object(rf) || !ty)
        return oai_fail(e, 400, "response_format", NULL, "'response_format' must be an object with a 'type'");
    if (!strcmp(ty, "json_object")) {
        r->format = OAI_FORMAT_JSON_OBJECT;
    } else if (!strcmp(ty, "json_schema")) {
        json_t *name = json_object_get(js, "name"), *strict = json_object_get(js, "strict");
        if (!json_is_object(js) || (!json_is_object(schema) && !json_is_true(schema)) ||
            (name && !json_is_string(name)) || (strict && !json_is_null(strict) && !json_is_boolean(strict)))
            return oai_fail(e, 400, "response_format", NULL, "'response_format' of type 'json_schema' needs "
                            "'json_schema': {\"name\": string, \"schema\": object, \"strict\": boolean}");
        r->format = OAI_FORMAT_JSON_SCHEMA;
        r->format_text = json_dumps(schema, JSON_COMPACT | JSON_ENCODE_ANY);
    } else if (strcmp(ty, "text")) {
        return oai_fail(e, 400, "response_format", NULL, "'response_format.type' must be 'text', 'json_object' or "
                        "'json_schema', got '%s'", ty);
    }
    return 0;
}

/* vLLM's structured_outputs: {"json": schema (or its text)} | {"regex":
 * text} | {"choice": [strings]} | {"json_object": true}, and the option
 * "disable_any_whitespace" (alone, it may go with response_format). */
static int parse_structured_outputs(struct oai_request *r, json_t *so, struct oai_error *e)
{
    json_t *js = json_object_get(so, "json"), *re = json_object_get(so, "regex"), *ch = json_object_get(so, "choice");
    int given = !!(js && !json_is_null(js)) + !!(re && !json_is_null(re)) + !!(ch && !json_is_null(ch)) +
                json_is_true(json_object_get(so, "json_object"));
    if (json_is_object(so) && get_bool(so, "disable_any_whitespace", &r->compact_json, e)) return -1;
    if (json_is_object(so) && !given && json_object_get(so, "disable_any_whitespace")) return 0;
    if (r->format != OAI_FORMAT_TEXT)
        return oai_fail(e, 400, "structured_outputs", NULL, "give 'response_format' or 'structured_outputs', not both");
    r->format_param = "structured_outputs";
    if (!json_is_object(so) || given != 1)
        return oai_fail(e, 400, "structured_outputs", NULL, "'structured_outputs' must give one of 'json' (a schema), "
                        "'regex', 'choice' (a list of strings) or 'json_object': true");
    json_t *parsed = json_is_string(js) ? json_loads(json_string_value(js), 0, NULL) : json_incref(js);
    size_t i;
    json_t *v;
    bool strings = json_is_array(ch);
    json_array_foreach(ch, i, v) strings &= json_is_string(v);
    if (json_is_object(parsed)) {
        r->format = OAI_FORMAT_JSON_SCHEMA;
        r->format_text = json_dumps(parsed, JSON_COMPACT);
    } else if (json_is_string(re)) {
        r->format = OAI_FORMAT_REGEX;
        r->format_text = xstrdup(json_string_value(re));
    } else if (strings && json_array_size(ch) && json_array_size(ch) <= OAI_MAX_CHOICES) {
        r->format = OAI_FORMAT_CHOICE;
        r->format_text = json_dumps(ch, JSON_COMPACT);
    } else if (json_is_true(json_object_get(so, "json_object"))) {
        r->format = OAI_FORMAT_JSON_OBJECT;
    }
    json_decref(parsed);
    if (r->format == OAI_FORMAT_TEXT)
        return oai_fail(e, 400, "structured_outputs", NULL, "'structured_outputs': 'json' must be a schema (an object "
                        "or its text), 'regex' a string, 'choice' a list of 1 to %d strings", OAI_MAX_CHOICES);
    return 0;
}

/* response_format and structured_outputs: at most one of them says what the
 * output must follow. */
static int parse_format(struct oai_request *r, struct oai_error *e)
{
    json_t *rf = json_object_get(r->root, "response_format"), *so = json_object_get(r->root, "structured_outputs");
    if (rf && !json_is_null(rf) && parse_response_format(r, rf, e)) return -1;
    return so && !json_is_null(so) ? parse_structured_outputs(r, so, e) : 0;
}

static int parse_messages(struct oai_request *r, struct oai_error *e)
{
    json_t *m = json_object_get(r->root, "messages");
    if (!json_is_array(m) || !json_array_size(m))
        return oai_fail(e, 400, "messages", NULL, "'messages' must be a non-empty list");
    size_t n = json_array_size(m);
    r->msgs = xcalloc(n, sizeof(*r->msgs));
    r->owned = xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        json_t *msg = json_array_get(m, i);
        json_t *role = json_object_get(msg, "role"), *content = json_object_get(msg, "content");
        const char *rs = json_string_value(role);
        if (!json_is_object(msg) || !rs)
            return oai_fail(e, 400, "messages", NULL, "messages[%zu] must be an object with a string 'role'", i);
        if (!strcmp(rs, "developer")) rs = "system";
        if (strcmp(rs, "system") && strcmp(rs, "user") && strcmp(rs, "assistant") && strcmp(rs, "tool"))
            return oai_fail(e, 400, "messages", NULL,
                            "messages[%zu].role must be 'system', 'user', 'assistant' or 'tool', got '%s'", i, rs);
        r->msgs[i].role = rs;
        if (check_tool_fields(msg, rs, i, e)) return -1;
        if (json_is_string(content)) {
            r->msgs[i].content = json_string_value(content);
        } else if (json_is_null(content) || !content) {
            if (strcmp(rs, "assistant"))
                return oai_fail(e, 400, "messages", NULL, "messages[%zu].content is required", i);
            r->msgs[i].content = "";
        } else if (json_is_array(content)) { /* text parts, joined by newlines (as vLLM does) */
            size_t len = 0, k;
            json_t *part;
            json_array_foreach(content, k, part) {
                json_t *t = json_object_get(part, "text");
                const char *ty = json_string_value(json_object_get(part, "type"));
                if (!ty || strcmp(ty, "text") || !json_is_string(t))
                    return oai_fail(e, 400, "messages", NULL,
                                    "messages[%zu].content[%zu]: only parts of type 'text' are supported", i, k);
                len += json_string_length(t) + 1;
            }
            char *s = xmalloc(len + 1), *p = s;
            json_array_foreach(content, k, part) {
                json_t *t = json_object_get(part, "text");
                if (k) *p++ = '\n';
                memcpy(p, json_string_value(t), json_string_length(t));
                p += json_string_length(t);
            }
            *p = '\0';
            r->owned[r->n_owned++] = s;
            r->msgs[i].content = s;
        } else {
            return oai_fail(e, 400, "messages", NULL, "messages[%zu].content must be a string or a list of parts", i);
        }
    }
    r->n_msgs = (int)n;
    return 0;
}

static int parse_stop(struct oai_request *r, struct oai_error *e)
{
    json_t *s = json_object_get(r->root, "stop");
    if (!s || json_is_null(s)) return 0;
    if (!json_is_string(s) && !json_is_array(s))
        return oai_fail(e, 400, "stop", NULL, "'stop' must be a string or a list of strings");
    if (json_is_array(s) && json_array_size(s) > OAI_MAX_STOP)
        return oai_fail(e, 400, "stop", NULL, "at most %d stop strings", OAI_MAX_STOP);
    for (size_t i = 0; i < (json_is_string(s) ? 1 : json_array_size(s)); i++) {
        json_t *v = json_is_string(s) ? s : json_array_get(s, i);
        if (!json_is_string(v)) return oai_fail(e, 400, "stop", NULL, "'stop' must be a string or a list of strings");
        if (json_string_length(v) > OAI_MAX_STOP_BYTES)
            return oai_fail(e, 400, "stop", NULL, "a stop string may have at most %d bytes", OAI_MAX_STOP_BYTES);
        r->stop[r->n_stop++] = json_string_value(v);
    }
    return 0;
}

static int parse_bias(struct oai_request *r, int vocab, struct oai_error *e)
{
    json_t *b = json_object_get(r->root, "logit_bias");
    if (!b || json_is_null(b)) return 0;
    if (!json_is_object(b)) return oai_fail(e, 400, "logit_bias", NULL, "'logit_bias' must be an object");
    size_t n = json_object_size(b);
    r->bias_ids = xmalloc((n ? n : 1) * sizeof(int32_t));
    r->bias = xmalloc((n ? n : 1) * sizeof(float));
    const char *k;
    json_t *v;
    json_object_foreach(b, k, v) {
        char *end;
        long id = strtol(k, &end, 10);
        if (*end || end == k || id < 0 || id >= vocab)
            return oai_fail(e, 400, "logit_bias", NULL, "logit_bias keys must be token ids in [0, %d), got '%s'", vocab, k);
        if (!json_is_number(v) || json_number_value(v) < -100 || json_number_value(v) > 100)
            return oai_fail(e, 400, "logit_bias", NULL, "logit_bias values must be numbers in [-100, 100]");
        r->bias_ids[r->n_bias] = (int32_t)id;
        r->bias[r->n_bias++] = (float)json_number_value(v);
    }
    return 0;
}

static int parse_sampling(struct oai_request *r, struct oai_error *e)
{
    for (int i = 0; i < SAMPLING_N_RANGES; i++) { /* the engine's ranges (sampler.h) */
        const struct sampling_range *sr = &SAMPLING_RANGES[i];
        if (get_number(r->root, sr->name, sr->lo, sr->hi, (float *)((char *)&r->sp + sr->offset), e)) return -1;
    }
    long long k = 0;
    if (get_int(r->root, "top_k", -1, 1 << 30, &k, e)) return -1;
    r->sp.top_k = k < 0 ? 0 : (int)k;
    json_t *sv = json_object_get(r->root, "seed");
    long long seed = 0;
    if (sv && !json_is_null(sv)) {
        if (get_int(r->root, "seed", INT64_MIN, INT64_MAX, &seed, e)) return -1;
        r->sp.seed = (uint64_t)seed;
        r->sp.has_seed = true;
    }
    return 0;
}


int oai_parse(struct oai_request *r, bool chat, const char *body, size_t len, int vocab, struct oai_error *e)
{
    memset(r, 0, sizeof(*r));
    r->chat = chat;
    r->max_tokens = -1;
    r->n = 1;
    r->logprobs = -1;
    r->sp = sampling_params_default();
    json_error_t je;
    r->root = json_loadb(body, len, 0, &je);
    if (!r->root)
        return oai_fail(e, 400, NULL, NULL, "malformed JSON at line %d, column %d (position %d): %s", je.line,
                        je.column, je.position, je.text);
    if (!json_is_object(r->root)) return oai_fail(e, 400, NULL, NULL, "the request body must be a JSON object");
    json_t *model = json_object_get(r->root, "model");
    if (model && !json_is_null(model) && !json_is_string(model))
        return oai_fail(e, 400, "model", NULL, "'model' must be a string");
    r->model = json_string_value(model);

    if (chat ? parse_messages(r, e) : parse_prompt(r, vocab, e)) return -1;
    size_t text_bytes = 0;
    for (int i = 0; i < r->n_msgs; i++) text_bytes += strlen(r->msgs[i].content);
    for (int i = 0; i < r->n_prompts; i++) text_bytes += r->prompts[i].text ? strlen(r->prompts[i].text) : 0;
    if (text_bytes > OAI_MAX_PROMPT_BYTES)
        return oai_fail(e, 400, chat ? "messages" : "prompt", NULL,
                        "the %s have %zu bytes of text; at most %d are accepted", chat ? "messages" : "prompts",
                        text_bytes, OAI_MAX_PROMPT_BYTES);
    long long i = -1;
    if (get_int(r->root, "max_tokens", 1, 1 << 24, &i, e)) return -1;
    if (chat && get_int(r->root, "max_completion_tokens", 1, 1 << 24, &i, e)) return -1;
    r->max_tokens = (int)i;
    if (parse_sampling(r, e)) return -1;
    long long n = 1;
    if (get_int(r->root, "n", 1, OAI_MAX_N, &n, e)) return -1;
    r->n = (int)n;
    if (parse_stop(r, e) || parse_bias(r, vocab, e) || parse_output(r, e) || (chat && parse_tools(r, e)) ||
        parse_format(r, e))
        return -1;
    if (r->format != OAI_FORMAT_TEXT && (r->tool_choice == OAI_TOOLS_REQUIRED || r->tool_choice == OAI_TOOLS_NAMED))
        return oai_fail(e, 400, r->format_param, NULL, "'%s' cannot be combined with a 'tool_choice' that forces a "
                        "call (the call's arguments follow the tool's parameters)", r->format_param);
    json_t *user = json_object_get(r->root, "user");
    if (user && !json_is_null(user) && !json_is_string(user))
        return oai_fail(e, 400, "user", NULL, "'user' must be a string");
    return 0;
}

/* stream, stream_options, logprobs (chat: logprobs + top_logprobs). */
static int parse_output(struct oai_request *r, struct oai_error *e)
{
    if (get_bool(r->root, "stream", &r->stream, e) || get_bool(r->root, "ignore_eos", &r->ignore_eos, e)) return -1;
    json_t *so = json_object_get(r->root, "stream_options");
    if (so && !json_is_null(so)) {
        if (!json_is_object(so)) return oai_fail(e, 400, "stream_options", NULL, "'stream_options' must be an object");
        if (!r->stream) return oai_fail(e, 400, "stream_options", NULL, "'stream_options' needs 'stream': true");
        if (get_bool(so, "include_usage", &r->include_usage, e)) return -1;
    }
    if (r->chat) {
        bool lp = false;
        long long top = 0;
        if (get_bool(r->root, "logprobs", &lp, e) || get_int(r->root, "top_logprobs", 0, ENGINE_MAX_LOGPROBS, &top, e)) return -1;
        if (top > 0 && !lp) return oai_fail(e, 400, "top_logprobs", NULL, "'top_logprobs' needs 'logprobs': true");
        r->logprobs = lp ? (int)top : -1;
    } else {
        long long lp = -1;
        if (get_int(r->root, "logprobs", 0, ENGINE_MAX_LOGPROBS, &lp, e)) return -1;
        r->logprobs = (int)lp;
    }
    return 0;
}

void oai_request_free(struct oai_request *r)
{
    for (int i = 0; i < r->n_owned; i++) free(r->owned[i]);
    free(r->owned);
    free(r->msgs);
    for (int i = 0; i < r->n_prompts; i++) {
        free(r->prompts[i].text);
        free(r->prompts[i].ids);
    }
    free(r->prompts);
    free(r->bias_ids);
    free(r->bias);
    free(r->format_text);
    json_decref(r->root);
    memset(r, 0, sizeof(*r));
}
