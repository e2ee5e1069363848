#!/usr/bin/env python3
"""Serving benchmark for any OpenAI-compatible server (tessera, vLLM, llama.cpp's server, ...).

Sends --num-prompts streamed requests with at most --max-concurrency in flight, arriving as a
Poisson process at --request-rate per second (default: all at once), and measures per request:
TTFT (time to the first streamed token), TPOT (time per output token after the first), ITL (gaps
between streamed tokens) and E2E latency; overall: requests/s, output tokens/s and goodput (requests
meeting every --goodput SLO, per second). Prompts come from a random dataset (--input-len,
--output-len; text from scripts/data/demo_corpus.txt, trimmed to exactly --input-len tokens when
--tokenizer points at a tokenizer.model) or from a ShareGPT-format JSON file (--dataset-path).

Only the Python standard library is needed (asyncio streams speak HTTP/1.1 and SSE directly);
matplotlib, when installed, draws the PNG plots (TTFT CDF; with --sweep, throughput and latency
against concurrency).

  python3 benchmarks/bench_serving.py --base-url http://127.0.0.1:8000 --model demo \\
      --max-concurrency 32 --num-prompts 128 --input-len 128 --output-len 128 --result-file out.json

--side-by-side runs the stories15M-shaped model (benchmarks/bench_cpu.py writes it) under
`tessera serve` and llama-cpp-python's server in turn and writes benchmarks/results_serving.md.
"""
import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- datasets

def random_dataset(n, input_len, output_len, tokenizer, seed):
    words = (ROOT / "scripts" / "data" / "demo_corpus.txt").read_text().split()
    rng = random.Random(seed)
    sp = None
    if tokenizer:
        import sentencepiece
        sp = sentencepiece.SentencePieceProcessor(model_file=tokenizer)
    out = []
    for _ in range(n):
        start = rng.randrange(len(words))
        text = " ".join(words[(start + i) % len(words)] for i in range(input_len))
        if sp:  # BOS + input_len - 1 pieces
            ids = sp.encode(text)[: input_len - 1]
            text = sp.decode(ids)
        out.append((text, output_len))
    return out


def sharegpt_dataset(path, n, output_len, seed):
    data = json.loads(Path(path).read_text())
    rng = random.Random(seed)
    rng.shuffle(data)
    out = []
    for conv in data:
        turns = conv.get("conversations") or conv.get("conversation") or []
        if len(turns) < 2:
            continue
        prompt, reply = turns[0].get("value", ""), turns[1].get("value", "")
        if not prompt:
            continue
        out.append((prompt, output_len or max(4, len(reply.split()))))
        if len(out) == n:
            break
    return out


# ---------------------------------------------------------------- one request

async def one_request(url, model, prompt, max_tokens, chat, api_key, ignore_eos, ban_ids=()):
    """Streams one completion; returns a dict of timings, or the error."""
    u = urlparse(url)
    path = "/v1/chat/completions" if chat else "/v1/completions"
    body = {"model": model, "max_tokens": max_tokens, "stream": True, "temperature": 0,
            "stream_options": {"include_usage": True}}
    if ignore_eos:
        body["ignore_eos"] = True
    if ban_ids:  # servers without ignore_eos (llama-cpp-python's) still honour logit_bias
        body["logit_bias"] = {str(i): -100 for i in ban_ids}
    if chat:
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        body["prompt"] = prompt
    data = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {u.hostname}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nAccept: text/event-stream\r\nConnection: close\r\n")
    if api_key:
        head += f"Authorization: Bearer {api_key}\r\n"
    t0 = time.perf_counter()
    res = {"ttft": None, "itl": [], "e2e": None, "out_tokens": 0, "error": None}
    try:
        reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
        writer.write(head.encode() + b"\r\n" + data)
        await writer.drain()
        status_line = await reader.readline()
        status = int(status_line.split()[1])
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        if status != 200:
            res["error"] = f"HTTP {status}: {(await reader.read())[:200]!r}"
            writer.close()
            return res
        chunked = "chunked" in headers.get("transfer-encoding", "")
        buf, last, usage_tokens, chunks = b"", None, None, 0

        async def read_more():
            if not chunked:
                return await reader.read(65536)
            size_line = await reader.readline()
            size = int(size_line.strip() or b"0", 16)
            if size == 0:
                return b""
            payload = await reader.readexactly(size + 2)
            return payload[:-2]

        done = False
        while not done:
            more = await read_more()
            if not more:
                break
            buf += more
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True
                        break
                    msg = json.loads(payload)
                    if "error" in msg:
                        raise RuntimeError(msg["error"])
                    if msg.get("usage"):
                        usage_tokens = msg["usage"].get("completion_tokens")
                    for ch in msg.get("choices") or []:
                        text = ch.get("text") if not chat else (ch.get("delta") or {}).get("content")
                        if text:
                            now = time.perf_counter()
                            if res["ttft"] is None:
                                res["ttft"] = now - t0
                            else:
                                res["itl"].append(now - last)
                            last = now
                            chunks += 1
        writer.close()
        res["e2e"] = time.perf_counter() - t0
        res["out_tokens"] = usage_tokens if usage_tokens is not None else chunks
        if res["ttft"] is None:
            res["error"] = "no token streamed"
    except Exception as e:  # noqa: BLE001 (reported as the request's error)
        res["error"] = repr(e)
    return res


# ---------------------------------------------------------------- a run

def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    r = p / 100 * (len(xs) - 1)
    lo = int(r)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (r - lo)


def summary(xs):
    return {"mean": statistics.fmean(xs) if xs else float("nan"), "median": pct(xs, 50), "p90": pct(xs, 90),
            "p99": pct(xs, 99)}


async def run(args, dataset, concurrency):
    sem = asyncio.Semaphore(concurrency)
    rng = random.Random(args.seed)

    async def limited(prompt, n):
        async with sem:
            return await one_request(args.base_url, args.model, prompt, n, args.chat, args.api_key, args.ignore_eos,
                                     args.ban_token_ids)

    tasks = []
    t0 = time.perf_counter()
    for prompt, n in dataset:
        tasks.append(asyncio.create_task(limited(prompt, n)))
        if math.isfinite(args.request_rate):
            await asyncio.sleep(rng.expovariate(args.request_rate))
    results = await asyncio.gather(*tasks)
    dur = time.perf_counter() - t0
    ok = [r for r in results if not r["error"]]
    ttft = [r["ttft"] for r in ok]
    tpot = [(r["e2e"] - r["ttft"]) / (r["out_tokens"] - 1) for r in ok if r["out_tokens"] > 1]
    itl = [x for r in ok for x in r["itl"]]
    e2e = [r["e2e"] for r in ok]
    slo = dict(args.goodput or [])
    good = [r for r in ok if r["ttft"] * 1e3 <= slo.get("ttft", math.inf)
            and (r["out_tokens"] <= 1 or (r["e2e"] - r["ttft"]) / (r["out_tokens"] - 1) * 1e3 <= slo.get("tpot", math.inf))
            and r["e2e"] * 1e3 <= slo.get("e2el", math.inf)]
    out_tokens = sum(r["out_tokens"] for r in ok)
    return {"concurrency": concurrency, "num_prompts": len(dataset), "completed": len(ok),
            "failed": len(results) - len(ok), "errors": [r["error"] for r in results if r["error"]][:5],
            "duration_s": dur, "requests_per_s": len(ok) / dur, "output_tokens_per_s": out_tokens / dur,
            "total_output_tokens": out_tokens, "goodput_requests_per_s": len(good) / dur if slo else None,
            "ttft_ms": {k: v * 1e3 for k, v in summary(ttft).items()},
            "tpot_ms": {k: v * 1e3 for k, v in summary(tpot).items()},
            "itl_ms": {k: v * 1e3 for k, v in summary(itl).items()},
            "e2el_ms": {k: v * 1e3 for k, v in summary(e2e).items()}, "ttft_all_s": ttft}


def report(r):
    print(f"concurrency {r['concurrency']}: {r['completed']}/{r['num_prompts']} ok in {r['duration_s']:.2f} s; "
          f"{r['requests_per_s']:.2f} req/s, {r['output_tokens_per_s']:.1f} output tok/s"
          + (f", goodput {r['goodput_requests_per_s']:.2f} req/s" if r["goodput_requests_per_s"] is not None else ""))
    for k in ("ttft_ms", "tpot_ms", "itl_ms", "e2el_ms"):
        d = r[k]
        print(f"  {k[:-3].upper():5s} ms: mean {d['mean']:.1f}  median {d['median']:.1f}  p90 {d['p90']:.1f}  "
              f"p99 {d['p99']:.1f}")
    for e in r["errors"]:
        print("  error:", e)


def plots(results, prefix):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plots)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        xs = sorted(x * 1e3 for x in r["ttft_all_s"])
        ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=f"{r.get('label', '')} c={r['concurrency']}")
    ax.set_xlabel("TTFT (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title("TTFT CDF")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{prefix}_ttft_cdf.png", dpi=100)
    if len({r["concurrency"] for r in results}) > 1:
        fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
        for label in sorted({r.get("label", "") for r in results}):
            rs = sorted((r for r in results if r.get("label", "") == label), key=lambda r: r["concurrency"])
            cs = [r["concurrency"] for r in rs]
            a.plot(cs, [r["output_tokens_per_s"] for r in rs], marker="o", label=label)
            b.plot(cs, [r["ttft_ms"]["median"] for r in rs], marker="o", label=f"{label} TTFT p50")
            b.plot(cs, [r["tpot_ms"]["median"] for r in rs], marker="x", label=f"{label} TPOT p50")
        a.set_xlabel("concurrency")
        a.set_ylabel("output tokens/s")
        b.set_xlabel("concurrency")
        b.set_ylabel("ms")
        a.legend()
        b.legend()
        fig.tight_layout()
        fig.savefig(f"{prefix}_vs_concurrency.png", dpi=100)


def parse_goodput(items):
    out = []
    for it in items or []:
        k, _, v = it.partition(":")
        if k not in ("ttft", "tpot", "e2el"):
            raise SystemExit(f"--goodput: unknown SLO {k!r} (ttft, tpot, e2el; in ms)")
        out.append((k, float(v)))
    return out


def word_tokenizer_model(folder, vocab):
    """The same weights with a word-level SentencePiece tokenizer of exactly `vocab` pieces, so that every id the
    random model samples decodes to text (the 512-piece demo tokenizer leaves most of 32000 ids without any)."""
    import os
    import shutil
    import subprocess
    out = folder.parent / (folder.name + "-words")
    if not (out / "tokenizer.model").exists():
        out.mkdir(exist_ok=True)
        for f in ("config.json", "generation_config.json", "tokenizer_config.json"):
            shutil.copy(folder / f, out / f)
        if not (out / "model.safetensors").exists():
            os.symlink(folder / "model.safetensors", out / "model.safetensors")
        rng = random.Random(0)
        letters = "abcdefghijklmnopqrstuvwxyz"
        words = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(3, 8))) for _ in range(vocab + 4000)})
        lines = [" ".join(rng.choice(words[:vocab]) for _ in range(12)) for _ in range(4000)]
        lines += words  # every word at least once; the first `vocab` words more often
        (out / "corpus.txt").write_text("\n".join(lines) + "\n")
        subprocess.run(["spm_train", f"--input={out / 'corpus.txt'}", f"--model_prefix={out / 'tokenizer'}",
                        "--model_type=word", f"--vocab_size={vocab}", "--character_coverage=1.0", "--unk_id=0",
                        "--bos_id=1", "--eos_id=2", "--pad_id=-1", "--byte_fallback=true", "--minloglevel=2"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pieces = [l.split("\t")[0] for l in (out / "tokenizer.vocab").read_text().splitlines()]
    words = [p.lstrip("\u2581") for p in pieces if p.startswith("\u2581") and len(p) > 1]
    return out, words


def side_by_side(args):
    """tessera serve vs llama-cpp-python's server on the stories15M-shaped model, one after the other."""
    import socket
    import subprocess
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_cpu as bc
    if Path(sys.prefix).resolve() != bc.VENV.resolve():
        bc.enter_venv(False)  # re-executes this script in build/bench-venv
    # llama-cpp-python's server and the plots (numpy stays < 2 for Debian's torch)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "fastapi", "uvicorn", "sse-starlette",
                    "pydantic-settings", "starlette-context", "matplotlib", "numpy<2"], check=True)
    name = "stories15M-f32"
    spec = bc.SHAPES[name]
    folder, words = word_tokenizer_model(bc.write_model(name, spec), spec["vocab_size"])
    gguf = bc.to_gguf(folder, spec)
    if not bc.TESSERA.exists():
        subprocess.run(["make", "-C", str(ROOT), "-j2"], check=True)

    def port():
        with socket.socket() as so:
            so.bind(("127.0.0.1", 0))
            return so.getsockname()[1]

    servers = {
        "tessera": lambda p: [str(bc.TESSERA), "serve", str(folder), "--port", str(p), "--served-model-name", "m",
                              "--threads", str(bc.THREADS)],
        "llama.cpp": lambda p: [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "m",
                                "--n_threads", str(bc.THREADS), "--n_threads_batch", str(bc.THREADS), "--n_ctx",
                                "4096", "--port", str(p), "--host", "127.0.0.1", "--interrupt_requests", "False"],
    }
    args.ban_token_ids = [2]  # EOS: llama-cpp-python's server has no ignore_eos
    rng = random.Random(args.seed)  # every word is one token: BOS + input_len - 1 words
    dataset = [(" ".join(rng.choice(words) for _ in range(args.input_len - 1)), args.output_len)
               for _ in range(args.num_prompts)]
    results = []
    for label, cmd in servers.items():
        p = port()
        log = open(ROOT / "build" / f"serve-bench-{label}.log", "w")
        proc = subprocess.Popen(cmd(p), stdout=log, stderr=subprocess.STDOUT)
        try:
            import urllib.request
            deadline = time.time() + 120
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{p}/v1/models", timeout=1)
                    break
                except OSError:
                    if time.time() > deadline or proc.poll() is not None:
                        raise SystemExit(f"{label} server did not start; see build/serve-bench-{label}.log")
                    time.sleep(0.2)
            args.base_url, args.model = f"http://127.0.0.1:{p}", "m"
            asyncio.run(run(args, dataset[:4], 4))  # warm-up
            r = asyncio.run(run(args, dataset, args.max_concurrency))
            r["label"] = label
            print(f"== {label}")
            report(r)
            results.append(r)
        finally:
            proc.terminate()
            proc.wait(60)
    t, l = results
    lines = [f"# Serving benchmark: tessera vs llama.cpp's server ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
             "", f"- {bc.machine()}; {bc.THREADS} threads per server; model {name} (random weights, F32); "
             f"{args.num_prompts} requests, {args.max_concurrency} concurrent clients, {args.input_len} prompt / "
             f"{args.output_len} output tokens, greedy, streamed; tree at {bc.git_rev()}.",
             "- llama.cpp: llama-cpp-python's OpenAI server (llama_cpp.server), n_ctx 4096, interrupt_requests off "
             "(by default a new request cuts the one streaming); it serves one request at a time.",
             "- EOS is banned with logit_bias on both, so every request generates its full output length.", "",
             "| metric | tessera | llama.cpp | ratio | target |", "|---|---|---|---|---|",
             f"| output tokens/s | {t['output_tokens_per_s']:.1f} | {l['output_tokens_per_s']:.1f} | "
             f"{t['output_tokens_per_s'] / l['output_tokens_per_s']:.2f}x | >= 1.5x |",
             f"| median TTFT (ms) | {t['ttft_ms']['median']:.0f} | {l['ttft_ms']['median']:.0f} | "
             f"{t['ttft_ms']['median'] / l['ttft_ms']['median']:.2f}x | <= 0.7x |",
             f"| median TPOT (ms) | {t['tpot_ms']['median']:.1f} | {l['tpot_ms']['median']:.1f} | | |",
             f"| requests/s | {t['requests_per_s']:.2f} | {l['requests_per_s']:.2f} | | |",
             f"| failed requests | {t['failed']} | {l['failed']} | | |"]
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "benchmarks" / "results_serving.md").write_text(text)
    plots(results, str(ROOT / "benchmarks" / "serving"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8000")
    ap.add_argument("--model", default=None, help="model name (default: the server's first /v1/models entry)")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--chat", action="store_true", help="use /v1/chat/completions")
    ap.add_argument("--num-prompts", type=int, default=128)
    ap.add_argument("--max-concurrency", type=int, default=32)
    ap.add_argument("--sweep", default=None, help="comma list of concurrencies to run in turn (e.g. 1,8,32)")
    ap.add_argument("--request-rate", type=float, default=math.inf, help="requests/s, Poisson (default: inf)")
    ap.add_argument("--input-len", type=int, default=128)
    ap.add_argument("--output-len", type=int, default=128)
    ap.add_argument("--tokenizer", default=None, help="tokenizer.model to make prompts exactly --input-len tokens")
    ap.add_argument("--dataset-path", default=None, help="ShareGPT-format JSON instead of random prompts")
    ap.add_argument("--ignore-eos", action="store_true", help="send ignore_eos (vLLM, tessera)")
    ap.add_argument("--ban-token-ids", type=lambda v: [int(x) for x in v.split(",")], default=[],
                    help="comma list of ids sent with logit_bias -100 (e.g. EOS, to get full-length outputs)")
    ap.add_argument("--goodput", nargs="*", help="SLOs in ms, e.g. ttft:500 tpot:50 e2el:5000")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--result-file", default=None, help="JSON results")
    ap.add_argument("--plot-prefix", default=None, help="write PNG plots with this path prefix")
    ap.add_argument("--label", default="")
    ap.add_argument("--side-by-side", action="store_true",
                    help="run tessera and llama.cpp's server on the stories15M-shaped model, in turn")
    args = ap.parse_args()
    args.goodput = parse_goodput(args.goodput)
    if args.side_by_side:
        side_by_side(args)
        return
    if args.model is None:
        import urllib.request
        req = urllib.request.Request(args.base_url + "/v1/models",
                                     headers={"Authorization": f"Bearer {args.api_key}"} if args.api_key else {})
        args.model = json.load(urllib.request.urlopen(req))["data"][0]["id"]
    if args.dataset_path:
        dataset = sharegpt_dataset(args.dataset_path, args.num_prompts, args.output_len, args.seed)
    else:
        dataset = random_dataset(args.num_prompts, args.input_len, args.output_len, args.tokenizer, args.seed)
    concs = [int(c) for c in args.sweep.split(",")] if args.sweep else [args.max_concurrency]
    results = []
    for c in concs:
        r = asyncio.run(run(args, dataset, c))
        r["label"] = args.label
        report(r)
        results.append(r)
    if args.result_file:
        Path(args.result_file).write_text(json.dumps(results if len(results) > 1 else results[0], indent=1))
    if args.plot_prefix:
        plots(results, args.plot_prefix)


if __name__ == "__main__":
    main()
