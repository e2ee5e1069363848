/* fuzz_tokenizer.c: the tokenizer C API and the streaming detokenizer
 * (tokenizer/) on the stories260K SentencePiece model and on
 * tests/data/bpe-small's tokenizer.json (byte-level BPE).
 *
 * The first byte b picks the tokenizer (tokenizer.json when b / 5 is odd)
 * and the mode (b % 5); the rest is the mode's input:
 *   0  encode the bytes as text (with and without BOS), then decode the ids
 *   1  decode random ids (4 bytes each, many outside the vocabulary)
 *   2  stream random ids through the detokenizer after a random context
 *   3  encode the bytes as text, then stream the ids through the detokenizer
 *   4  utf8_valid_prefix and utf8_sanitize on the bytes (a byte picks the
 *      output size), against fuzz.h's validator
 * Checked: the count contract of tok_encode/tok_decode (-(needed) when the
 * buffer is short, the same text for the same ids), ids inside the
 * vocabulary, out-of-range ids giving no text, detok_push pieces never
 * ending inside a UTF-8 character (tokenizer.h's promise) and every piece,
 * flush included, valid UTF-8 (SentencePiece's decode is, and the server
 * puts pieces in JSON), and, with no context, the streamed pieces adding up
 * to the decode of all the ids. tokenizer.json decodes bytes as they are
 * (the streamed pieces repair what is not UTF-8): its decode need not be
 * valid, and the pieces add up to the decode repaired. */
#include "fuzz.h"

static tokenizer *tok, *spm_tok, *hf_tok;
static int vocab;
static bool hf;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    spm_tok = fuzz_stories_tokenizer();
    char err[1024] = "";
    if (tok_load(&hf_tok, "tests/data/bpe-small", err, sizeof(err))) {
        fprintf(stderr, "fuzz: run from the repository's root: %s\n", err);
        exit(1);
    }
    return 0;
}

/* tok_decode into an exact-size malloc'd buffer (ASan catches overruns);
 * checks the short-buffer answers. */
static char *decode(const int32_t *ids, int n, long *len)
{
    char small[1];
    long need = tok_decode(tok, ids, n, small, 0);
    FUZZ_ASSERT(need <= 0, "decode with no room returned %ld", need);
    need = -need;
    if (need > 0) FUZZ_ASSERT(tok_decode(tok, ids, n, small, (size_t)need - 1) == -need, "short buffer");
    char *out = malloc(need ? (size_t)need : 1);
    if (!out) abort();
    long got = tok_decode(tok, ids, n, out, (size_t)need);
    FUZZ_ASSERT(got == need, "decode returned %ld, asked for %ld", got, need);
    FUZZ_ASSERT(hf || utf8_valid(out, (size_t)got), "decode gave invalid UTF-8");
    *len = got;
    return out;
}

/* tok_encode into an exact-size buffer; returns the ids (malloc'd). */
static int32_t *encode(const char *text, size_t len, bool bos, int *n)
{
    int32_t one;
    int need = tok_encode(tok, text, len, bos, &one, 0);
    FUZZ_ASSERT(need <= 0, "encode with no room returned %d", need);
    need = -need;
    int32_t *ids = malloc((need ? need : 1) * sizeof(int32_t));
    if (!ids) abort();
    if (need > 0) FUZZ_ASSERT(tok_encode(tok, text, len, bos, ids, need - 1) == -need, "short buffer");
    int got = tok_encode(tok, text, len, bos, ids, need);
    FUZZ_ASSERT(got == need, "encode returned %d, asked for %d", got, need);
    for (int i = 0; i < got; i++) FUZZ_ASSERT(ids[i] >= 0 && ids[i] < vocab, "id %d out of the vocabulary", ids[i]);
    if (bos && tok_bos_id(tok) >= 0) FUZZ_ASSERT(got >= 1 && ids[0] == tok_bos_id(tok), "no BOS first");
    *n = got;
    return ids;
}

/* Streams ids after context; with no context the pieces must add up to the
 * plain decode of ids. */
static void stream(const int32_t *context, int n_context, const int32_t *ids, int n)
{
    struct detok d;
    detok_init(&d, tok, context, n_context);
    size_t cap = 64, len = 0;
    char *all = malloc(cap);
    if (!all) abort();
    for (int i = 0; i <= n; i++) {
        const char *piece = NULL;
        long k = i < n ? detok_push(&d, ids[i], &piece) : detok_flush(&d, &piece);
        FUZZ_ASSERT(k >= 0 && piece, "detok returned %ld", k);
        if (i < n)
            FUZZ_ASSERT(utf8_complete_prefix(piece, (size_t)k) == (size_t)k,
                        "pushed piece %d (%ld bytes) ends inside a UTF-8 character", i, k);
        FUZZ_ASSERT(utf8_valid(piece, (size_t)k), "piece %d (%ld bytes) is not valid UTF-8", i, k);
        if (len + (size_t)k > cap) {
            cap = 2 * (len + (size_t)k);
            all = realloc(all, cap);
            if (!all) abort();
        }
        if (k) memcpy(all + len, piece, (size_t)k);
        len += (size_t)k;
    }
    if (n_context == 0) {
        long want_len;
        char *want = decode(ids, n, &want_len);
        if (hf) {
            char *fixed = malloc(3 * (size_t)want_len + 1);
            if (!fixed) abort();
            want_len = (long)utf8_sanitize(fixed, 3 * (size_t)want_len + 1, want, (size_t)want_len);
            free(want);
            want = fixed;
        }
        FUZZ_ASSERT((size_t)want_len == len && !memcmp(want, all, len),
                    "streamed %zu bytes differ from the decode's %ld", len, want_len);
        free(want);
    }
    detok_deinit(&d);
    free(all);
}

/* Ids from 4 bytes each: mostly inside the vocabulary, some just outside,
 * some anywhere in int32. */
static int32_t *random_ids(struct carve *c, int max, int *n)
{
    int32_t *ids = malloc((max ? max : 1) * sizeof(int32_t));
    if (!ids) abort();
    int k = 0;
    while (c->n && k < max) {
        uint32_t v = carve_u32(c);
        switch (v >> 30) {
        case 0:
        case 1: ids[k++] = (int32_t)(v % (uint32_t)vocab); break;
        case 2: ids[k++] = (int32_t)(v % (uint32_t)(vocab + 16)) - 8; break;
        default: ids[k++] = (int32_t)v; break;
        }
    }
    *n = k;
    return ids;
}

static void utf8_checks(struct carve *c)
{
    size_t cap = carve_u8(c);
    const char *s = (const char *)c->p;
    size_t n = c->n;
    size_t p = utf8_valid_prefix(s, n);
    FUZZ_ASSERT(p <= n && utf8_valid(s, p), "utf8_valid_prefix %zu of %zu is not valid", p, n);
    for (size_t k = 1; k <= 4 && p + k <= n; k++)
        FUZZ_ASSERT(!utf8_valid(s, p + k), "utf8_valid_prefix %zu, but %zu bytes are valid", p, p + k);
    for (int pass = 0; pass < 2; pass++) {
        size_t room = pass ? 3 * n + 1 : cap; /* 3 n + 1: room for everything */
        char *out = malloc(room ? room : 1);
        if (!out) abort();
        size_t w = utf8_sanitize(out, room, s, n);
        if (!room) {
            FUZZ_ASSERT(w == 0, "utf8_sanitize wrote %zu bytes into none", w);
        } else {
            FUZZ_ASSERT(w < room && out[w] == '\0' && utf8_valid(out, w), "utf8_sanitize: %zu bytes into %zu", w, room);
            if (p == n && n < room) FUZZ_ASSERT(w == n && !memcmp(out, s, n), "utf8_sanitize changed valid text");
            if (pass) FUZZ_ASSERT(w >= n, "utf8_sanitize cut a text with room for it");
        }
        free(out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct carve c = {data, size};
    uint8_t b = carve_u8(&c), mode = b % 5;
    hf = (b / 5) % 2;
    tok = hf ? hf_tok : spm_tok;
    vocab = tok_vocab_size(tok);
    if (mode == 4) {
        utf8_checks(&c);
        return 0;
    }
    if (mode == 0 || mode == 3) {
        const char *text = (const char *)c.p;
        int n;
        int32_t *ids = encode(text, c.n, mode == 0, &n);
        if (mode == 0) {
            long len;
            char *back = decode(ids, n, &len);
            free(back);
        } else {
            stream(NULL, 0, ids, n);
        }
        free(ids);
    } else if (mode == 1) {
        int n;
        int32_t *ids = random_ids(&c, 1 << 16, &n);
        long len;
        char *text = decode(ids, n, &len);
        /* ids outside the vocabulary give no text */
        int m = 0;
        for (int i = 0; i < n; i++)
            if (ids[i] >= 0 && ids[i] < vocab) ids[m++] = ids[i];
        long len2;
        char *text2 = decode(ids, m, &len2);
        FUZZ_ASSERT(len == len2 && !memcmp(text, text2, (size_t)len), "out-of-range ids changed the text");
        free(text);
        free(text2);
        free(ids);
    } else {
        int n_context = carve_u8(&c) % 8, got;
        int32_t *context = random_ids(&c, n_context, &got);
        int n;
        int32_t *ids = random_ids(&c, 1 << 16, &n);
        stream(got ? context : NULL, got, ids, n);
        free(context);
        free(ids);
    }
    return 0;
}
