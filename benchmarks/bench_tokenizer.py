#!/usr/bin/env python3
"""Encoding speed of tessera's tokenizer.json implementation against the Hugging Face tokenizers package
(Rust), one thread each, on the Llama 3 tokenizer.json of scripts/make_tokenizers.py.

The corpus: tests/data/tokenizer_mix.txt repeated to ~1 MB, cut into its paragraphs (~2,100 chunks),
encoded one after another (add_special_tokens=True). tokenizers: Tokenizer.encode per chunk with
TOKENIZERS_PARALLELISM=false and RAYON_NUM_THREADS=1; tessera: `tessera tokenize --jsonl --bench N`, which
times only the encoding (load printed apart). Median of 5 repeats each; both must count the same tokens.

usage: .venv/bin/python benchmarks/bench_tokenizer.py [--repeats 5] [--folder build/tokenizers/llama3]
       [--tessera build/tessera] [--json]"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["RAYON_NUM_THREADS"] = "1"
from tokenizers import Tokenizer  # noqa: E402  (after the thread settings)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "tokenizer_mix.txt"


def chunks(target=1_000_000):
    text = CORPUS.read_bytes().decode("utf-8")
    paras = text.split("\n\n")
    out, size = [], 0
    while size < target:
        for p in paras:
            out.append(p + "\n\n")
            size += len(out[-1].encode())
    return out


def bench_tokenizers(folder, texts, repeats):
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    load = time.perf_counter() - t0
    times, count = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        count = sum(len(tok.encode(t, add_special_tokens=True).ids) for t in texts)
        times.append(time.perf_counter() - t0)
    return {"load_s": load, "encode_s": times, "tokens": count}


def bench_tessera(binary, folder, texts, repeats):
    stdin = "".join(json.dumps(t) + "\n" for t in texts).encode()
    r = subprocess.run([str(binary), "tokenize", str(folder), "--tokenizer", "json", "--jsonl", "--bench",
                        str(repeats)], input=stdin, capture_output=True, timeout=1800)
    if r.returncode:
        sys.exit(f"bench_tokenizer: tessera failed: {r.stderr.decode(errors='replace').strip()}")
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--folder", type=Path, default=ROOT / "build" / "tokenizers" / "llama3")
    ap.add_argument("--tessera", type=Path, default=ROOT / "build" / "tessera")
    ap.add_argument("--json", action="store_true", help="one JSON line instead of the table")
    a = ap.parse_args()
    if not (a.folder / "tokenizer.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tokenizers.py"), str(a.folder.parent),
                        a.folder.name], check=True)
    texts = chunks()
    nbytes = sum(len(t.encode()) for t in texts)
    hf = bench_tokenizers(a.folder, texts, a.repeats)
    ts = bench_tessera(a.tessera, a.folder, texts, a.repeats)
    if hf["tokens"] != ts["tokens"]:
        sys.exit(f"bench_tokenizer: token counts differ: tokenizers {hf['tokens']}, tessera {ts['tokens']}")
    res = {"bytes": nbytes, "chunks": len(texts), "tokens": hf["tokens"], "repeats": a.repeats}
    for name, r in (("tokenizers", hf), ("tessera", ts)):
        med = statistics.median(r["encode_s"])
        res[name] = {"load_s": round(r["load_s"], 4), "encode_s_median": round(med, 4),
                     "MB_per_s": round(nbytes / med / 1e6, 2), "tokens_per_s": round(r["tokens"] / med)}
    if a.json:
        print(json.dumps(res))
        return
    print(f"{nbytes / 1e6:.2f} MB in {len(texts)} chunks, {res['tokens']} tokens, median of {a.repeats}, one thread "
          f"({a.folder.name})")
    print(f"{'':12} {'load s':>8} {'encode s':>9} {'MB/s':>7} {'tokens/s':>10}")
    for name in ("tokenizers", "tessera"):
        r = res[name]
        print(f"{name:12} {r['load_s']:8.3f} {r['encode_s_median']:9.3f} {r['MB_per_s']:7.2f} {r['tokens_per_s']:10d}")
    print(f"tessera / tokenizers encode time: {res['tessera']['encode_s_median'] / res['tokenizers']['encode_s_median']:.2f}x")


if __name__ == "__main__":
    main()
