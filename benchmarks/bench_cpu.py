#!/usr/bin/env python3
"""Single-stream CPU speed of `tessera generate`, side by side with llama.cpp.

For each model shape (random weights, real shapes):
  stories15M      F32  hidden 288, 6 layers, 6 heads, vocab 32000, tied, prompt 512 tokens
  tinyllama-1.1B  F16  hidden 2048, 22 layers, GQA 32/4, vocab 32000, prompt 128 tokens
it writes a Hugging Face folder under build/bench-models/, converts it to GGUF
with llama.cpp's own converter (same weights, same dtype), then measures
prefill and decode tokens/s of both engines, interleaved (ours then theirs,
theirs then ours, ...), 2 threads each, and reports medians and the ratio ours / llama.cpp. It
also measures the machine's read bandwidth (benchmarks/membw.c) and the decode
roofline of the F16 model (bandwidth / weight bytes read per token).

Python side: everything runs in build/bench-venv, which the script creates on
first use (a venv over the system site-packages, plus numpy, gguf,
sentencepiece, transformers and llama-cpp-python, which compiles llama.cpp
from source: a long first install on 2 cores). llama.cpp's converter imports torch:
the venv is based on a Python that has it (Debian: python3-torch), else torch
is pip-installed into it (large). See benchmarks/README.md.

usage: python3 benchmarks/bench_cpu.py [--setup] [--quick] [--reps N] [--models a,b] [--out FILE]
"""
import argparse
import fcntl
import json
import os
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
VPY = VENV / "bin" / "python"
TESSERA = BUILD / "tessera"
THREADS = 2
PKGS = ["numpy<2", "gguf", "sentencepiece", "transformers", "llama-cpp-python"]

SHAPES = {
    "stories15M-f32": dict(hidden_size=288, intermediate_size=768, num_hidden_layers=6, num_attention_heads=6,
                           num_key_value_heads=6, vocab_size=32000, max_position_embeddings=1024,
                           tie_word_embeddings=True, dtype="F32", prompt=512, decode=128),
    "tinyllama-1.1B-f16": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                               num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                               max_position_embeddings=2048, tie_word_embeddings=False, dtype="F16",
                               prompt=128, decode=64),
}
TARGETS = {"pp": 0.8, "tg": 1.0, "roof": 0.8}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- environment

def _can_import(python, mod):
    return subprocess.run([python, "-c", f"import {mod}"], capture_output=True).returncode == 0


def setup_venv():
    """Create build/bench-venv (if needed) and install the Python side into it."""
    if not VPY.exists():
        # llama.cpp's converter needs torch: prefer a base Python that has it (Debian's python3-torch).
        bases = [p for p in ("/usr/bin/python3", sys.executable) if Path(p).exists()]
        base = next((p for p in bases if _can_import(p, "torch")), sys.executable)
        log(f"creating {VENV} from {base}")
        subprocess.run([base, "-m", "venv", "--system-site-packages", str(VENV)], check=True)
    pkgs = list(PKGS)
    if not _can_import(str(VPY), "torch"):
        log("no torch visible to the venv: pip-installing it (large download)")
        pkgs.append("torch")
    env = dict(os.environ, CMAKE_ARGS=os.environ.get("CMAKE_ARGS", "-DGGML_NATIVE=ON"),
               CMAKE_BUILD_PARALLEL_LEVEL="2")
    log(f"pip install {' '.join(pkgs)} (llama-cpp-python compiles llama.cpp: slow the first time)")
    subprocess.run(["nice", "-n", "10", str(VPY), "-m", "pip", "install", "-q", *pkgs], check=True, env=env)
    (VENV / ".bench-ok").write_text(" ".join(PKGS) + "\n")


def enter_venv(force_setup):
    """Re-exec the running script (this one, bench_batch.py, ...) inside build/bench-venv, setting it up first
    if needed."""
    inside = Path(sys.prefix).resolve() == VENV.resolve()
    ok = (VENV / ".bench-ok").exists() and (VENV / ".bench-ok").read_text().split() == PKGS
    if force_setup or not ok:
        setup_venv()
    if not inside:
        args = [a for a in sys.argv[1:] if a != "--setup"]
        os.execv(str(VPY), [str(VPY), str(Path(sys.argv[0]).resolve()), *args])


# ---------------------------------------------------------------- models

def tokenizer_source():
    """A folder with the project's 512-piece demo tokenizer (scripts/make_demo_model.py)."""
    for d in (BUILD / "demo-model", MODELS / "_demo"):
        if (d / "tokenizer.model").exists() and (d / "tokenizer_config.json").exists():
            return d
    d = MODELS / "_demo"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_demo_model.py"), str(d)], check=True)
    return d


def weight_names(spec):
    H, I, L = spec["hidden_size"], spec["intermediate_size"], spec["num_hidden_layers"]
    nh, nkv, V = spec["num_attention_heads"], spec["num_key_value_heads"], spec["vocab_size"]
    hd = H // nh
    names = [("model.embed_tokens.weight", (V, H))]
    for l in range(L):
        p = f"model.layers.{l}."
        names += [(p + "input_layernorm.weight", (H,)), (p + "self_attn.q_proj.weight", (nh * hd, H)),
                  (p + "self_attn.k_proj.weight", (nkv * hd, H)), (p + "self_attn.v_proj.weight", (nkv * hd, H)),
                  (p + "self_attn.o_proj.weight", (H, nh * hd)), (p + "post_attention_layernorm.weight", (H,)),
                  (p + "mlp.gate_proj.weight", (I, H)), (p + "mlp.up_proj.weight", (I, H)),
                  (p + "mlp.down_proj.weight", (H, I))]
    names.append(("model.norm.weight", (H,)))
    if not spec["tie_word_embeddings"]:
        names.append(("lm_head.weight", (V, H)))
    return names


def bytes_per_token(spec):
    """Weight bytes a decode step reads: every matrix and norm, one embedding row, the LM head."""
    es = {"F32": 4, "F16": 2}[spec["dtype"]]
    total = 0
    for n, s in weight_names(spec):
        numel = 1
        for d in s:
            numel *= d
        if n == "model.embed_tokens.weight":
            numel = s[1] * (s[0] if spec["tie_word_embeddings"] else 1)  # tied: it is the LM head too
        total += numel * es
    return total


def write_model(name, spec):
    """A random-weight HF folder of the given shape (normal std 0.02, norms 1.0, seed 0)."""
    import numpy as np
    out = MODELS / name
    out.mkdir(parents=True, exist_ok=True)
    st = out / "model.safetensors"
    if not st.exists():
        log(f"{name}: writing random weights")
        names = weight_names(spec)
        npdt = {"F32": np.float32, "F16": np.float16}[spec["dtype"]]
        header, off, es = {}, 0, np.dtype(npdt).itemsize
        for n, s in names:
            nb = int(np.prod(s)) * es
            header[n] = {"dtype": spec["dtype"], "shape": list(s), "data_offsets": [off, off + nb]}
            off += nb
        header["__metadata__"] = {"format": "pt"}
        h = json.dumps(header).encode()
        h += b" " * (-len(h) % 8)
        rng = np.random.default_rng(0)
        tmp = st.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for n, s in names:
                if len(s) == 1:
                    a = np.ones(s, npdt)
                else:
                    a = rng.standard_normal(s, dtype=np.float32)
                    a *= 0.02
                    a = a.astype(npdt, copy=False)
                f.write(a.tobytes())
                del a
        os.replace(tmp, st)
    cfg = {k: v for k, v in spec.items() if k not in ("dtype", "prompt", "decode")}
    cfg.update(architectures=["LlamaForCausalLM"], model_type="llama", rms_norm_eps=1e-5, rope_theta=10000.0,
               hidden_act="silu", bos_token_id=1, eos_token_id=2, attention_bias=False, mlp_bias=False,
               torch_dtype={"F32": "float32", "F16": "float16"}[spec["dtype"]])
    (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    (out / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2}) + "\n")
    src = tokenizer_source()
    shutil.copy(src / "tokenizer.model", out / "tokenizer.model")
    tc = json.loads((src / "tokenizer_config.json").read_text())
    tc["model_max_length"] = spec["max_position_embeddings"]
    (out / "tokenizer_config.json").write_text(json.dumps(tc, indent=1) + "\n")
    return out


# Debian's torch 1.13 lacks dtypes that the converter names in class-level tables (float8_*, uint16..64,
# torch >= 2.1/2.3); none of them occurs in our models, so placeholders are enough to import it.
CONVERT_SHIM = r"""
import os, runpy, sys, torch
for n in ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64"):
    if not hasattr(torch, n):
        setattr(torch, n, type("missing_" + n, (), {})())
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(script))
runpy.run_path(script, run_name="__main__")
"""


def converter():
    """llama.cpp's convert_hf_to_gguf.py from the sdist of the installed llama-cpp-python."""
    import llama_cpp
    ver = llama_cpp.__version__
    top = f"llama_cpp_python-{ver}"
    script = BUILD / top / "vendor" / "llama.cpp" / "convert_hf_to_gguf.py"
    if script.exists():
        return script
    sdist_dir = BUILD / "sdist"
    tarball = sdist_dir / f"{top}.tar.gz"
    if not tarball.exists():
        log(f"downloading the llama-cpp-python {ver} sdist")
        # --no-binary for this package only: with :all: pip also builds the build backend from sources.
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                        "llama-cpp-python", "-d", str(sdist_dir), f"llama-cpp-python=={ver}"], check=True)
    want = (f"{top}/vendor/llama.cpp/convert_hf_to_gguf.py", f"{top}/vendor/llama.cpp/conversion/",
            f"{top}/vendor/llama.cpp/gguf-py/")
    with tarfile.open(tarball) as t:
        members = [m for m in t.getmembers() if m.name.startswith(want) and (m.isfile() or m.isdir())]
        if hasattr(tarfile, "data_filter"):
            t.extractall(BUILD, members=members, filter="data")
        else:  # Debian 12's Python 3.11.2 predates extraction filters
            t.extractall(BUILD, members=members)
    return script


def to_gguf(folder, spec):
    """GGUF of the same weights and dtype, written by llama.cpp's own converter."""
    out = folder / f"model-{spec['dtype'].lower()}.gguf"
    if out.exists() and out.stat().st_mtime >= (folder / "model.safetensors").stat().st_mtime:
        return out
    log(f"{folder.name}: converting to GGUF ({spec['dtype'].lower()})")
    tmp = out.with_suffix(".tmp")
    # The converter uses its vendored gguf-py: the pip gguf package lags it (no LazyChunkedTensor).
    with open(folder / "convert.log", "w") as lf:
        r = subprocess.run(["nice", "-n", "10", sys.executable, "-c", CONVERT_SHIM, str(converter()), str(folder),
                            "--outtype", spec["dtype"].lower(), "--outfile", str(tmp)], stdout=lf, stderr=lf)
    if r.returncode:
        sys.exit(f"bench: GGUF conversion failed; see {folder / 'convert.log'}")
    os.replace(tmp, out)
    return out


def prompt_of(folder, n_tokens):
    """Text from the demo corpus whose encoding is BOS + n_tokens - 1 ids, and those ids."""
    import sentencepiece
    sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    words = (ROOT / "scripts" / "data" / "demo_corpus.txt").read_text().split()
    while len(" ".join(words)) < 20 * n_tokens:
        words = words + words
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
        text = text[:-1].rstrip()
        ids = [1] + sp.encode(text)
    return text, ids


# ---------------------------------------------------------------- engines

SPEED = re.compile(r"prefill: (\d+) tokens in ([\d.]+) s \(([\d.]+) tok/s\); "
                   r"decode: (\d+) tokens in ([\d.]+) s \(([\d.]+) tok/s\)")


def run_tessera(folder, text, n_decode):
    """(prompt tokens, prefill tok/s, decode tok/s) from the speed line on stderr."""
    cmd = [str(TESSERA), "generate", str(folder), "-p", text, "-n", str(n_decode), "--ignore-eos",
           "--temperature", "0", "--threads", str(THREADS), "--no-echo"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    m = SPEED.search(r.stderr)
    if r.returncode or not m:
        sys.exit(f"bench: tessera exited {r.returncode} with no speed line:\n{r.stderr[-2000:]}")
    return int(m[1]), float(m[3]), float(m[6])


class LlamaCpp:
    def __init__(self, gguf):
        import llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(gguf), n_threads=THREADS, n_threads_batch=THREADS,
                                   n_ctx=2048, n_batch=512, n_ubatch=512, verbose=False, logits_all=False)

    def argmax(self):
        import numpy as np
        n = self.llm.n_vocab()
        return int(np.argmax(np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(n,))))

    def run(self, ids, n_decode):
        """(prefill tok/s, decode tok/s): one eval of the prompt, then n_decode - 1 single-token evals with
        greedy argmax, as tessera's decode timer covers n_decode - 1 forwards."""
        llm = self.llm
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(ids)
        t1 = time.perf_counter()
        tok = self.argmax()
        t2 = time.perf_counter()
        for _ in range(n_decode - 1):
            llm.eval([tok])
            tok = self.argmax()
        t3 = time.perf_counter()
        return len(ids) / (t1 - t0), (n_decode - 1) / (t3 - t2)


def membw():
    exe = BUILD / "membw"
    subprocess.run(["gcc", "-O3", "-march=native", "-pthread", str(ROOT / "benchmarks" / "membw.c"), "-o",
                    str(exe)], check=True)
    return float(subprocess.run([str(exe), str(THREADS)], capture_output=True, text=True, check=True).stdout)


def machine():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name"))
    except (OSError, StopIteration):
        name = "?"
    fam = {}
    for l in open("/proc/cpuinfo"):
        k, _, v = l.partition(":")
        if k.strip() in ("cpu family", "model") and k.strip() not in fam:
            fam[k.strip()] = v.strip()
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0) / 2**20
    return f"{name} (family {fam.get('cpu family', '?')} model {fam.get('model', '?')}), " \
           f"{os.cpu_count()} cores, {mem:.0f} GiB"


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description="tessera vs llama.cpp, single stream, CPU, 2 threads")
    ap.add_argument("--setup", action="store_true", help="(re)install the Python side into build/bench-venv")
    ap.add_argument("--quick", action="store_true", help="one repetition, decode lengths / 4")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--models", default=",".join(SHAPES), help="comma list of: " + ", ".join(SHAPES))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.md"))
    args = ap.parse_args()
    out_path = Path(args.out).resolve()
    enter_venv(args.setup)
    import llama_cpp

    BUILD.mkdir(exist_ok=True)
    lock = open(BUILD / "bench.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log("another benchmark run holds build/bench.lock: waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    t_start = time.time()
    if not TESSERA.exists():
        subprocess.run(["make", "-C", str(ROOT), "-j2"], check=True)
    reps = 1 if args.quick else args.reps
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        if n not in SHAPES:
            sys.exit(f"bench: unknown model {n!r}; known: {', '.join(SHAPES)}")

    # Models and GGUFs first, so that the timed part runs back to back.
    prepared = []
    for name in names:
        spec = SHAPES[name]
        folder = write_model(name, spec)
        gguf = to_gguf(folder, spec)
        text, ids = prompt_of(folder, spec["prompt"])
        prepared.append((name, spec, folder, gguf, text, ids))

    load0 = open("/proc/loadavg").read().split()[0]
    log(f"load average before timing: {load0}")
    bw = [membw()]  # sampled again before every repetition: on this VM it moves between runs
    log(f"memory read bandwidth: {bw[0]:.1f} GB/s")
    rows, raw = [], []
    for name, spec, folder, gguf, text, ids in prepared:
        n_dec = max(8, spec["decode"] // 4) if args.quick else spec["decode"]
        log(f"{name}: prompt {len(ids)} tokens, decode {n_dec}, {reps} reps")
        lc = LlamaCpp(gguf)
        lc.run(ids[:16], 4)  # warm-up both (page cache, thread pools)
        run_tessera(folder, text[:40], 4)
        ours, theirs = {"pp": [], "tg": []}, {"pp": [], "tg": []}
        for rep in range(reps):
            bw.append(membw())
            # who runs first alternates: on the VM of benchmarks/README.md an engine ran faster
            # right after another one than right after the bandwidth probe (an order effect)
            if rep % 2:
                pp2, tg2 = lc.run(ids, n_dec)
            n, pp, tg = run_tessera(folder, text, n_dec)
            if n != len(ids):
                sys.exit(f"bench: the prompt is {n} tokens for tessera, {len(ids)} for sentencepiece")
            if rep % 2 == 0:
                pp2, tg2 = lc.run(ids, n_dec)
            ours["pp"].append(pp), ours["tg"].append(tg)
            theirs["pp"].append(pp2), theirs["tg"].append(tg2)
            log(f"  rep {rep + 1} ({'llama.cpp' if rep % 2 else 'tessera'} first): bandwidth {bw[-1]:.1f} GB/s | "
                f"tessera pp {pp:.1f} tg {tg:.1f} | llama.cpp pp {pp2:.1f} tg {tg2:.1f} tok/s")
        del lc
        raw.append((name, ours, theirs))
        for k, label in (("pp", f"prefill pp{len(ids)}"), ("tg", f"decode tg{n_dec}")):
            a, b = statistics.median(ours[k]), statistics.median(theirs[k])
            # the ratio judged is the median of the repetitions' own ratios: a pair runs back to back, so
            # mostly in one bandwidth phase of this VM, where the two medians may each come from another
            paired = statistics.median(x / y for x, y in zip(ours[k], theirs[k]))
            rows.append((name, label + " (tok/s)", a, b, paired, TARGETS[k], "x llama.cpp", a / b))
        if spec["dtype"] == "F16":
            rows.append((name, spec, statistics.median(ours["tg"]), statistics.median(theirs["tg"])))
    bw.append(membw())
    log(f"memory read bandwidth (again): {bw[-1]:.1f} GB/s")
    bwmed = statistics.median(bw)
    final = []
    for r in rows:
        if len(r) == 4:  # roofline row, at the median bandwidth of the run
            name, spec, ours_tg, theirs_tg = r
            bpt = bytes_per_token(spec)
            roof = bwmed * 1e9 / bpt
            final.append((name, f"decode roofline: {bwmed:.1f} GB/s / {bpt / 1e9:.3f} GB of weights per token "
                                f"(tok/s)",
                          ours_tg, roof, ours_tg / roof, TARGETS["roof"], "of roofline", theirs_tg / roof))
        else:
            final.append(r)
    elapsed = time.time() - t_start

    lines = [f"# CPU benchmark: tessera vs llama.cpp ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"- Machine: {machine()}; {THREADS} threads for each engine; load average before timing {load0}.",
             f"- Memory read bandwidth ({THREADS} threads, benchmarks/membw.c, best of 5 passes), sampled "
             f"{len(bw)} times (start, before each repetition, end): median {bwmed:.1f} GB/s, "
             f"min {min(bw):.1f}, max {max(bw):.1f}. The roofline uses the median.",
             f"- llama-cpp-python {llama_cpp.__version__} (llama.cpp built from its sdist, GGML_NATIVE); "
             f"tessera: build/tessera of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(TESSERA.stat().st_mtime))}, "
             f"tree at {git_rev()}.",
             f"- {reps} interleaved repetition(s) (tessera then llama.cpp, llama.cpp then tessera, ...), medians; "
             f"random weights, real shapes; same prompt token ids for both.", "",
             "- ratio: against llama.cpp, the median over repetitions of tessera / llama.cpp within the "
             "repetition (each pair runs back to back); the ratio of the two medians follows the table.", "",
             "| model | metric | tessera | llama.cpp / roofline | ratio | target |", "|---|---|---|---|---|---|"]
    for name, label, a, b, r, t, unit, extra in final:
        ok = "met" if r >= t else "MISSED"
        if unit == "of roofline":
            lines.append(f"| {name} | {label} | {a:.1f} | {b:.1f} | {100 * r:.1f}% | >= {100 * t:.0f}% {unit} ({ok}) |")
        else:
            lines.append(f"| {name} | {label} | {a:.1f} | {b:.1f} | {r:.2f}x | >= {t:.1f}x {unit[2:]} ({ok}) |")
    lines.append("")
    for name, label, a, b, r, t, unit, extra in final:
        if unit == "of roofline":
            lines.append(f"- llama.cpp decode on {name} reaches {100 * extra:.1f}% of the same roofline.")
        else:
            lines.append(f"- {name} {label.split(' (')[0]}: ratio of the medians {extra:.2f}x, tessera faster in "
                         f"{sum(x > y for x, y in pairs_of(raw, name, label))} of {reps} repetitions.")
    lines += ["", "Per repetition (tok/s):", ""]
    for name, ours, theirs in raw:
        lines.append(f"- {name}: tessera prefill {fmt(ours['pp'])}, decode {fmt(ours['tg'])}; "
                     f"llama.cpp prefill {fmt(theirs['pp'])}, decode {fmt(theirs['tg'])}")
    lines.append(f"- bandwidth samples (GB/s): {fmt(bw)}")
    lines.append(f"\nThe run took {elapsed:.0f} s (model files and GGUFs are cached in build/bench-models/).")
    report = "\n".join(lines) + "\n"
    print(report)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(report)
    log(f"wrote {out_path}")


def pairs_of(raw, name, label):
    """(tessera, llama.cpp) per repetition for a table row's model and metric."""
    ours, theirs = next((o, t) for n, o, t in raw if n == name)
    k = "pp" if label.startswith("prefill") else "tg"
    return list(zip(ours[k], theirs[k]))


def fmt(xs):
    return "[" + ", ".join(f"{x:.1f}" for x in xs) + "]"


def git_rev():
    """HEAD, plus '+changes' if the C sources differ from it (read-only: no index refresh is written)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, env=env).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--",
                            "engine", "kernels", "tokenizer", "server", "Makefile"],
                           capture_output=True, text=True, env=env).stdout.strip()
    return (head or "?") + ("+changes" if dirty else "")


if __name__ == "__main__":
    main()
