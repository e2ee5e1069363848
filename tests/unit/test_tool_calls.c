/* test_tool_calls.c: the streaming tool-call parser (server/tool_calls.c)
 * on recorded-style outputs of each format: the calls found, the content
 * kept, and the same events whatever the chunking (every split point, byte
 * by byte, random cuts) as the one-shot parse. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "../../base/strbuf.h"
#include "../../server/tool_calls.h"
#include "test_util.h"

/* Deterministic ids: call_ + the index on 24 digits. */
static void det_id(void *ctx, int index, char *out)
{
    (void)ctx;
    snprintf(out, TOOL_CALL_ID_LEN + 1, "call_%024d", index);
}

/* The events as one string, adjacent content (or arguments of one call)
 * merged, so that differently cut streams compare equal. */
struct canon {
    struct strbuf s;
    int last_kind, last_index;
    int n_calls;
    struct strbuf content; /* all content text */
};

static void canon_add(struct canon *c, const struct tool_events *ev)
{
    for (int i = 0; i < ev->n; i++) {
        const struct tool_event *e = &ev->v[i];
        bool cont = c->s.len && (int)e->kind == c->last_kind && e->index == c->last_index &&
                    (e->kind == TOOL_EV_CONTENT || e->kind == TOOL_EV_ARGS);
        if (!cont) strbuf_printf(&c->s, "\x01%d:%d:", (int)e->kind, e->index);
        if (e->kind == TOOL_EV_CONTENT) strbuf_append(&c->content, e->text, e->len);
        if (e->kind == TOOL_EV_CONTENT || e->kind == TOOL_EV_ARGS) strbuf_append(&c->s, e->text, e->len);
        if (e->kind == TOOL_EV_CALL_START) {
            strbuf_printf(&c->s, "%s:%s", e->id, e->name);
            c->n_calls++;
        }
        c->last_kind = (int)e->kind;
        c->last_index = e->index;
    }
}

static void canon_free(struct canon *c)
{
    strbuf_free(&c->s);
    strbuf_free(&c->content);
}

/* Streams text cut at cuts[0..n) (increasing), the events reset after each
 * feed as a server would; returns the canonical string (malloc'd). */
static char *stream(enum tool_format f, const char *text, const size_t *cuts, int n)
{
    struct tool_parser p;
    tool_parser_init(&p, f);
    p.make_id = det_id;
    struct tool_events ev = {0};
    struct canon c = {0};
    size_t at = 0;
    for (int i = 0; i <= n; i++) {
        size_t end = i < n ? cuts[i] : strlen(text);
        tool_parser_feed(&p, text + at, end - at, &ev);
        canon_add(&c, &ev);
        tool_events_reset(&ev);
        at = end;
    }
    tool_parser_finish(&p, &ev);
    canon_add(&c, &ev);
    tool_events_free(&ev);
    tool_parser_deinit(&p);
    strbuf_free(&c.content);
    return strbuf_take(&c.s);
}

/* The one-shot parse of text: events in *ev (caller frees), canon in *c. */
static int oneshot(enum tool_format f, const char *text, struct tool_events *ev, struct canon *c)
{
    int n = tool_calls_parse(f, text, strlen(text), det_id, NULL, ev);
    canon_add(c, ev);
    return n;
}

/* Every single split point, byte by byte, and 200 random chunkings give the
 * one-shot events. */
static void check_chunkings(enum tool_format f, const char *text)
{
    struct tool_events ev = {0};
    struct canon want = {0};
    oneshot(f, text, &ev, &want);
    strbuf_append(&want.s, "", 0);
    size_t len = strlen(text);
    size_t *cuts = calloc(len + 1, sizeof(size_t));
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        char *got = stream(f, text, cuts, 1);
        cr_assert_str_eq(got, want.s.s, "split at %zu of %s", k, text);
        free(got);
    }
    for (size_t k = 0; k < len; k++) cuts[k] = k + 1;
    char *got = stream(f, text, cuts, len ? (int)len - 1 : 0);
    cr_assert_str_eq(got, want.s.s, "byte by byte: %s", text);
    free(got);
    uint64_t rng = 42;
    for (int r = 0; r < 200; r++) {
        int n = 0;
        for (size_t at = 0; at < len;) {
            at += 1 + rng_next(&rng) % 9;
            if (at < len) cuts[n++] = at;
        }
        got = stream(f, text, cuts, n);
        cr_assert_str_eq(got, want.s.s, "random chunking %d: %s", r, text);
        free(got);
    }
    free(cuts);
    tool_events_free(&ev);
    canon_free(&want);
}

static const char *const MARKUP[] = {"<tool_call>", "</tool_call>", "[TOOL_CALLS]", "[ARGS]", "<|python_tag|>"};

/* A parse that finds calls: the count, the content, no markup in it (if
 * clean), and the chunkings. Returns the events for more checks (caller
 * frees). */
static void expect_calls_(enum tool_format f, const char *text, int calls, const char *content, bool clean,
                          struct tool_events *ev)
{
    struct canon c = {0};
    cr_assert_eq(oneshot(f, text, ev, &c), calls, "calls in %s", text);
    strbuf_append(&c.content, "", 0);
    cr_assert_str_eq(c.content.s ? c.content.s : "", content);
    for (int i = 0; calls && clean && i < (int)(sizeof(MARKUP) / sizeof(*MARKUP)); i++)
        cr_assert(!c.content.s || !strstr(c.content.s, MARKUP[i]), "markup %s in content", MARKUP[i]);
    canon_free(&c);
    check_chunkings(f, text);
}

static void expect_calls(enum tool_format f, const char *text, int calls, const char *content, struct tool_events *ev)
{
    expect_calls_(f, text, calls, content, true, ev);
}

/* The i-th call's start event and its arguments. */
static void expect_call(const struct tool_events *ev, int index, const char *name, const char *args)
{
    for (int i = 0; i < ev->n; i++) {
        const struct tool_event *e = &ev->v[i];
        if (e->kind != TOOL_EV_CALL_START || e->index != index) continue;
        cr_assert_str_eq(e->name, name);
        cr_assert_eq(strlen(e->id), TOOL_CALL_ID_LEN);
        cr_assert(i + 2 < ev->n && ev->v[i + 1].kind == TOOL_EV_ARGS && ev->v[i + 2].kind == TOOL_EV_CALL_END);
        cr_assert_eq(ev->v[i + 1].len, strlen(args), "args of call %d: %.*s", index, (int)ev->v[i + 1].len,
                     ev->v[i + 1].text);
        cr_assert(!memcmp(ev->v[i + 1].text, args, strlen(args)));
        return;
    }
    cr_assert_fail("no call %d", index);
}

/* No call: everything is content, byte for byte. */
static void expect_content(enum tool_format f, const char *text)
{
    struct tool_events ev = {0};
    expect_calls(f, text, 0, text, &ev);
    tool_events_free(&ev);
}

/* --- hermes (Qwen2.5 / Qwen3) -------------------------------------------- */

static const char QWEN_TWO_CALLS[] =
    "I'll look up the weather in both cities.\n\n"
    "<tool_call>\n"
    "{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris, France\", \"unit\": \"celsius\", "
    "\"options\": {\"days\": [1, 2, 3], \"hourly\": false, \"note\": \"caf\xC3\xA9 \\\"quoted\\\" }\"}}}\n"
    "</tool_call>\n"
    "<tool_call>\n"
    "{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Tokyo\", \"unit\": \"celsius\", "
    "\"options\": {}}}\n"
    "</tool_call>";

Test(tool_calls, hermes_two_calls_with_nested_arguments)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_HERMES, QWEN_TWO_CALLS, 2, "I'll look up the weather in both cities.\n\n", &ev);
    expect_call(&ev, 0, "get_current_weather",
                "{\"location\": \"Paris, France\", \"unit\": \"celsius\", \"options\": {\"days\": [1, 2, 3], "
                "\"hourly\": false, \"note\": \"caf\xC3\xA9 \\\"quoted\\\" }\"}}");
    expect_call(&ev, 1, "get_current_weather", "{\"location\": \"Tokyo\", \"unit\": \"celsius\", \"options\": {}}");
    cr_assert_eq(ev.v[0].kind, TOOL_EV_CONTENT, "content comes first");
    tool_events_free(&ev);
}

Test(tool_calls, hermes_call_only_and_text_after)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_HERMES,
                 "<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"<tool_call> in a string\"}}\n"
                 "</tool_call>\n\nDone, searching now.",
                 1, "\n\nDone, searching now.", &ev);
    expect_call(&ev, 0, "search", "{\"q\": \"<tool_call> in a string\"}");
    tool_events_free(&ev);
    /* blanks after the last call are dropped */
    expect_calls(TOOL_FORMAT_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>\n\n", 1, "", &ev);
    tool_events_free(&ev);
    /* and before the first (after </think>, say) */
    expect_calls(TOOL_FORMAT_HERMES, "\n\n<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>", 1, "", &ev);
    tool_events_free(&ev);
    expect_content(TOOL_FORMAT_HERMES, "\n\n");
    expect_content(TOOL_FORMAT_MISTRAL, "\n \nText");
}

Test(tool_calls, hermes_missing_close_tag_at_the_end)
{
    /* vLLM's <tool_call>(.*) fallback: a complete call lacking </tool_call> */
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_HERMES, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": 1}}\n", 1, "", &ev);
    expect_call(&ev, 0, "f", "{\"x\": 1}");
    tool_events_free(&ev);
    expect_calls(TOOL_FORMAT_HERMES, "<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_", 1, "", &ev);
    tool_events_free(&ev);
}

Test(tool_calls, hermes_malformed_and_unterminated_are_content)
{
    expect_content(TOOL_FORMAT_HERMES, "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": }}\n</tool_call>");
    expect_content(TOOL_FORMAT_HERMES, "Sure: <tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": \"unterminated");
    expect_content(TOOL_FORMAT_HERMES, "<tool_call>{\"arguments\": {}}</tool_call> no name");
    expect_content(TOOL_FORMAT_HERMES, "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>");
    expect_content(TOOL_FORMAT_HERMES, "<tool_call>{\"name\": \"f\"}</tool_call>");
    expect_content(TOOL_FORMAT_HERMES, "<tool_call>{\"name\": \"\", \"arguments\": {}}</tool_call>");
}

Test(tool_calls, hermes_markup_like_text_is_content)
{
    expect_content(TOOL_FORMAT_HERMES, "Use <tool> or <tool_cal> or </tool_call> or <<tool_call_ tags; a < b.");
    expect_content(TOOL_FORMAT_HERMES, "ends with a partial marker <tool_ca");
    expect_content(TOOL_FORMAT_HERMES, "");
}

Test(tool_calls, hermes_bad_block_then_good_call)
{
    struct tool_events ev = {0};
    expect_calls_(TOOL_FORMAT_HERMES,
                  "<tool_call>oops</tool_call>\n<tool_call>{\"name\": \"g\", \"arguments\": {\"k\": null}}</tool_call>",
                  1, "<tool_call>oops</tool_call>\n", false, &ev);
    expect_call(&ev, 0, "g", "{\"k\": null}");
    tool_events_free(&ev);
}

/* --- llama3_json ---------------------------------------------------------- */

Test(tool_calls, llama31_python_tag_and_parameters)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_LLAMA3_JSON,
                 "<|python_tag|>{\"name\": \"get_current_conditions\", \"parameters\": {\"location\": \"San "
                 "Francisco, CA\", \"unit\": \"Fahrenheit\"}}",
                 1, "", &ev);
    expect_call(&ev, 0, "get_current_conditions", "{\"location\": \"San Francisco, CA\", \"unit\": \"Fahrenheit\"}");
    tool_events_free(&ev);
}

Test(tool_calls, llama32_two_calls_joined_by_semicolon)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_LLAMA3_JSON,
                 "\n{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Berlin\", \"when\": {\"day\": 2}}}; "
                 "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"Europe/Berlin\"}}",
                 2, "", &ev);
    expect_call(&ev, 0, "get_weather", "{\"city\": \"Berlin\", \"when\": {\"day\": 2}}");
    expect_call(&ev, 1, "get_time", "{\"tz\": \"Europe/Berlin\"}");
    tool_events_free(&ev);
}

Test(tool_calls, llama3_plain_replies_are_content)
{
    expect_content(TOOL_FORMAT_LLAMA3_JSON, "The weather in Paris is sunny. {\"name\": \"f\", \"parameters\": {}}");
    expect_content(TOOL_FORMAT_LLAMA3_JSON, "{\"answer\": 42, \"unit\": \"none\"}");
    expect_content(TOOL_FORMAT_LLAMA3_JSON, "{\"name\": \"f\", \"parameters\": {\"x\": 1}");
    expect_content(TOOL_FORMAT_LLAMA3_JSON, "<|python_tag|>import math\nprint(math.pi)");
    expect_content(TOOL_FORMAT_LLAMA3_JSON, "  <|python");
    expect_content(TOOL_FORMAT_LLAMA3_JSON, "{\"name\": \"f\", \"parameters\": {\"x\": tru}}");
}

Test(tool_calls, llama3_text_after_a_call_is_content)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_LLAMA3_JSON, "{\"name\": \"f\", \"parameters\": {}} and then some words", 1,
                 " and then some words", &ev);
    tool_events_free(&ev);
    /* a second object that is not a call: the ';' and the rest are content */
    expect_calls(TOOL_FORMAT_LLAMA3_JSON, "{\"name\": \"f\", \"parameters\": {}}; {\"x\": 1}", 1, "; {\"x\": 1}", &ev);
    tool_events_free(&ev);
}

/* --- mistral ---------------------------------------------------------------- */

Test(tool_calls, mistral_v03_array)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_MISTRAL,
                 "[TOOL_CALLS] [{\"name\": \"get_current_weather\", \"arguments\": {\"location\": \"Paris\", "
                 "\"format\": \"celsius\"}}, {\"name\": \"add\", \"arguments\": {\"a\": 3.5, \"b\": -4e2}}]",
                 2, "", &ev);
    expect_call(&ev, 0, "get_current_weather", "{\"location\": \"Paris\", \"format\": \"celsius\"}");
    expect_call(&ev, 1, "add", "{\"a\": 3.5, \"b\": -400.0}");
    tool_events_free(&ev);
}

Test(tool_calls, mistral_v11_name_args)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_MISTRAL,
                 "Let me compute.[TOOL_CALLS]add[ARGS]{\"a\": 1, \"b\": [2, {\"c\": \"]\"}]}"
                 "[TOOL_CALLS]get_weather[ARGS] {\"city\": \"Lyon\"}",
                 2, "Let me compute.", &ev);
    expect_call(&ev, 0, "add", "{\"a\": 1, \"b\": [2, {\"c\": \"]\"}]}");
    expect_call(&ev, 1, "get_weather", "{\"city\": \"Lyon\"}");
    tool_events_free(&ev);
    expect_calls(TOOL_FORMAT_MISTRAL, "[TOOL_CALLS]mul{\"x\": 2}", 1, "", &ev);
    expect_call(&ev, 0, "mul", "{\"x\": 2}");
    tool_events_free(&ev);
}

Test(tool_calls, mistral_not_calls_are_content)
{
    expect_content(TOOL_FORMAT_MISTRAL, "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}, {\"oops\": 1}]");
    expect_content(TOOL_FORMAT_MISTRAL, "[TOOL_CALLS]f[ARG]{}");
    expect_content(TOOL_FORMAT_MISTRAL, "[TOOL_CALLS]my func{}");
    expect_content(TOOL_FORMAT_MISTRAL, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {}}");
    expect_content(TOOL_FORMAT_MISTRAL, "A [TOOL] tag, [TOOL_CALL] and [[TOOL_CALLS");
    expect_content(TOOL_FORMAT_MISTRAL, "[TOOL_CALLS]");
}

/* --- general ------------------------------------------------------------------ */

Test(tool_calls, arguments_given_as_a_string)
{
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_HERMES,
                 "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": [1,2], \\\"b\\\": \\\"\\u00e9\\\"}\"}"
                 "</tool_call>",
                 1, "", &ev);
    expect_call(&ev, 0, "f", "{\"a\": [1, 2], \"b\": \"\xC3\xA9\"}");
    tool_events_free(&ev);
}

Test(tool_calls, no_format_passes_text_through)
{
    expect_content(TOOL_FORMAT_NONE, "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>");
}

Test(tool_calls, a_call_longer_than_the_cap_is_content)
{
    const char *text = "<tool_call>{\"name\": \"f\", \"arguments\": {\"x\": \"0123456789\"}}</tool_call> after";
    struct tool_parser p;
    tool_parser_init(&p, TOOL_FORMAT_HERMES);
    p.max_call_bytes = 20;
    struct tool_events ev = {0};
    tool_parser_feed(&p, text, strlen(text), &ev);
    tool_parser_finish(&p, &ev);
    cr_assert_eq(ev.n, 1);
    cr_assert_eq(ev.v[0].kind, TOOL_EV_CONTENT);
    cr_assert_eq(ev.v[0].len, strlen(text));
    cr_assert_not(tool_parser_called(&p));
    tool_events_free(&ev);
    tool_parser_deinit(&p);
}

Test(tool_calls, random_ids_look_like_openai)
{
    struct tool_events ev = {0};
    const char *text = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
    cr_assert_eq(tool_calls_parse(TOOL_FORMAT_HERMES, text, strlen(text), NULL, NULL, &ev), 1);
    const char *id = ev.v[0].id;
    cr_assert_eq(strlen(id), TOOL_CALL_ID_LEN);
    cr_assert(!strncmp(id, "call_", 5));
    for (int i = 5; i < TOOL_CALL_ID_LEN; i++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", id[i]));
    tool_events_free(&ev);
}

Test(tool_calls, hostile_outputs_cost_linear_time)
{
    /* 2 MB of marker starts, unterminated calls and brackets */
    const char *pieces[] = {"<tool_ca", "<tool_call>{{{{[[[\"", "[TOOL_CALLS]", "<|python_tag|>", "{\"a\":"};
    for (int f = TOOL_FORMAT_HERMES; f <= TOOL_FORMAT_MISTRAL; f++)
        for (int k = 0; k < 5; k++) {
            struct strbuf b = {0};
            while (b.len < (2u << 20)) strbuf_append(&b, pieces[k], strlen(pieces[k]));
            struct tool_events ev = {0};
            double t0 = mono_seconds();
            tool_calls_parse((enum tool_format)f, b.s, b.len, det_id, NULL, &ev);
            size_t total = 0;
            for (int i = 0; i < ev.n; i++) total += ev.v[i].len;
            cr_assert_eq(total, b.len, "no call: all the text is content (format %d, piece %d)", f, k);
            cr_assert_lt(mono_seconds() - t0, 5.0);
            tool_events_free(&ev);
            strbuf_free(&b);
        }
}

Test(tool_calls, endless_blanks_are_not_held_forever)
{
    struct strbuf b = {0};
    const char *call = "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
    strbuf_append(&b, call, strlen(call));
    for (int i = 0; i < 300; i++) strbuf_append(&b, "\n ", 2);
    struct tool_parser p;
    tool_parser_init(&p, TOOL_FORMAT_HERMES);
    p.max_call_bytes = 100;
    struct tool_events ev = {0};
    tool_parser_feed(&p, b.s, b.len, &ev);
    cr_assert_eq(ev.v[ev.n - 1].kind, TOOL_EV_CONTENT, "blanks past the cap are released before the end");
    cr_assert_lt(p.held.len, 100);
    tool_events_free(&ev);
    tool_parser_deinit(&p);
    /* llama3: blanks at the start past the cap, then more: content in order */
    strbuf_reset(&b);
    for (int i = 0; i < 100; i++) strbuf_append(&b, i < 80 ? "\t" : "\n", 1);
    tool_parser_init(&p, TOOL_FORMAT_LLAMA3_JSON);
    p.max_call_bytes = 64;
    for (size_t i = 0; i < b.len; i++) tool_parser_feed(&p, b.s + i, 1, &ev);
    tool_parser_finish(&p, &ev);
    cr_assert_eq(ev.n, 1);
    cr_assert_eq(ev.v[0].len, b.len);
    cr_assert(!memcmp(ev.v[0].text, b.s, b.len));
    tool_events_free(&ev);
    tool_parser_deinit(&p);
    strbuf_free(&b);
}

Test(tool_calls, format_names_and_detection)
{
    enum tool_format f;
    cr_assert_eq(tool_format_from_name("hermes", &f), 0);
    cr_assert_eq(f, TOOL_FORMAT_HERMES);
    cr_assert_eq(tool_format_from_name("llama3_json", &f), 0);
    cr_assert_eq(f, TOOL_FORMAT_LLAMA3_JSON);
    cr_assert_eq(tool_format_from_name("mistral", &f), 0);
    cr_assert_str_eq(tool_format_name(f), "mistral");
    cr_assert_neq(tool_format_from_name("pythonic", &f), 0);
    cr_assert_eq(tool_format_detect("{%- if tools %}<tool_call>\\n{\"name\": <function-name>}</tool_call>"),
                 TOOL_FORMAT_HERMES);
    cr_assert_eq(tool_format_detect("{{- '[TOOL_CALLS]' + tool_calls|tojson }}"), TOOL_FORMAT_MISTRAL);
    cr_assert_eq(tool_format_detect("{{- '<|python_tag|>' + tool_call.name }}"), TOOL_FORMAT_LLAMA3_JSON);
    cr_assert_eq(tool_format_detect("<|start_header_id|>user<|end_header_id|>Respond in the format {\"name\": "
                                    "function name, \"parameters\": dictionary of argument name and its value}."),
                 TOOL_FORMAT_LLAMA3_JSON);
    cr_assert_eq(tool_format_detect("{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}"),
                 TOOL_FORMAT_NONE);
    cr_assert_eq(tool_format_detect(NULL), TOOL_FORMAT_NONE);
}

Test(tool_calls, arguments_serialised_as_python_json_dumps)
{
    /* json.dumps(args, ensure_ascii=False) of the same object, from Python */
    struct tool_events ev = {0};
    expect_calls(TOOL_FORMAT_HERMES,
                 "<tool_call>{\"name\": \"f\", \"arguments\": {\"t\":0.7,\"big\":1e16,\"small\":1e-5,\"q\":0.0001,"
                 "\"i\":-12,\"f\":123.0,\"e\":1.5E300,\"z\":-0.0,\"pi\":3.141592653589793,\"k\":1e15,"
                 "\"s\":\"a\\u0001\\t\\\"/\\u00e9\\ud83d\\ude00\",\"n\":[true,false,null,{}],\"k\":2}}</tool_call>",
                 1, "", &ev);
    expect_call(&ev, 0, "f",
                "{\"t\": 0.7, \"big\": 1e+16, \"small\": 1e-05, \"q\": 0.0001, \"i\": -12, \"f\": 123.0, "
                "\"e\": 1.5e+300, \"z\": -0.0, \"pi\": 3.141592653589793, \"k\": 2, "
                "\"s\": \"a\\u0001\\t\\\"/\xC3\xA9\xF0\x9F\x98\x80\", \"n\": [true, false, null, {}]}");
    tool_events_free(&ev);
}
