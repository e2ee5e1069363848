/* fuzz_json_schema.c: the grammar compiler (engine/grammar) on hostile
 * schemas, regexes and choice lists, then its matcher on hostile output.
 *
 * Input: a mode byte (% 4: JSON Schema, regex, choice, JSON object; bit 2:
 * compact whitespace; bit 3: a repeat with prefix and suffix), the spec
 * text up to a 0 byte, then pieces of output, each a length byte (% 8) and
 * its bytes, to the end. A spec that does not compile must leave a message.
 * Each piece is fed with gm_accept_bytes; a refused one must leave the
 * state as it was (same gm_can_end, and the same mask). For the first few
 * pieces the mask over a small vocabulary (every byte, tokens that cross
 * JSON structure, a control token, an EOS) must equal a brute force: each
 * token tried on a copy of the matcher. */
#include "../../engine/grammar/grammar.h"
#include "fuzz.h"

static const char *const TOKS[] = {"{\"", "\"}", "\",", "\":", "[{", "}]", "12", "-0", "true", "null", "\xc3\xa9",
                                   "\xe2\x82", "\\u00", "\\\"", "  ", "\n", "ab", "0.5e", "<a>", "</a>"};
#define N_TOKS ((int)(sizeof(TOKS) / sizeof(*TOKS)))
#define N_VOCAB (256 + N_TOKS + 2)

static struct grammar_vocab *vocab;
static uint8_t single[256];
static uint32_t a[N_VOCAB / 32 + 1], b[N_VOCAB / 32 + 1];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const uint8_t *bytes[N_VOCAB];
    uint32_t lens[N_VOCAB];
    for (int i = 0; i < 256; i++) single[i] = (uint8_t)i, bytes[i] = &single[i], lens[i] = 1;
    for (int i = 0; i < N_TOKS; i++) bytes[256 + i] = (const uint8_t *)TOKS[i], lens[256 + i] = (uint32_t)strlen(TOKS[i]);
    bytes[256 + N_TOKS] = (const uint8_t *)"", lens[256 + N_TOKS] = 0;
    bytes[257 + N_TOKS] = (const uint8_t *)"</s>", lens[257 + N_TOKS] = 4;
    int32_t eos = 257 + N_TOKS;
    vocab = grammar_vocab_new(N_VOCAB, bytes, lens, &eos, 1);
    return 0;
}

static void check_mask(struct grammar_matcher *m)
{
    gm_fill_mask(m, vocab, a);
    for (int t = 0; t < N_VOCAB; t++) {
        struct grammar_matcher *c = gm_clone(m);
        bool want = gm_accept_token(c, vocab, t), got = a[t >> 5] >> (t & 31) & 1;
        FUZZ_ASSERT(want == got, "token %d: mask %d, brute force %d", t, got, want);
        gm_free(c);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct carve c = {data, size};
    uint8_t mode = carve_u8(&c);
    char *text = carve_cstr(&c);
    static const enum grammar_kind kinds[] = {GRAMMAR_JSON_SCHEMA, GRAMMAR_REGEX, GRAMMAR_CHOICE, GRAMMAR_JSON_OBJECT};
    struct grammar_spec spec = grammar_spec_default(kinds[mode & 3], text);
    if (mode & 4) spec.max_ws = 0;
    if (mode & 8) spec.prefix = "<a>", spec.suffix = "</a>", spec.repeat = true, spec.separator = ",", spec.max_repeat = 3;
    spec.cache_bytes = (mode & 16) ? 100 : 0;
    char err[256];
    grammar *g = grammar_compile(&spec, err, sizeof(err));
    if (!g) {
        FUZZ_ASSERT(err[0], "no error message");
        free(text);
        return 0;
    }
    struct grammar_matcher *m = gm_new(g);
    int checks = 0;
    while (c.n) {
        size_t n;
        const uint8_t *p = carve_bytes(&c, carve_u8(&c) % 8, &n);
        if (checks < 3) check_mask(m), checks++;
        bool end0 = gm_can_end(m);
        if (!gm_accept_bytes(m, p, n)) {
            FUZZ_ASSERT(gm_can_end(m) == end0, "a refused piece changed the state");
            gm_fill_mask(m, vocab, b);
            gm_fill_mask(m, vocab, a);
            FUZZ_ASSERT(!memcmp(a, b, sizeof(a)), "masks differ");
        }
        if (gm_must_end(m)) FUZZ_ASSERT(gm_can_end(m), "must end but cannot");
    }
    if (gm_can_end(m)) FUZZ_ASSERT(gm_accept_token(m, vocab, 257 + N_TOKS), "EOS refused where the grammar can end");
    gm_free(m);
    grammar_free(g);
    free(text);
    return 0;
}
