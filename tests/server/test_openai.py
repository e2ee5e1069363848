"""The server through the official openai package: replies, streams, stop strings, n, logprobs, errors, CORS."""
import json

import openai
import pytest

from conftest import API_KEY, ORIGIN, Server, request

PROMPT = "Once upon a time"
CHAT = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me a story"}]


def tokenize(server, body):
    status, _, data = request(server.port, "POST", "/tokenize", body=body,
                              headers={"Authorization": f"Bearer {API_KEY}"})
    assert status == 200
    return json.loads(data)["tokens"]


def stream_chunks(client, **kw):
    return list(client.chat.completions.create(model="stories", stream=True, **kw))


def test_models_and_health(server, client):
    models = client.models.list().data
    assert [m.id for m in models] == ["stories"]
    assert request(server.port, "GET", "/health")[0] == 200


def test_completion_reply_and_usage(client):
    r = client.completions.create(model="stories", prompt=PROMPT, max_tokens=20, temperature=0)
    assert r.object == "text_completion"
    assert r.id.startswith("cmpl-")
    assert len(r.choices) == 1 and r.choices[0].index == 0
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].text.startswith(", there was a little girl")
    assert r.usage.completion_tokens == 20
    assert r.usage.prompt_tokens == 5
    assert r.usage.total_tokens == 25


def test_completion_prompt_forms(server, client):
    text = client.completions.create(model="stories", prompt=PROMPT, max_tokens=8, temperature=0).choices[0].text
    ids = tokenize(server, {"prompt": PROMPT})
    by_ids = client.completions.create(model="stories", prompt=ids, max_tokens=8, temperature=0)
    assert by_ids.choices[0].text == text
    many = client.completions.create(model="stories", prompt=[PROMPT, "The cat"], max_tokens=8, temperature=0)
    assert [c.index for c in many.choices] == [0, 1]
    assert many.choices[0].text == text


def test_chat_reply(client):
    r = client.chat.completions.create(model="stories", messages=CHAT, max_tokens=16, temperature=0)
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 16


def test_chat_content_parts(client):
    parts = [{"role": "user", "content": [{"type": "text", "text": "Tell me"}, {"type": "text", "text": "a story"}]}]
    r = client.chat.completions.create(model="stories", messages=parts, max_tokens=4, temperature=0)
    assert r.usage.completion_tokens == 4


def test_chat_stream_chunks_field_by_field(client):
    chunks = stream_chunks(client, messages=CHAT, max_tokens=12, temperature=0,
                           stream_options={"include_usage": True})
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert len({c.created for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" and c.model == "stories" for c in chunks)
    first, last, usage = chunks[0], chunks[-2], chunks[-1]
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    assert first.choices[0].finish_reason is None
    middle = chunks[1:-2]
    assert middle and all(c.choices[0].delta.content and c.choices[0].finish_reason is None for c in middle)
    assert all(c.usage is None for c in chunks[:-1])
    assert last.choices[0].finish_reason == "length"
    assert last.choices[0].delta.content is None
    assert usage.choices == [] and usage.usage.completion_tokens == 12
    whole = client.chat.completions.create(model="stories", messages=CHAT, max_tokens=12, temperature=0)
    assert usage.usage.prompt_tokens == whole.usage.prompt_tokens
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == whole.choices[0].message.content


def test_completion_stream(client):
    chunks = list(client.completions.create(model="stories", prompt=PROMPT, max_tokens=10, temperature=0,
                                            stream=True))
    assert all(c.object == "text_completion" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "length"
    whole = client.completions.create(model="stories", prompt=PROMPT, max_tokens=10, temperature=0)
    assert "".join(c.choices[0].text for c in chunks) == whole.choices[0].text


def test_streamed_text_equals_whole_text_with_seed(client):
    kw = dict(model="stories", prompt=PROMPT, max_tokens=40, temperature=0.9, seed=1234)
    whole = client.completions.create(**kw).choices[0].text
    again = client.completions.create(**kw).choices[0].text
    streamed = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw))
    assert whole == again == streamed
    other = client.completions.create(**{**kw, "seed": 99}).choices[0].text
    assert other != whole


@pytest.mark.parametrize("stop", [" girl", ["zzz", "little g"], "ay outs"])
def test_stop_strings_never_leak(client, stop):
    full = client.completions.create(model="stories", prompt=PROMPT, max_tokens=40, temperature=0).choices[0].text
    stops = [stop] if isinstance(stop, str) else stop
    cut = min(full.find(s) for s in stops if s in full)
    kw = dict(model="stories", prompt=PROMPT, max_tokens=40, temperature=0, stop=stop)
    whole = client.completions.create(**kw)
    assert whole.choices[0].text == full[:cut]
    assert whole.choices[0].finish_reason == "stop"
    pieces = [c.choices[0].text for c in client.completions.create(stream=True, **kw)]
    streamed = "".join(pieces)
    assert streamed == full[:cut]
    assert not any(s in streamed for s in stops)


def test_n_choices(client):
    r = client.chat.completions.create(model="stories", messages=CHAT, max_tokens=10, temperature=1.0, n=3, seed=5)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert r.usage.completion_tokens == 30
    chunks = stream_chunks(client, messages=CHAT, max_tokens=10, temperature=1.0, n=3, seed=5)
    for i in range(3):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
        assert text == r.choices[i].message.content


def test_logprobs(client):
    r = client.chat.completions.create(model="stories", messages=CHAT, max_tokens=6, temperature=0, logprobs=True,
                                       top_logprobs=3)
    content = r.choices[0].logprobs.content
    assert len(content) == 6
    for e in content:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        assert e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob
        assert e.token == e.top_logprobs[0].token  # greedy
        assert bytes(e.bytes).decode("utf-8", "replace")
    c = client.completions.create(model="stories", prompt=PROMPT, max_tokens=5, temperature=0, logprobs=2)
    lp = c.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    assert "".join(lp.tokens) == c.choices[0].text
    assert lp.text_offset[0] == 0


def test_streamed_logprobs_add_up_to_the_whole_reply(client):
    args = dict(model="stories", messages=CHAT, max_tokens=6, temperature=0, logprobs=True, top_logprobs=2)
    whole = client.chat.completions.create(**args).choices[0].logprobs.content
    chunks = list(client.chat.completions.create(**args, stream=True))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in whole] and len(whole) == 6
    args = dict(model="stories", prompt=PROMPT, max_tokens=5, temperature=0, logprobs=1)
    whole = client.completions.create(**args).choices[0].logprobs
    chunks = list(client.completions.create(**args, stream=True))
    assert [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.tokens] == whole.tokens


def test_logit_bias_forces_a_token(server, client):
    tid = tokenize(server, {"prompt": "cat", "add_special_tokens": False})[0]
    r = client.completions.create(model="stories", prompt=PROMPT, max_tokens=3, temperature=0,
                                  logit_bias={str(tid): 100}, logprobs=0)
    status, _, data = request(server.port, "POST", "/detokenize", body={"tokens": [tid]},
                              headers={"Authorization": f"Bearer {API_KEY}"})
    piece = json.loads(data)["prompt"]
    assert piece.strip() and r.choices[0].logprobs.tokens[0].strip() == piece.strip()
    plain = client.completions.create(model="stories", prompt=PROMPT, max_tokens=3, temperature=0, logprobs=0)
    assert plain.choices[0].logprobs.tokens[0].strip() != piece.strip()


def test_errors_raise_the_right_exceptions(server, client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="stories", prompt=PROMPT, temperature="hot")
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="stories", prompt=PROMPT, top_p=3)
    assert e.value.body["param"] == "top_p"
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="stories", prompt="story " * 400, max_tokens=200)
    assert e.value.code == "context_length_exceeded"
    assert "512" in e.value.message
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert e.value.code == "model_not_found"
    bad = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.models.list()
    assert e.value.code == "invalid_api_key"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="stories", messages=[{"role": "wizard", "content": "x"}])


def test_raw_error_statuses(server):
    auth = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    status, _, body = request(server.port, "POST", "/v1/completions", body='{"prompt": "x", ', headers=auth)
    err = json.loads(body)["error"]
    assert status == 400 and "position" in err["message"] and err["type"] == "invalid_request_error"
    assert request(server.port, "GET", "/v1/completions", headers=auth)[0] == 405
    assert request(server.port, "GET", "/nowhere", headers=auth)[0] == 404
    assert request(server.port, "GET", "/v1/models")[0] == 401
    status, headers, _ = request(server.port, "GET", "/health", headers={"X-Request-Id": "abc-123"})
    assert status == 200 and headers["x-request-id"] == "abc-123"
    assert request(server.port, "GET", "/health")[1]["x-request-id"]


def test_cors(server):
    pre = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    status, headers, _ = request(server.port, "OPTIONS", "/v1/chat/completions", headers=pre)
    assert status == 204
    assert headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"].lower()
    status, headers, _ = request(server.port, "OPTIONS", "/v1/chat/completions",
                                 headers={**pre, "Origin": "http://evil.example"})
    assert status == 204 and "access-control-allow-origin" not in headers
    body = {"model": "stories", "prompt": PROMPT, "max_tokens": 2, "stream": True}
    status, headers, _ = request(server.port, "POST", "/v1/completions", body=body,
                                 headers={"Origin": ORIGIN, "Authorization": f"Bearer {API_KEY}"})
    assert status == 200 and headers["access-control-allow-origin"] == ORIGIN
    assert headers["content-type"] == "text/event-stream"


def test_overloaded_server_answers_503():
    import threading
    s = Server("--max-num-seqs", "1", "--max-queue", "0")
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0)
        started = threading.Event()

        def long_stream():
            for _ in c.completions.create(model="stories", prompt=PROMPT, max_tokens=400, stream=True,
                                          extra_body={"ignore_eos": True}):
                started.set()

        t = threading.Thread(target=long_stream)
        t.start()
        assert started.wait(10)
        with pytest.raises(openai.InternalServerError) as e:
            c.completions.create(model="stories", prompt=PROMPT, max_tokens=4)
        assert e.value.status_code == 503
        t.join()
    finally:
        assert s.stop() == 0
