#!/usr/bin/env python3
"""Quantized CPU speed: tessera side by side with llama.cpp on the same GGUF files (a benchmark, not a test).

Model: bench_cpu.py's tinyllama-1.1B-f16 shape (hidden 2048, intermediate 5632, 22 layers, 32/4 heads,
vocab 32000, untied; random normal(0, 0.02) weights, seed 0, the 512-piece demo tokenizer), written
once as an F16 GGUF by scripts/make_gguf.py (plus the tokenizer.ggml.* vocabulary llama.cpp needs, see
scripts/llama_cpp_greedy.py --make-gguf), then quantized by llama.cpp's llama-quantize to Q8_0, Q4_0
and Q4_K_M. Files: build/bench-models/tinyllama-1.1B-gguf/model-{f16,q8_0,q4_0,q4_k_m}.gguf beside
the tokenizer files (tessera is given the .gguf path). llama.cpp: scripts/build_llama_cpp.sh.

Per file, 2 threads per engine, REPS repetitions whose engine order alternates (tessera first, then
llama.cpp first, ...), medians:
  decode    llama-bench -t 2 -p 0 -n 64 (tg64, from an empty context)   |  tessera bench FILE
            --num-prompts 1 --concurrency 1 --input-len 1 --output-len 65: decode_tokens_per_s (64 steps)
  prefill   llama-bench -t 2 -p 128 -n 0 (pp128)                        |  tessera bench --input-len 128
            --output-len 1: 128 / TTFT
  batch-16  llama-batched-bench -npp 128 -ntg 64 -npl 16 (S_TG)          |  tessera bench --num-prompts 16
            --concurrency 16 --input-len 128 --output-len 64: decode_tokens_per_s
  (llama-bench's pp128 and tg64 come from one llama-bench process, -r 1, which sizes its context to
  the test; tessera's single-stream runs get --max-model-len 512 --max-num-seqs 1.)
  bandwidth benchmarks/membw.c (bench_cpu.py's probe: 2 threads, 1 GiB read, best of 5), sampled before
            every repetition and at the end; the roofline uses the median.
  bytes per decoded token: every tensor of the file as stored (all matmul weights at their quantized
            size, norms) except token_embd, of which one row (the untied LM head is read whole).
  roofline  bandwidth / bytes per token; fraction = tok/s * bytes per token / bandwidth.

Targets (table): decode >= 1.1x llama.cpp and >= 0.85 of the roofline, batch-16 decode >= 1.3x llama.cpp,
prefill >= 1.0x llama.cpp and >= 1.5x tessera's own F16 prefill (same run). A tessera run that fails
(e.g. a quantized type it does not load yet) is reported as n/a with its one-line error, not fatal.

usage: .venv/bin/python benchmarks/bench_quant.py [--reps N] [--types f16,q8_0,q4_0,q4_k_m]
                                                  [--no-batch] [--out FILE]
"""
import argparse
import fcntl
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import bench_cpu as bc  # noqa: E402  (model shapes, random weights, membw, machine facts)
import llama_cpp_greedy as lg  # noqa: E402  (GGUF with vocabulary, llama-quantize, build_llama_cpp.sh)

BASE = "tinyllama-1.1B-f16"
GGUF_DIR = bc.MODELS / "tinyllama-1.1B-gguf"
TYPES = {"f16": None, "q8_0": "Q8_0", "q4_0": "Q4_0", "q4_k_m": "Q4_K_M"}
THREADS = bc.THREADS
PP, TG, NPL = 128, 64, 16
TARGET = {"tg": 1.1, "roof": 0.85, "batch": 1.3, "pp": 1.0, "pp_f16": 1.5}


# ---------------------------------------------------------------- files

def prepare():
    """{type: gguf path}: the F16 GGUF from the random-weight folder, then llama-quantize's files."""
    spec = bc.SHAPES[BASE]
    folder = bc.write_model(BASE, spec)
    GGUF_DIR.mkdir(parents=True, exist_ok=True)
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copyfile(folder / f, GGUF_DIR / f)
    f16 = GGUF_DIR / "model-f16.gguf"
    if not f16.exists() or f16.stat().st_mtime < (folder / "model.safetensors").stat().st_mtime:
        bc.log(f"writing {f16}")
        lg.make_gguf_with_vocab(folder, f16)
    files = {"f16": f16}
    for t, q in TYPES.items():
        if q:
            out = GGUF_DIR / f"model-{t}.gguf"
            if not out.exists() or out.stat().st_mtime < f16.stat().st_mtime:
                bc.log(f"llama-quantize {q} -> {out}")
            files[t] = lg.quantize(f16, out, q, THREADS)
    return files


def bytes_per_token(path):
    """(bytes read per decoded token, {type: count} of the 2-D tensors) of a GGUF file."""
    rows = lg.tensor_types(path)
    names = {n for n, *_ in rows}
    total, kinds = 0, {}
    for name, ty, shape, nb in rows:
        if len(shape) == 2:
            kinds[ty] = kinds.get(ty, 0) + 1
        if name == "token_embd.weight" and "output.weight" in names:
            nb //= max(shape)  # one row of [n_embd, n_vocab] (GGUF shape order: ne0 first)
        total += nb
    return total, kinds


# ---------------------------------------------------------------- engines

def one_line(text):
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    err = [l for l in lines if re.search(r"error|fail|unsupported|cannot|invalid|not ", l, re.I)]
    return (err or lines or ["(no output)"])[-1][:300]


def tessera_bench(path, *args):
    """tessera bench's JSON, or (None, one-line error)."""
    cmd = [str(bc.TESSERA), "bench", str(path), "--threads", str(THREADS), "--seed", "0", "--json", *map(str, args)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except subprocess.TimeoutExpired:
        return None, "timed out after 3600 s"
    if r.returncode:
        return None, f"exit {r.returncode}: {one_line(r.stderr or r.stdout)}"
    try:
        return json.loads(r.stdout.strip().splitlines()[-1]), None
    except (ValueError, IndexError):
        return None, f"no JSON line: {one_line(r.stdout + r.stderr)}"


def tessera_single(path):
    """({'tg': tok/s, 'pp': tok/s} with None where it failed, error or None)."""
    out, err = {"tg": None, "pp": None}, None
    j, e = tessera_bench(path, "--num-prompts", 1, "--concurrency", 1, "--input-len", 1, "--output-len", TG + 1,
                         "--max-model-len", 512, "--max-num-seqs", 1)
    if j:
        out["tg"] = j["decode_tokens_per_s"]
    err = err or e
    if e is None:  # a file that does not load fails the same way twice: skip the second run
        j, e = tessera_bench(path, "--num-prompts", 1, "--concurrency", 1, "--input-len", PP, "--output-len", 1,
                             "--max-model-len", 512, "--max-num-seqs", 1)
        if j:
            out["pp"] = PP / (j["ttft_ms"]["p50"] / 1000)
        err = err or e
    return out, err


def tessera_batch(path):
    j, e = tessera_bench(path, "--num-prompts", NPL, "--concurrency", NPL, "--input-len", PP, "--output-len", TG,
                         "--max-num-seqs", NPL)
    return (j["decode_tokens_per_s"] if j else None), e


def llama_single(path):
    """{'tg': tok/s, 'pp': tok/s} from one llama-bench process."""
    cmd = [lg.llama_tool("llama-bench"), "-m", str(path), "-t", str(THREADS), "-p", str(PP), "-n", str(TG),
           "-r", "1", "-o", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        sys.exit(f"bench: llama-bench failed on {path}:\n{r.stderr[-2000:]}")
    out = {}
    for t in json.loads(r.stdout):
        out["pp" if t["n_gen"] == 0 else "tg"] = t["avg_ts"]
    return out


def llama_batch(path):
    """S_TG (decode tok/s of NPL sequences) from llama-batched-bench."""
    ctx = NPL * (PP + TG) + 256
    cmd = [lg.llama_tool("llama-batched-bench"), "-m", str(path), "-t", str(THREADS), "-tb", str(THREADS),
           "-c", str(ctx), "-b", "2048", "-ub", "512", "-npp", str(PP), "-ntg", str(TG), "-npl", str(NPL),
           "--output-format", "jsonl"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        sys.exit(f"bench: llama-batched-bench failed on {path}:\n{r.stderr[-2000:]}")
    text = r.stdout + "\n" + r.stderr  # its LOG lines may go to either stream
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            j = json.loads(line)
            if j.get("pl") == NPL:
                return j["speed_tg"]
    # markdown table: |PP|TG|B|N_KV|T_PP s|S_PP t/s|T_TG s|S_TG t/s|T s|S t/s|
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[0] == str(PP) and cells[2] == str(NPL):
            return float(cells[7])
    sys.exit(f"bench: no S_TG in llama-batched-bench's output:\n{text[-2000:]}")


# ---------------------------------------------------------------- main

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def paired(a, b):
    """Median over repetitions of a / b (each pair ran back to back), None if a side is missing."""
    rs = [x / y for x, y in zip(a, b) if x is not None and y]
    return statistics.median(rs) if rs else None


def f1(x):
    return "n/a" if x is None else f"{x:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--types", default=",".join(TYPES), help="comma list of: " + ", ".join(TYPES))
    ap.add_argument("--no-batch", action="store_true", help="skip the 16-sequence rows (the slowest part)")
    ap.add_argument("--out", default=str(bc.BUILD / "bench-quant.md"))
    args = ap.parse_args()
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    for t in types:
        if t not in TYPES:
            sys.exit(f"bench: unknown type {t!r}; known: {', '.join(TYPES)}")
    if "f16" not in types:
        types.insert(0, "f16")  # tessera's F16 prefill is the reference of the quantized prefill target
    t_start = time.time()
    lg.llama_env()  # build llama.cpp if needed
    if not bc.TESSERA.exists():
        subprocess.run(["make", "-C", str(bc.ROOT), "-j2"], check=True)
    lock = open(bc.BUILD / "bench.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        bc.log("another benchmark run holds build/bench.lock: waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    files = prepare()
    info = {t: bytes_per_token(files[t]) for t in types}

    load0 = open("/proc/loadavg").read().split()[0]
    bc.log(f"load average before timing: {load0}")
    # warm-up: page cache for every file, thread pools
    for t in types:
        llama_single_warm = [lg.llama_tool("llama-bench"), "-m", str(files[t]), "-t", str(THREADS), "-p", "8",
                             "-n", "4", "-r", "1", "-o", "json"]
        subprocess.run(llama_single_warm, capture_output=True)
        tessera_bench(files[t], "--num-prompts", 1, "--concurrency", 1, "--input-len", 8, "--output-len", 4,
                      "--max-model-len", 512, "--max-num-seqs", 1)
    bw = []
    ours = {t: {"tg": [], "pp": [], "batch": []} for t in types}
    theirs = {t: {"tg": [], "pp": [], "batch": []} for t in types}
    errors, loads = {}, []
    for rep in range(args.reps):
        bw.append(bc.membw())
        loads.append(open("/proc/loadavg").read().split()[0])
        bc.log(f"rep {rep + 1}/{args.reps} ({'llama.cpp' if rep % 2 else 'tessera'} first): "
               f"bandwidth {bw[-1]:.1f} GB/s, load average {loads[-1]}")
        for t in types:
            f = files[t]
            order = ("llama", "tessera") if rep % 2 else ("tessera", "llama")
            for who in order:
                if who == "tessera":  # retried every repetition: a failing load exits at once
                    o, e = tessera_single(f)
                    ob, eb = (None, None) if args.no_batch or e else tessera_batch(f)
                    if e or eb:
                        errors[t] = e or eb
                        bc.log(f"  {t}: tessera: {errors[t]}")
                    ours[t]["tg"].append(o["tg"]), ours[t]["pp"].append(o["pp"]), ours[t]["batch"].append(ob)
                else:
                    l = llama_single(f)
                    lb = None if args.no_batch else llama_batch(f)
                    theirs[t]["tg"].append(l["tg"]), theirs[t]["pp"].append(l["pp"]), theirs[t]["batch"].append(lb)
            bc.log(f"  {t}: tessera tg {f1(ours[t]['tg'][-1])} pp {f1(ours[t]['pp'][-1])} "
                   f"b16 {f1(ours[t]['batch'][-1])} | llama.cpp tg {f1(theirs[t]['tg'][-1])} "
                   f"pp {f1(theirs[t]['pp'][-1])} b16 {f1(theirs[t]['batch'][-1])} tok/s")
    bw.append(bc.membw())
    bwmed = statistics.median(bw)
    elapsed = time.time() - t_start

    rows = []  # (model, metric, tessera, other, ratio, target text)

    def target(r, t, unit, pct=False):
        if r is None:
            return f">= {100 * t:.0f}% {unit}" if pct else f">= {t:.1f}x {unit}"
        ok = "met" if r >= t else "MISSED"
        return (f">= {100 * t:.0f}% {unit} ({ok})" if pct else f">= {t:.1f}x {unit} ({ok})")

    f16_pp = ours["f16"]["pp"]
    for t in types:
        name = f"tinyllama-1.1B {t.upper()}"
        bpt, _ = info[t]
        o, l = ours[t], theirs[t]
        r = paired(o["tg"], l["tg"])
        rows.append((name, f"decode tg{TG} (tok/s)", med(o["tg"]), med(l["tg"]), r and f"{r:.2f}x",
                     target(r, TARGET["tg"], "llama.cpp")))
        roof = bwmed * 1e9 / bpt
        fr = med(o["tg"]) / roof if med(o["tg"]) else None
        rows.append((name, f"decode roofline: {bwmed:.1f} GB/s / {bpt / 1e9:.3f} GB per token (tok/s)",
                     med(o["tg"]), roof, fr and f"{100 * fr:.1f}%", target(fr, TARGET["roof"], "of roofline", True)))
        r = paired(o["pp"], l["pp"])
        rows.append((name, f"prefill pp{PP} (tok/s)", med(o["pp"]), med(l["pp"]), r and f"{r:.2f}x",
                     target(r, TARGET["pp"], "llama.cpp")))
        if t == "f16":
            rows.append((name, f"prefill pp{PP}: tessera F16 reference (tok/s)", med(o["pp"]), None, "", ""))
        else:
            r = paired(o["pp"], f16_pp)
            rows.append((name, f"prefill pp{PP} vs tessera F16 prefill (tok/s)", med(o["pp"]), med(f16_pp),
                         r and f"{r:.2f}x", target(r, TARGET["pp_f16"], "tessera F16")))
        if not args.no_batch:
            r = paired(o["batch"], l["batch"])
            rows.append((name, f"batched decode, {NPL} seqs x ({PP} + {TG}) (tok/s)", med(o["batch"]),
                         med(l["batch"]), r and f"{r:.2f}x", target(r, TARGET["batch"], "llama.cpp")))

    sdist = Path(lg.llama_env()["LLAMA_CPP_PYTHONPATH"].split(":")[0]).name
    lines = [f"# Quantized CPU benchmark: tessera vs llama.cpp ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", f"- Machine: {bc.machine()}; {THREADS} threads for each engine; load average before timing {load0}.",
             f"- Memory read bandwidth (benchmarks/membw.c, {THREADS} threads), {len(bw)} samples: median "
             f"{bwmed:.1f} GB/s, min {min(bw):.1f}, max {max(bw):.1f}; the roofline uses the median.",
             f"- llama.cpp: vendored in {sdist} (scripts/build_llama_cpp.sh: Release, GGML_NATIVE); llama-bench "
             f"-p {PP} -n {TG} -r 1, llama-batched-bench -npp {PP} -ntg {TG} -npl {NPL}. tessera: build/tessera "
             f"bench, tree at {bc.git_rev()}.",
             f"- {args.reps} repetition(s), engine order alternating; medians; ratio = median of the per-repetition "
             f"ratios. Files: {GGUF_DIR}.", "",
             "| model | metric | tessera | llama.cpp / roofline | ratio | target |", "|---|---|---|---|---|---|"]
    for name, metric, a, b, r, tg in rows:
        lines.append(f"| {name} | {metric} | {f1(a)} | {f1(b) if b is not None else ''} | {r or 'n/a' if tg else ''} "
                     f"| {tg} |")
    lines.append("")
    for t in types:
        bpt, kinds = info[t]
        lt = med(theirs[t]["tg"])
        lines.append(f"- {t.upper()}: {files[t].stat().st_size / 1e9:.3f} GB file, matrices "
                     f"{', '.join(f'{k} x{v}' for k, v in sorted(kinds.items()))}; {bpt / 1e9:.3f} GB read per "
                     f"token; llama.cpp decode at {100 * lt * bpt / (bwmed * 1e9):.1f}% of the roofline.")
    for t, e in errors.items():
        lines.append(f"- tessera on {t.upper()}: failed in {sum(x is None for x in ours[t]['tg'])} of {args.reps} "
                     f"repetition(s) (n/a where every one failed); last error: {e}")
    lines += ["", "Per repetition (tok/s):", ""]
    for t in types:
        for k in ("tg", "pp", "batch"):
            if args.no_batch and k == "batch":
                continue
            lines.append(f"- {t} {k}: tessera [{', '.join(map(f1, ours[t][k]))}], "
                         f"llama.cpp [{', '.join(map(f1, theirs[t][k]))}]")
    lines.append(f"- bandwidth samples (GB/s): [{', '.join(f'{x:.1f}' for x in bw)}]; load average at the start "
                 f"of each repetition: [{', '.join(loads)}] (other work on the machine skews both engines, llama.cpp's "
                 f"spinning thread pool most)")
    lines.append(f"\nThe run took {elapsed:.0f} s.")
    report = "\n".join(lines) + "\n"
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    bc.log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
