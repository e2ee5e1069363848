/* tool_calls_json.c: checking a call's JSON (jansson), serialising its
 * arguments, the event list, call ids and the format names. */
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "tool_calls_impl.h"

/* --- formats ------------------------------------------------------------ */

static const char *const FORMAT_NAMES[] = {"none", "hermes", "llama3_json", "mistral"};

int tool_format_from_name(const char *name, enum tool_format *out)
{
    for (int i = 0; i < (int)(sizeof(FORMAT_NAMES) / sizeof(FORMAT_NAMES[0])); i++)
        if (!strcmp(name, FORMAT_NAMES[i])) {
            *out = (enum tool_format)i;
            return 0;
        }
    return err_set(ERR_INVALID, "unknown tool-call parser '%s' (hermes, llama3_json, mistral or none)", name);
}

const char *tool_format_name(enum tool_format f)
{
    return (unsigned)f < sizeof(FORMAT_NAMES) / sizeof(FORMAT_NAMES[0]) ? FORMAT_NAMES[f] : "none";
}

enum tool_format tool_format_detect(const char *t)
{
    if (!t) return TOOL_FORMAT_NONE;
    if (strstr(t, "<tool_call>")) return TOOL_FORMAT_HERMES;
    if (strstr(t, "[TOOL_CALLS]")) return TOOL_FORMAT_MISTRAL;
    if (strstr(t, "<|python_tag|>")) return TOOL_FORMAT_LLAMA3_JSON;
    /* Llama 3.2's template asks for {"name": ..., "parameters": ...} in
     * words; in tokenizer_config.json's text the quotes may be escaped */
    if (strstr(t, "<|start_header_id|>") && (strstr(t, "\"parameters\"") || strstr(t, "\\\"parameters\\\"")))
        return TOOL_FORMAT_LLAMA3_JSON;
    return TOOL_FORMAT_NONE;
}

/* --- events ------------------------------------------------------------- */

void tool_events_reset(struct tool_events *ev)
{
    ev->n = 0;
    strbuf_reset(&ev->buf);
}

void tool_events_free(struct tool_events *ev)
{
    free(ev->v);
    strbuf_free(&ev->buf);
    memset(ev, 0, sizeof(*ev));
}

static struct tool_event *push(struct tool_events *ev, enum tool_event_kind kind, int index)
{
    if (ev->n == ev->cap) {
        ev->cap = ev->cap ? 2 * ev->cap : 8;
        ev->v = xrealloc(ev->v, (size_t)ev->cap * sizeof(*ev->v));
    }
    struct tool_event *e = &ev->v[ev->n++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->index = index;
    e->off_ = ev->buf.len;
    return e;
}

/* The last event's text is always at the end of buf (every event's bytes
 * are appended when it is made), so merging is an append. */
void tool__emit_text(struct tool_events *ev, enum tool_event_kind kind, int index, const char *s, size_t n)
{
    if (!n) return;
    struct tool_event *last = ev->n ? &ev->v[ev->n - 1] : NULL;
    if (!last || last->kind != kind || (kind == TOOL_EV_ARGS && last->index != index)) last = push(ev, kind, index);
    strbuf_append(&ev->buf, s, n);
    last->len += n;
}

void tool__fix(struct tool_events *ev)
{
    for (int i = 0; i < ev->n; i++) {
        struct tool_event *e = &ev->v[i];
        e->text = ev->buf.s ? ev->buf.s + e->off_ : "";
        e->name = e->kind == TOOL_EV_CALL_START ? ev->buf.s + e->name_off_ : NULL;
    }
}

/* --- ids ---------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t tool__seed(uint64_t salt)
{
    static atomic_uint_fast64_t counter;
    uint64_t n = atomic_fetch_add(&counter, 0x1234567);
    uint64_t s = (uint64_t)(mono_seconds() * 1e9) ^ (salt << 17) ^ n;
    return splitmix64(&s);
}

void tool__random_id(void *ctx, int index, char *out)
{
    static const char ALNUM[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (void)index;
    memcpy(out, "call_", 5);
    for (int i = 5; i < TOOL_CALL_ID_LEN; i++) out[i] = ALNUM[splitmix64(ctx) % 62];
    out[TOOL_CALL_ID_LEN] = '\0';
}

/* --- calls -------------------------------------------------------------- */

/* A string as Python's json.dumps(ensure_ascii=False) writes it (the text
 * is valid UTF-8: jansson checked it). */
static void dump_string(struct strbuf *out, const char *s, size_t n)
{
    strbuf_append(out, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (esc) strbuf_append(out, esc, 2);
        else if (c < 0x20) strbuf_printf(out, "\\u%04x", c);
        else strbuf_append(out, s + i, 1);
    }
    strbuf_append(out, "\"", 1);
}

/* A real as Python's repr: the fewest digits that read back the same,
 * fixed notation for exponents -4..15 (with ".0" when no point), else
 * d.ddde+XX. */
static void dump_real(struct strbuf *out, double d)
{
    char buf[48];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    snprintf(buf, sizeof(buf), "%.*e", prec - 1, d);
    int exp = atoi(strchr(buf, 'e') + 1);
    if (exp >= -4 && exp < 16) {
        snprintf(buf, sizeof(buf), "%.*f", prec - 1 - exp > 0 ? prec - 1 - exp : 0, d);
        if (!strchr(buf, '.')) strcat(buf, ".0");
    }
    strbuf_append(out, buf, strlen(buf));
}

/* v as Python's json.dumps(v, ensure_ascii=False): ", " and ": "
 * separators, keys in their order (jansson keeps it; a repeated key keeps
 * its first place and its last value, as a dict does). Depth is bounded by
 * jansson's parser (2048). */
static void dump_value(struct strbuf *out, json_t *v)
{
    const char *key;
    json_t *x;
    size_t i, k = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        strbuf_append(out, "{", 1);
        json_object_foreach(v, key, x) {
            if (k++) strbuf_append(out, ", ", 2);
            dump_string(out, key, strlen(key));
            strbuf_append(out, ": ", 2);
            dump_value(out, x);
        }
        strbuf_append(out, "}", 1);
        break;
    case JSON_ARRAY:
        strbuf_append(out, "[", 1);
        json_array_foreach(v, i, x) {
            if (i) strbuf_append(out, ", ", 2);
            dump_value(out, x);
        }
        strbuf_append(out, "]", 1);
        break;
    case JSON_STRING: dump_string(out, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: strbuf_printf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: dump_real(out, json_real_value(v)); break;
    case JSON_TRUE: strbuf_append(out, "true", 4); break;
    case JSON_FALSE: strbuf_append(out, "false", 5); break;
    case JSON_NULL: strbuf_append(out, "null", 4); break;
    }
}

/* The arguments as function.arguments: an object (or a string holding
 * one) serialised as vLLM's json.dumps(args, ensure_ascii=False); NULL when
 * it is neither. */
static char *args_text(json_t *a)
{
    json_t *own = NULL;
    if (json_is_string(a)) a = own = json_loadb(json_string_value(a), json_string_length(a), 0, NULL);
    struct strbuf out = {0};
    if (json_is_object(a)) dump_value(&out, a);
    json_decref(own);
    return out.len ? strbuf_take(&out) : NULL;
}

/* Emits a checked call: start (id, name), arguments, end. */
static void emit_call(struct tool_parser *p, struct tool_events *ev, const char *name, size_t name_len,
                      const char *args)
{
    int index = p->n_calls++;
    struct tool_event *e = push(ev, TOOL_EV_CALL_START, index);
    if (p->make_id) p->make_id(p->id_ctx, index, e->id);
    else tool__random_id(&p->rng, index, e->id);
    e->id[TOOL_CALL_ID_LEN] = '\0';
    e->name_off_ = ev->buf.len;
    strbuf_append(&ev->buf, name, name_len);
    strbuf_append(&ev->buf, "", 1);
    tool__emit_text(ev, TOOL_EV_ARGS, index, args, strlen(args));
    push(ev, TOOL_EV_CALL_END, index);
}

/* Whether v is a call object; *args gets its serialised arguments. */
static bool check_call(json_t *v, char **args)
{
    json_t *name = json_object_get(v, "name");
    json_t *a = json_object_get(v, "arguments");
    if (!a) a = json_object_get(v, "parameters");
    *args = NULL;
    if (!json_is_string(name) || !json_string_length(name) || !a) return false;
    *args = args_text(a);
    return *args != NULL;
}

bool tool__emit_object(struct tool_parser *p, struct tool_events *ev, const char *js, size_t n)
{
    json_t *v = json_loadb(js, n, 0, NULL);
    char *args;
    bool ok = json_is_object(v) && check_call(v, &args);
    if (ok) {
        json_t *name = json_object_get(v, "name");
        emit_call(p, ev, json_string_value(name), json_string_length(name), args);
        free(args);
    }
    json_decref(v);
    return ok;
}

bool tool__emit_array(struct tool_parser *p, struct tool_events *ev, const char *js, size_t n)
{
    json_t *v = json_loadb(js, n, 0, NULL);
    size_t k = json_array_size(v);
    char **args = xcalloc(k ? k : 1, sizeof(*args));
    bool ok = k > 0;
    for (size_t i = 0; i < k && ok; i++) ok = json_is_object(json_array_get(v, i)) && check_call(json_array_get(v, i), &args[i]);
    for (size_t i = 0; i < k && ok; i++) {
        json_t *name = json_object_get(json_array_get(v, i), "name");
        emit_call(p, ev, json_string_value(name), json_string_length(name), args[i]);
    }
    for (size_t i = 0; i < k; i++) free(args[i]);
    free(args);
    json_decref(v);
    return ok;
}

bool tool__emit_named(struct tool_parser *p, struct tool_events *ev, const char *name, size_t name_len,
                      const char *js, size_t n)
{
    json_t *v = json_loadb(js, n, 0, NULL);
    char *args = name_len ? args_text(v) : NULL;
    if (args) emit_call(p, ev, name, name_len, args);
    free(args);
    json_decref(v);
    return args != NULL;
}
