"""Fixtures of the tokenizer.json tests: the tokenizer folders (scripts/make_tokenizers.py, cached under
build/tokenizers), the corpus, and `tessera tokenize --jsonl` runs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESSERA = Path(os.environ.get("TESSERA_BIN", ROOT / "build" / "tessera"))
CACHE = Path(os.environ.get("TESSERA_TOKENIZERS", ROOT / "build" / "tokenizers"))
CORPUS = ROOT / "tests" / "data" / "tokenizer_mix.txt"

sys.path.insert(0, str(ROOT / "scripts"))
import make_tokenizers  # noqa: E402

FOLDERS = list(make_tokenizers.BUILDERS)


def corpus_inputs():
    """Every line of the corpus (split on "\\n" only: "\\r", U+2028 and U+0085 stay in their line), every
    paragraph, 16 KB chunks and the whole file."""
    text = CORPUS.read_bytes().decode("utf-8")
    lines = text.split("\n")
    paras = [p for p in text.split("\n\n") if "\n" in p]
    chunks = []
    for i in range(0, len(text), 16384):
        chunks.append(text[i:i + 16384])
    return lines + paras + chunks + [text]


@pytest.fixture(scope="session")
def folder_of():
    """name -> the built folder (built on first use, cached across runs)."""
    built = {}

    def get(name):
        if name not in built:
            make_tokenizers.build(CACHE, name)
            built[name] = CACHE / name
        return built[name]
    return get


def tessera_jsonl(folder, texts, *args):
    """[{"ids", "text"}] of `tessera tokenize FOLDER --jsonl ARGS` over texts; pytest.fail with tessera's
    message when it cannot load the folder or fails."""
    stdin = "".join(json.dumps(t) + "\n" for t in texts)
    r = subprocess.run([str(TESSERA), "tokenize", str(folder), "--jsonl", *args], input=stdin.encode(),
                       capture_output=True, timeout=600)
    err = r.stderr.decode(errors="replace").strip()
    if r.returncode != 0:
        pytest.fail(f"tessera tokenize {folder.name} --jsonl {' '.join(args)}: exit {r.returncode}: {err}",
                    pytrace=False)
    out = [json.loads(x) for x in r.stdout.decode().split("\n") if x]
    assert len(out) == len(texts), f"{len(texts)} inputs, {len(out)} output lines; stderr: {err}"
    return out


def first_mismatches(what, texts, expected, got, limit=5):
    """A readable report of the inputs whose results differ; '' when none do."""
    bad = [i for i in range(len(texts)) if expected[i] != got[i]]
    if not bad:
        return ""
    lines = [f"{what}: {len(bad)} of {len(texts)} inputs differ; first {min(limit, len(bad))}:"]
    for i in bad[:limit]:
        e, g = expected[i], got[i]
        at = next((k for k in range(min(len(e), len(g))) if e[k] != g[k]), min(len(e), len(g)))
        lines.append(f"  input {i} {texts[i][:120]!r}{'...' if len(texts[i]) > 120 else ''}")
        lines.append(f"    first difference at {at}: expected {e[max(0, at - 3):at + 6]!r}, got {g[max(0, at - 3):at + 6]!r}"
                     f" (lengths {len(e)}, {len(g)})")
    return "\n".join(lines)
