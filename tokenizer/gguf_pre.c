/* gguf_pre.c: the normalizer and pre-tokenizer of a byte-level (gpt2)
 * GGUF vocabulary, chosen by its tokenizer.ggml.pre as llama.cpp chooses
 * its regexes (llama-vocab.cpp's pre-type table), spelled as the family's
 * Hugging Face tokenizer.json spells them (the .out files of llama.cpp's
 * vocabulary tests are Hugging Face's ids; scripts/make_tokenizers.py
 * checks these recipes against them). A name not in the table is refused:
 * a wrong split gives plausible but wrong ids. */
#include <string.h>

#include "gguf_vocab.h"

#define LLAMA3_PAT                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"                        \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_PAT                                                                                   \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"                             \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen3.5: letters with their combining marks (\p{M}) */
#define QWEN35_PAT                                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}"                     \
    "| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Mistral's Tekken and GPT-4o / Llama 4, as transformers' GGUF conversion
 * spells them */
#define TEKKEN_PAT                                                                                  \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"      \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"     \
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define GPT4O_PAT                                                                                   \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"      \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"                                                                 \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"                                                                 \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* DeepSeek LLM's splits, in order (llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM
 * lists the same). The escaped characters are those NFC would replace: an
 * editor that normalizes would empty their ranges. */
static const char *const DEEPSEEK_SPLITS[] = {
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ"
    "-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1F7Dᾀ-ᾴᾶ-ᾼ\u1FBEῂ-ῄῆ-ῌῐ-\u1FD3ῖ-\u1FDBῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212A-ℭℯ-ℴ"
    "ℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
};

enum family { F_LLAMA3, F_DBRX, F_QWEN2, F_QWEN35, F_GPT2, F_DEEPSEEK, F_COMMAND_R, F_TEKKEN, F_GPT4O };

/* llama.cpp's names for each family (dbrx and smaug-bpe: Llama 3's splits
 * without its ignore_merges) */
static const struct {
    const char *name;
    enum family f;
} PRE[] = {
    {"llama3", F_LLAMA3},       {"llama-v3", F_LLAMA3},  {"llama-bpe", F_LLAMA3},   {"falcon3", F_LLAMA3},
    {"falcon-h1", F_LLAMA3},    {"pixtral", F_LLAMA3},   {"midm-2.0", F_LLAMA3},    {"lfm2", F_LLAMA3},
    {"jina-v5-nano", F_LLAMA3}, {"dbrx", F_DBRX},        {"smaug-bpe", F_DBRX},
    {"qwen2", F_QWEN2},         {"deepseek-r1-qwen", F_QWEN2}, {"kormo", F_QWEN2}, {"f2llmv2", F_QWEN2},
    {"megrez", F_QWEN2},        {"qwen35", F_QWEN35},
    {"gpt-2", F_GPT2},          {"phi-2", F_GPT2},       {"jina-es", F_GPT2},       {"jina-de", F_GPT2},
    {"gigachat", F_GPT2},       {"jina-v2-es", F_GPT2},  {"jina-v2-de", F_GPT2},    {"a.x-4.0", F_GPT2},
    {"mellum", F_GPT2},         {"modern-bert", F_GPT2}, {"exaone4", F_GPT2},
    {"default", F_GPT2}, /* no or a default pre-tokenizer: GPT-2's ByteLevel, as transformers reads it */
    {"deepseek-llm", F_DEEPSEEK}, {"command-r", F_COMMAND_R}, {"tekken", F_TEKKEN},
    {"gpt-4o", F_GPT4O},        {"llama4", F_GPT4O},     {"kanana2", F_GPT4O},      {"talkie", F_GPT4O},
};

static json_t *split(const char *re)
{
    return json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", re, "behavior", "Isolated",
                     "invert", 0);
}

static json_t *bytelevel(bool use_regex)
{
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                     "use_regex", use_regex);
}

static json_t *sequence(json_t *a, json_t *b)
{
    return json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers", a, b);
}

static json_t *deepseek(void)
{
    json_t *list = json_array();
    for (size_t i = 0; i < sizeof(DEEPSEEK_SPLITS) / sizeof(DEEPSEEK_SPLITS[0]); i++)
        json_array_append_new(list, split(DEEPSEEK_SPLITS[i]));
    json_array_append_new(list, bytelevel(false));
    return json_pack("{s:s, s:o}", "type", "Sequence", "pretokenizers", list);
}

static json_t *pre_tokenizer(enum family f)
{
    switch (f) {
    case F_LLAMA3:
    case F_DBRX: return sequence(split(LLAMA3_PAT), bytelevel(false));
    case F_QWEN2: return sequence(split(QWEN2_PAT), bytelevel(false));
    case F_QWEN35: return sequence(split(QWEN35_PAT), bytelevel(false));
    case F_TEKKEN: return sequence(split(TEKKEN_PAT), bytelevel(false));
    case F_GPT4O: return sequence(split(GPT4O_PAT), bytelevel(false));
    case F_GPT2: return bytelevel(true);
    case F_DEEPSEEK: return deepseek();
    case F_COMMAND_R:
        return sequence(json_pack("{s:s, s:b}", "type", "Digits", "individual_digits", 1), bytelevel(true));
    }
    return NULL;
}

int gguf_pre_family(const char *pre, size_t len, json_t *root, struct gguf_family *out)
{
    size_t i = 0, n = sizeof(PRE) / sizeof(PRE[0]);
    while (i < n && (strlen(PRE[i].name) != len || memcmp(PRE[i].name, pre, len))) i++;
    if (i == n) return -1;
    enum family f = PRE[i].f;
    json_object_set_new(root, "pre_tokenizer", pre_tokenizer(f));
    if (f == F_QWEN2 || f == F_COMMAND_R) /* their tokenizer.json's NFC; Qwen3.5 has none */
        json_object_set_new(root, "normalizer", json_pack("{s:s}", "type", "NFC"));
    if (f == F_DEEPSEEK) /* an empty Sequence: added tokens then match the normalized text */
        json_object_set_new(root, "normalizer", json_pack("{s:s, s:[]}", "type", "Sequence", "normalizers"));
    out->ignore_merges = f == F_LLAMA3 || f == F_TEKKEN;
    out->add_bos = f == F_LLAMA3 || f == F_TEKKEN;
    out->added_normalized = f == F_DEEPSEEK;
    return 0;
}
