/* test_hf_tokenizer.c: tokenizer.json through the C API: ids and decodes of
 * tests/data/bpe-small against the `tokenizers` package's (expected.json,
 * tests/data/make_bpe_small.py), the streaming detokenizer on byte-level
 * tokens that cut characters, which file tok_load picks, and one-line errors
 * for what is not supported. The large comparisons (real vocabularies, a
 * 200 KB corpus) are tests/tokenizer/. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../tokenizer/tokenizer.h"
#include "test_util.h"

#define SMALL "tests/data/bpe-small"

static tokenizer *load(const char *dir, enum tok_impl impl)
{
    char err[512];
    tokenizer *t = NULL;
    cr_assert_eq(tok_load_as(&t, dir, impl, err, sizeof(err)), 0, "%s", err);
    return t;
}

static char *decode_all(const tokenizer *t, const int32_t *ids, int n, long *len)
{
    char none[1];
    long need = -tok_decode(t, ids, n, none, 0);
    char *out = malloc((size_t)need + 1);
    *len = tok_decode(t, ids, n, out, (size_t)need);
    cr_assert_eq(*len, need);
    out[*len] = 0;
    return out;
}

Test(hf_tokenizer, matches_the_tokenizers_package)
{
    tokenizer *t = load(SMALL, TOK_AUTO);
    json_error_t je;
    json_t *cases = json_load_file(SMALL "/expected.json", 0, &je), *c;
    cr_assert_not_null(cases, "%s", je.text);
    size_t i;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *want = json_object_get(c, "ids");
        int32_t *ids;
        int n = tok_encode_all(t, text, strlen(text), false, &ids);
        cr_assert_eq(n, (int)json_array_size(want), "%s: %d ids, want %zu", text, n, json_array_size(want));
        for (int k = 0; k < n; k++)
            cr_assert_eq(ids[k], json_integer_value(json_array_get(want, (size_t)k)), "%s: id %d", text, k);
        long len;
        char *back = decode_all(t, ids, n, &len);
        cr_assert_str_eq(back, json_string_value(json_object_get(c, "decoded")), "%s", text);
        free(back);
        free(ids);
    }
    json_decref(cases);
    cr_assert_eq(tok_piece_to_id(t, "<|im_end|>"), 2);
    cr_assert_str_eq(tok_id_to_piece(t, 2), "<|im_end|>");
    cr_assert_eq(tok_piece_to_id(t, "no such token"), -1);
    tok_free(t);
}

/* Streams ids through the detokenizer: every piece valid UTF-8, all of them
 * the whole decode (repaired where its bytes form no character). */
static void stream_equals_decode(const tokenizer *t, const int32_t *ids, int n)
{
    struct detok d;
    detok_init(&d, t, NULL, 0);
    char all[4096];
    size_t len = 0;
    for (int i = 0; i <= n; i++) {
        const char *piece;
        long k = i < n ? detok_push(&d, ids[i], &piece) : detok_flush(&d, &piece);
        cr_assert(k >= 0 && len + (size_t)k < sizeof(all));
        cr_assert_eq(utf8_valid_prefix(piece, (size_t)k), (size_t)k, "piece %d is not valid UTF-8", i);
        memcpy(all + len, piece, (size_t)k);
        len += (size_t)k;
    }
    long raw_len;
    char *raw = decode_all(t, ids, n, &raw_len), want[4096];
    size_t want_len = utf8_sanitize(want, sizeof(want), raw, (size_t)raw_len); /* bytes of no character: U+FFFD */
    cr_assert_eq(len, want_len);
    cr_assert(!memcmp(all, want, len));
    free(raw);
    detok_deinit(&d);
}

Test(hf_tokenizer, streaming_never_cuts_a_character)
{
    tokenizer *t = load(SMALL, TOK_AUTO);
    const char *text = "日本語のテキスト 👩‍👩‍👧‍👦 👍🏽 Привет";
    int32_t *ids;
    int n = tok_encode_all(t, text, strlen(text), false, &ids);
    stream_equals_decode(t, ids, n);
    free(ids);
    /* one character's bytes parted by more silent tokens than the hold
     * allows: the forced piece keeps the open bytes for the next one */
    const char *bytes[] = {"æ", "Ĺ", "¥"}; /* E6 97 A5: 日 in the byte-level alphabet */
    int32_t seq[16], m = 0, end = tok_piece_to_id(t, "<|im_end|>");
    seq[m++] = tok_piece_to_id(t, bytes[0]);
    for (int i = 0; i < 10; i++) seq[m++] = end;
    seq[m++] = tok_piece_to_id(t, bytes[1]);
    seq[m++] = tok_piece_to_id(t, bytes[2]);
    for (int i = 0; i < m; i++) cr_assert_geq(seq[i], 0);
    stream_equals_decode(t, seq, m);
    /* a cut character at the very end still comes out, at the flush (as
     * U+FFFD), after a forced piece carried it */
    m = 0;
    seq[m++] = tok_piece_to_id(t, bytes[0]);
    for (int i = 0; i < 10; i++) seq[m++] = end;
    stream_equals_decode(t, seq, m);
    tok_free(t);
}

Test(hf_tokenizer, json_is_chosen_over_sentencepiece)
{
    char *dir = make_tmpdir();
    char path[4096];
    snprintf(path, sizeof(path), "%s/tokenizer.model", stories260k_dir());
    size_t n;
    void *model = read_file(path, &n);
    cr_assert_not_null(model);
    write_file(dir, "tokenizer.model", model, n);
    size_t jn;
    void *json = read_file(SMALL "/tokenizer.json", &jn);
    write_file(dir, "tokenizer.json", json, jn);
    tokenizer *a = load(dir, TOK_AUTO), *b = load(dir, TOK_SENTENCEPIECE);
    cr_assert_eq(tok_vocab_size(a), 603);
    cr_assert_eq(tok_vocab_size(b), 512);
    tok_free(a);
    tok_free(b);
    free(model);
    free(json);
    rm_rf(dir);
    free(dir);
}

/* tok_load's one line for a tokenizer.json text. */
static void load_error(const char *json, const char *want)
{
    char *dir = make_tmpdir(), err[512] = "";
    write_text(dir, "tokenizer.json", json);
    tokenizer *t = NULL;
    cr_assert_neq(tok_load(&t, dir, err, sizeof(err)), 0, "%s loaded", json);
    cr_assert(strstr(err, "tokenizer.json: ") && strstr(err, want), "got \"%s\", want \"%s\"", err, want);
    cr_assert_null(strchr(err, '\n'));
    rm_rf(dir);
    free(dir);
}

Test(hf_tokenizer, unsupported_components_are_named)
{
    const char *bpe = "\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}";
    char buf[1024];
    load_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "model \"Unigram\" is not supported");
    snprintf(buf, sizeof(buf), "{%s, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}", bpe);
    load_error(buf, "pre_tokenizer \"BertPreTokenizer\" is not supported");
    snprintf(buf, sizeof(buf), "{%s, \"normalizer\": {\"type\": \"BertNormalizer\"}}", bpe);
    load_error(buf, "normalizer \"BertNormalizer\" is not supported");
    snprintf(buf, sizeof(buf), "{%s, \"decoder\": {\"type\": \"WordPiece\"}}", bpe);
    load_error(buf, "decoder \"WordPiece\" is not supported");
    snprintf(buf, sizeof(buf), "{%s, \"post_processor\": {\"type\": \"Nope\"}}", bpe);
    load_error(buf, "post_processor \"Nope\" is not supported");
    snprintf(buf, sizeof(buf), "{%s, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}}}", bpe);
    load_error(buf, "bad regex");
    load_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a c\"]}}", "model.merges[0]");
    load_error("{\"model\": ", "bad JSON");
}

Test(hf_tokenizer, merges_as_pairs_and_prefixes)
{
    char *dir = make_tmpdir();
    write_text(dir, "tokenizer.json",
               "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"h\": 0, \"##e\": 1, \"##y\": 2, \"he\": 3, \"hey\": 4, "
               "\"[UNK]\": 5}, \"merges\": [[\"h\", \"##e\"], [\"he\", \"##y\"]], \"unk_token\": \"[UNK]\", "
               "\"continuing_subword_prefix\": \"##\"}, \"pre_tokenizer\": {\"type\": \"WhitespaceSplit\"}}");
    tokenizer *t = load(dir, TOK_AUTO);
    int32_t ids[8];
    int n = tok_encode(t, "hey he hx", 9, false, ids, 8);
    cr_assert_eq(n, 4);
    cr_assert_eq(ids[0], 4);
    cr_assert_eq(ids[1], 3);
    cr_assert_eq(ids[2], 0);
    cr_assert_eq(ids[3], 5); /* "##x" is not in the vocabulary */
    tok_free(t);
    rm_rf(dir);
    free(dir);
}
