/* test_tokenizer.c: our SentencePiece C API against the sentencepiece Python
 * package and transformers' LlamaTokenizer (ids recorded by
 * scripts/make_golden.py), the streaming detokenizer, and the bytes each
 * token adds to a text (tok_token_bytes, tok_vocab_bytes) on SentencePiece
 * and tokenizer.json decoders. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <ctype.h>
#include <stdlib.h>
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

/* ---- tok_token_bytes / tok_vocab_bytes ----
 *
 * What is compared, for a tokenizer t and its table vb:
 *  every id   tok_token_bytes(id) == vb's entry; -1 exactly for the ids the
 *             test names (control/special tokens, gaps) and outside the
 *             vocabulary, at least one byte for every other id; and
 *             tok_decode([a, id]) == tok_decode([a]) + bytes(id), a being a
 *             token that decodes to "a" (SentencePiece shows a lone byte
 *             piece >= 0x80 as U+FFFD: that is expected there instead);
 *  texts      for each line, each 16 KB chunk and the whole of
 *             tests/data/tokenizer_mix.txt, ids = tok_encode(text, no
 *             special tokens) and C = the ids' bytes concatenated:
 *             tok_decode(ids) == C, except that a tokenizer which strips the
 *             start of a text (strips_first) gives C without its first byte
 *             when that is a space. */

#define CORPUS "tests/data/tokenizer_mix.txt"

static char *decoded(const tokenizer *t, const int32_t *ids, int n, long *len)
{
    long need = tok_decode(t, ids, n, NULL, 0);
    need = need < 0 ? -need : need;
    char *out = malloc((size_t)need + 1);
    *len = tok_decode(t, ids, n, out, (size_t)need);
    cr_assert_eq(*len, need);
    return out;
}

static bool is_listed(int32_t id, const int32_t *none, int n_none)
{
    for (int i = 0; i < n_none; i++)
        if (none[i] == id) return true;
    return false;
}

static void check_every_id(const tokenizer *t, const struct tok_vocab_bytes *vb, const int32_t *none, int n_none,
                           const int32_t *empty, int n_empty, const char *name)
{
    cr_assert_eq(vb->n, tok_vocab_size(t));
    char one[2] = "x";
    cr_assert_eq(tok_token_bytes(t, -1, one, 1), -1);
    cr_assert_eq(tok_token_bytes(t, vb->n, one, 1), -1);
    int32_t a = tok_piece_to_id(t, "a");
    cr_assert_geq(a, 0, "%s: no token \"a\"", name);
    long alen;
    char *atext = decoded(t, &a, 1, &alen);
    cr_assert(alen == 1 && atext[0] == 'a', "%s: \"a\" decodes to \"%.*s\"", name, (int)alen, atext);
    free(atext);
    for (int32_t id = 0; id < vb->n; id++) {
        char buf[1024];
        long n = tok_token_bytes(t, id, buf, sizeof(buf));
        cr_assert_eq(n, vb->len[id], "%s: id %d: %ld vs the table's %d", name, id, n, vb->len[id]);
        cr_assert(n < (long)sizeof(buf));
        if (n > 0) cr_assert(!memcmp(buf, vb->data + vb->off[id], (size_t)n), "%s: id %d: bytes differ", name, id);
        if (is_listed(id, none, n_none)) {
            cr_assert_eq(n, -1, "%s: id %d (\"%s\") should give -1", name, id, tok_id_to_piece(t, id));
            continue;
        }
        bool empty_ok = is_listed(id, empty, n_empty);
        cr_assert(empty_ok ? n == 0 : n > 0, "%s: id %d (\"%s\") gives %ld", name, id, tok_id_to_piece(t, id), n);
        if (n > 1) { /* a short buffer: the count, and only cap bytes written */
            char two[3] = {0, 0, 0x55};
            cr_assert_eq(tok_token_bytes(t, id, two, 2), n);
            cr_assert(two[0] == buf[0] && two[1] == buf[1] && two[2] == 0x55);
        }
        int32_t pair[2] = {a, id};
        long plen;
        char *p = decoded(t, pair, 2, &plen);
        bool lone = n == 1 && (unsigned char)buf[0] >= 0x80 && tok_id_to_piece(t, id)[0] == '<';
        const char *want = lone && plen == 4 ? "\xEF\xBF\xBD" : buf;
        long wlen = lone && plen == 4 ? 3 : n;
        cr_assert(plen == 1 + wlen && p[0] == 'a' && !memcmp(p + 1, want, (size_t)wlen),
                  "%s: id %d (\"%s\"): decode([a, id]) = \"%.*s\", bytes \"%.*s\"", name, id, tok_id_to_piece(t, id),
                  (int)plen, p, (int)n, buf);
        free(p);
    }
}

struct concat_stats {
    int texts, stripped;
};

static void check_text(const tokenizer *t, const struct tok_vocab_bytes *vb, bool strips_first, const char *text,
                       size_t len, struct concat_stats *st, const char *name)
{
    int32_t *ids;
    int n = tok_encode_all(t, text, len, false, &ids);
    cr_assert_geq(n, 0);
    size_t clen = 0;
    for (int i = 0; i < n; i++) clen += vb->len[ids[i]] > 0 ? (size_t)vb->len[ids[i]] : 0;
    char *c = malloc(clen + 1);
    clen = 0;
    for (int i = 0; i < n; i++) {
        if (vb->len[ids[i]] <= 0) continue;
        memcpy(c + clen, vb->data + vb->off[ids[i]], (size_t)vb->len[ids[i]]);
        clen += (size_t)vb->len[ids[i]];
    }
    long dlen;
    char *d = decoded(t, ids, n, &dlen);
    size_t skip = strips_first && clen && c[0] == ' ' ? 1 : 0;
    st->texts++;
    st->stripped += (int)skip;
    cr_assert((size_t)dlen == clen - skip && !memcmp(d, c + skip, (size_t)dlen),
              "%s: text \"%.60s\"...: decode \"%.60s\"... (%ld bytes) vs the tokens' bytes \"%.60s\"... (%zu)",
              name, text, d, dlen, c + skip, clen - skip);
    free(c);
    free(d);
    free(ids);
}

/* check_text on every line, every 16 KB chunk (cut on a character
 * boundary) and the whole corpus. */
static struct concat_stats check_corpus(const tokenizer *t, bool strips_first, const char *name)
{
    struct tok_vocab_bytes vb;
    tok_vocab_bytes_init(&vb, t);
    size_t n;
    char *all = read_file(CORPUS, &n);
    cr_assert_not_null(all, CORPUS " is missing");
    struct concat_stats st = {0};
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(all + at, '\n', n - at);
        size_t end = nl ? (size_t)(nl - all) : n;
        check_text(t, &vb, strips_first, all + at, end - at, &st, name);
        at = end + 1;
    }
    for (size_t at = 0; at < n;) {
        size_t len = utf8_complete_prefix(all + at, n - at < 16384 ? n - at : 16384);
        check_text(t, &vb, strips_first, all + at, len, &st, name);
        at += len;
    }
    check_text(t, &vb, strips_first, all, n, &st, name);
    free(all);
    tok_vocab_bytes_deinit(&vb);
    return st;
}

/* none: the ids expected to give -1; empty: those expected to give 0 bytes. */
static void check_all(const tokenizer *t, const int32_t *none, int n_none, const int32_t *empty, int n_empty,
                      bool strips_first, const char *name)
{
    struct tok_vocab_bytes vb;
    tok_vocab_bytes_init(&vb, t);
    check_every_id(t, &vb, none, n_none, empty, n_empty, name);
    tok_vocab_bytes_deinit(&vb);
    struct concat_stats st = check_corpus(t, strips_first, name);
    cr_assert_gt(st.texts, 2500);
    if (strips_first) cr_assert_gt(st.stripped, 100, "%s: the start's space was stripped %d times", name, st.stripped);
}

Test(token_bytes, sentencepiece_stories260K)
{
    tokenizer *t = load_stories();
    int32_t none[] = {1, 2}; /* <s>, </s>: control; <unk> shows its surface */
    check_all(t, none, 2, NULL, 0, true, "stories260K tokenizer.model");
    char buf[64];
    cr_assert_eq(tok_token_bytes(t, tok_piece_to_id(t, "<0x41>"), buf, sizeof(buf)), 1);
    cr_assert_eq(buf[0], 'A');
    int32_t unk = 0;
    long ulen;
    char *u = decoded(t, &unk, 1, &ulen);
    cr_assert(tok_token_bytes(t, 0, buf, sizeof(buf)) == ulen && !memcmp(buf, u, (size_t)ulen));
    free(u);
    tok_free(t);
}

/* Writes dir/tokenizer.json: root (a JSON text) with model.vocab set to
 * vocab (consumed). */
static void write_tokenizer_json(const char *dir, const char *root, json_t *vocab)
{
    json_error_t je;
    json_t *j = json_loads(root, 0, &je);
    cr_assert_not_null(j, "%s", je.text);
    json_object_set_new(json_object_get(j, "model"), "vocab", vocab);
    char *text = json_dumps(j, 0);
    write_text(dir, "tokenizer.json", text);
    free(text);
    json_decref(j);
}

static tokenizer *load_json(const char *dir)
{
    char err[512];
    tokenizer *t;
    cr_assert_eq(tok_load_as(&t, dir, TOK_HF_JSON, err, sizeof(err)), 0, "%s", err);
    return t;
}

#define ADDED3 \
    "\"added_tokens\": [{\"id\": 0, \"content\": \"<unk>\", \"special\": true}, " \
    "{\"id\": 1, \"content\": \"<s>\", \"special\": true}, {\"id\": 2, \"content\": \"</s>\", \"special\": true}]"

/* stories260K's vocabulary as transformers converts it to tokenizer.json
 * (Llama 2's decoder: Replace, ByteFallback, Fuse, then Strip of the whole
 * text's first space), with no merges: its own encoding is by characters
 * and bytes, and it must also give the bytes of SentencePiece's ids. */
Test(token_bytes, llama2_tokenizer_json)
{
    tokenizer *sp = load_stories();
    json_t *vocab = json_object();
    for (int i = 0; i < tok_vocab_size(sp); i++) json_object_set_new(vocab, tok_id_to_piece(sp, i), json_integer(i));
    char *dir = make_tmpdir();
    write_tokenizer_json(dir,
        "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", "
        "\"prepend\": \"\\u2581\"}, {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, "
        "\"content\": \"\\u2581\"}]}, "
        "\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": "
        "\"\\u2581\"}, \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}, {\"type\": \"Strip\", "
        "\"content\": \" \", \"start\": 1, \"stop\": 0}]}, " ADDED3 ", "
        "\"model\": {\"type\": \"BPE\", \"merges\": [], \"byte_fallback\": true, \"unk_token\": \"<unk>\", "
        "\"fuse_unk\": true}}", vocab);
    tokenizer *t = load_json(dir);
    int32_t none[] = {0, 1, 2};
    check_all(t, none, 3, NULL, 0, true, "stories260K as tokenizer.json");
    struct tok_vocab_bytes a, b;
    tok_vocab_bytes_init(&a, sp);
    tok_vocab_bytes_init(&b, t);
    cr_assert_eq(a.n, b.n);
    for (int i = 3; i < a.n; i++) /* the same bytes as SentencePiece's, but for <unk> (special here) */
        cr_assert(a.len[i] == b.len[i] && !memcmp(a.data + a.off[i], b.data + b.off[i], (size_t)a.len[i]),
                  "id %d differs", i);
    tok_vocab_bytes_deinit(&a);
    tok_vocab_bytes_deinit(&b);
    /* SentencePiece's ids decoded by the tokenizer.json */
    const char *text = " Once upon a time,\tthere was 日本 \xF0\x9F\x98\x80!";
    int32_t *ids;
    int n = tok_encode_all(sp, text, strlen(text), false, &ids);
    struct tok_vocab_bytes vb;
    tok_vocab_bytes_init(&vb, t);
    char *c = malloc(4096);
    size_t clen = 0;
    for (int i = 0; i < n; i++) {
        memcpy(c + clen, vb.data + vb.off[ids[i]], (size_t)vb.len[ids[i]]);
        clen += (size_t)vb.len[ids[i]];
    }
    long dlen;
    char *d = decoded(t, ids, n, &dlen);
    cr_assert(c[0] == ' ' && (size_t)dlen == clen - 1 && !memcmp(d, c + 1, clen - 1));
    cr_assert(!memcmp(d, "Once upon a time,\tthere was 日本 \xF0\x9F\x98\x80!", (size_t)dlen));
    free(c);
    free(d);
    free(ids);
    tok_vocab_bytes_deinit(&vb);
    tok_free(t);
    tok_free(sp);
    rm_rf(dir);
    free(dir);
}

Test(token_bytes, byte_level_bpe_small)
{
    tokenizer *t = load_json("tests/data/bpe-small");
    /* the special added tokens of tests/data/bpe-small/tokenizer.json */
    json_error_t je;
    json_t *j = json_load_file("tests/data/bpe-small/tokenizer.json", 0, &je), *e;
    cr_assert_not_null(j, "%s", je.text);
    int32_t none[64];
    int n_none = 0;
    size_t i;
    json_array_foreach(json_object_get(j, "added_tokens"), i, e)
        if (json_is_true(json_object_get(e, "special")) && n_none < 64)
            none[n_none++] = (int32_t)json_integer_value(json_object_get(e, "id"));
    json_decref(j);
    for (int id = 0; id < tok_vocab_size(t); id++)
        if (!tok_id_to_piece(t, id) && n_none < 64) none[n_none++] = id; /* gaps */
    cr_assert_gt(n_none, 0);
    check_all(t, none, n_none, NULL, 0, false, "bpe-small");
    tok_free(t);
}

/* A Metaspace vocabulary: <unk> <s> </s>, the 256 byte tokens, ▁, ASCII
 * letters, and a few merges. */
static json_t *metaspace_vocab(void)
{
    json_t *v = json_object();
    int id = 0;
    const char *first[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++) json_object_set_new(v, first[i], json_integer(id++));
    for (int b = 0; b < 256; b++) {
        char piece[8];
        snprintf(piece, sizeof(piece), "<0x%02X>", b);
        json_object_set_new(v, piece, json_integer(id++));
    }
    json_object_set_new(v, "\xE2\x96\x81", json_integer(id++));
    for (int c = 'A'; c <= 'z'; c++) {
        char piece[2] = {(char)c, 0};
        if (isalpha(c)) json_object_set_new(v, piece, json_integer(id++));
    }
    const char *more[] = {"\xE2\x96\x81t", "he", "\xE2\x96\x81the", "\xE2\x96\x81""a"};
    for (int i = 0; i < 4; i++) json_object_set_new(v, more[i], json_integer(id++));
    return v;
}

#define METASPACE_MODEL \
    "\"model\": {\"type\": \"BPE\", \"merges\": [\"\\u2581 t\", \"h e\", \"\\u2581t he\", \"\\u2581 a\"], " \
    "\"byte_fallback\": true, \"unk_token\": \"<unk>\"}"

/* Metaspace decoders drop the replacement of decode's first token (prepend
 * "first" or "always"), never of a token in the middle; a Strip before the
 * tokens are joined applies to every token, so nothing is special at the
 * start (and "▁" or <0x20> gives no bytes at all); with no decoder, tokens are joined
 * by spaces, so each adds " " + itself. */
Test(token_bytes, metaspace_strip_and_no_decoder)
{
    static const struct {
        const char *name, *pre, *dec;
        bool strips_first;
    } cases[] = {
        {"metaspace first", "{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"first\"}",
         "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", "
         "\"prepend_scheme\": \"first\"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"}]}", true},
        {"metaspace always", "{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"always\", "
         "\"split\": true}", "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"ByteFallback\"}, {\"type\": "
         "\"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"always\"}]}", true},
        {"strip each token", "{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"never\"}",
         "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"}, "
         "\"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, "
         "\"stop\": 0}, {\"type\": \"Fuse\"}]}", false},
        {"no decoder", "{\"type\": \"Metaspace\", \"replacement\": \"\\u2581\", \"prepend_scheme\": \"never\"}", "null",
         true},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        char *dir = make_tmpdir(), root[2048];
        snprintf(root, sizeof(root), "{\"pre_tokenizer\": %s, \"decoder\": %s, " ADDED3 ", " METASPACE_MODEL "}",
                 cases[k].pre, cases[k].dec);
        write_tokenizer_json(dir, root, metaspace_vocab());
        tokenizer *t = load_json(dir);
        int32_t none[] = {0, 1, 2};
        char buf[64];
        long n = tok_token_bytes(t, tok_piece_to_id(t, "\xE2\x96\x81the"), buf, sizeof(buf));
        const char *want = k == 2 ? "the" : k == 3 ? " \xE2\x96\x81the" : " the";
        cr_assert(n == (long)strlen(want) && !memcmp(buf, want, (size_t)n), "%s: \"%.*s\"", cases[k].name, (int)n, buf);
        /* "▁" and <0x20> alone are a space that each token's Strip takes away */
        int32_t empty[] = {tok_piece_to_id(t, "\xE2\x96\x81"), tok_piece_to_id(t, "<0x20>")};
        check_all(t, none, 3, empty, k == 2 ? 2 : 0, cases[k].strips_first, cases[k].name);
        tok_free(t);
        rm_rf(dir);
        free(dir);
    }
}
