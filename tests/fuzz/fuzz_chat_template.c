/* fuzz_chat_template.c: chat template detection and rendering
 * (server/chat_template.c) with the stories260K tokenizer.
 *
 * Input: a template string (up to the first 0 byte) for chat_style_detect,
 * then messages, each a role byte (% 3: system, user, assistant) and its
 * content up to the next 0 byte. Every style renders the messages; the ids
 * must lie in the vocabulary, start with BOS where the style puts one
 * first, and rendering again must give the same ids. */
#include "../../server/chat_template.h"
#include "fuzz.h"

#define MAX_MSGS 16

static tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tok = fuzz_stories_tokenizer();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *roles[] = {"system", "user", "assistant"};
    struct carve c = {data, size};
    char *jinja = carve_cstr(&c);
    enum chat_style detected = chat_style_detect(jinja);
    FUZZ_ASSERT(detected >= CHAT_DEFAULT && detected <= CHAT_LLAMA3, "style %d", (int)detected);
    FUZZ_ASSERT(chat_style_name(detected) != NULL, "no name");
    free(jinja);

    struct chat_msg m[MAX_MSGS];
    char *contents[MAX_MSGS];
    int n = 0;
    while (c.n && n < MAX_MSGS) {
        m[n].role = roles[carve_u8(&c) % 3];
        contents[n] = carve_cstr(&c);
        m[n].content = contents[n];
        n++;
    }
    int vocab = tok_vocab_size(tok);
    for (int s = CHAT_DEFAULT; s <= CHAT_LLAMA3; s++) {
        int32_t *ids = NULL, *again = NULL;
        int k = chat_render((enum chat_style)s, m, n, tok, &ids);
        FUZZ_ASSERT(k >= 0 && ids, "%s: returned %d", chat_style_name((enum chat_style)s), k);
        for (int i = 0; i < k; i++)
            FUZZ_ASSERT(ids[i] >= 0 && ids[i] < vocab, "%s: id %d", chat_style_name((enum chat_style)s), ids[i]);
        bool bos_first = s == CHAT_DEFAULT || s == CHAT_MISTRAL ||
                         (s == CHAT_LLAMA2 && n && (strcmp(m[0].role, "system") || n > 1) &&
                          !strcmp(m[(!strcmp(m[0].role, "system"))].role, "user"));
        if (bos_first && tok_bos_id(tok) >= 0)
            FUZZ_ASSERT(k >= 1 && ids[0] == tok_bos_id(tok), "%s: no BOS first", chat_style_name((enum chat_style)s));
        FUZZ_ASSERT(k > 0 || s == CHAT_LLAMA2 || s == CHAT_MISTRAL, "%s: nothing rendered",
                    chat_style_name((enum chat_style)s));
        if (s == (int)(size % 6)) { /* (one style a run: each render costs several encodes) */
            int k2 = chat_render((enum chat_style)s, m, n, tok, &again);
            FUZZ_ASSERT(k2 == k && !memcmp(ids, again, (size_t)k * sizeof(int32_t)), "%s: not deterministic",
                        chat_style_name((enum chat_style)s));
            free(again);
        }
        free(ids);
    }
    for (int i = 0; i < n; i++) free(contents[i]);
    return 0;
}
