#!/usr/bin/env python3
"""Batched CPU throughput: `tessera bench` side by side with llama.cpp's batched decoding.

For each model (the shapes of bench_cpu.py, same random weights and GGUF files) and each
concurrency C (default 1, 4, 16): C sequences of 128 random prompt tokens each generate 64
tokens, greedy, all in flight at once, 2 threads per engine, repetitions interleaved
(tessera then llama.cpp, llama.cpp then tessera, ...), medians.

  tessera:   build/tessera bench DIR --num-prompts C --concurrency C --input-len 128
             --output-len 64 --threads 2 --json
  llama.cpp: what llama-batched-bench does, through llama-cpp-python's low-level API: one
             context with C sequences, every prompt prefilled in one batch (n_batch 2048,
             n_ubatch 512), then 64 steps that decode one token of every sequence in one
             batch, greedy argmax per sequence.

Reported per engine: end-to-end output tokens/s (C * 64 over prefill + decode time) and the
decode-phase rate once every prompt is in (llama-batched-bench's S_TG). The issue's target
is on the decode rate at C = 16 (>= 1.5x llama.cpp), and tessera at 16 >= 4x tessera at 1.

usage: python3 benchmarks/bench_batch.py [--reps N] [--models a,b] [--conc 1,4,16] [--out FILE]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_cpu as bc  # noqa: E402  (models, GGUF conversion, venv, machine facts)

PROMPT, OUTPUT = 128, 64


def random_prompts(c, vocab, seed):
    import numpy as np
    rng = np.random.default_rng(seed)
    return [[1] + [int(x) for x in rng.integers(3, vocab, PROMPT - 1)] for _ in range(c)]


def run_tessera(folder, c):
    cmd = [str(bc.TESSERA), "bench", str(folder), "--num-prompts", str(c), "--concurrency", str(c),
           "--input-len", str(PROMPT), "--output-len", str(OUTPUT), "--threads", str(bc.THREADS), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode:
        sys.exit(f"bench: tessera bench exited {r.returncode}:\n{r.stderr[-2000:]}")
    j = json.loads(r.stdout.strip().splitlines()[-1])
    return j["output_tokens_per_s"], j["decode_tokens_per_s"]


class LlamaBatched:
    def __init__(self, gguf, c):
        import llama_cpp as L
        self.L = L
        L.llama_backend_init()
        mp = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(str(gguf).encode(), mp)
        cp = L.llama_context_default_params()
        cp.n_ctx = c * (PROMPT + OUTPUT + 64)
        cp.n_batch = max(2048, c * PROMPT)
        cp.n_ubatch = 512
        cp.n_seq_max = c
        cp.n_threads = cp.n_threads_batch = bc.THREADS
        self.ctx = L.llama_init_from_model(self.model, cp)
        self.c = c
        self.vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(cp.n_batch, 0, c)

    def close(self):
        L = self.L
        L.llama_batch_free(self.batch)
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)

    def _decode(self, items):
        """items: (token, pos, seq, want_logits); returns the batch indices with logits."""
        b = self.batch
        for i, (tok, pos, seq, out) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = tok, pos, 1, out
            b.seq_id[i][0] = seq
        b.n_tokens = len(items)
        if self.L.llama_decode(self.ctx, b) != 0:
            sys.exit("bench: llama_decode failed")

    def _argmax(self, i):
        import numpy as np
        return int(np.argmax(np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, i), shape=(self.vocab,))))

    def run(self, prompts):
        """(end-to-end output tok/s, decode-phase tok/s)."""
        L = self.L
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        t0 = time.perf_counter()
        items = [(tok, p, s, p == len(pr) - 1) for s, pr in enumerate(prompts) for p, tok in enumerate(pr)]
        self._decode(items)
        last = [i for i, it in enumerate(items) if it[3]]
        toks = [self._argmax(i) for i in last]
        t1 = time.perf_counter()
        for step in range(OUTPUT - 1):
            self._decode([(toks[s], PROMPT + step, s, True) for s in range(self.c)])
            toks = [self._argmax(s) for s in range(self.c)]
        t2 = time.perf_counter()
        return self.c * OUTPUT / (t2 - t0), self.c * (OUTPUT - 1) / (t2 - t1)


def main():
    ap = argparse.ArgumentParser(description="tessera vs llama.cpp, batched decoding, CPU, 2 threads")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--models", default=",".join(bc.SHAPES))
    ap.add_argument("--conc", default="1,4,16")
    ap.add_argument("--out", default=str(bc.ROOT / "benchmarks" / "results_batch.md"))
    args = ap.parse_args()
    bc.enter_venv(False)
    if not bc.TESSERA.exists():
        subprocess.run(["make", "-C", str(bc.ROOT), "-j2"], check=True)
    concs = [int(x) for x in args.conc.split(",")]
    t_start = time.time()
    lines = [f"# Batched CPU benchmark: tessera vs llama.cpp ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", f"- {bc.machine()}; 2 threads for each engine; {PROMPT} prompt + {OUTPUT} generated tokens per "
             f"sequence, all sequences in flight at once, greedy; {args.reps} interleaved repetitions, medians.",
             f"- load average before timing {open('/proc/loadavg').read().split()[0]}; tree at {bc.git_rev()}.", "",
             "| model | sequences | tessera out tok/s | llama.cpp out tok/s | ratio | tessera decode tok/s "
             "| llama.cpp decode tok/s (S_TG) | ratio |", "|---|---|---|---|---|---|---|---|"]
    for name in [n.strip() for n in args.models.split(",") if n.strip()]:
        spec = bc.SHAPES[name]
        folder = bc.write_model(name, spec)
        gguf = bc.to_gguf(folder, spec)
        for c in concs:
            prompts = random_prompts(c, spec["vocab_size"], 0)
            llama = LlamaBatched(gguf, c)
            run_tessera(folder, c), llama.run(prompts)  # warm-up
            ours, theirs = [], []
            for rep in range(args.reps):  # who runs first alternates, as in bench_cpu.py
                if rep % 2:
                    theirs.append(llama.run(prompts))
                ours.append(run_tessera(folder, c))
                if rep % 2 == 0:
                    theirs.append(llama.run(prompts))
            llama.close()
            o_e2e, o_dec = statistics.median(x[0] for x in ours), statistics.median(x[1] for x in ours)
            t_e2e, t_dec = statistics.median(x[0] for x in theirs), statistics.median(x[1] for x in theirs)
            bc.log(f"{name} x{c}: tessera {o_e2e:.1f} / {o_dec:.1f}, llama.cpp {t_e2e:.1f} / {t_dec:.1f} tok/s")
            lines.append(f"| {name} | {c} | {o_e2e:.1f} | {t_e2e:.1f} | {o_e2e / t_e2e:.2f}x | {o_dec:.1f} | "
                         f"{t_dec:.1f} | {o_dec / t_dec:.2f}x |")
    lines += ["", f"The run took {time.time() - t_start:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
