#!/usr/bin/env python3
"""Single-stream CPU speed of `tessera generate`, side by side with llama.cpp.

For each model shape (random weights, real shapes):
  stories15M      F32  hidden 288, 6 layers, vocab 32000, prompt 512 tokens
  tinyllama-1.1B  F16  hidden 2048, 22 layers, GQA 32/4, vocab 32000, prompt 128 tokens
it writes a Hugging Face folder under build/bench-models/, converts it to GGUF
with llama.cpp's own converter (same weights, same dtype), then measures
prefill and decode tokens/s of both engines, interleaved (ours, theirs, ours,
...), with 2 threads each, and reports medians and the ratio. It also measures
the machine's read bandwidth (benchmarks/membw.c) and the decode roofline of
the F16 model (bandwidth / weight bytes per token).

Needs: build/tessera (make), numpy, gguf, llama-cpp-python (which compiles
llama.cpp) and torch for the converter (Debian: python3-torch). With --setup
it creates build/bench-venv with those (a long first install).

usage: python3 benchmarks/bench_cpu.py [--setup] [--quick] [--reps N] [--out FILE]
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
MODELS = BUILD / "bench-models"
VENV = BUILD / "bench-venv"
TESSERA = BUILD / "tessera"
THREADS = 2

SHAPES = {
    "stories15M-f32": dict(hidden_size=288, intermediate_size=768, num_hidden_layers=6, num_attention_heads=6,
                           num_key_value_heads=6, vocab_size=32000, max_position_embeddings=1024,
                           tie_word_embeddings=True, dtype="F32", prompt=512, decode=128),
    "tinyllama-1.1B-f16": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                               num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                               max_position_embeddings=2048, tie_word_embeddings=False, dtype="F16",
                               prompt=128, decode=48),
}


def setup_venv():
    """build/bench-venv with the Python side of the benchmark."""
    if not (VENV / "bin" / "python").exists():
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(VENV)], check=True)
    env = dict(os.environ, CMAKE_ARGS="-DGGML_NATIVE=ON", CMAKE_BUILD_PARALLEL_LEVEL="2")
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "numpy", "gguf", "sentencepiece",
                    "llama-cpp-python"], check=True, env=env)


def converter():
    """llama.cpp's convert_hf_to_gguf.py, from the llama-cpp-python sdist."""
    import llama_cpp
    ver = llama_cpp.__version__
    dst = BUILD / f"llama-cpp-python-{ver}"
    script = dst / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py"
    if not script.exists():
        tmp = BUILD / "sdist"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                        "-d", str(tmp), f"llama-cpp-python=={ver}"], check=True)
        with tarfile.open(next(tmp.glob("llama_cpp_python-*.tar.gz"))) as t:
            t.extractall(BUILD, filter="data")
    return script


def write_model(name, spec):
    """A random-weight HF folder of the given shape; tokenizer from the demo model."""
    import numpy as np
    out = MODELS / name
    if (out / "model.safetensors").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    H, I, L = spec["hidden_size"], spec["intermediate_size"], spec["num_hidden_layers"]
    nh, nkv, V = spec["num_attention_heads"], spec["num_key_value_heads"], spec["vocab_size"]
    hd = H // nh
    npdt = {"F32": np.float32, "F16": np.float16}[spec["dtype"]]
    names = [("model.embed_tokens.weight", (V, H)), ("model.norm.weight", (H,))]
    if not spec["tie_word_embeddings"]:
        names.append(("lm_head.weight", (V, H)))
    for l in range(L):
        p = f"model.layers.{l}."
        names += [(p + "input_layernorm.weight", (H,)), (p + "post_attention_layernorm.weight", (H,)),
                  (p + "self_attn.q_proj.weight", (nh * hd, H)), (p + "self_attn.k_proj.weight", (nkv * hd, H)),
                  (p + "self_attn.v_proj.weight", (nkv * hd, H)), (p + "self_attn.o_proj.weight", (H, nh * hd)),
                  (p + "mlp.gate_proj.weight", (I, H)), (p + "mlp.up_proj.weight", (I, H)),
                  (p + "mlp.down_proj.weight", (H, I))]
    header, off, es = {}, 0, np.dtype(npdt).itemsize
    for n, s in names:
        nb = int(np.prod(s)) * es
        header[n] = {"dtype": spec["dtype"], "shape": list(s), "data_offsets": [off, off + nb]}
        off += nb
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    rng = np.random.default_rng(0)
    with open(out / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for n, s in names:
            a = np.ones(s, npdt) if len(s) == 1 else (rng.standard_normal(s, dtype=np.float32) * 0.02).astype(npdt)
            f.write(a.tobytes())
    cfg = {k: v for k, v in spec.items() if k not in ("dtype", "prompt", "decode")}
    cfg.update(architectures=["LlamaForCausalLM"], model_type="llama", rms_norm_eps=1e-5, rope_theta=10000.0,
               hidden_act="silu", bos_token_id=1, eos_token_id=2,
               torch_dtype={"F32": "float32", "F16": "float16"}[spec["dtype"]])
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    demo = BUILD / "demo-model"
    if not (demo / "tokenizer.model").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_model.py"), str(demo)], check=True)
    for f in ("tokenizer.model", "tokenizer_config.json", "generation_config.json"):
        shutil.copy(demo / f, out / f)
    return out


def to_gguf(folder, spec):
    out = folder / f"model-{spec['dtype'].lower()}.gguf"
    if not out.exists():
        subprocess.run([sys.executable, str(converter()), str(folder), "--outtype", spec["dtype"].lower(),
                        "--outfile", str(out)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def prompt_of(folder, n_tokens):
    """Text whose encoding is BOS + exactly n_tokens - 1 ids, and those ids."""
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    words = (ROOT / "scripts" / "data" / "demo_corpus.txt").read_text().split()
    lo, hi = 1, len(words)
    while lo < hi:  # shortest word prefix with enough tokens
        mid = (lo + hi) // 2
        if len(sp.encode(" ".join(words[:mid]))) + 1 >= n_tokens:
            hi = mid
        else:
            lo = mid + 1
    text = " ".join(words[:lo])
    ids = [1] + sp.encode(text)
    while len(ids) > n_tokens:  # trim characters until the count is exact
        text = text[:-1]
        ids = [1] + sp.encode(text)
    return text, ids


def run_tessera(folder, text, n_decode):
    r = subprocess.run([str(TESSERA), "generate", str(folder), "-p", text, "-n", str(n_decode), "--ignore-eos",
                        "--temperature", "0", "--threads", str(THREADS), "--no-echo"],
                       capture_output=True, text=True, check=True)
    m = re.search(r"prefill: (\d+) tokens in ([\d.]+) s \(([\d.]+) tok/s\); decode: (\d+) tokens in ([\d.]+) s "
                  r"\(([\d.]+) tok/s\)", r.stderr)
    if not m:
        raise RuntimeError("tessera printed no speed line:\n" + r.stderr)
    return int(m[1]), float(m[3]), float(m[6])


class LlamaCpp:
    def __init__(self, gguf):
        import llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(gguf), n_threads=THREADS, n_threads_batch=THREADS,
                                   n_ctx=2048, n_batch=512, n_ubatch=512, verbose=False)

    def run(self, ids, n_decode):
        llm = self.llm
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        t1 = time.perf_counter()
        tok = ids[-1]
        for _ in range(n_decode - 1):
            llm.eval([tok])
        t2 = time.perf_counter()
        return len(ids) / (t1 - t0), (n_decode - 1) / (t2 - t1)


def membw():
    exe = BUILD / "membw"
    subprocess.run(["gcc", "-O3", "-march=native", "-pthread", str(ROOT / "benchmarks" / "membw.c"), "-o",
                    str(exe)], check=True)
    return float(subprocess.run([str(exe), str(THREADS)], capture_output=True, text=True, check=True).stdout)


def main():
    ap = argparse.ArgumentParser(description="tessera vs llama.cpp, single stream, CPU")
    ap.add_argument("--setup", action="store_true", help="create build/bench-venv first")
    ap.add_argument("--quick", action="store_true", help="one repetition, shorter decode")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    args = ap.parse_args()
    if args.setup:
        setup_venv()
    if Path(sys.prefix) != VENV and (VENV / "bin" / "python").exists() and "llama_cpp" not in sys.modules:
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), *sys.argv])
    import llama_cpp
    if not TESSERA.exists():
        subprocess.run(["make", "-C", str(ROOT), "-j2"], check=True)
    reps = 1 if args.quick else args.reps
    bw = membw()
    rows = []
    for name, spec in SHAPES.items():
        folder = write_model(name, spec)
        gguf = to_gguf(folder, spec)
        n_dec = max(8, spec["decode"] // 4) if args.quick else spec["decode"]
        text, ids = prompt_of(folder, spec["prompt"])
        lc = LlamaCpp(gguf)
        lc.run(ids[:16], 4)  # warm-up
        run_tessera(folder, text[:40], 4)
        ours, theirs = {"pp": [], "tg": []}, {"pp": [], "tg": []}
        for _ in range(reps):
            n, pp, tg = run_tessera(folder, text, n_dec)
            assert n == len(ids), f"prompt is {n} tokens for tessera, {len(ids)} for llama.cpp"
            ours["pp"].append(pp), ours["tg"].append(tg)
            pp, tg = lc.run(ids, n_dec)
            theirs["pp"].append(pp), theirs["tg"].append(tg)
        del lc
        wbytes = (folder / "model.safetensors").stat().st_size
        for k, label, target in (("pp", f"prefill pp{len(ids)} tok/s", 0.8), ("tg", f"decode tg{n_dec} tok/s", 1.0)):
            a, b = statistics.median(ours[k]), statistics.median(theirs[k])
            rows.append((name, label, a, b, a / b, target))
        if spec["dtype"] == "F16":
            roof = bw * 1e9 / wbytes
            rows.append((name, "decode roofline (bandwidth / weight bytes)", statistics.median(ours["tg"]), roof,
                         statistics.median(ours["tg"]) / roof, 0.8))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [f"# CPU benchmark, {time.strftime('%Y-%m-%d')}", "",
             f"Machine: {cpu}, {os.cpu_count()} cores, {THREADS} threads each; memory read bandwidth "
             f"{bw:.1f} GB/s ({THREADS} threads). llama-cpp-python {llama_cpp.__version__}; "
             f"{reps} interleaved repetitions, medians.", "",
             "| model | metric | tessera | llama.cpp (or roofline) | ratio | target |", "|---|---|---|---|---|---|"]
    for name, label, a, b, r, t in rows:
        ok = "yes" if r >= t else "NO"
        lines.append(f"| {name} | {label} | {a:.1f} | {b:.1f} | {r:.2f} | >= {t} ({ok}) |")
    report = "\n".join(lines) + "\n"
    print(report)
    Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
