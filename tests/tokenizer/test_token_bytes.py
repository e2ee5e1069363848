"""`tessera tokenize --token-bytes` (tok_vocab_bytes: the bytes each token adds to a text when it follows other
tokens) on the folders of scripts/make_tokenizers.py, against the reference packages:

  table     every id's line == the reference's own bytes of that token: for a ByteLevel decoder the inverse of
            bytes_to_unicode over the token string (the string's UTF-8 where a character is outside that
            alphabet), for stories260K's tokenizer.json (Replace "\u2581" -> " ", ByteFallback, Fuse, Strip) and
            its tokenizer.model (sentencepiece) the piece with "\u2581" as a space and <0xNN> as that byte
            (sentencepiece: the unknown piece as decode([id]) shows it); "-" exactly for special added tokens,
            SentencePiece control pieces and ids of no token
  decoder   for every id that is not special: Tokenizer.decode([a, id]) == "a" + its bytes as Python decodes
            them with errors="replace" ("a" the token of that text): the package's decoder on the token in the
            middle of a text
  concat    for each input of the corpus (lines, paragraphs, 16 KB chunks, the whole file): with ids = tessera's
            ids of the text (no special tokens), the ids' bytes concatenated == the reference's decode of the
            ids, UTF-8; where the tokenizer strips the start of a text (stories260K both ways), the reference's
            decode is the concatenation without its first byte when that is a space. The concatenation is
            compared as Python decodes it with errors="replace", as the packages write U+FFFD where tessera keeps
            the bytes (DeepSeek's added tokens "ü", "ö", ... are byte-level characters of bytes that
            never start UTF-8); tests/unit/test_tokenizer.c compares bytes with tessera's own decode.
"""
import json
import re
import subprocess

import pytest
import sentencepiece
from tokenizers import Tokenizer

from conftest import FOLDERS, TESSERA, corpus_inputs, first_mismatches, tessera_jsonl

INPUTS = corpus_inputs()
SPACE = "\u2581"
BYTE_PIECE = re.compile(r"<0x([0-9A-F]{2})>")


def tessera_table(folder, impl):
    """The --token-bytes lines: bytes, or None for "-"."""
    r = subprocess.run([str(TESSERA), "tokenize", str(folder), "--tokenizer", impl, "--token-bytes"],
                       capture_output=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"tessera tokenize {folder.name} --token-bytes: exit {r.returncode}: "
                    f"{r.stderr.decode(errors='replace').strip()}", pytrace=False)
    lines = r.stdout.decode().split("\n")
    assert lines[-1] == ""
    return [None if x == "-" else bytes.fromhex(x) for x in lines[:-1]]


def byte_decoder():
    """GPT-2's bytes_to_unicode, inverted: character -> byte."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
          *range(ord("\u00ae"), ord("\u00ff") + 1)]
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


BYTE_DECODER = byte_decoder()


def json_reference(folder):
    """(Tokenizer, [bytes or None] per id, whether decode strips the start's space)."""
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    decoder = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))["decoder"]
    special = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}
    n = tok.get_vocab_size(with_added_tokens=True)
    n = max([n] + [i + 1 for i in tok.get_added_tokens_decoder()])
    table = []
    for i in range(n):
        s = tok.id_to_token(i)
        if s is None or i in special:
            table.append(None)
        elif decoder["type"] == "ByteLevel":
            table.append(bytes(BYTE_DECODER[c] for c in s) if all(c in BYTE_DECODER for c in s) else s.encode())
        else:  # stories260K: Replace, ByteFallback, Fuse, Strip
            kinds = [d["type"] for d in decoder["decoders"]]
            assert kinds == ["Replace", "ByteFallback", "Fuse", "Strip"], kinds
            m = BYTE_PIECE.fullmatch(s)
            table.append(bytes([int(m.group(1), 16)]) if m else s.replace(SPACE, " ").encode())
    return tok, table, decoder["type"] != "ByteLevel"


def spm_reference(folder):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    table = []
    for i in range(sp.get_piece_size()):
        p = sp.id_to_piece(i)
        if sp.is_control(i):
            table.append(None)
        elif sp.is_byte(i):
            table.append(bytes([int(BYTE_PIECE.fullmatch(p).group(1), 16)]))
        elif sp.is_unknown(i):
            table.append(sp.decode([i]).encode())
        else:
            table.append(p.replace(SPACE, " ").encode())
    return sp, table


def show(b):
    return "-" if b is None else repr(b)


def compare_tables(what, expected, got):
    assert len(got) == len(expected), f"{what}: {len(got)} lines, the reference has {len(expected)} ids"
    bad = [i for i in range(len(got)) if got[i] != expected[i]]
    report = "\n".join(f"  id {i}: expected {show(expected[i])}, got {show(got[i])}" for i in bad[:10])
    assert not bad, f"{what}: {len(bad)} of {len(got)} ids differ; first:\n{report}"
    normal = [b for b in got if b is not None]
    assert all(normal), f"{what}: {sum(1 for b in normal if not b)} normal tokens give no bytes"


def concat_report(what, table, ids_list, decoded, strips):
    got, want = [], []
    for ids, text in zip(ids_list, decoded):
        c = b"".join(table[i] or b"" for i in ids)
        want.append(text.encode())
        c = c[1:] if strips and c[:1] == b" " else c
        got.append(c.decode("utf-8", "replace").encode())
    return first_mismatches(what, INPUTS, want, got)


@pytest.mark.parametrize("name", FOLDERS)
def test_token_bytes_json(name, folder_of):
    folder = folder_of(name)
    tok, expected, strips = json_reference(folder)
    got = tessera_table(folder, "json")
    compare_tables(f"{name} --token-bytes", expected, got)
    # the package's decoder on each token after "a"
    a = tok.token_to_id("a")
    assert a is not None and tok.decode([a]) == "a"
    ids = [i for i in range(len(got)) if got[i] is not None]
    dec = tok.decode_batch([[a, i] for i in ids], skip_special_tokens=True)
    want = ["a" + got[i].decode("utf-8", "replace") for i in ids]
    report = first_mismatches(f"{name}: decode([a, id]) vs 'a' + bytes", [str(i) for i in ids], dec, want)
    assert not report, report
    # the ids of each input
    runs = tessera_jsonl(folder, INPUTS, "--tokenizer", "json", "--no-special")
    ids_list = [r["ids"] for r in runs]
    report = concat_report(f"{name} concat", got, ids_list, tok.decode_batch(ids_list, skip_special_tokens=True),
                           strips)
    assert not report, report


def test_token_bytes_sentencepiece(folder_of):
    folder = folder_of("stories260K")
    sp, expected = spm_reference(folder)
    got = tessera_table(folder, "sentencepiece")
    compare_tables("stories260K --tokenizer sentencepiece --token-bytes", expected, got)
    runs = tessera_jsonl(folder, INPUTS, "--tokenizer", "sentencepiece", "--no-special")
    ids_list = [r["ids"] for r in runs]
    report = concat_report("stories260K sentencepiece concat", got, ids_list, [sp.decode(ids) for ids in ids_list],
                           True)
    assert not report, report


@pytest.mark.parametrize("name", ["llama3"])
def test_token_bytes_table_time(name, folder_of):
    """The table of Llama 3's 128,256 ids in well under 100 ms (the best of 5 builds)."""
    r = subprocess.run([str(TESSERA), "tokenize", str(folder_of(name)), "--token-bytes", "--bench", "5"],
                       capture_output=True, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    j = json.loads(r.stdout)
    assert j["ids"] == 128256
    assert min(j["build_s"]) < 0.1, j


@pytest.mark.parametrize("args", [["hi"], ["--jsonl"], ["--decode"]], ids=["text", "jsonl", "decode"])
def test_token_bytes_takes_no_input(args, folder_of):
    r = subprocess.run([str(TESSERA), "tokenize", str(folder_of("qwen2style")), "--token-bytes", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--token-bytes takes no input" in r.stderr, (r.returncode, r.stderr)
