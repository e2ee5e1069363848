"""Chat on a Llama-3-shaped folder with Llama 3's real tokenizer.json: the
prompt the server renders with the model's Jinja template (/apply-template)
and its ids (/tokenize) equal transformers' apply_chat_template, with and
without tools, and a chat completion runs through the official client.

The model is the random-weight golden llama3-vocab128k-bf16 (128,256 ids,
llama3 RoPE scaling, eos list); the tokenizer is built from the llama-models
package by scripts/make_tokenizers.py (cached under build/tokenizers), with
Llama 3.1's template (dates, tool preamble) and Llama 3.0's."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, Server, request

GOLDEN = ROOT / "tests" / "data" / "golden" / "llama3-vocab128k-bf16"
CACHE = ROOT / "build" / "tokenizers"
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")
CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse.  "}, {"role": "user", "content": " Name a colour."},
     {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Another, café 日本 👍🏽\n\nplease"}],
    [{"role": "user", "content": "Text with <|eot_id|> inside and 12345 digits, it's fine"}],
]
# a tool round trip as the openai client sends it back: the assistant's call
# (arguments a JSON string) and the tool's result
TOOL_HISTORY = [
    {"role": "user", "content": "Weather in Zürich?"},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": "{\"city\": \"Zürich\", \"days\": [1, 2]}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21.5}"},
]


def as_template_sees_it(messages):
    """What transformers' templates get (vLLM converts the same way): the
    arguments of tool calls as objects."""
    out = json.loads(json.dumps(messages))
    for m in out:
        for c in m.get("tool_calls") or []:
            c["function"]["arguments"] = json.loads(c["function"]["arguments"])
        if m.get("content") is None:
            m["content"] = ""
    return out


TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "required": ["city"], "properties": {
        "city": {"type": "string", "description": "City name, e.g. Zürich"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "array", "items": {"type": "integer"}}}}}}]


@pytest.fixture(scope="module", params=["3.1", "3.0"])
def folder(tmp_path_factory, request):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make_tokenizers.py"), str(CACHE), "llama3"], check=True)
    d = tmp_path_factory.mktemp("llama3-" + request.param)
    for f in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(GOLDEN / f, d / f)
    shutil.copy(CACHE / "llama3" / "tokenizer.json", d / "tokenizer.json")
    cfg = json.loads((CACHE / "llama3" / "tokenizer_config.json").read_text())
    if request.param == "3.0":
        cfg["chat_template"] = LLAMA3_TEMPLATE
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    return d


@pytest.fixture(scope="module")
def server(folder):
    s = Server(model=folder, name="llama3")
    yield s
    assert s.stop() == 0, s.logs()


def test_prompt_ids_equal_apply_chat_template(folder, server):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(folder))
    for messages in CONVERSATIONS:
        want = hf.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if not isinstance(want, list):  # transformers 5 returns a BatchEncoding
            want = want["input_ids"]
        status, _, body = request(server.port, "POST", "/tokenize", {"model": "llama3", "messages": messages})
        assert status == 200, body
        assert json.loads(body)["tokens"] == list(want), messages


def test_rendered_prompt_equals_apply_chat_template(folder, server):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(folder))
    for messages in CONVERSATIONS:
        for tools in (None, TOOLS):
            want = hf.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=True)
            body = {"model": "llama3", "messages": messages, **({"tools": tools} if tools else {})}
            status, _, got = request(server.port, "POST", "/apply-template", body)
            assert status == 200, got
            assert json.loads(got)["prompt"] == want, (messages, tools)


def test_tool_history_rendered_as_transformers_renders_it(folder, server):
    from transformers import AutoTokenizer
    hf = AutoTokenizer.from_pretrained(str(folder))
    want = hf.apply_chat_template(as_template_sees_it(TOOL_HISTORY), tools=TOOLS, tokenize=False,
                                  add_generation_prompt=True)
    status, _, got = request(server.port, "POST", "/apply-template",
                             {"model": "llama3", "messages": TOOL_HISTORY, "tools": TOOLS})
    assert status == 200, got
    assert json.loads(got)["prompt"] == want
    if "python_tag" in str(hf.chat_template):  # 3.1: the call is written as its JSON
        assert '{"name": "get_weather", "parameters": {"city": "Zürich", "days": [1, 2]}}' in want


def test_chat_completion_with_the_openai_client(server):
    import openai
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    r = client.chat.completions.create(model="llama3", messages=CONVERSATIONS[1], max_tokens=8, temperature=0)
    assert r.usage.completion_tokens <= 8 and r.usage.prompt_tokens > 20
    assert r.choices[0].finish_reason in ("length", "stop")
    whole = client.chat.completions.create(model="llama3", messages=CONVERSATIONS[0], max_tokens=8, temperature=0)
    chunks = list(client.chat.completions.create(model="llama3", messages=CONVERSATIONS[0], max_tokens=8,
                                                 temperature=0, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content  # streamed pieces add up, whatever bytes random weights pick


def test_forced_tool_call_round_trip_with_the_openai_client(server):
    """A named call on the 128K-vocabulary model (masks over Llama 3's vocabulary), its result sent back in the
    history as the client sends it, and the answer."""
    import jsonschema
    import openai
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "required": ["city", "unit"], "additionalProperties": False, "properties": {
            "city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["celsius", "fahrenheit"]}}}}}
    args = dict(model="llama3", messages=TOOL_HISTORY[:1], tools=[tool], temperature=1, seed=11, max_tokens=200,
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
                extra_body={"structured_outputs": {"disable_any_whitespace": True}})
    r = client.chat.completions.create(**args)
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and m.content is None, m
    jsonschema.validate(json.loads(m.tool_calls[0].function.arguments), tool["function"]["parameters"])
    streamed = [tc for c in client.chat.completions.create(**args, stream=True) if c.choices
                for tc in c.choices[0].delta.tool_calls or []]
    assert streamed[0].function.name == "get_weather"
    assert "".join(tc.function.arguments for tc in streamed) == m.tool_calls[0].function.arguments
    history = TOOL_HISTORY[:1] + [m.model_dump(exclude_none=True),
                                  {"role": "tool", "tool_call_id": m.tool_calls[0].id, "content": "21 degrees"}]
    answer = client.chat.completions.create(model="llama3", messages=history, tools=[tool], max_tokens=6,
                                            temperature=0)
    assert answer.usage.prompt_tokens > r.usage.prompt_tokens and answer.choices[0].finish_reason == "length"
