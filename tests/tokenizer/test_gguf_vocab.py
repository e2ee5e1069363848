"""The GGUF tokenizer (tokenizer/gguf_vocab.c: a tokenizer built from a .gguf file's tokenizer.ggml.* metadata)
through `tessera tokenize FILE.gguf --jsonl`:

  out      every ggml-vocab-*.gguf of ../shared/tokenizer_tests (llama.cpp's vocabulary tests: byte-level BPE and
           SentencePiece): tessera's ids of each .inp string == its .out line, every string of every file (none is
           skipped; a vocabulary tessera cannot load fails)
  round    the text of those ids == the .inp string (NFC of it where the family's normalizer is NFC), as llama.cpp's
           own test round-trips them
  corpus   every line, paragraph and 16 KB chunk of tests/data/tokenizer_mix.txt (and the whole file), with and
           without special tokens: byte-level files == the tokenizers package on the tokenizer.json
           scripts/make_tokenizers.py builds from the same file (its recipe is checked against the .out files);
           SentencePiece files == the tokenizers package on transformers' conversion of the file (merges generated
           from the scores, byte fallback, a U+2581 prepended to each text piece, as llama.cpp does)
  stories  GGUF files written from ../shared/models/stories260K's tokenizer.model as llama.cpp's
           convert_hf_to_gguf.py writes them == that tokenizer.model (the sentencepiece package) on every corpus
           input without "<s>", "</s>" or "<unk>" (sentencepiece reads those as text, llama.cpp as control tokens)
  bad      an unsupported tokenizer.ggml.model or tokenizer.ggml.pre, a missing token list: exit 2, one line
"""
import json
import subprocess
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

import gguf
import pytest
import sentencepiece as spm
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors

from conftest import ROOT, TESSERA, corpus_inputs, first_mismatches, make_tokenizers

sys.path.insert(0, str(ROOT / "tests" / "data"))
import make_gguf_vocab  # noqa: E402

VOCABS = sorted(p.name[len("ggml-vocab-"):-len(".gguf")] for p in make_tokenizers.GGUF_DIR.glob("ggml-vocab-*.gguf"))
KNOWN = {"llama-spm", "phi-3", "llama-bpe", "qwen2", "qwen35", "gpt-2", "deepseek-llm", "command-r"}
SENTENCEPIECE = ["llama-spm", "phi-3"]
NFC = {"qwen2", "command-r"}
SPM_SPECIALS = ("<s>", "</s>", "<unk>")
INPUTS = corpus_inputs()


def gguf_path(name):
    return make_tokenizers.GGUF_DIR / f"ggml-vocab-{name}.gguf"


def tessera_gguf(path, texts, *args):
    """[{"ids", "text"}] of `tessera tokenize PATH --jsonl ARGS` over texts."""
    stdin = "".join(json.dumps(t) + "\n" for t in texts)
    r = subprocess.run([str(TESSERA), "tokenize", str(path), "--jsonl", *args], input=stdin.encode(),
                       capture_output=True, timeout=600)
    if r.returncode != 0:
        pytest.fail(f"tessera tokenize {path.name}: exit {r.returncode}: {r.stderr.decode(errors='replace')}",
                    pytrace=False)
    out = [json.loads(x) for x in r.stdout.decode().split("\n") if x]
    assert len(out) == len(texts)
    return out


def test_every_vocabulary_is_known():
    """The .out tests below run every file there is; this names the ones the families were checked on."""
    assert KNOWN <= set(VOCABS), f"missing from ../shared/tokenizer_tests: {KNOWN - set(VOCABS)}"


@pytest.mark.parametrize("name", VOCABS)
def test_out_files(name):
    cases = make_tokenizers.gguf_cases(name)
    assert len(cases) >= 40, name
    texts = [t for t, _ in cases]
    got = tessera_gguf(gguf_path(name), texts, "--no-special")
    report = first_mismatches(f"{name} vs its .out", texts, [ids for _, ids in cases], [g["ids"] for g in got])
    assert not report, report
    round_trip = [unicodedata.normalize("NFC", t) if name in NFC else t for t in texts]
    report = first_mismatches(f"{name}: decode(encode(x))", texts, round_trip, [g["text"] for g in got])
    assert not report, report


# ---- the corpus against the tokenizers package ----

@lru_cache(maxsize=None)
def spm_reference(name):
    """transformers' GGUF conversion of a SentencePiece vocabulary, spelled with the tokenizers package."""
    from transformers.tokenization_utils_base import generate_merges
    f = gguf.GGUFReader(str(gguf_path(name))).fields
    tokens, scores = f["tokenizer.ggml.tokens"].contents(), f["tokenizer.ggml.scores"].contents()
    types = f["tokenizer.ggml.token_type"].contents()
    vocab = {t: i for i, t in enumerate(tokens)}
    unk = tokens[f["tokenizer.ggml.unknown_token_id"].contents()]
    tok = Tokenizer(models.BPE(vocab, generate_merges(vocab, dict(zip(tokens, scores))), unk_token=unk, fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("\u2581"), normalizers.Replace(" ", "\u2581")])
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    tok.add_tokens([AddedToken(t, special=ty != 4, normalized=False) for t, ty in zip(tokens, types) if ty in (2, 3, 4)])
    bos = f["tokenizer.ggml.bos_token_id"].contents()
    tok.post_processor = processors.TemplateProcessing(single=f"{tokens[bos]} $A", special_tokens=[(tokens[bos], bos)])
    return tok


@pytest.mark.parametrize("special", [False, True], ids=["no-special", "special"])
@pytest.mark.parametrize("name", sorted(KNOWN))
def test_corpus(name, special, folder_of):
    if name in SENTENCEPIECE:
        ref = spm_reference(name)
    else:
        ref = Tokenizer.from_file(str(folder_of(f"gguf-{name}") / "tokenizer.json"))
    want = [e.ids for e in ref.encode_batch(INPUTS, add_special_tokens=special)]
    got = tessera_gguf(gguf_path(name), INPUTS, *([] if special else ["--no-special"]))
    report = first_mismatches(f"{name} (special={special}) vs the tokenizers package", INPUTS, want,
                              [g["ids"] for g in got])
    assert not report, report


# ---- a model converted to GGUF: stories260K ----

def write_stories_gguf(path, model_file, remove_extra_whitespaces):
    """The tokenizer keys convert_hf_to_gguf.py writes for a Llama with a tokenizer.model (its
    _set_vocab_sentencepiece and SpecialVocab); remove_extra_whitespaces only when asked."""
    sp = spm.SentencePieceProcessor(model_file=str(model_file))
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([sp.id_to_piece(i) for i in range(sp.vocab_size())])
    w.add_token_scores([sp.get_score(i) for i in range(sp.vocab_size())])
    w.add_token_types(make_gguf_vocab.spm_types(sp))
    if remove_extra_whitespaces:
        w.add_remove_extra_whitespaces(True)
    w.add_bos_token_id(sp.bos_id())
    w.add_eos_token_id(sp.eos_id())
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    make_gguf_vocab.finish(w)
    return sp


@pytest.mark.parametrize("variant", ["llama2-spaces", "original"])
def test_stories260K_gguf_equals_its_tokenizer_model(variant, tmp_path, folder_of):
    """"original": ../shared's tokenizer.model, which collapses runs of spaces (remove_extra_whitespaces),
    written with that flag; "llama2-spaces": make_tokenizers.py's copy with Llama 2's setting (runs kept), as
    convert_hf_to_gguf.py writes a Llama (no flag)."""
    original = variant == "original"
    model = make_tokenizers.STORIES / "tokenizer.model" if original else folder_of("stories260K") / "tokenizer.model"
    path = tmp_path / "stories260K.gguf"
    sp = write_stories_gguf(path, model, original)
    texts = [t for t in INPUTS if not any(s in t for s in SPM_SPECIALS)]
    assert len(texts) > 0.9 * len(INPUTS)
    for special in (False, True):
        want = [([sp.bos_id()] if special else []) + sp.encode(t) for t in texts]
        got = tessera_gguf(path, texts, *([] if special else ["--no-special"]))
        report = first_mismatches(f"stories260K GGUF ({variant}, special={special}) vs sentencepiece", texts, want,
                                  [g["ids"] for g in got])
        assert not report, report
    report = first_mismatches("decode", texts, [sp.decode(sp.encode(t)) for t in texts], [g["text"] for g in got])
    assert not report, report


# ---- bad vocabularies ----

def write_vocab(path, model, pre=None, tokens=("a", "b", "ab")):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model(model)
    if pre:
        w.add_tokenizer_pre(pre)
    if tokens:
        w.add_token_list(list(tokens))
        w.add_token_merges(["a b"])
    make_gguf_vocab.finish(w)


@pytest.mark.parametrize("model,pre,tokens,message", [
    ("rwkv", None, ("a",), 'tokenizer.ggml.model "rwkv" is not supported'),
    ("bert", None, ("a",), 'tokenizer.ggml.model "bert" is not supported'),
    ("gpt2", "no-such-pre", ("a", "b", "ab"), 'tokenizer.ggml.pre "no-such-pre" is not supported'),
    ("gpt2", "gpt-2", (), "no tokenizer.ggml.tokens"),
    ("gpt2", "gpt-2", ("a", "b"), "tokenizer.ggml.merges[0]: a part or the merged token is not a token"),
])
def test_bad_vocabulary_one_line_exit_2(tmp_path, model, pre, tokens, message):
    path = tmp_path / "bad.gguf"
    write_vocab(path, model, pre, tokens)
    r = subprocess.run([str(TESSERA), "tokenize", str(path), "hi"], capture_output=True, timeout=60)
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert str(path) in lines[0] and message in lines[0], lines[0]
