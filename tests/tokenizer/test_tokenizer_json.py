"""tessera's tokenizer.json implementation against the Hugging Face `tokenizers` package, on the folders of
scripts/make_tokenizers.py: every line, paragraph and 16 KB chunk of tests/data/tokenizer_mix.txt (and the
whole file), plus llama.cpp's test strings for the GGUF vocabularies:

  ids       `tessera tokenize --tokenizer json --jsonl` == Tokenizer.encode(x, add_special_tokens=True/False)
  decode    the text tessera gives for its ids == Tokenizer.decode(ids, skip_special_tokens=True)
  round     byte-level vocabularies: tessera's text == x (NFC(x) where the normalizer is NFC) for each
            line without added-token strings
  gguf      tessera's ids of each .inp string == its .out line (recorded by llama.cpp with transformers)
  both      the folder with tokenizer.model and tokenizer.json: --tokenizer json == --tokenizer sentencepiece
"""
import json
import subprocess
import unicodedata
from functools import lru_cache

import pytest
from tokenizers import Tokenizer

from conftest import FOLDERS, TESSERA, corpus_inputs, first_mismatches, make_tokenizers, tessera_jsonl

INPUTS = corpus_inputs()
GGUF = [f for f in FOLDERS if f.startswith("gguf-")]
BYTE_LEVEL = [f for f in FOLDERS if f != "stories260K"]
SPM_SPECIALS = ("<s>", "</s>", "<unk>")


@lru_cache(maxsize=None)
def inputs_of(name):
    """The corpus inputs, then for a GGUF folder its .inp strings."""
    extra = [t for t, _ in make_tokenizers.gguf_cases(name[5:])] if name.startswith("gguf-") else []
    return tuple(INPUTS) + tuple(extra)


@pytest.fixture(scope="session")
def runs(folder_of):
    """(name, impl, special) -> tessera's [{"ids", "text"}] over inputs_of(name), run once."""
    cache = {}

    def get(name, impl="json", special=True):
        key = (name, impl, special)
        if key not in cache:
            args = ["--tokenizer", impl] + ([] if special else ["--no-special"])
            cache[key] = tessera_jsonl(folder_of(name), list(inputs_of(name)), *args)
        return cache[key]
    return get


@pytest.fixture(scope="session")
def reference(folder_of):
    """name -> the tokenizers.Tokenizer of the folder's tokenizer.json."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = Tokenizer.from_file(str(folder_of(name) / "tokenizer.json"))
        return cache[name]
    return get


def ref_ids(tok, texts, special):
    return [e.ids for e in tok.encode_batch(list(texts), add_special_tokens=special)]


def added_strings(tok):
    """The added tokens' texts: special ones decode to nothing, and some others do not decode to their text
    (DeepSeek's added 'ü', 'ö', ... are byte-level characters of bytes that never start UTF-8: 'Zürich'
    decodes to 'Z\ufffdrich' with tokenizers too)."""
    return [t.content for t in tok.get_added_tokens_decoder().values()]


def normalizer_type(folder):
    n = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("normalizer")
    return n.get("type") if n else None


@pytest.mark.parametrize("special", [True, False], ids=["add_special", "no_special"])
@pytest.mark.parametrize("name", FOLDERS)
def test_ids_match_tokenizers(name, special, runs, reference):
    texts = inputs_of(name)
    got = [r["ids"] for r in runs(name, "json", special)]
    report = first_mismatches(f"{name} ids (add_special_tokens={special})", texts,
                              ref_ids(reference(name), texts, special), got)
    assert not report, report


@pytest.mark.parametrize("name", FOLDERS)
def test_decode_matches_tokenizers(name, runs, reference):
    tok = reference(name)
    for special in (True, False):
        out = runs(name, "json", special)
        ids = [r["ids"] for r in out]
        expected = tok.decode_batch(ids, skip_special_tokens=True)
        report = first_mismatches(f"{name} decode (of tessera's ids, add_special_tokens={special})",
                                  inputs_of(name), expected, [r["text"] for r in out])
        assert not report, report


@pytest.mark.parametrize("name", BYTE_LEVEL)
def test_decode_of_encode_is_the_text(name, runs, reference, folder_of):
    tok = reference(name)
    specials = added_strings(tok)
    nfc = normalizer_type(folder_of(name)) == "NFC"
    idx = [i for i, t in enumerate(INPUTS) if not any(s in t for s in specials)]
    texts = [INPUTS[i] for i in idx]
    expected = [unicodedata.normalize("NFC", t) if nfc else t for t in texts]
    # the reference itself must round-trip, or this test would be wrong
    own = tok.decode_batch(ref_ids(tok, texts, False), skip_special_tokens=True)
    assert not first_mismatches(f"{name}: tokenizers' own round trip", texts, expected, own)
    out = runs(name, "json", False)
    report = first_mismatches(f"{name} decode(encode(x)) == x", texts, expected, [out[i]["text"] for i in idx])
    assert not report, report


@pytest.mark.parametrize("name", GGUF)
def test_gguf_reference_matches_out(name, reference):
    """The Python side first: tokenizers on the built tokenizer.json gives llama.cpp's .out ids."""
    cases = make_tokenizers.gguf_cases(name[5:])
    texts = [t for t, _ in cases]
    report = first_mismatches(f"{name} tokenizers vs .out", texts, [ids for _, ids in cases],
                              ref_ids(reference(name), texts, False))
    assert not report, report


@pytest.mark.parametrize("name", GGUF)
def test_gguf_out_files(name, runs):
    cases = make_tokenizers.gguf_cases(name[5:])
    n = len(INPUTS)
    got = [r["ids"] for r in runs(name, "json", False)[n:]]
    report = first_mismatches(f"{name} tessera vs .out", [t for t, _ in cases], [ids for _, ids in cases], got)
    assert not report, report


def plain_spm_lines():
    return [i for i, t in enumerate(INPUTS) if not any(s in t for s in SPM_SPECIALS)]


@pytest.mark.parametrize("special", [True, False], ids=["add_special", "no_special"])
def test_sentencepiece_matches_tokenizer_json_reference(special, runs, reference):
    """stories260K: tessera's SentencePiece side == tokenizers on the converted tokenizer.json (texts without
    <s>, </s>, <unk>: tokenizer.json matches those as special tokens, SentencePiece does not)."""
    idx = plain_spm_lines()
    texts = [INPUTS[i] for i in idx]
    out = runs("stories260K", "sentencepiece", special)
    report = first_mismatches(f"stories260K sentencepiece vs tokenizers (add_special_tokens={special})", texts,
                              ref_ids(reference("stories260K"), texts, special), [out[i]["ids"] for i in idx])
    assert not report, report


@pytest.mark.parametrize("special", [True, False], ids=["add_special", "no_special"])
def test_json_and_sentencepiece_agree(special, runs):
    idx = plain_spm_lines()
    spm, js = runs("stories260K", "sentencepiece", special), runs("stories260K", "json", special)
    report = first_mismatches(f"stories260K --tokenizer json vs sentencepiece (add_special_tokens={special})",
                              [INPUTS[i] for i in idx], [spm[i] for i in idx], [js[i] for i in idx])
    assert not report, report


@pytest.mark.parametrize("name", ["stories260K", "llama3"])
def test_auto_prefers_tokenizer_json(name, folder_of, runs):
    """--tokenizer auto takes tokenizer.json when the folder has one (as transformers does): on lines with
    <s> or <|begin_of_text|> the two files of stories260K differ, so auto must give json's ids."""
    texts = [t for t in INPUTS if "<s>" in t or "<|begin_of_text|>" in t][:50] + list(INPUTS[:50])
    auto = tessera_jsonl(folder_of(name), texts)
    js = runs(name, "json", True)[: len(INPUTS)]
    by_text = {t: js[i] for i, t in enumerate(INPUTS)}
    report = first_mismatches(f"{name} auto vs json", texts, [by_text[t] for t in texts], auto)
    assert not report, report


def one_line_error(folder, *args):
    r = subprocess.run([str(TESSERA), "tokenize", str(folder), "hi", *args], capture_output=True, text=True,
                       timeout=60)
    lines = r.stderr.strip().splitlines()
    return r.returncode, lines


@pytest.mark.parametrize("content", ['{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []', "[1, 2]",
                                     '{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}',
                                     '{"model": {"type": "NoSuchModel"}}', ""],
                         ids=["truncated", "not-object", "bad-vocab", "unknown-model", "empty"])
def test_bad_tokenizer_json_one_line_exit_2(tmp_path, content):
    (tmp_path / "tokenizer.json").write_text(content)
    for impl in ("auto", "json"):
        rc, lines = one_line_error(tmp_path, "--tokenizer", impl)
        assert rc == 2 and len(lines) == 1, (rc, lines)
        assert "tokenizer.json" in lines[0] and "not supported yet" not in lines[0], lines[0]
