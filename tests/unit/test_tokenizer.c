/* test_tokenizer.c: our SentencePiece C API against the sentencepiece Python
 * package and transformers' LlamaTokenizer (ids recorded by
 * scripts/make_golden.py), and the streaming detokenizer. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "../../tokenizer/tokenizer.h"
#include "test_util.h"

static tokenizer *load_stories(void)
{
    char err[512];
    tokenizer *t;
    cr_assert_eq(tok_load(&t, stories260k_dir(), err, sizeof(err)), 0, "%s", err);
    return t;
}

static json_t *cases(void)
{
    json_error_t je;
    json_t *j = json_load_file("tests/data/stories260K_tokenizer.json", 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    return j;
}

static int ids_of(json_t *arr, int32_t *out)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) out[i] = (int32_t)json_integer_value(v);
    return (int)json_array_size(arr);
}

Test(tokenizer, special_ids_and_pieces)
{
    tokenizer *t = load_stories();
    cr_assert_eq(tok_vocab_size(t), 512);
    cr_assert_eq(tok_bos_id(t), 1);
    cr_assert_eq(tok_eos_id(t), 2);
    cr_assert_eq(tok_unk_id(t), 0);
    cr_assert(tok_add_bos(t));
    cr_assert_str_eq(tok_id_to_piece(t, 1), "<s>");
    cr_assert_eq(tok_piece_to_id(t, "</s>"), 2);
    cr_assert_eq(tok_piece_to_id(t, "<0x41>"), 3 + 0x41);
    cr_assert_eq(tok_piece_to_id(t, "no such piece"), -1);
    cr_assert_null(tok_id_to_piece(t, 512));
    tok_free(t);
}

Test(tokenizer, encode_matches_sentencepiece_and_transformers)
{
    tokenizer *t = load_stories();
    json_t *j = cases();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "cases"), i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        int32_t want[4096], got[4096];
        int n = ids_of(json_object_get(c, "ids"), want);
        int m = tok_encode(t, text, strlen(text), false, got, 4096);
        cr_assert_eq(m, n, "line %zu \"%s\": %d ids, want %d", i, text, m, n);
        cr_assert(!memcmp(got, want, n * sizeof(int32_t)), "line %zu \"%s\": ids differ", i, text);
        n = ids_of(json_object_get(c, "hf_ids"), want);
        m = tok_encode(t, text, strlen(text), true, got, 4096);
        cr_assert(m == n && !memcmp(got, want, n * sizeof(int32_t)), "line %zu: ids with BOS differ", i);
        /* a short buffer reports the size it needs */
        if (n > 1) cr_assert_eq(tok_encode(t, text, strlen(text), true, got, 1), -n);
        /* decode gives sentencepiece's text */
        const char *dec = json_string_value(json_object_get(c, "decoded"));
        char buf[16384];
        long len = tok_decode(t, got, m, buf, sizeof(buf));
        cr_assert(len == (long)strlen(dec) && !memcmp(buf, dec, len), "line %zu: decode differs", i);
    }
    json_decref(j);
    tok_free(t);
}

/* Streams each line's ids one at a time: the pieces concatenate to the full
 * decode, and no piece is held across a complete character longer than needed
 * or ends inside one. */
Test(tokenizer, streaming_detokenizer_is_utf8_safe)
{
    tokenizer *t = load_stories();
    json_t *j = cases();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(j, "cases"), i, c) {
        int32_t ids[4096];
        int n = ids_of(json_object_get(c, "ids"), ids);
        const char *want = json_string_value(json_object_get(c, "decoded"));
        /* the context is a BOS and the first id, the stream the rest */
        int32_t ctx[2] = {1, n ? ids[0] : 1};
        char full[16384];
        long flen = tok_decode(t, ctx, n ? 2 : 1, full, sizeof(full));
        struct detok d;
        detok_init(&d, t, ctx, n ? 2 : 1);
        for (int k = 1; k < n; k++) {
            const char *piece;
            long len = detok_push(&d, ids[k], &piece);
            cr_assert_eq(utf8_complete_prefix(piece, (size_t)len), (size_t)len, "line %zu: piece ends mid-character", i);
            memcpy(full + flen, piece, len);
            flen += len;
        }
        const char *rest;
        long len = detok_flush(&d, &rest);
        memcpy(full + flen, rest, len);
        flen += len;
        detok_deinit(&d);
        cr_assert(flen == (long)strlen(want) && !memcmp(full, want, flen), "line %zu: \"%.*s\" vs \"%s\"", i,
                  (int)flen, full, want);
    }
    json_decref(j);
    tok_free(t);
}

/* A model that emits only invalid lone bytes (<0xFF>, each decoding to
 * U+FFFD) or whitespace pieces: the detokenizer may hold text back for a few
 * tokens, never for the whole stream (each push would decode a window that
 * grows with it: quadratic work on the server's loop). */
Test(tokenizer, streaming_detokenizer_holds_back_a_bounded_window)
{
    tokenizer *t = load_stories();
    int32_t bos = 1, ff = tok_piece_to_id(t, "<0xFF>"), space = tok_piece_to_id(t, "\xE2\x96\x81");
    cr_assert(ff > 0 && space > 0);
    for (int pass = 0; pass < 2; pass++) {
        int32_t id = pass ? space : ff;
        struct detok d;
        detok_init(&d, t, &bos, 1);
        long total = 0, last_emit = 0;
        for (int k = 1; k <= 4000; k++) {
            const char *piece;
            long len = detok_push(&d, id, &piece);
            if (len > 0) last_emit = k;
            total += len;
            if (!pass) cr_assert_leq(k - last_emit, 9, "%d tokens held back", k - last_emit);
            cr_assert_leq(d.n - d.prefix_off, 64, "pass %d: the decode window grew to %d tokens", pass,
                          d.n - d.prefix_off);
        }
        const char *rest;
        total += detok_flush(&d, &rest);
        /* 4000 U+FFFD; leading whitespace pieces decode to nothing, as in a whole decode */
        cr_assert_eq(total, pass ? 0 : 4000 * 3, "pass %d: %ld bytes", pass, total);
        detok_deinit(&d);
    }
    tok_free(t);
}

Test(tokenizer, utf8_complete_prefix)
{
    cr_assert_eq(utf8_complete_prefix("abc", 3), 3);
    cr_assert_eq(utf8_complete_prefix("a\xC3", 2), 1);         /* half of é */
    cr_assert_eq(utf8_complete_prefix("a\xC3\xA9", 3), 3);
    cr_assert_eq(utf8_complete_prefix("\xF0\x9F\x98", 3), 0);   /* 3 of 4 bytes */
    cr_assert_eq(utf8_complete_prefix("\xF0\x9F\x98\x80", 4), 4);
    cr_assert_eq(utf8_complete_prefix("", 0), 0);
}

Test(tokenizer, bad_folders_name_the_file)
{
    char err[512];
    tokenizer *t;
    char *dir = make_tmpdir();
    cr_assert_neq(tok_load(&t, dir, err, sizeof(err)), 0);
    cr_assert(strstr(err, "tokenizer.model") && strstr(err, "missing"), "%s", err);
    write_text(dir, "tokenizer.model", "garbage");
    cr_assert_neq(tok_load(&t, dir, err, sizeof(err)), 0);
    cr_assert(strstr(err, "not a SentencePiece model"), "%s", err);
    rm_rf(dir);
    free(dir);
}
