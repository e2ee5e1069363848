/* test_reasoning.c: the <think> splitter (server/reasoning.c): vLLM's
 * deepseek_r1 and qwen3 rules, the same split whatever the chunking, and
 * the reasoning parser feeding the tool-call parser as the server will. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/reasoning.h"
#include "../../server/tool_calls.h"
#include "test_util.h"

static const char *str(const struct strbuf *b) { return b->s ? b->s : ""; }

/* Streams text cut at cuts[0..n); checks that each feed gives reasoning
 * only while no content came yet (the order a stream sends them in). */
static void stream(enum reasoning_format f, const char *text, const size_t *cuts, int n, struct reasoning_out *all)
{
    struct reasoning_parser p;
    reasoning_init(&p, f);
    struct reasoning_out o = {0};
    size_t at = 0;
    for (int i = 0; i <= n + 1; i++) {
        size_t end = i < n ? cuts[i] : strlen(text);
        if (i <= n) reasoning_feed(&p, text + at, end - at, &o);
        else reasoning_finish(&p, &o);
        cr_assert(!o.reasoning.len || !all->content.len, "reasoning after content");
        strbuf_append(&all->reasoning, o.reasoning.s, o.reasoning.len);
        strbuf_append(&all->content, o.content.s, o.content.len);
        strbuf_reset(&o.reasoning);
        strbuf_reset(&o.content);
        at = end;
    }
    reasoning_out_free(&o);
    reasoning_deinit(&p);
}

/* The one-shot split is (reasoning, content), and every split point, byte
 * by byte and random cuts give it too. */
static void expect_split(enum reasoning_format f, const char *text, const char *reasoning, const char *content)
{
    struct reasoning_out o = {0};
    reasoning_split(f, text, strlen(text), &o);
    strbuf_append(&o.reasoning, "", 0);
    strbuf_append(&o.content, "", 0);
    cr_assert_str_eq(str(&o.reasoning), reasoning, "reasoning of %s", text);
    cr_assert_str_eq(str(&o.content), content, "content of %s", text);
    reasoning_out_free(&o);
    size_t len = strlen(text);
    size_t *cuts = calloc(len + 1, sizeof(size_t));
    uint64_t rng = 7;
    for (size_t k = 0; k <= len + 100; k++) {
        int n = 1;
        if (k <= len) cuts[0] = k;
        else if (k == len + 1)
            for (n = 0; n < (int)len; n++) cuts[n] = (size_t)n + 1;
        else
            for (size_t at = n = 0; (at += 1 + rng_next(&rng) % 5) < len;) cuts[n++] = at;
        struct reasoning_out all = {0};
        stream(f, text, cuts, n, &all);
        strbuf_append(&all.reasoning, "", 0);
        strbuf_append(&all.content, "", 0);
        cr_assert_str_eq(str(&all.reasoning), reasoning, "streamed (case %zu): %s", k, text);
        cr_assert_str_eq(str(&all.content), content, "streamed (case %zu): %s", k, text);
        reasoning_out_free(&all);
    }
    free(cuts);
}

Test(reasoning, deepseek_r1_template_opened_think)
{
    expect_split(REASONING_DEEPSEEK_R1,
                 "Okay, the user asks for 2+2. That is 4 </thin k.\n</think>\n\nThe answer is **4**.",
                 "Okay, the user asks for 2+2. That is 4 </thin k.\n", "\n\nThe answer is **4**.");
    /* the model writes <think> itself: dropped */
    expect_split(REASONING_DEEPSEEK_R1, "<think>\nLet me think.\n</think>\n\nHi", "\nLet me think.\n", "\n\nHi");
    expect_split(REASONING_DEEPSEEK_R1, "\n<think>x</think>", "x", "");
    /* a later <think> is text; so is a later </think> */
    expect_split(REASONING_DEEPSEEK_R1, "a</think>b<think>c</think>", "a", "b<think>c</think>");
}

Test(reasoning, deepseek_r1_without_end_is_all_reasoning)
{
    expect_split(REASONING_DEEPSEEK_R1, "Still thinking when max_tokens hit </th", "Still thinking when max_tokens hit </th",
                 "");
    expect_split(REASONING_DEEPSEEK_R1, "  <thi", "  <thi", "");
    expect_split(REASONING_DEEPSEEK_R1, "", "", "");
}

Test(reasoning, qwen3_only_with_think)
{
    expect_split(REASONING_QWEN3, "<think>\nThe user greets me.\n</think>\n\nHello! How can I help?",
                 "\nThe user greets me.\n", "\n\nHello! How can I help?");
    expect_split(REASONING_QWEN3, "Hello! No thinking here </think> at all.", "",
                 "Hello! No thinking here </think> at all.");
    expect_split(REASONING_QWEN3, "\n\n<think>cut short", "cut short", "");
    expect_split(REASONING_QWEN3, " <thin", "", " <thin");
    expect_split(REASONING_QWEN3, "<<think>", "", "<<think>");
}

Test(reasoning, endless_leading_blanks_decide)
{
    char *text = malloc(5000 + 17);
    memset(text, ' ', 5000);
    strcpy(text + 5000, "<think>x</think>");
    struct reasoning_out o = {0};
    reasoning_split(REASONING_QWEN3, text, strlen(text), &o);
    cr_assert_eq(o.content.len, strlen(text), "past 4096 blanks the start is decided: no reasoning");
    reasoning_out_free(&o);
    free(text);
}

Test(reasoning, none_is_content)
{
    expect_split(REASONING_NONE, "<think>a</think>b", "", "<think>a</think>b");
}

Test(reasoning, names)
{
    enum reasoning_format f;
    cr_assert_eq(reasoning_format_from_name("deepseek_r1", &f), 0);
    cr_assert_eq(f, REASONING_DEEPSEEK_R1);
    cr_assert_eq(reasoning_format_from_name("qwen3", &f), 0);
    cr_assert_str_eq(reasoning_format_name(f), "qwen3");
    cr_assert_neq(reasoning_format_from_name("granite", &f), 0);
}

Test(reasoning, then_tool_calls)
{
    /* Qwen3: a <tool_call> mentioned while thinking is reasoning, the one
     * after </think> is a call */
    const char *text = "<think>\nI should emit <tool_call> with get_time.\n</think>\n\n"
                       "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>";
    struct reasoning_parser r;
    struct tool_parser t;
    reasoning_init(&r, REASONING_QWEN3);
    tool_parser_init(&t, TOOL_FORMAT_HERMES);
    struct reasoning_out o = {0};
    struct tool_events ev = {0};
    struct strbuf reasoning = {0}, content = {0};
    for (size_t i = 0; i <= strlen(text); i++) {
        if (i < strlen(text)) reasoning_feed(&r, text + i, 1, &o);
        else reasoning_finish(&r, &o);
        strbuf_append(&reasoning, o.reasoning.s, o.reasoning.len);
        tool_parser_feed(&t, o.content.s, o.content.len, &ev);
        if (i == strlen(text)) tool_parser_finish(&t, &ev);
        strbuf_reset(&o.reasoning);
        strbuf_reset(&o.content);
    }
    int calls = 0;
    for (int i = 0; i < ev.n; i++) {
        if (ev.v[i].kind == TOOL_EV_CONTENT) strbuf_append(&content, ev.v[i].text, ev.v[i].len);
        if (ev.v[i].kind != TOOL_EV_CALL_START) continue;
        calls++;
        cr_assert_str_eq(ev.v[i].name, "get_time");
    }
    strbuf_append(&reasoning, "", 0);
    strbuf_append(&content, "", 0);
    cr_assert_str_eq(reasoning.s, "\nI should emit <tool_call> with get_time.\n");
    cr_assert_str_eq(content.s, "", "the blanks before a call are dropped");
    cr_assert_eq(calls, 1);
    cr_assert(tool_parser_called(&t));
    strbuf_free(&reasoning);
    strbuf_free(&content);
    reasoning_out_free(&o);
    tool_events_free(&ev);
    tool_parser_deinit(&t);
    reasoning_deinit(&r);
}
