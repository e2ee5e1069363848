/* fuzz_tokenizer_json.c: the tokenizer.json loader (tokenizer/hf_load.c)
 * and the pipeline it builds (normalizers, pre-tokenizers, BPE, added
 * tokens, post-processor, decoders).
 *
 * The input is a tokenizer.json text. Checked: it loads or gives one line
 * naming the file; once loaded, its own bytes (made valid UTF-8) and a fixed
 * text are encoded, with and without special tokens (a pattern from the
 * file may give up: PCRE2's match limit), every id the model or the added
 * tokens gave is known to the tokenizer, and the ids decode. */
#include "../../tokenizer/hf.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static void encode_decode(const struct hf *h, const char *text, size_t len)
{
    for (int special = 0; special < 2; special++) {
        struct ids ids = {0};
        if (hf_encode(h, text, len, special, &ids)) {
            free(ids.v);
            continue;
        }
        int first = special ? h->n_post_pre : 0, last = ids.n - (special ? h->n_post_post : 0);
        for (int i = first; i < last; i++)
            FUZZ_ASSERT(ids.v[i] >= 0 && ids.v[i] < h->n_ids && h->id_piece[ids.v[i]], "id %d unknown", ids.v[i]);
        struct strbuf out = {0};
        hf_decode(h, ids.v, ids.n, &out);
        strbuf_free(&out);
        free(ids.v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    struct hf *h = hf_load_text((const char *)data, size, "tokenizer.json", err, sizeof(err));
    if (!h) {
        FUZZ_ASSERT(!strncmp(err, "tokenizer.json: ", 16) && one_utf8_line(err), "error \"%s\"", err);
        return 0;
    }
    char *text = malloc(3 * size + 1);
    if (!text) abort();
    size_t n = utf8_sanitize(text, 3 * size + 1, (const char *)data, size);
    encode_decode(h, text, n);
    static const char fixed[] = "Hello  world\t\n123456 caf\xc3\xa9 \xe6\x97\xa5 <s> tool ab abc";
    encode_decode(h, fixed, sizeof(fixed) - 1);
    free(text);
    hf_free(h);
    return 0;
}
