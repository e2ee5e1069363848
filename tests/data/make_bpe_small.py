#!/usr/bin/env python3
"""Writes tests/data/bpe-small/: a small byte-level BPE tokenizer.json (Qwen2's
pre-tokenizer regex, NFC, ByteLevel decoder, special and plain added tokens
with lstrip/rstrip/single_word) trained with the `tokenizers` package on
tests/data/tokenizer_corpus.txt, and expected.json: the package's ids and
decodes of test strings. The unit tests and the fuzzer load it.
  .venv/bin/python tests/data/make_bpe_small.py"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"
         r"|\s+(?!\S)|\s+")
STRINGS = ["Hello world", "  two  spaces", "tabs\t\tnew\nlines\r\n", "1234567890", "I'M you're",
           "日本語のテキスト", "Привет мир", "👩‍👩‍👧‍👦 👍🏽", "<|im_start|>user\nhi<|im_end|>\n",
           "e\u0301 caf\u00e9", "", " ", "say  <tool>  now", "x<tool>y", "a <tool> b", "<think>deep</think>"]


def main():
    lines = open(os.path.join(HERE, "tokenizer_corpus.txt"), encoding="utf-8").read().split("\n")
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.train_from_iterator(lines, trainer)
    tok.add_tokens([AddedToken("<tool>", single_word=True, lstrip=True, rstrip=True, normalized=False),
                    AddedToken("<think>", normalized=True), AddedToken("</think>", normalized=True)])
    out = os.path.join(HERE, "bpe-small")
    os.makedirs(out, exist_ok=True)
    tok.save(os.path.join(out, "tokenizer.json"))
    expected = []
    for s in STRINGS:
        ids = tok.encode(s, add_special_tokens=False).ids
        expected.append({"text": s, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
    with open(os.path.join(out, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
