#!/usr/bin/env python3
"""Throughput of constrained decoding, side by side with free text.

A stories15M-shaped model (random weights: hidden 288, 6 layers, vocabulary
32000) with a real 32,000-piece SentencePiece vocabulary (Mistral 7B v0.1's
tokenizer.model, shipped in the mistral-common package) is served by
`tessera serve`; rounds alternate two runs of 16 concurrent chat requests of
128 tokens each: free text (ignore_eos) and a JSON Schema (a list of objects
with strings, integers and an enum, long enough that every output is cut at
128 tokens, so both runs generate the same number of tokens). Reports the
median generated tokens per second of each and their ratio (target: the
constrained run >= 80% of the free one).

usage: .venv/bin/python benchmarks/bench_structured.py [--rounds 5] [--threads 2]
"""
import argparse
import concurrent.futures as cf
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "build" / "bench-models" / "stories15M-mistral-vocab"
SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["orders"],
    "properties": {"orders": {"type": "array", "minItems": 200, "items": {
        "type": "object", "additionalProperties": False, "required": ["name", "qty", "color", "note"],
        "properties": {"name": {"type": "string", "maxLength": 24}, "qty": {"type": "integer", "minimum": 0,
                                                                            "maximum": 9999},
                       "color": {"enum": ["red", "green", "blue"]}, "note": {"type": "string"}}}}}}


def write_model():
    """The random-weight folder (benchmarks/bench_cpu.py's shapes and writer) with Mistral's tokenizer."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_cpu
    import mistral_common
    bench_cpu.MODELS = MODEL.parent
    spec = dict(bench_cpu.SHAPES["stories15M-f32"])
    out = bench_cpu.write_model("stories15M-f32", spec)  # shares the weights file with bench_cpu
    MODEL.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "generation_config.json", "model.safetensors"):
        if not (MODEL / f).exists():
            (MODEL / f).symlink_to(out / f)
    shutil.copy(Path(mistral_common.__file__).parent / "data" / "tokenizer.model.v1", MODEL / "tokenizer.model")
    (MODEL / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>",
                                                             "unk_token": "<unk>", "add_bos_token": True}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def run(port, constrained, n=16, tokens=128):
    """n concurrent requests; generated tokens per second of wall time."""
    def one(i):
        body = {"messages": [{"role": "user", "content": f"Order list number {i}, please."}], "max_tokens": tokens,
                "temperature": 1, "seed": i}
        if constrained:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "orders", "schema": SCHEMA}}
        else:
            body["ignore_eos"] = True
        r = post(port, body)
        assert r["choices"][0]["finish_reason"] == "length", r
        return r["usage"]["completion_tokens"]
    t = time.perf_counter()
    with cf.ThreadPoolExecutor(n) as ex:
        total = sum(ex.map(one, range(n)))
    return total / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    write_model()
    port = free_port()
    log = open(ROOT / "build" / "bench-structured.log", "w")
    srv = subprocess.Popen([str(ROOT / "build" / "tessera"), "serve", str(MODEL), "--port", str(port), "--threads",
                            str(a.threads), "--max-num-seqs", "16"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        run(port, True, n=2, tokens=16)  # warm: the schema's grammar is compiled once and cached
        free, cons = [], []
        for r in range(a.rounds):
            free.append(run(port, False))
            cons.append(run(port, True))
            print(f"round {r + 1}: free {free[-1]:.1f} tok/s, constrained {cons[-1]:.1f} tok/s", flush=True)
        mf, mc = statistics.median(free), statistics.median(cons)
        print(f"median: free {mf:.1f} tok/s, constrained {mc:.1f} tok/s, ratio {mc / mf:.3f} (target >= 0.80)")
    finally:
        srv.terminate()
        srv.wait()


if __name__ == "__main__":
    main()
