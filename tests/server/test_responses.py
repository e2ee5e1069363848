"""The Responses API (/v1/responses) through the official openai client on
stories260K: whole and streamed replies agree, the event sequence, the SDK's
stream helper, previous_response_id, the store (retrieve, delete, its bound
and memory), function tools and text.format, and errors as the SDK's
exception classes."""
import json
import os
import threading
import time
from pathlib import Path

import jsonschema
import openai
import pytest

from conftest import API_KEY, Server, request

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PROMPT = "Once upon a time"
COMPACT = {"structured_outputs": {"disable_any_whitespace": True}}  # short JSON from random weights
WEATHER = {"type": "function", "name": "get_weather", "strict": True, "parameters": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 16},
                                     "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"], "additionalProperties": False}}
LIFECYCLE = ["response.created", "response.in_progress", "response.output_item.added",
             "response.content_part.added"]
TEXT_END = ["response.output_text.done", "response.content_part.done", "response.output_item.done"]


def raw_events(server, body):
    """The (event line, data JSON) pairs of a raw streamed reply, and the raw text."""
    status, headers, data = request(server.port, "POST", "/v1/responses", {**body, "stream": True}, headers=AUTH)
    assert status == 200 and headers["content-type"].startswith("text/event-stream"), data
    text = data.decode()
    events = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        assert lines[0].startswith("event: ") and lines[1].startswith("data: ") and len(lines) == 2, block
        events.append((lines[0][7:], json.loads(lines[1][6:])))
    return events, text


def test_whole_and_streamed_agree(client, server):
    args = dict(model="stories", input=PROMPT, max_output_tokens=24, temperature=0)
    whole = client.responses.create(**args)
    assert whole.object == "response" and whole.id.startswith("resp_") and whole.model == "stories"
    assert whole.status == "incomplete" and whole.incomplete_details.reason == "max_output_tokens"
    msg = whole.output[0]
    assert len(whole.output) == 1 and msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.content[0].type == "output_text" and msg.content[0].annotations == [] and whole.output_text
    u = whole.usage
    assert u.output_tokens == 24 and u.total_tokens == u.input_tokens + 24 and u.input_tokens > 4
    assert whole.max_output_tokens == 24 and whole.temperature == 0 and whole.store is True
    events = list(client.responses.create(**args, stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == whole.output_text and len(deltas) > 1
    assert [e.sequence_number for e in events] == list(range(len(events)))
    types = [e.type for e in events]
    assert types == LIFECYCLE + ["response.output_text.delta"] * len(deltas) + TEXT_END + ["response.incomplete"]
    final = events[-1].response
    assert final.output_text == whole.output_text and final.usage.output_tokens == 24 and final.id != whole.id
    # on the wire: each event line names the data's type, and there is no [DONE]
    raw, text = raw_events(server, {"model": "stories", "input": PROMPT, "max_output_tokens": 4})
    assert all(name == data["type"] for name, data in raw) and "[DONE]" not in text


# greedy stories260K runs to any max_output_tokens: a short schema makes it finish (the grammar ends it)
SHORT = {"format": {"type": "json_schema", "name": "short", "schema": {
    "type": "object", "properties": {"a": {"enum": ["yes", "no"]}}, "required": ["a"], "additionalProperties": False}}}


def test_stream_helper_reaches_the_final_response(client):
    args = dict(model="stories", input=PROMPT, max_output_tokens=400, temperature=0, text=SHORT, extra_body=COMPACT)
    whole = client.responses.create(**args)
    assert whole.status == "completed"  # the helper's final response is response.completed's
    with client.responses.stream(**args) as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_text == "".join(texts) == whole.output_text and final.status == "completed"
    assert final.usage.output_tokens == whole.usage.output_tokens
    # cut by max_output_tokens, it ends in response.incomplete (as OpenAI's does: the helper has no final then)
    with client.responses.stream(**{**args, "max_output_tokens": 5}) as stream:
        last = [e for e in stream][-1]
    assert last.type == "response.incomplete" and last.response.incomplete_details.reason == "max_output_tokens"


def test_completed_when_the_output_ends(client):
    args = dict(model="stories", input=PROMPT, max_output_tokens=400, temperature=0, text=SHORT, extra_body=COMPACT)
    r = client.responses.create(**args)
    assert r.status == "completed" and r.incomplete_details is None and r.usage.output_tokens < 400
    assert json.loads(r.output_text)["a"] in ("yes", "no") and r.output[0].status == "completed"
    events = list(client.responses.create(**args, stream=True))
    assert events[-1].type == "response.completed" and events[-1].response.output_text == r.output_text


def test_previous_response_id_sends_the_whole_history(client):
    turns, history, prev = ["Hi", "Tell me more", "And then?"], [], None
    for i, text in enumerate(turns):
        # the last body is over 16 KiB: prepared on a worker thread, which reads the store under its lock
        pad = {"padding": "x" * 20000} if i == 2 else {}
        r = client.responses.create(model="stories", input=text, previous_response_id=prev, max_output_tokens=6,
                                    temperature=0, instructions="You tell stories.", tool_choice="auto",
                                    extra_body=pad)
        history.append({"role": "user", "content": text})
        # the same conversation as a chat request: the same prompt tokens
        chat = client.chat.completions.create(model="stories", max_tokens=1, messages=[
            {"role": "system", "content": "You tell stories."}, *history])
        assert r.usage.input_tokens == chat.usage.prompt_tokens, (i, r.usage, chat.usage)
        assert r.previous_response_id == prev
        history.append({"role": "assistant", "content": r.output_text})
        prev = r.id
    assert r.usage.input_tokens > 3 * len(turns)


def test_retrieve_and_delete(client, server):
    r = client.responses.create(model="stories", input=PROMPT, max_output_tokens=5, temperature=0,
                                metadata={"k": "v"}, user="u1")
    got = client.responses.retrieve(r.id)
    assert got.model_dump() == r.model_dump() and got.metadata == {"k": "v"} and got.user == "u1"
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.delete(r.id)
    assert r.id in e.value.body["message"]
    status, _, body = request(server.port, "PUT", f"/v1/responses/{r.id}", headers=AUTH)
    assert status == 405, body
    # store: false keeps nothing
    r = client.responses.create(model="stories", input=PROMPT, max_output_tokens=2, store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as e:
        client.responses.create(model="stories", input="x", previous_response_id=r.id, max_output_tokens=2)
    assert e.value.body["param"] == "previous_response_id"
    assert e.value.body["code"] == "previous_response_not_found"


@pytest.mark.parametrize("body, param", [
    ({"input": [{"type": "image_generation_call", "id": "x"}]}, "input"),
    ({"input": [{"type": "message", "role": "robot", "content": "hi"}]}, "input"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "http://x"}]}]}, "input"),
    ({"input": [{"type": "function_call", "call_id": "c1"}]}, "input"),
    ({"input": 7}, "input"),
    ({"input": PROMPT * 400}, "input"),  # longer than the context
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"temperature": 5}, "temperature"),
    ({"tools": [{"type": "web_search"}]}, "tools"),
    ({"tool_choice": {"type": "function"}, "tools": [WEATHER]}, "tool_choice"),
    ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text"),
    ({"metadata": {"k": 1}}, "metadata"),
    ({"store": "yes"}, "store"),
])
def test_errors_name_the_field(client, body, param):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(**{"model": "stories", "input": PROMPT, "max_output_tokens": 2, **body})
    assert e.value.body["param"] == param, e.value.body
    if body.get("input") == PROMPT * 400:
        assert e.value.body["code"] == "context_length_exceeded"


def test_function_call_round_trip(client):
    args = dict(model="stories", input="What is the weather in Oslo?", tools=[WEATHER],
                tool_choice={"type": "function", "name": "get_weather"}, temperature=1, max_output_tokens=300,
                extra_body={**COMPACT, "seed": 3})
    r = client.responses.create(**args)
    assert r.status == "completed" and len(r.output) == 1, r.output
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.status == "completed"
    assert call.id.startswith("fc_") and call.call_id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    assert r.tools[0].name == "get_weather" and r.tool_choice.name == "get_weather"
    # streamed: the arguments' deltas join into the call's arguments
    events = list(client.responses.create(**args, stream=True))
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert "".join(deltas) == done[0].arguments == call.arguments and events[-1].type == "response.completed"
    assert [e.type for e in events if e.type.startswith("response.output_item")] == [
        "response.output_item.added", "response.output_item.done"]
    # the output goes back, by previous_response_id or as items; the model answers in text
    out = [{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"celsius": 21})}]
    a = client.responses.create(model="stories", input=out, previous_response_id=r.id, tools=[WEATHER],
                                temperature=0, max_output_tokens=8)
    items = [{"role": "user", "content": "What is the weather in Oslo?"}, call.model_dump(exclude_none=True)] + out
    b = client.responses.create(model="stories", input=items, tools=[WEATHER], temperature=0, max_output_tokens=8)
    assert a.output[0].type == "message" and a.output_text and a.output_text == b.output_text
    assert a.usage.input_tokens == b.usage.input_tokens


def test_text_format_json_schema(client):
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]},
                                               "why": {"type": "string", "maxLength": 12}},
              "required": ["answer", "why"], "additionalProperties": False}
    fmt = {"format": {"type": "json_schema", "name": "verdict", "schema": schema, "strict": True}}
    for seed in range(3):
        r = client.responses.create(model="stories", input="Is it raining?", text=fmt, temperature=1,
                                    max_output_tokens=200, extra_body={**COMPACT, "seed": seed})
        assert r.status == "completed" and r.text.format.type == "json_schema"
        jsonschema.validate(json.loads(r.output_text), schema)
    r = client.responses.create(model="stories", input="Is it raining?", text={"format": {"type": "json_object"}},
                                temperature=1, max_output_tokens=300, extra_body={**COMPACT, "seed": 1})
    assert r.status != "completed" or isinstance(json.loads(r.output_text), dict)


@pytest.fixture(scope="module")
def r1():
    s = Server("--reasoning-parser", "deepseek_r1")
    yield s
    assert s.stop() == 0, s.logs()


def test_reasoning_item(r1):
    c = openai.OpenAI(base_url=r1.url + "/v1", api_key="none", max_retries=0)
    args = dict(model="stories", input="Hi", max_output_tokens=12, temperature=0, reasoning={"effort": "low"})
    r = c.responses.create(**args)
    # no </think> in the output: all of it is reasoning, cut while thinking (as chat's reasoning_content)
    assert [o.type for o in r.output] == ["reasoning"] and r.output[0].id.startswith("rs_") and r.output_text == ""
    assert r.output[0].content[0].type == "reasoning_text" and r.output[0].content[0].text
    assert r.reasoning.effort == "low" and r.status == "incomplete"
    events = list(c.responses.create(**args, stream=True))
    deltas = [e.delta for e in events if e.type == "response.reasoning_text.delta"]
    assert "".join(deltas) == r.output[0].content[0].text
    assert [e.type for e in events if "reasoning_text.delta" not in e.type] == LIFECYCLE + [
        "response.reasoning_text.done", "response.content_part.done", "response.output_item.done",
        "response.incomplete"]


def test_a_client_that_leaves_aborts_and_stores_nothing(server):
    import socket
    body = json.dumps({"model": "stories", "input": PROMPT, "max_output_tokens": 450, "stream": True,
                       "ignore_eos": True})
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall((f"POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}").encode())
        got = b""
        while b"response.output_text.delta" not in got:
            got += sock.recv(65536)
        assert server.metric("tessera_kv_cache_blocks_used") > 0
    rid = json.loads(got.split(b"data: ", 1)[1].split(b"\n", 1)[0])["response"]["id"]
    deadline = time.time() + 10
    while server.metric("tessera_num_requests_running") and time.time() < deadline:
        time.sleep(0.05)
    assert server.metric("tessera_num_requests_running") == 0 and server.metric("tessera_kv_cache_blocks_used") == 0
    assert request(server.port, "GET", f"/v1/responses/{rid}", headers=AUTH)[0] == 404


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


STORE_SIZE = 1000
SANITIZED = "_san" in os.environ.get("TESSERA_BIN", "")  # make test-san: ASan's quarantine holds freed memory
MORE = 3_000 if SANITIZED else 10_000


@pytest.fixture(scope="module")
def small_store():
    s = Server("--responses-store-size", str(STORE_SIZE), "--max-queue", "100000")
    yield s
    assert s.stop() == 0, s.logs()


def post_many(port, n, threads=8):
    """n stored responses from `threads` keep-alive connections: their ids, in order of completion."""
    import http.client
    ids, lock = [], threading.Lock()
    body = json.dumps({"model": "stories", "input": "Once upon a time there was a little dog",
                       "max_output_tokens": 2, "metadata": {"n": "x" * 64}})

    def run(count):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(count):
            c.request("POST", "/v1/responses", body=body, headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            assert r.status == 200, data
            with lock:
                ids.append(json.loads(data)["id"])
        c.close()
    ts = [threading.Thread(target=run, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(ids) == n
    return ids


def test_store_stays_within_its_bound(small_store):
    s = small_store
    rss0 = rss_kib(s.proc.pid)
    post_many(s.port, 2 * STORE_SIZE)  # the store full, the allocator warm
    rss1 = rss_kib(s.proc.pid)
    t0 = time.time()
    ids = post_many(s.port, MORE)
    took = time.time() - t0
    rss2 = rss_kib(s.proc.pid)
    n, held = s.metric("tessera_responses_stored"), s.metric("tessera_responses_stored_bytes")
    print(f"\nRSS: {rss0} KiB at start, {rss1} KiB with the store full ({2 * STORE_SIZE} responses), "
          f"{rss2} KiB after {MORE} more ({took:.1f} s); the store: {n:.0f} responses, {held / 1024:.0f} KiB")
    assert n == STORE_SIZE and held < STORE_SIZE * 4096
    # the newest STORE_SIZE are kept (completion order is store order, give or take the racing last few)
    kept = sum(request(s.port, "GET", f"/v1/responses/{i}")[0] == 200 for i in ids[-STORE_SIZE + 16:])
    gone = sum(request(s.port, "GET", f"/v1/responses/{i}")[0] == 404 for i in ids[:-STORE_SIZE - 16])
    assert kept == STORE_SIZE - 16 and gone == len(ids) - STORE_SIZE - 16
    # 10,000 more responses through a full store grow the process by less than 8 MiB
    assert SANITIZED or rss2 - rss1 < 8 * 1024, (rss0, rss1, rss2)
