"""Structured outputs (response_format, structured_outputs) and forced tool
calls through the official openai client on stories260K (temperature 1, so
the grammar, not the model, keeps the output valid): the SDK's parse() with
Pydantic models, JSON mode, regex and choice, n > 1, logprobs, streaming,
errors naming what they refuse."""
import json
import re
from enum import Enum
from typing import List, Literal, Optional

import jsonschema
import openai
import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, Field

HI = [{"role": "user", "content": "Tell me about a dog."}]
# random weights at temperature 1 like blanks: up to 16 bytes of them between JSON tokens (the default)
# makes outputs long, so most tests ask for compact JSON, as vLLM's option of that name does
COMPACT = {"structured_outputs": {"disable_any_whitespace": True}}


class Color(str, Enum):
    red = "red"
    green = "green"
    blue = "blue"


class Item(BaseModel):
    name: str = Field(max_length=12)
    qty: int = Field(ge=0, le=99)


class Order(BaseModel):  # nested objects, a list, an enum, an optional field, bounds
    id: int
    color: Color
    items: List[Item] = Field(max_length=3)
    note: Optional[str] = Field(max_length=10)
    rush: bool


class Tree(BaseModel):  # a recursive model
    label: str = Field(max_length=6)
    kind: Literal["leaf", "node"]
    child: Optional["Tree"]


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 16},
                                     "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string", "pattern": "^[A-Z][a-z]{2,8}/[A-Z][a-z]{2,8}$"}},
    "required": ["zone"], "additionalProperties": False}}}


@pytest.mark.parametrize("model", [Order, Tree])
def test_parse_returns_objects_every_time(client, model):
    for seed in range(6):
        r = client.chat.completions.parse(model="stories", messages=HI, response_format=model, temperature=1,
                                          seed=seed, max_tokens=450, extra_body=COMPACT)
        assert r.choices[0].finish_reason == "stop", r.choices[0].message.content
        assert isinstance(r.choices[0].message.parsed, model)


def test_json_schema_n_logprobs_and_stream(client):
    schema = to_strict_json_schema(Order)  # what parse() sends
    fmt = {"type": "json_schema", "json_schema": {"name": "order", "schema": schema, "strict": True}}
    r = client.chat.completions.create(model="stories", messages=HI, response_format=fmt, n=3, temperature=1, seed=5,
                                       max_tokens=450, logprobs=True, top_logprobs=2,
                                       extra_body=COMPACT)
    for c in r.choices:
        assert c.finish_reason == "stop"
        jsonschema.validate(json.loads(c.message.content), schema)
        # every token has its entry (the end-of-sequence one too, which adds no text)
        assert "".join(e.token for e in c.logprobs.content[:-1]) == c.message.content
    assert len({c.message.content for c in r.choices}) > 1  # each choice its own draw
    chunks = list(client.chat.completions.create(model="stories", messages=HI, response_format=fmt, temperature=1,
                                                 seed=5, max_tokens=450, stream=True, extra_body=COMPACT))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == r.choices[0].message.content  # the same seed: the same output, streamed


def test_json_object_mode_and_completions(client):
    finished = 0
    for seed in range(4):  # blanks allowed (the default)
        r = client.chat.completions.create(model="stories", messages=HI, response_format={"type": "json_object"},
                                           temperature=1, seed=seed, max_tokens=450)
        if r.choices[0].finish_reason == "stop":
            finished += 1
            assert isinstance(json.loads(r.choices[0].message.content), dict)
        else:  # cut by max_tokens: a prefix of an object
            assert r.choices[0].message.content.startswith("{")
    for seed in range(4):
        r = client.chat.completions.create(model="stories", messages=HI, temperature=1, seed=seed, max_tokens=450,
                                           response_format={"type": "json_schema", "json_schema": {
                                               "name": "order", "schema": to_strict_json_schema(Order)}})
        if r.choices[0].finish_reason == "stop":
            finished += 1
            Order.model_validate_json(r.choices[0].message.content)
            assert re.search(r"[{,:]\s", r.choices[0].message.content)  # the blanks are there
    assert finished >= 2
    c = client.completions.create(model="stories", prompt="Once", temperature=1, seed=1, max_tokens=200,
                                  extra_body={**COMPACT, "response_format": {"type": "json_schema", "json_schema": {
                                      "name": "t", "schema": to_strict_json_schema(Tree)}}})
    assert c.choices[0].finish_reason == "stop"
    Tree.model_validate_json(c.choices[0].text)


def test_regex_and_choice(client):
    for seed in range(5):
        r = client.completions.create(model="stories", prompt="Once", temperature=1, seed=seed, max_tokens=50,
                                      extra_body={"structured_outputs": {"regex": r"[0-9]{3}-[a-z]{2,5}(!|\?)"}})
        assert r.choices[0].finish_reason == "stop" and re.fullmatch(r"[0-9]{3}-[a-z]{2,5}(!|\?)", r.choices[0].text)
        r = client.chat.completions.create(model="stories", messages=HI, temperature=1, seed=seed, max_tokens=50,
                                           extra_body={"structured_outputs": {"choice": ["yes", "no", "maybe so"]}})
        assert r.choices[0].message.content in ("yes", "no", "maybe so")


@pytest.mark.parametrize("extra, param, words", [
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"not": {}}}}},
     "response_format", "'not'"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"a": {"type": "string", "uniqueItems": True}}}}}}, "response_format",
     "'uniqueItems' at /properties/a"),
    ({"response_format": {"type": "xml"}}, "response_format", "json_schema"),
    ({"structured_outputs": {"regex": "a(b"}}, "structured_outputs", "regex"),
    ({"structured_outputs": {"regex": "a", "choice": ["b"]}}, "structured_outputs", "one of"),
    ({"structured_outputs": {"choice": []}}, "structured_outputs", "choice"),
    ({"response_format": {"type": "json_object"}, "structured_outputs": {"regex": "a"}}, "structured_outputs",
     "not both"),
    ({"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}}, "response_format",
     "tool_choice"),
])
def test_refusals_name_the_field(client, extra, param, words):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="stories", messages=HI, max_tokens=4, extra_body=extra)
    assert e.value.body["param"] == param and words in e.value.body["message"], e.value.body


def test_named_tool_call_round_trip(client):
    choice = {"type": "function", "function": {"name": "get_weather"}}
    args = dict(model="stories", messages=HI, tools=[WEATHER, TIME], tool_choice=choice, temperature=1, seed=3,
                max_tokens=300, extra_body=COMPACT)
    r = client.chat.completions.create(**args)
    m = r.choices[0].message
    assert r.choices[0].finish_reason == "tool_calls" and m.content is None and len(m.tool_calls) == 1
    call = m.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])
    # streamed: the first delta of the call carries id, type, name and "", later ones the arguments
    chunks = [c for c in client.chat.completions.create(**args, stream=True) if c.choices]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id.startswith("call_") and calls[0].type == "function" and calls[0].function.arguments == ""
    assert calls[0].function.name == "get_weather" and all(tc.index == 0 for tc in calls)
    assert "".join(tc.function.arguments or "" for tc in calls) == call.function.arguments
    assert all(not c.choices[0].delta.content for c in chunks) and chunks[-1].choices[0].finish_reason == "tool_calls"
    # the result goes back; the model answers in text
    history = HI + [m.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21})}]
    answer = client.chat.completions.create(model="stories", messages=history, tools=[WEATHER, TIME],
                                            temperature=0, max_tokens=8)
    assert answer.choices[0].message.content and answer.choices[0].message.tool_calls is None


def test_required_tool_calls(client):
    finished = 0
    for seed, parallel in [(1, True), (2, True), (3, False), (4, False), (5, False)]:
        r = client.chat.completions.create(model="stories", messages=HI, tools=[WEATHER, TIME], tool_choice="required",
                                           parallel_tool_calls=parallel, temperature=1, seed=seed, max_tokens=450,
                                           extra_body=COMPACT)
        m = r.choices[0].message
        if parallel and r.choices[0].finish_reason == "length":
            # random weights may go on adding calls to the list: cut, it is returned as text, never an error
            assert m.content.startswith('[{"name":') and not m.tool_calls
            continue
        assert r.choices[0].finish_reason == "tool_calls", m.content
        assert m.tool_calls and (parallel or len(m.tool_calls) == 1)
        finished += parallel
        for call in m.tool_calls:
            tool = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]
            jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])
        assert len({c.id for c in m.tool_calls}) == len(m.tool_calls)


def test_stop_strings_cut_constrained_output(client):
    r = client.chat.completions.create(model="stories", messages=HI, temperature=1, seed=1, max_tokens=50,
                                       stop=["-"], extra_body={"structured_outputs": {"regex": r"[a-z]{3}-[0-9]{2}"}})
    c = r.choices[0]
    assert c.finish_reason == "stop" and re.fullmatch(r"[a-z]{3}", c.message.content), c
