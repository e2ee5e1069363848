"""Deterministic chat-template inputs for tests/jinja and benchmarks/bench_jinja.py: conversations with and
without a system message, one to four turns, content as a string or as a list of text parts, tools with nested
JSON-schema parameters, assistant tool calls (arguments as a dict and as a JSON string), tool results, reasoning,
non-ASCII text, add_generation_prompt, bos/eos tokens and extra keyword arguments (enable_thinking, reasoning_effort,
firefunction-v2's functions and datetime...).

Also the reference renderer: Python's jinja2 exactly as transformers configures it
(transformers.utils.chat_template_utils._compile_jinja_template), with strftime_now's clock fixed to NOW."""
import datetime as _dt
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT.parent / "shared" / "chat_templates"
NOW = 1753358400  # 2025-07-24 12:00 UTC: what strftime_now formats, in both renderers

TEXTS = [
    "Hello!", "What is the capital of France?", "  leading and trailing spaces  ", "line one\nline two\n\nline four",
    "Ünïcödé: héllo wörld, naïve café", "你好，世界。今天天气怎么样？", "emoji 🙂👍🏽 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "quotes ' \" and \\ backslash",
    "tabs\tand\r\nCRLF", "<think>hidden reasoning</think>The answer is 42.", "```python\nprint('hi')\n```",
    "{\"looks\": \"like json\"}", "", "1 + 1 = 2", "Привет, как дела?", "مرحبا بالعالم", "x" * 40,
    "Use the tool please.", "<|im_start|>not a token<|im_end|>", "{{ not jinja }} {% neither %}",
]
REASONING = ["Let me think step by step.", "First, consider the units.\nThen compute.", "考虑一下。"]
TOOL_NAMES = ["get_weather", "search_web", "calculate", "lookup_user"]


def tool_schema(rng, name):
    props = {
        "location": {"type": "string", "description": "City and country, e.g. Paris, France"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit"},
        "days": {"type": "integer", "description": "How many days", "minimum": 1, "maximum": 14},
        "filters": {"type": "object", "description": "Nested options",
                    "properties": {"tags": {"type": "array", "items": {"type": "string"}},
                                   "score": {"type": "number", "default": 0.5}},
                    "required": ["tags"]},
        "verbose": {"type": "boolean"},
        "query": {"type": ["string", "null"], "description": "Texte à chercher"},
    }
    keys = rng.sample(sorted(props), rng.randint(1, 4))
    fn = {"name": name, "description": f"The {name.replace('_', ' ')} tool: does what it says.",
          "parameters": {"type": "object", "properties": {k: props[k] for k in keys},
                         "required": keys[:rng.randint(0, len(keys))]}}
    if rng.random() < 0.2:
        fn["parameters"]["additionalProperties"] = False
    return {"type": "function", "function": fn}


def content(rng):
    text = rng.choice(TEXTS)
    if rng.random() < 0.12:
        parts = [{"type": "text", "text": text}]
        if rng.random() < 0.5:
            parts.append({"type": "text", "text": rng.choice(TEXTS)})
        return parts
    return text


def arguments(rng, schema):
    args = {}
    for k, p in schema["function"]["parameters"]["properties"].items():
        t = p["type"]
        args[k] = {"string": "Paris, France", "integer": 3, "number": 1.5, "boolean": True,
                   "object": {"tags": ["a", "ü"], "score": 0.25}}.get(t if isinstance(t, str) else "string")
        if k == "unit":
            args[k] = "celsius"
    return json.dumps(args, ensure_ascii=False) if rng.random() < 0.4 else args


def assistant_turn(rng, tools, msgs, n_call):
    msg = {"role": "assistant", "content": rng.choice(TEXTS)}
    if rng.random() < 0.25:
        msg["reasoning_content"] = rng.choice(REASONING)
    if tools and rng.random() < 0.6:
        calls = []
        for _ in range(rng.randint(1, 2)):
            t = rng.choice(tools)
            n_call += 1
            calls.append({"id": f"call_{n_call:04d}", "type": "function",
                          "function": {"name": t["function"]["name"], "arguments": arguments(rng, t)}})
        msg["tool_calls"] = calls
        if rng.random() < 0.5:
            msg["content"] = rng.choice(["", None])  # OpenAI clients send null next to tool calls
        msgs.append(msg)
        for c in calls:
            msgs.append({"role": "tool", "tool_call_id": c["id"], "name": c["function"]["name"],
                         "content": rng.choice(['{"temperature": 21.5, "unit": "celsius"}', "No results.", "42",
                                                "Résultat: ok ✓"])})
        msgs.append({"role": "assistant", "content": rng.choice(TEXTS)})
    else:
        msgs.append(msg)
    return n_call


def conversation(seed):
    """One template context (a JSON-able dict), the same for every seed on every machine."""
    rng = random.Random(seed)
    tools = [tool_schema(rng, n) for n in rng.sample(TOOL_NAMES, rng.randint(1, 3))] if rng.random() < 0.4 else None
    msgs, n_call = [], 0
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": content(rng) if rng.random() < 0.8 else "You are helpful."})
    turns = rng.randint(1, 4)
    for t in range(turns):
        msgs.append({"role": "user", "content": content(rng)})
        if t < turns - 1 or rng.random() < 0.3:
            n_call = assistant_turn(rng, tools, msgs, n_call)
    ctx = {"messages": msgs, "tools": tools, "documents": None, "add_generation_prompt": rng.random() < 0.6,
           "bos_token": rng.choice(["<s>", "<|begin_of_text|>", ""]), "eos_token": rng.choice(["</s>", "<|eot_id|>"])}
    if rng.random() < 0.5:
        ctx["enable_thinking"] = rng.random() < 0.5
    if rng.random() < 0.2:
        ctx["reasoning_effort"] = rng.choice(["low", "medium", "high"])
    if rng.random() < 0.2:
        ctx["custom_instructions"] = "Be brief."
    if rng.random() < 0.3:  # firefunction-v2's keyword arguments
        ctx["functions"] = json.dumps([t["function"] for t in tools or []], ensure_ascii=False)
        ctx["datetime"] = "2025-07-24 12:00"
    return json.loads(json.dumps(ctx))  # the types JSON gives (what the C renderer reads)


def templates():
    """Every .jinja file of ../shared/chat_templates (top level and llama.cpp/), sorted."""
    return sorted(TEMPLATES.glob("*.jinja")) + sorted((TEMPLATES / "llama.cpp").glob("*.jinja"))


class _FixedDatetime(_dt.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.fromtimestamp(NOW, tz)


def reference_template(text):
    """The template compiled by transformers' own function, strftime_now reading NOW."""
    from transformers.utils import chat_template_utils as ctu
    ctu.datetime = _FixedDatetime
    return ctu._compile_jinja_template(text)


def reference_render(compiled, ctx):
    """("ok", text) or ("error", message) as Python renders it."""
    try:
        return "ok", compiled.render(**ctx)
    except Exception as e:  # noqa: BLE001 (the message is what we compare)
        return "error", str(e)
