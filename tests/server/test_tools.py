"""Tool calling and reasoning in /v1/chat/completions on stories260K: the
request fields are checked as OpenAI checks them, and a reasoning parser
splits the output into reasoning_content and content the same way streamed
and whole."""
import json

import openai
import pytest

from conftest import Server

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HI = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def r1():
    s = Server("--reasoning-parser", "deepseek_r1")
    yield s
    assert s.stop() == 0, s.logs()


def client_of(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)


@pytest.mark.parametrize("body, param", [
    ({"tools": {"type": "function"}}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools"),
    ({"tools": [{"type": "retrieval", "function": {"name": "f"}}]}, "tools"),
    ({"tools": [TOOL, TOOL]}, "tools"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}, "tools"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tools": [TOOL], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
    ({"tools": [TOOL], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ({"messages": [{"role": "tool", "content": "42"}]}, "messages"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}}]}]},
     "messages"),
    ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "messages"),
])
def test_tool_fields_are_checked(client, body, param):
    extra = {k: v for k, v in body.items() if k != "messages"}
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="stories", messages=body.get("messages", HI), max_tokens=2,
                                       extra_body=extra)
    assert e.value.body["param"] == param, e.value.body


def test_tool_history_and_tools_are_accepted(client):
    # stories260K has no template: the built-in format, whatever the tool fields
    msgs = HI + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    r = client.chat.completions.create(model="stories", messages=msgs, tools=[TOOL], tool_choice="none",
                                       max_tokens=4, temperature=0)
    assert r.choices[0].message.tool_calls is None and r.usage.completion_tokens == 4


def test_reasoning_split_is_the_same_streamed_and_whole(r1):
    c = client_of(r1)
    args = dict(model="stories", messages=HI, max_tokens=12, temperature=1, seed=7)
    whole = c.chat.completions.create(**args)
    m = whole.choices[0].message
    # no </think> in the output: all of it is reasoning (cut while thinking), as vLLM's deepseek_r1 parser says
    assert m.content == "" and m.model_extra["reasoning_content"]
    chunks = list(c.chat.completions.create(**args, stream=True))
    reasoning = "".join(ch.choices[0].delta.model_extra.get("reasoning_content") or "" for ch in chunks if ch.choices)
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert reasoning == m.model_extra["reasoning_content"] and content == ""
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason == "length"


def test_unknown_parser_names_are_refused():
    import subprocess
    from conftest import STORIES, TESSERA
    for flag in ("--tool-call-parser", "--reasoning-parser"):
        p = subprocess.run([str(TESSERA), "serve", str(STORIES), flag, "nope"], capture_output=True, text=True)
        assert p.returncode == 2 and "unknown" in p.stderr and "nope" in p.stderr, p.stderr


@pytest.fixture(scope="module")
def hermes():
    s = Server("--tool-call-parser", "hermes")
    yield s
    assert s.stop() == 0, s.logs()


# a regex makes the random-weight model write Hermes markup, so that the parser of tool_choice "auto" meets it
CALL_RE = r'Sure: <tool_call>\n\{"name": "get_weather", "arguments": \{"city": "[a-z]{1,8}"\}\}\n</tool_call>'


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auto_parses_calls_out_of_the_text_streamed_and_whole(hermes, seed):
    c = client_of(hermes)
    args = dict(model="stories", messages=HI, tools=[TOOL], temperature=1, seed=seed, max_tokens=200,
                extra_body={"structured_outputs": {"regex": CALL_RE}})
    r = c.chat.completions.create(**args)
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and m.content == "Sure: ", m
    (call,) = m.tool_calls
    assert call.function.name == "get_weather" and list(json.loads(call.function.arguments)) == ["city"]
    chunks = [ch for ch in c.chat.completions.create(**args, stream=True) if ch.choices]
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    calls = [tc for ch in chunks for tc in ch.choices[0].delta.tool_calls or []]
    assert content == "Sure: " and "<tool_call>" not in content
    assert calls[0].function.name == "get_weather" and calls[0].id.startswith("call_")
    assert "".join(tc.function.arguments or "" for tc in calls) == call.function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    # tool_choice "none": the same text is content, markup and all
    r = c.chat.completions.create(**{**args, "tool_choice": "none"})
    assert r.choices[0].message.content.startswith("Sure: <tool_call>") and not r.choices[0].message.tool_calls
