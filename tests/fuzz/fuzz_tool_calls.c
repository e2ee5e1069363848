/* fuzz_tool_calls.c: the output parsers between the detokenizer and the
 * stream: tool calls (server/tool_calls.c) and reasoning (server/reasoning.c).
 *
 * Input: a mode byte, then the pieces of a model output, each a length byte
 * (% 17) and its bytes, to the end. Mode bits 0-1: the tool-call format
 * (0: none, 1 hermes, 2 llama3_json, 3 mistral); bit 2: a small
 * max_call_bytes (64) instead of the default; bits 3-4: the reasoning rule
 * run on the same text (0/3: none, 1 deepseek_r1, 2 qwen3).
 *
 * Tool calls: the pieces are fed one by one (events reset after each, as
 * the server does), and the events, with adjacent content or arguments
 * merged, must equal the one-shot tool_calls_parse of the whole text. When
 * no call comes out, the content is the text, byte for byte. Every call
 * has a non-empty name and its arguments (merged) are a JSON object that
 * jansson parses; indexes count from 0 in order, each start followed by its
 * arguments and end. When the text is valid UTF-8, so are the content, the
 * names and the arguments.
 *
 * Reasoning: streamed == reasoning_split; in every feed no reasoning comes
 * after content; the reasoning and content are the text with at most a
 * leading <think> (and blanks before it) and one </think> taken out, so
 * their lengths add up to the text's, less 0 or at least 7. */
#include <jansson.h>

#include "../../base/strbuf.h"
#include "../../server/reasoning.h"
#include "../../server/tool_calls.h"
#include "fuzz.h"

static void det_id(void *ctx, int index, char *out)
{
    (void)ctx;
    snprintf(out, TOOL_CALL_ID_LEN + 1, "call_%024d", index);
}

/* The events as one string, adjacent content / arguments merged. */
struct canon {
    struct strbuf s, content, args;
    int last_kind, last_index, n_calls;
};

static bool same(const struct strbuf *a, const struct strbuf *b)
{
    return a->len == b->len && (!a->len || !memcmp(a->s, b->s, a->len));
}

/* At a call's end: its arguments parse as an object. */
static void check_args(struct canon *c)
{
    json_t *v = json_loadb(c->args.s ? c->args.s : "", c->args.len, 0, NULL);
    FUZZ_ASSERT(json_is_object(v), "arguments of call %d are not a JSON object: %.*s", c->last_index,
                (int)c->args.len, c->args.s ? c->args.s : "");
    FUZZ_ASSERT(utf8_valid(c->args.s, c->args.len), "arguments not UTF-8");
    json_decref(v);
    strbuf_reset(&c->args);
}

static void canon_add(struct canon *c, const struct tool_events *ev)
{
    for (int i = 0; i < ev->n; i++) {
        const struct tool_event *e = &ev->v[i];
        bool cont = c->s.len && (int)e->kind == c->last_kind && e->index == c->last_index &&
                    (e->kind == TOOL_EV_CONTENT || e->kind == TOOL_EV_ARGS);
        if (!cont) strbuf_printf(&c->s, "\x01%d:%d:", (int)e->kind, e->index);
        if (e->kind == TOOL_EV_CONTENT || e->kind == TOOL_EV_ARGS) strbuf_append(&c->s, e->text, e->len);
        if (e->kind == TOOL_EV_CONTENT) strbuf_append(&c->content, e->text, e->len);
        if (e->kind == TOOL_EV_ARGS) strbuf_append(&c->args, e->text, e->len);
        if (e->kind == TOOL_EV_CALL_START) {
            FUZZ_ASSERT(e->index == c->n_calls, "call index %d, expected %d", e->index, c->n_calls);
            FUZZ_ASSERT(e->name && *e->name, "a call without a name");
            FUZZ_ASSERT(utf8_valid(e->name, strlen(e->name)), "name not UTF-8");
            strbuf_printf(&c->s, "%s:%s", e->id, e->name);
            c->n_calls++;
        } else if (e->kind != TOOL_EV_CONTENT) {
            FUZZ_ASSERT(e->index == c->n_calls - 1, "event of call %d inside call %d", e->index, c->n_calls - 1);
            FUZZ_ASSERT((int)e->kind == c->last_kind + 1 || (int)e->kind == c->last_kind, "events out of order");
        }
        c->last_kind = (int)e->kind;
        c->last_index = e->index;
        if (e->kind == TOOL_EV_CALL_END) check_args(c);
    }
}

static void canon_free(struct canon *c)
{
    strbuf_free(&c->s);
    strbuf_free(&c->content);
    strbuf_free(&c->args);
}

static void fuzz_tools(enum tool_format f, bool small, const char *text, size_t n, const size_t *cuts, int n_cuts)
{
    struct tool_parser p;
    tool_parser_init(&p, f);
    p.make_id = det_id;
    if (small) p.max_call_bytes = 64;
    struct tool_events ev = {0};
    struct canon got = {0}, want = {0};
    size_t at = 0;
    for (int i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        tool_parser_feed(&p, text + at, end - at, &ev);
        canon_add(&got, &ev);
        tool_events_reset(&ev);
        at = end;
    }
    tool_parser_finish(&p, &ev);
    canon_add(&got, &ev);
    tool_events_reset(&ev);

    struct tool_parser q;
    tool_parser_init(&q, f);
    q.make_id = det_id;
    if (small) q.max_call_bytes = 64;
    tool_parser_feed(&q, text, n, &ev);
    tool_parser_finish(&q, &ev);
    canon_add(&want, &ev);
    FUZZ_ASSERT(same(&got.s, &want.s), "streamed events differ");
    FUZZ_ASSERT(got.n_calls == p.n_calls, "n_calls");
    if (!got.n_calls)
        FUZZ_ASSERT(got.content.len == n && (!n || !memcmp(got.content.s, text, n)), "no call, content != text");
    if (utf8_valid(text, n)) FUZZ_ASSERT(utf8_valid(got.content.s, got.content.len), "content not UTF-8");
    tool_events_free(&ev);
    canon_free(&got);
    canon_free(&want);
    tool_parser_deinit(&p);
    tool_parser_deinit(&q);
}

static void fuzz_reasoning(enum reasoning_format f, const char *text, size_t n, const size_t *cuts, int n_cuts)
{
    struct reasoning_parser p;
    reasoning_init(&p, f);
    struct reasoning_out o = {0}, all = {0}, want = {0};
    size_t at = 0;
    for (int i = 0; i <= n_cuts + 1; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        if (i <= n_cuts) reasoning_feed(&p, text + at, end - at, &o);
        else reasoning_finish(&p, &o);
        FUZZ_ASSERT(!o.reasoning.len || !all.content.len, "reasoning after content");
        strbuf_append(&all.reasoning, o.reasoning.s, o.reasoning.len);
        strbuf_append(&all.content, o.content.s, o.content.len);
        strbuf_reset(&o.reasoning);
        strbuf_reset(&o.content);
        at = end;
    }
    reasoning_split(f, text, n, &want);
    FUZZ_ASSERT(same(&all.reasoning, &want.reasoning), "streamed reasoning differs");
    FUZZ_ASSERT(same(&all.content, &want.content), "streamed content differs");
    size_t out = all.reasoning.len + all.content.len, cut = n - out;
    FUZZ_ASSERT(out <= n, "more out than in");
    FUZZ_ASSERT(cut == 0 || cut >= 7, "%zu bytes taken out", cut);
    if (utf8_valid(text, n))
        FUZZ_ASSERT(utf8_valid(all.reasoning.s, all.reasoning.len) && utf8_valid(all.content.s, all.content.len),
                    "output not UTF-8");
    reasoning_out_free(&o);
    reasoning_out_free(&all);
    reasoning_out_free(&want);
    reasoning_deinit(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct carve c = {data, size};
    uint8_t mode = carve_u8(&c);
    char *text = malloc(size + 1);
    size_t *cuts = malloc((size + 1) * sizeof(size_t));
    if (!text || !cuts) abort();
    size_t n = 0;
    int n_cuts = 0;
    while (c.n) {
        size_t len;
        const uint8_t *piece = carve_bytes(&c, carve_u8(&c) % 17, &len);
        memcpy(text + n, piece, len);
        n += len;
        cuts[n_cuts++] = n;
    }
    if (n_cuts) n_cuts--; /* the last piece ends at n */
    fuzz_tools((enum tool_format)(mode & 3), mode & 4, text, n, cuts, n_cuts);
    int r = (mode >> 3) & 3;
    fuzz_reasoning(r == 3 ? REASONING_NONE : (enum reasoning_format)r, text, n, cuts, n_cuts);
    free(text);
    free(cuts);
    return 0;
}
