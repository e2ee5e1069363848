#!/usr/bin/env python3
"""make_seeds.py: writes the seed corpora in tests/fuzz/corpus/ (checked in;
run again after changing this file). Each target's input layout is described
at the top of its fuzz_<name>.c."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# --- oai_request: request bodies, parsed as chat and as completions --------
put("oai_request", "chat_min.json", '{"model":"demo","messages":[{"role":"user","content":"Hello"}]}')
put("oai_request", "chat_full.json", json.dumps({
    "model": "demo",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another, caf\u00e9 \U0001F600"},
    ],
    "max_tokens": 16, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
    "presence_penalty": 0.5, "frequency_penalty": -0.5, "repetition_penalty": 1.1,
    "seed": -9223372036854775808, "n": 2, "stop": ["\n\n", "User:"], "stream": True,
    "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 3,
    "logit_bias": {"1": -100, "42": 2.5}, "user": "u-1", "ignore_eos": False,
}))
put("oai_request", "chat_parts.json", json.dumps({
    "messages": [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": None},
    ],
    "max_completion_tokens": 8, "stop": "END", "stream": False, "stream_options": None,
}))
put("oai_request", "completion_text.json", json.dumps({
    "model": "demo", "prompt": "Once upon a time", "max_tokens": 32, "logprobs": 5, "echo": False,
    "temperature": 0, "seed": 7,
}))
put("oai_request", "completion_ids.json", '{"prompt":[1,403,407,261],"max_tokens":4,"ignore_eos":true}')
put("oai_request", "completion_batch.json", '{"prompt":[[1,2,3],"text",[]],"n":16,"top_k":-1,"stop":null}')
put("oai_request", "bad_values.json",
    '{"messages":[{"role":"tool","content":1}],"prompt":[[511,512]],"temperature":2.5,'
    '"logit_bias":{"-1":0,"x":1,"5":101},"stop":[1],"top_logprobs":3,"n":0}')
put("oai_request", "bad_json.json", '{"messages": [{"role": "user", "content": "unterminated')
put("oai_request", "not_object.json", '[1, 2, 3]')
put("oai_request", "too_many_stops.json", json.dumps({"prompt": "x", "stop": [str(i) for i in range(17)]}))

# --- safetensors: whole files (8-byte little-endian header length, JSON, data)


def st_file(header, data=b"", hlen=None):
    h = json.dumps(header, separators=(",", ":")).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


put("safetensors", "valid.safetensors", st_file({
    "__metadata__": {"format": "pt"},
    "w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    "b": {"dtype": "BF16", "shape": [2], "data_offsets": [16, 20]},
    "h": {"dtype": "F16", "shape": [1, 1, 1, 2], "data_offsets": [20, 24]},
    "s": {"dtype": "F32", "shape": [], "data_offsets": [24, 28]},
    "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [28, 28]},
    "i": {"dtype": "I8", "shape": [4], "data_offsets": [28, 32]},
}, bytes(range(32))))
put("safetensors", "other_dtypes.safetensors", st_file({
    "a": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]},
    "b": {"dtype": "U16", "shape": [2], "data_offsets": [8, 12]},
    "c": {"dtype": "BOOL", "shape": [3], "data_offsets": [12, 15]},
    "d": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [15, 16]},
}, bytes(16)))
put("safetensors", "empty_header.safetensors", st_file({}))
put("safetensors", "bad_offsets.safetensors", st_file(
    {"w": {"dtype": "F32", "shape": [4], "data_offsets": [8, 4]}}, bytes(16)))
put("safetensors", "size_mismatch.safetensors", st_file(
    {"w": {"dtype": "F16", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)))
put("safetensors", "five_dims.safetensors", st_file(
    {"w": {"dtype": "F32", "shape": [1, 1, 1, 1, 1], "data_offsets": [0, 4]}}, bytes(4)))
put("safetensors", "huge_shape.safetensors", st_file(
    {"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 4]}}, bytes(4)))
put("safetensors", "header_too_long.safetensors", st_file({"w": 1}, hlen=1 << 40))
put("safetensors", "truncated.safetensors", b"\x10\x00\x00")
put("safetensors", "not_json.safetensors", st_file(b"{\"w\": [1, 2,"))

# --- tokenizer: a mode byte, then text (0, 3) or 4-byte ids (1, 2) --------


def ids(*xs):
    return b"".join(struct.pack("<i", x) for x in xs)


BYTE = 3  # <0x00> is id 3 in stories260K
put("tokenizer", "encode_story", b"\x00Once upon a time, Lily saw a big dog.\n\"Hi!\" she said.")
put("tokenizer", "encode_utf8", b"\x00caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb6  \t end ")
put("tokenizer", "encode_invalid_utf8", b"\x00\xff\xfe\xc3 \xe2\x82 \xed\xa0\x80 \x00mid-nul")
put("tokenizer", "decode_ids", b"\x01" + ids(1, 403, 407, 261, 378, 2, 0, 511, 512, -1, 1000000, -2147483648))
put("tokenizer", "stream_bytes", b"\x02\x00" + ids(BYTE + 0xF0, BYTE + 0x9F, BYTE + 0x90, BYTE + 0xB6, 403,
                                                    BYTE + 0xE2, BYTE + 0x82, 407, BYTE + 0xC3, BYTE + 0xA9))
put("tokenizer", "stream_context", b"\x02\x03" + ids(1, 403, 407) + ids(261, 378, 432, BYTE + 0xE2, 2, 317))
put("tokenizer", "encode_stream", b"\x03Once upon a time \xf0\x9f\x90\xb6 caf\xc3\xa9.")
put("tokenizer", "utf8_repair", b"\x04\x10ok \xc3\xa9 \xe0\x80\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xf0\x9f\x90\xb6 \xff \xe2\x82")

HF = 5  # mode byte + HF: the same modes on tests/data/bpe-small's tokenizer.json
put("tokenizer", "hf_encode", bytes([HF]) + "Hello  world\t\n日本語 👩‍👩‍👧 <|im_start|>x<tool> y".encode())
put("tokenizer", "hf_decode_ids", bytes([HF + 1]) + ids(0, 1, 2, 100, 255, 256, 599, 600, 602, 603, -1, 1 << 30))
put("tokenizer", "hf_stream_bytes", bytes([HF + 2, 0]) + ids(102, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 125, 131, 200))
put("tokenizer", "hf_encode_stream", bytes([HF + 3]) + "Привет мир 日本語のテキスト caf\u00e9".encode())

# --- tokenizer_json: a tokenizer.json text, loaded, then encoding its own
# bytes and a fixed text
TJ_MODEL = {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "<0x41>": 3, "\u0120": 4, "[UNK]": 5, "c": 6},
            "merges": ["a b", ["ab", "c"]], "unk_token": "[UNK]", "byte_fallback": True, "fuse_unk": True}
TJ_ADDED = [{"id": 7, "content": "<s>", "special": True, "normalized": False, "lstrip": True, "rstrip": True,
             "single_word": False}, {"id": 8, "content": "tool", "special": False, "normalized": True,
             "single_word": True, "lstrip": False, "rstrip": False}]
TJ = [
    ("bytelevel", {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True, "use_regex": True},
                   "decoder": {"type": "ByteLevel"}, "post_processor": {"type": "ByteLevel"}}),
    ("split_seq", {"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"},
                                  {"type": "Strip", "strip_left": True, "strip_right": False}]},
                   "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                       {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}|\\s+(?!\\S)"}, "behavior": "Isolated",
                        "invert": False},
                       {"type": "Digits", "individual_digits": True}, {"type": "Punctuation", "behavior": "Contiguous"},
                       {"type": "Split", "pattern": {"String": "b"}, "behavior": "MergedWithNext", "invert": True}]}}),
    ("metaspace", {"normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                   {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
                   "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first",
                                     "split": True},
                   "decoder": {"type": "Sequence", "decoders": [
                       {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
                       {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
                   "post_processor": {"type": "TemplateProcessing", "single": [
                       {"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                       "special_tokens": {"<s>": {"id": "<s>", "ids": [7], "tokens": ["<s>"]}}}}),
    ("whitespace", {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"},
                                      {"type": "WhitespaceSplit"}]},
                    "decoder": {"type": "Metaspace", "replacement": "\u2581", "add_prefix_space": True},
                    "post_processor": {"type": "Sequence", "processors": [
                        {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 7]}]}}),
]
for name, parts in TJ:
    put("tokenizer_json", name + ".json", json.dumps({"version": "1.0", "added_tokens": TJ_ADDED, "model": TJ_MODEL,
                                                       **parts}, ensure_ascii=False))

# --- stop: n stops, each a length byte + bytes, then pieces likewise -------


def stop_input(stops, pieces):
    out = bytes([len(stops)])
    for s in stops:
        out += bytes([len(s)]) + s
    for p in pieces:
        out += bytes([len(p)]) + p
    return out


put("stop", "split_match", stop_input([b"User:", b"\n\n"], [b"Hello", b" Us", b"er", b": x"]))
put("stop", "near_miss", stop_input([b"abcab"], [b"xab", b"ca", b"bcabx", b"abca"]))
put("stop", "overlapping", stop_input([b"ab", b"bc", b"abcd"], [b"a", b"b", b"c"]))
put("stop", "no_stops", stop_input([], [b"one ", b"two", b"\x00\xff"]))
put("stop", "utf8", stop_input(["\u00e9t\u00e9".encode()], ["caf\u00e9".encode(), "t\u00e9!".encode()]))
put("stop", "empty_stop", stop_input([b"", b"\x00x", b"END"], [b"", b"EN", b"", b"D tail"]))

# --- chat_template: a template up to a 0 byte, then role byte + content\0 ...
SYS, USER, ASST = 0, 1, 2


def chat(template, msgs):
    out = template.encode() + b"\x00"
    for role, content in msgs:
        out += bytes([role]) + content.encode() + b"\x00"
    return out


CONV = [(SYS, "You are kind."), (USER, "  Hi there \n"), (ASST, "Hello! "), (USER, "Tell a story.")]
put("chat_template", "chatml", chat("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                                    "{% endfor %}", CONV))
put("chat_template", "llama2", chat("{{ bos_token + '[INST] ' + '<<SYS>>\\n' + system + '\\n<</SYS>>' }}", CONV))
put("chat_template", "mistral", chat("{{ bos_token }}[INST] {{ m }} [/INST]", CONV))
put("chat_template", "zephyr", chat("<|user|>\n{{ message['content'] }}{{ eos_token }}", CONV[1:]))
put("chat_template", "llama3", chat("<|start_header_id|>{{ role }}<|end_header_id|>\n\n", [(ASST, ""), (USER, "")]))
put("chat_template", "default_system_only", chat("", [(SYS, "only a system message")]))
put("chat_template", "specials_in_content", chat("x", [(USER, "<s></s><|im_end|>[INST]<unk>"), (ASST, "\u00e9\U0001F600")]))

# --- http: what a client sends on one connection ----------------------------
BODY = json.dumps({"model": "m", "prompt": "Once upon a time", "max_tokens": 4, "stream": True, "n": 2})
CHAT = json.dumps({"messages": [{"role": "user", "content": "caf\u00e9"}]})
put("http", "pipelined", "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n{BODY}"
    "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
put("http", "chunked_chat", f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    f"{len(CHAT[:9]):x}\r\n{CHAT[:9]}\r\n{len(CHAT[9:].encode()):x}\r\n{CHAT[9:]}\r\n0\r\n\r\n")
put("http", "head_and_405", "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nHEAD /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n"
    "GET /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
put("http", "bad_utf8_path", b"GET /\xe2\x82 HTTP/1.1\r\nHost: x\r\n\r\nGET /\xff\xc0\xaf HTTP/1.1\r\nHost: x\r\n\r\n")
put("http", "http10_no_host", "GET /health HTTP/1.0\r\n\r\nGET /health HTTP/1.1\r\n\r\n")
put("http", "expect_continue", f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
    f"Content-Length: {len(BODY)}\r\nX-Request-Id: abc\r\n\r\n{BODY}")
put("http", "too_large", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{")
put("http", "bad_json_body", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{\"prompt\": \xff}")

# --- tool_calls: a mode byte (bits 0-1 tool format, 2 small cap, 3-4 reasoning
# rule), then the output's pieces, each a length byte + bytes (fuzz_tool_calls.c)
def tool_input(mode, text, step=7):
    data = text.encode() if isinstance(text, str) else text
    out = bytes([mode])
    for i in range(0, len(data), step):
        out += bytes([len(data[i:i + step])]) + data[i:i + step]
    return out


HERMES, LLAMA3, MISTRAL, R1, QWEN3 = 1, 2, 3, 1 << 3, 2 << 3
put("tool_calls", "hermes_two", tool_input(HERMES | QWEN3,
    "<think>\nweather twice\n</think>\n\nLooking up.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
    "{\"city\": \"Paris\", \"days\": [1, 2]}}\n</tool_call>\n<tool_call>\n{\"name\": \"t\", \"arguments\": {}}\n"
    "</tool_call>"))
put("tool_calls", "hermes_bad", tool_input(HERMES, "<tool_call>{\"name\": 1}</tool_call> <tool_call>{\"name\": \"f\","))
put("tool_calls", "hermes_args_string", tool_input(HERMES | 4,
    "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": \\\"\\u00e9\\\"}\"}</tool_call>", 5))
put("tool_calls", "llama3_two", tool_input(LLAMA3 | R1,
    "plan</think><|python_tag|>{\"name\": \"f\", \"parameters\": {\"x\": 1.5}}; {\"name\": \"g\", \"arguments\": "
    "{\"y\": \"caf\u00e9\"}}", 3))
put("tool_calls", "llama3_text", tool_input(LLAMA3, "{\"answer\": 42} is JSON, not a call"))
put("tool_calls", "mistral_array", tool_input(MISTRAL,
    "[TOOL_CALLS] [{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": [2, \"]\"]}}, {\"name\": \"m\", "
    "\"arguments\": {}}]"))
put("tool_calls", "mistral_v11", tool_input(MISTRAL | 4,
    "Sure.[TOOL_CALLS]add[ARGS]{\"a\": 1}[TOOL_CALLS]mul{\"b\": {\"c\": null}}[TOOL_CALLS]bad name{}", 11))
put("tool_calls", "none_utf8", tool_input(QWEN3, "\u00e9t\u00e9 <think>\U0001F600</think> <tool_call>", 1))

# --- chat_jinja: a template up to a 0 byte, then a JSON context (or message texts split at 0 bytes) ---------
import sys  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "..", "jinja"))
import conversations  # noqa: E402

JINJA_TEMPLATES = ["chatml", "llama-3-instruct", "gemma-it", "mistral-instruct", "llama-2-chat", "phi-3",
                   "llama.cpp/Qwen-Qwen2.5-7B-Instruct", "llama.cpp/Qwen-Qwen3-0.6B", "llama.cpp/moonshotai-Kimi-K2",
                   "llama.cpp/meta-llama-Llama-3.1-8B-Instruct", "llama.cpp/llama-cpp-deepseek-r1",
                   "llama.cpp/meetkai-functionary-medium-v3.1", "llama.cpp/mistralai-Mistral-Nemo-Instruct-2407",
                   "llama.cpp/NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "llama.cpp/GLM-4.6"]
for i, name in enumerate(JINJA_TEMPLATES):
    text = (conversations.TEMPLATES / f"{name}.jinja").read_bytes()
    for seed in range(i * 7, i * 7 + 40):  # the first two contexts small enough to fit next to the template
        ctx = json.dumps(conversations.conversation(seed), ensure_ascii=False, separators=(",", ":")).encode()
        if len(text) + 1 + len(ctx) <= 8192:
            put("chat_jinja", f"{name.replace('llama.cpp/', '')}_{seed}", text + b"\x00" + ctx)
            if seed % 2:
                break
put("chat_jinja", "texts_only", "{% for m in messages %}{{ m.role }}: {{ m.content|trim }}\n{% endfor %}"
    "\x00hi \u00e9\x00hello\x00")
put("chat_jinja", "semantics", "{% set ns = namespace(n=0) %}{% for x in xs if x is number %}{% set ns.n = ns.n + x %}"
    "{{ loop.index }}/{{ loop.length }}{{ loop.previtem }}{% endfor %}{{ ns.n }} {{ xs[::-1] }} {{ xs|tojson(indent=2) }}"
    "{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}{{ 'a b'.split()|join('-') }}"
    "{{ xs|selectattr('k', 'defined')|list }}{{ (1 / 3, 7 // -2, -7 % 3, 1e20, 'x' * 3) }}{{ raise_exception('e') if u }}"
    "\x00" + json.dumps({"xs": [1, 2.5, "s", None, True, {"k": [1]}], "u": False}))
put("chat_jinja", "whitespace", "  {%- if true -%}  a  {%- endif %}\n  {% if 1 %}\nb\n  {% endif %}\n{#- c -#}\n"
    "{%+ if 1 +%}\nd{% endif %}{% raw %}{{ raw }}{% endraw %}\x00{}")

# --- gguf: whole files ("GGUF", version, counts, key/values, tensor infos,
# padding to 32, data), valid ones and their truncations


def gguf_str(s):
    s = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(s)) + s


def gguf_file(kvs, tensors, data, version=3):
    """kvs: [(key, type id, packed value)]; tensors: [(name, ne list, type, offset)]."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gguf_str(k) + struct.pack("<I", t) + v
    for name, ne, t, off in tensors:
        out += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne) + struct.pack("<IQ", t, off)
    out += b"\x00" * (-len(out) % 32)
    return out + data


GGUF_KVS = [
    ("general.architecture", 8, gguf_str("llama")),
    ("llama.block_count", 4, struct.pack("<I", 1)),
    ("llama.attention.layer_norm_rms_epsilon", 6, struct.pack("<f", 1e-5)),
    ("general.alignment", 4, struct.pack("<I", 32)),
    ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 3) + gguf_str("<s>") + gguf_str("a") + gguf_str("")),
    ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 2) + struct.pack("<2f", 0.5, -1)),
    ("tokenizer.ggml.token_type", 9, struct.pack("<IQ", 5, 2) + struct.pack("<2i", 1, 3)),
    ("x.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 0, 2) + b"\x01\x02"),
    ("x.flag", 7, b"\x01"),
    ("x.big", 10, struct.pack("<Q", 1 << 63)),
    ("x.f64", 12, struct.pack("<d", 2.5)),
]
GGUF_TENSORS = [("token_embd.weight", [4, 2], 0, 0), ("blk.0.attn_q.weight", [32, 1], 8, 32),
                ("h", [2], 1, 96), ("b", [2], 30, 128)]
valid = gguf_file(GGUF_KVS, GGUF_TENSORS, bytes(range(132)))
put("gguf", "valid.gguf", valid)
put("gguf", "v2.gguf", gguf_file(GGUF_KVS[:3], GGUF_TENSORS[:1], bytes(32), version=2))
put("gguf", "metadata_only.gguf", gguf_file(GGUF_KVS, [], b""))
for n in (3, 20, 60, len(valid) // 2, len(valid) - 1):
    put("gguf", f"truncated_{n}.gguf", valid[:n])
put("gguf", "lying_offset.gguf", gguf_file(GGUF_KVS[:1], [("w", [8], 0, 4096)], bytes(32)))
put("gguf", "misaligned.gguf", gguf_file(GGUF_KVS[:1], [("w", [4], 0, 8)], bytes(32)))
put("gguf", "unknown_type.gguf", gguf_file(GGUF_KVS[:1], [("w", [4], 99, 0)], bytes(32)))
put("gguf", "huge_counts.gguf", b"GGUF" + struct.pack("<IQQ", 3, 1 << 62, 1 << 62))
