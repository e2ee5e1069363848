/* test_server_text.c: the server's text pipeline pieces: the stop-string
 * matcher, SSE framing and the chat formats. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "../../base/utf8.h"
#include "../../server/chat_template.h"
#include "../../server/oai_render.h"
#include "../../server/sse.h"
#include "../../server/stop.h"
#include "test_util.h"

/* Feeds pieces one by one; returns everything released (and flushed unless matched). */
static char *run_stop(const char *const *stops, int n_stops, const char *const *pieces, int n, bool *matched)
{
    struct stop_matcher m;
    stop_init(&m, stops, n_stops);
    char *out = calloc(1, 4096);
    size_t k;
    for (int i = 0; i < n; i++) {
        const char *t = stop_push(&m, pieces[i], strlen(pieces[i]), &k);
        strncat(out, t, k);
    }
    const char *t = stop_flush(&m, &k);
    strncat(out, t, k);
    *matched = m.matched;
    stop_deinit(&m);
    return out;
}

Test(stop, spanning_tokens_is_cut_and_never_released)
{
    const char *stops[] = {"STOP here"};
    const char *pieces[] = {"Hello S", "TO", "P h", "ere and more"};
    struct stop_matcher m;
    stop_init(&m, stops, 1);
    size_t k;
    const char *t = stop_push(&m, pieces[0], strlen(pieces[0]), &k);
    cr_assert_eq(k, 6);
    cr_assert(!strncmp(t, "Hello ", 6), "the possible start 'S' is held back");
    t = stop_push(&m, pieces[1], 2, &k);
    cr_assert_eq(k, 0);
    t = stop_push(&m, pieces[2], 3, &k);
    cr_assert_eq(k, 0);
    t = stop_push(&m, pieces[3], strlen(pieces[3]), &k);
    cr_assert_eq(k, 0);
    cr_assert(m.matched);
    t = stop_flush(&m, &k);
    cr_assert_eq(k, 0, "nothing after a match");
    stop_deinit(&m);
}

Test(stop, a_false_start_is_released_later)
{
    const char *stops[] = {"abc"};
    const char *pieces[] = {"xa", "b", "d", "ab"};
    bool matched;
    char *out = run_stop(stops, 1, pieces, 4, &matched);
    cr_assert_str_eq(out, "xabdab");
    cr_assert_not(matched);
    free(out);
}

Test(stop, earliest_of_several_wins)
{
    const char *stops[] = {"world", "lo w", ""};
    const char *pieces[] = {"hel", "lo wor", "ld"};
    bool matched;
    char *out = run_stop(stops, 3, pieces, 3, &matched);
    cr_assert_str_eq(out, "hel");
    cr_assert(matched);
    free(out);
}

Test(stop, multibyte_text_and_no_stops)
{
    const char *stops[] = {"\xC3\xA9t\xC3\xA9"}; /* "été" */
    const char *pieces[] = {"un \xC3\xA9", "t\xC3\xA9 chaud"};
    bool matched;
    char *out = run_stop(stops, 1, pieces, 2, &matched);
    cr_assert_str_eq(out, "un ");
    cr_assert(matched);
    free(out);
    out = run_stop(NULL, 0, pieces, 2, &matched);
    cr_assert_str_eq(out, "un \xC3\xA9t\xC3\xA9 chaud");
    free(out);
}

Test(stop, the_earliest_start_wins_even_when_it_ends_later)
{
    const char *stops[] = {"cd", "abcdef"};
    const char *pieces[] = {"xab", "cdef!"};
    bool matched;
    char *out = run_stop(stops, 2, pieces, 2, &matched);
    cr_assert_str_eq(out, "x");
    cr_assert(matched);
    free(out);
}

/* A self-overlapping stop string over text that keeps almost matching it:
 * the held tail follows the longest partial match (the KMP border), and a
 * naive rescan would cost length squared per piece. */
Test(stop, overlapping_prefixes_stay_linear_and_exact)
{
    enum { L = 1024 };
    char *stop = malloc(L + 1);
    memset(stop, 'a', L - 1);
    stop[L - 1] = 'b';
    stop[L] = '\0';
    const char *stops[] = {stop};
    struct stop_matcher m;
    stop_init(&m, stops, 1);
    size_t k, released = 0;
    for (int i = 0; i < 64 * L; i++) {
        stop_push(&m, "a", 1, &k);
        released += k;
    }
    cr_assert_eq(released, 64 * L - (L - 1), "all but the last L-1 'a's are released");
    stop_push(&m, "b", 1, &k);
    cr_assert(m.matched);
    cr_assert_eq(k, 0);
    stop_deinit(&m);
    free(stop);
}

Test(sse, framing)
{
    size_t n;
    char *e = sse_data("{\"a\":1}", 7, &n);
    cr_assert_eq(n, 15);
    cr_assert(!memcmp(e, "data: {\"a\":1}\n\n", n));
    free(e);
    e = sse_data("one\ntwo\r\nthree", 14, &n);
    const char *want = "data: one\ndata: two\ndata: three\n\n";
    cr_assert_eq(n, strlen(want));
    cr_assert(!memcmp(e, want, n));
    free(e);
    e = sse_data("[DONE]", 6, &n);
    cr_assert(!memcmp(e, "data: [DONE]\n\n", n));
    free(e);
}

Test(chat_template, styles_are_recognised)
{
    cr_assert_eq(chat_style_detect(NULL), CHAT_DEFAULT);
    cr_assert_eq(chat_style_detect("{{ bos_token }}[INST] <<SYS>>\\n"), CHAT_LLAMA2);
    cr_assert_eq(chat_style_detect("{{ '[INST] ' + message['content'] + ' [/INST]' }}"), CHAT_MISTRAL);
    cr_assert_eq(chat_style_detect("{{ '<|user|>\\n' + message['content'] + eos_token }}"), CHAT_ZEPHYR);
    cr_assert_eq(chat_style_detect("{{'<|im_start|>' + message['role'] }}"), CHAT_CHATML);
    cr_assert_eq(chat_style_detect("<|start_header_id|>"), CHAT_LLAMA3);
    cr_assert_eq(chat_style_detect("{{ messages }}"), CHAT_DEFAULT);
}

/* The rendered ids decode to the template's text; BOS/EOS are the special ids. */
static void check_render(enum chat_style st, const char *want_text, int want_bos, int want_eos)
{
    tokenizer *tok;
    char err[256];
    cr_assert_eq(tok_load(&tok, stories260k_dir(), err, sizeof(err)), 0, "%s", err);
    struct chat_msg m[] = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}, {"user", "Bye"}};
    int32_t *ids;
    int n = chat_render(st, m, 4, tok, &ids);
    int bos = 0, eos = 0;
    for (int i = 0; i < n; i++) {
        bos += ids[i] == tok_bos_id(tok);
        eos += ids[i] == tok_eos_id(tok);
    }
    cr_assert_eq(bos, want_bos, "%s: BOS count", chat_style_name(st));
    cr_assert_eq(eos, want_eos, "%s: EOS count", chat_style_name(st));
    char text[1024];
    long len = tok_decode(tok, ids, n, text, sizeof(text) - 1);
    cr_assert_geq(len, 0);
    text[len] = '\0';
    cr_assert_str_eq(text, want_text, "%s", chat_style_name(st));
    free(ids);
    tok_free(tok);
}

Test(chat_template, renders_each_style)
{
    check_render(CHAT_DEFAULT, "Be brief.\n\nUser: Hi\nAssistant: Hello\nUser: Bye\nAssistant:", 1, 0);
    check_render(CHAT_LLAMA2, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello [INST] Bye [/INST]", 2, 1);
    check_render(CHAT_MISTRAL, "[INST] Be brief.\n\nHi [/INST]Hello [INST] Bye [/INST]", 1, 1);
    /* after an EOS id, SentencePiece's prefix space starts the next segment, as in transformers */
    check_render(CHAT_ZEPHYR, "<|system|>\nBe brief. \n<|user|>\nHi \n<|assistant|>\nHello \n<|user|>\nBye \n"
                              "<|assistant|>\n", 0, 4);
    check_render(CHAT_CHATML, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                              "<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                              "<|im_start|>assistant\n", 0, 0);
    check_render(CHAT_LLAMA3, "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant"
                              "<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye"
                              "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", 0, 0);
}

Test(utf8, valid_prefix_follows_rfc3629)
{
    cr_assert_eq(utf8_valid_prefix("abc", 3), 3);
    cr_assert_eq(utf8_valid_prefix("a\xC3\xA9\xF0\x9F\x98\x80", 7), 7);
    cr_assert_eq(utf8_valid_prefix("a\xE2\x82", 3), 1, "incomplete character");
    cr_assert_eq(utf8_valid_prefix("a\xC0\xAF", 3), 1, "overlong slash");
    cr_assert_eq(utf8_valid_prefix("a\xE0\x80\xAF", 4), 1, "overlong, 3 bytes");
    cr_assert_eq(utf8_valid_prefix("a\xED\xA0\x80", 4), 1, "surrogate");
    cr_assert_eq(utf8_valid_prefix("a\xF4\x90\x80\x80", 5), 1, "above U+10FFFF");
    cr_assert_eq(utf8_valid_prefix("a\x80", 2), 1, "lone continuation");
}

Test(utf8, sanitize_replaces_bad_bytes_and_cuts_between_characters)
{
    char out[16];
    cr_assert_eq(utf8_sanitize(out, sizeof(out), "a\xE2\x82z", 4), 8);
    cr_assert_str_eq(out, "a\xEF\xBF\xBD\xEF\xBF\xBDz");
    /* "é" x 10 into 16 bytes: 7 whole characters (14 bytes) and the NUL */
    const char *e10 = "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9";
    cr_assert_eq(utf8_sanitize(out, sizeof(out), e10, 20), 14);
    cr_assert_eq(utf8_valid_prefix(out, 14), 14);
    cr_assert_eq(utf8_sanitize(out, 1, "abc", 3), 0);
    cr_assert_str_eq(out, "");
}

/* An error message quoting the client's bytes is valid UTF-8 even when cut. */
Test(oai, error_messages_are_valid_utf8_when_cut)
{
    char word[1200];
    for (int i = 0; i < 600; i++) memcpy(word + 2 * i, "\xC3\xA9", 2);
    word[1199] = '\0'; /* ends in half an "é" too */
    struct oai_error e;
    oai_fail(&e, 404, "model", "model_not_found", "The model `%s` does not exist.", word);
    size_t n = strlen(e.message);
    cr_assert_lt(n, sizeof(e.message));
    cr_assert_eq(utf8_valid_prefix(e.message, n), n);
    char *json = oai_error_json(&e);
    cr_assert(json && strstr(json, "model_not_found"));
    free(json);
    oai_fail(&e, 404, NULL, NULL, "no route GET %s", "/\xE2\x82");
    cr_assert_str_eq(e.message, "no route GET /\xEF\xBF\xBD\xEF\xBF\xBD");
}

/* err_set's message names echoed from a file: one line of valid UTF-8 */
Test(err, messages_are_one_line_of_valid_utf8)
{
    err_set(ERR_INVALID, "model \"%s\" is not supported", "B\nP\x7f" "E\xC3\xA9\xE2\x82\xF0\x9F\x98\x80\x80");
    cr_assert_str_eq(err_msg(), "model \"B?P?E\xC3\xA9??\xF0\x9F\x98\x80?\" is not supported");
    char name[2000];
    for (int i = 0; i < 999; i++) memcpy(name + 2 * i, "\xC3\xA9", 2);
    name[1998] = '\0';
    err_set(ERR_INVALID, "%s", name); /* 1,023 bytes kept: cut inside an "é" */
    size_t n = strlen(err_msg());
    cr_assert_eq(n, 1023);
    cr_assert_eq(utf8_valid_prefix(err_msg(), n), n);
    cr_assert_eq(err_msg()[n - 1], '?');
}
