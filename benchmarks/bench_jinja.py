#!/usr/bin/env python3
"""Chat-template rendering speed: tessera's Jinja renderer (tokenizer/jinja) against Python's jinja2 as
transformers configures it, and against transformers' apply_chat_template(tokenize=False).

The case: a 20-message conversation with three tools (tool calls with dict arguments, ipython results,
non-ASCII text) through the Llama 3.1 8B Instruct template (../shared/chat_templates/llama.cpp). tessera:
build/jinja-run --repeat N, which compiles once and times jinja_render alone (no process start, no JSON
parsing); jinja2: the template compiled once by transformers' _compile_jinja_template, render() timed; transformers:
apply_chat_template on the Llama 3 tokenizer folder of scripts/make_tokenizers.py (build/tokenizers/llama3) when
present, else transformers' render_jinja_template (what apply_chat_template calls). All three must give the same
text. Interleaved rounds (ours, jinja2, transformers, again...), each the median of its renders; the median of the
rounds is printed.

usage: .venv/bin/python benchmarks/bench_jinja.py [--repeats 5000] [--rounds 5] [--jinja-run build/jinja-run] [--json]"""
import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "jinja"))
from conversations import NOW, TEMPLATES, reference_template  # noqa: E402

TEMPLATE = TEMPLATES / "llama.cpp" / "meta-llama-Llama-3.1-8B-Instruct.jinja"


def tool(name, desc, props, required):
    return {"type": "function", "function": {"name": name, "description": desc, "parameters": {
        "type": "object", "properties": props, "required": required}}}


def case():
    """The 20 messages, tools and keyword arguments (JSON types only)."""
    tools = [
        tool("get_weather", "Current weather in a city.", {
            "city": {"type": "string", "description": "City name, e.g. Zürich"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, ["city"]),
        tool("search", "Search the web.", {
            "query": {"type": "string"}, "filters": {"type": "object", "properties": {
                "site": {"type": "string"}, "after": {"type": "string", "format": "date"}}}}, ["query"]),
        tool("calculate", "Evaluate an arithmetic expression.", {"expression": {"type": "string"}}, ["expression"]),
    ]
    msgs = [{"role": "system", "content": "You are a helpful assistant. Réponds en français si on te le demande."}]
    cities = ["Paris", "Zürich", "東京", "São Paulo"]
    while len(msgs) < 20:
        i = len(msgs)
        city = cities[i % len(cities)]
        msgs.append({"role": "user", "content": f"What's the weather in {city}? Also, what is {i} * 17?"})
        msgs.append({"role": "assistant", "tool_calls": [{"type": "function", "function": {
            "name": "get_weather", "arguments": {"city": city, "unit": "celsius"}}}]})
        msgs.append({"role": "ipython", "content": json.dumps({"city": city, "temp": 21.5 + i, "sky": "clear ☀"},
                                                              ensure_ascii=False)})
        msgs.append({"role": "assistant", "content": f"It is {21.5 + i} °C and clear in {city}; {i} × 17 = {i * 17}."})
    msgs = msgs[:20]
    return {"messages": msgs, "tools": tools, "documents": None, "add_generation_prompt": True,
            "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}


def bench_ours(exe, text_path, ctx, repeats):
    line = json.dumps({"template": str(text_path), "context": ctx, "now": NOW}, ensure_ascii=False)
    out = subprocess.run([str(exe), "--repeat", str(repeats)], input=line + "\n", capture_output=True, text=True,
                         check=True).stdout
    res = json.loads(out)
    if "ok" not in res:
        raise SystemExit(f"tessera failed: {res}")
    return res["us"], res["ok"]


def median_us(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times), out


def transformers_render(ctx, text):
    """apply_chat_template(tokenize=False) on build/tokenizers/llama3 when present."""
    folder = ROOT / "build" / "tokenizers" / "llama3"
    kwargs = {k: v for k, v in ctx.items() if k not in ("messages", "tools", "documents", "add_generation_prompt")}
    if (folder / "tokenizer.json").exists():
        from transformers import PreTrainedTokenizerFast
        tok = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
        return "apply_chat_template", lambda: tok.apply_chat_template(
            ctx["messages"], tools=ctx["tools"], chat_template=text, add_generation_prompt=True, tokenize=False,
            **kwargs)
    from transformers.utils.chat_template_utils import render_jinja_template
    return "render_jinja_template", lambda: render_jinja_template(
        [ctx["messages"]], tools=ctx["tools"], chat_template=text, add_generation_prompt=True, **kwargs)[0][0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--jinja-run", default=str(ROOT / "build" / "jinja-run"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ctx, text = case(), TEMPLATE.read_text(encoding="utf-8")
    compiled = reference_template(text)
    how, fn = transformers_render(ctx, text)
    # interleaved rounds, so that a load elsewhere on the machine hits all three alike; the median of the
    # rounds' medians
    per = max(args.repeats // args.rounds, 10)
    ours, j2, tf = [], [], []
    for _ in range(args.rounds):
        us, ours_text = bench_ours(args.jinja_run, TEMPLATE, ctx, per)
        ours.append(us)
        us, j2_text = median_us(lambda: compiled.render(**ctx), per)
        j2.append(us)
        us, tf_text = median_us(fn, max(per // 4, 10))
        tf.append(us)
    ours_us, j2_us, tf_us = statistics.median(ours), statistics.median(j2), statistics.median(tf)
    assert ours_text == j2_text, "tessera and jinja2 differ"
    assert tf_text == j2_text, "transformers and jinja2 differ"
    rows = [("tessera (tokenizer/jinja)", ours_us), ("jinja2 3.1 (compiled, render)", j2_us),
            (f"transformers {how}", tf_us)]
    if args.json:
        print(json.dumps({"chars": len(ours_text), "median_us": {n: u for n, u in rows}}))
        return
    print(f"Llama 3.1 template, 20 messages + 3 tools -> {len(ours_text)} characters; median of {args.rounds} "
          f"interleaved rounds of {per} renders ({per // 4 if per >= 40 else 10} for transformers)")
    print(f"{'renderer':36} {'median':>10} {'vs tessera':>11}")
    for name, us in rows:
        print(f"{name:36} {us:8.1f} us {us / ours_us:10.1f}x")


if __name__ == "__main__":
    main()
