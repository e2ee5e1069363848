#!/usr/bin/env python3
"""Writes tests/data/gguf-vocab/: small vocabulary-only GGUF files for the GGUF tokenizer's unit tests
(tests/unit/test_gguf_vocab.c), with the `gguf` package's GGUFWriter and the keys llama.cpp's
convert_hf_to_gguf.py writes, and expected.json: the reference ids and decodes of test strings.

  spm.gguf   ../shared/models/stories260K's tokenizer.model as tokenizer.ggml.model "llama" (tokens, scores,
             token types; remove_extra_whitespaces as its normalizer_spec says), add_eos_token true, a chat
             template and a tool_use one; reference: the sentencepiece package on the tokenizer.model
  bpe.gguf   tests/data/bpe-small's byte-level BPE as "gpt2" with tokenizer.ggml.pre "qwen2", its added tokens
             as control / user-defined types; reference: the `tokenizers` package on the tokenizer.json that
             scripts/make_tokenizers.py's Qwen2 recipe builds from the same tokens and merges
  rwkv.gguf  three tokens of a tokenizer.ggml.model that is not supported ("rwkv")

  .venv/bin/python tests/data/make_gguf_vocab.py"""
import json
import os
import sys
from pathlib import Path

import gguf
import sentencepiece as spm
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "gguf-vocab"
STORIES = Path(os.environ.get("TESSERA_SHARED", ROOT.parent / "shared")) / "models" / "stories260K"
sys.path.insert(0, str(ROOT / "scripts"))
import make_tokenizers  # noqa: E402

STRINGS = ["Hello world", "  two  spaces ", "tabs\t\tnew\nlines\r\n", "1234567890", "I'M you're", "日本語",
           "Привет мир", "👍🏽", "e\u0301 caf\u00e9", "", " ", "Once upon a time, there was a little girl.",
           "<|im_start|>user\nhi<|im_end|>\n", "<think>deep</think>", "x<s>y</s>"]
TEMPLATE = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
TOOL_TEMPLATE = "{{ tools | length }} tools"


def spm_types(sp):
    """convert_hf_to_gguf's token types of a SentencePiece model."""
    types = []
    for i in range(sp.vocab_size()):
        t = gguf.TokenType.NORMAL
        if sp.is_unknown(i):
            t = gguf.TokenType.UNKNOWN
        elif sp.is_control(i):
            t = gguf.TokenType.CONTROL
        elif sp.is_unused(i):
            t = gguf.TokenType.UNUSED
        elif sp.is_byte(i):
            t = gguf.TokenType.BYTE
        types.append(int(t))
    return types


def write_spm(path):
    sp = spm.SentencePieceProcessor(model_file=str(STORIES / "tokenizer.model"))
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([sp.id_to_piece(i) for i in range(sp.vocab_size())])
    w.add_token_scores([sp.get_score(i) for i in range(sp.vocab_size())])
    w.add_token_types(spm_types(sp))
    w.add_remove_extra_whitespaces(True)  # stories260K's normalizer_spec
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_chat_template([{"name": "default", "template": TEMPLATE}, {"name": "tool_use", "template": TOOL_TEMPLATE}])
    finish(w)
    cases = []
    for s in STRINGS:
        if "<s>" in s:  # sentencepiece reads "<s>" as text; llama.cpp (and Tessera) as the control token
            continue
        ids = sp.encode(s)
        cases.append({"text": s, "ids": ids, "decoded": sp.decode(ids)})
    return {"bos": sp.bos_id(), "eos": sp.eos_id(), "unk": sp.unk_id(), "vocab": sp.vocab_size(), "cases": cases}


def write_bpe(path):
    src = json.loads((HERE / "bpe-small" / "tokenizer.json").read_text(encoding="utf-8"))
    n = max(max(src["model"]["vocab"].values()), max(a["id"] for a in src["added_tokens"])) + 1
    tokens = [None] * n
    for t, i in src["model"]["vocab"].items():
        tokens[i] = t
    types = [int(gguf.TokenType.NORMAL)] * n
    for a in src["added_tokens"]:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = int(gguf.TokenType.CONTROL if a["special"] else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in src["model"]["merges"]]
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(0)
    w.add_eos_token_id(2)
    finish(w)
    normalizer, pres, _, _, _ = make_tokenizers.gguf_family("qwen2")
    tok = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, [tuple(m.split(" ", 1)) for m in merges]))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence(pres)
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([AddedToken(tokens[i], special=types[i] == 3, normalized=False) for i in range(n) if types[i] != 1])
    cases = []
    for s in STRINGS:
        ids = tok.encode(s, add_special_tokens=False).ids
        cases.append({"text": s, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=True)})
    return {"bos": 0, "eos": 2, "unk": -1, "vocab": n, "cases": cases}


def write_rwkv(path):
    w = gguf.GGUFWriter(str(path), "rwkv6")
    w.add_tokenizer_model("rwkv")
    w.add_token_list(["a", "b", "c"])
    finish(w)


def finish(w):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    OUT.mkdir(exist_ok=True)
    expected = {"spm": write_spm(OUT / "spm.gguf"), "bpe": write_bpe(OUT / "bpe.gguf")}
    write_rwkv(OUT / "rwkv.gguf")
    expected["template"], expected["tool_template"] = TEMPLATE, TOOL_TEMPLATE
    with open(OUT / "expected.json", "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=0)
        f.write("\n")


if __name__ == "__main__":
    main()
