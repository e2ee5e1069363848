/* test_gguf_vocab.c: the GGUF tokenizer (tokenizer/gguf_vocab.c) through
 * the C API on the small files of tests/data/gguf-vocab
 * (tests/data/make_gguf_vocab.py): a SentencePiece vocabulary against the
 * sentencepiece package, a byte-level one against the `tokenizers` package,
 * the settings GGUF keys carry (special ids, add_bos/add_eos, chat
 * templates), which file tok_load picks, and one-line errors. The real
 * vocabularies of llama.cpp's tests are tests/tokenizer/test_gguf_vocab.py. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../tokenizer/tokenizer.h"
#include "test_util.h"

#define DIR "tests/data/gguf-vocab"

static tokenizer *load(const char *path)
{
    char err[512];
    tokenizer *t = NULL;
    cr_assert_eq(tok_load(&t, path, err, sizeof(err)), 0, "%s", err);
    return t;
}

static json_t *expected(const char *kind)
{
    json_error_t je;
    json_t *all = json_load_file(DIR "/expected.json", 0, &je);
    cr_assert_not_null(all, "%s", je.text);
    json_t *e = json_incref(json_object_get(all, kind));
    json_decref(all);
    cr_assert_not_null(e);
    return e;
}

static void check_cases(const tokenizer *t, json_t *cases)
{
    size_t i;
    json_t *c;
    json_array_foreach(cases, i, c) {
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *want = json_object_get(c, "ids");
        int32_t *ids;
        int n = tok_encode_all(t, text, strlen(text), false, &ids);
        cr_assert_eq(n, (int)json_array_size(want), "%s: %d ids, want %zu", text, n, json_array_size(want));
        for (int k = 0; k < n; k++)
            cr_assert_eq(ids[k], json_integer_value(json_array_get(want, (size_t)k)), "%s: id %d", text, k);
        char out[512];
        long len = tok_decode(t, ids, n, out, sizeof(out) - 1);
        cr_assert(len >= 0);
        out[len] = 0;
        cr_assert_str_eq(out, json_string_value(json_object_get(c, "decoded")), "%s", text);
        free(ids);
    }
}

static void check_ids(const tokenizer *t, json_t *e)
{
    cr_assert_eq(tok_vocab_size(t), json_integer_value(json_object_get(e, "vocab")));
    cr_assert_eq(tok_bos_id(t), json_integer_value(json_object_get(e, "bos")));
    cr_assert_eq(tok_eos_id(t), json_integer_value(json_object_get(e, "eos")));
    cr_assert_eq(tok_unk_id(t), json_integer_value(json_object_get(e, "unk")));
}

Test(gguf_vocab, sentencepiece_matches_the_sentencepiece_package)
{
    tokenizer *t = load(DIR "/spm.gguf");
    json_t *e = expected("spm");
    check_cases(t, json_object_get(e, "cases"));
    check_ids(t, e);
    /* add_bos_token and add_eos_token are both set */
    cr_assert(tok_add_bos(t));
    int32_t ids[64];
    int n = tok_encode(t, "Hello", 5, true, ids, 64);
    cr_assert(n >= 3);
    cr_assert_eq(ids[0], tok_bos_id(t));
    cr_assert_eq(ids[n - 1], tok_eos_id(t));
    /* llama.cpp matches control tokens whole in the text, and the text after
     * one gets its space prefix again */
    int32_t x[16], y[16];
    int nx = tok_encode(t, "x", 1, false, x, 16), ny = tok_encode(t, "y", 1, false, y, 16);
    n = tok_encode(t, "x<s>y", 5, false, ids, 64);
    cr_assert_eq(n, nx + 1 + ny);
    cr_assert_eq(ids[nx], tok_bos_id(t));
    cr_assert_eq(ids[nx + 1], y[0]);
    json_decref(e);
    tok_free(t);
}

Test(gguf_vocab, byte_level_matches_the_tokenizers_package)
{
    tokenizer *t = load(DIR "/bpe.gguf");
    json_t *e = expected("bpe");
    check_cases(t, json_object_get(e, "cases"));
    check_ids(t, e);
    cr_assert_not(tok_add_bos(t)); /* no add_bos_token: qwen2's default */
    cr_assert_eq(tok_piece_to_id(t, "<|im_end|>"), 2);
    cr_assert_null(tok_chat_template(t, false));
    /* a control token gives no text; a user-defined one does */
    char out[16];
    cr_assert_eq(tok_token_bytes(t, 2, out, sizeof(out)), -1);
    int think = tok_piece_to_id(t, "<think>");
    cr_assert(think > 0);
    cr_assert_eq(tok_token_bytes(t, think, out, sizeof(out)), 7);
    json_decref(e);
    tok_free(t);
}

Test(gguf_vocab, chat_templates)
{
    tokenizer *t = load(DIR "/spm.gguf");
    json_t *all = json_load_file(DIR "/expected.json", 0, NULL);
    cr_assert_str_eq(tok_chat_template(t, false), json_string_value(json_object_get(all, "template")));
    cr_assert_str_eq(tok_chat_template(t, true), json_string_value(json_object_get(all, "tool_template")));
    json_decref(all);
    tok_free(t);
}

Test(gguf_vocab, folder_with_one_gguf)
{
    char *dir = make_tmpdir(), path[512];
    size_t n;
    void *data = read_file(DIR "/bpe.gguf", &n);
    cr_assert_not_null(data);
    write_file(dir, "model.gguf", data, n);
    tokenizer *t = load(dir);
    cr_assert_eq(tok_piece_to_id(t, "<|im_end|>"), 2);
    tok_free(t);
    /* tokenizer.json beside it wins, as for any folder */
    write_text(dir, "tokenizer.json", "{}");
    char err[512];
    cr_assert_neq(tok_load(&t, dir, err, sizeof(err)), 0);
    cr_assert(strstr(err, "tokenizer.json"), "%s", err);
    snprintf(path, sizeof(path), "%s/model.gguf", dir);
    t = load(path);
    tok_free(t);
    free(data);
    rm_rf(dir);
}

Test(gguf_vocab, one_line_errors)
{
    char err[512];
    tokenizer *t = NULL;
    cr_assert_neq(tok_load(&t, DIR "/rwkv.gguf", err, sizeof(err)), 0);
    cr_assert_str_eq(err, DIR "/rwkv.gguf: tokenizer.ggml.model \"rwkv\" is not supported (llama and gpt2 are)");
    cr_assert_neq(tok_load(&t, DIR, err, sizeof(err)), 0); /* three .gguf files */
    cr_assert(strstr(err, "3 .gguf files"), "%s", err);
    cr_assert_neq(tok_load_as(&t, DIR "/expected.json", TOK_GGUF, err, sizeof(err)), 0);
    cr_assert(strstr(err, DIR "/expected.json") && !strchr(err, '\n'), "%s", err);
    cr_assert_null(t);
}
