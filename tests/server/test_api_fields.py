"""Acceptance details of the server: every sampling field, max_completion_tokens, /metrics names, the request log
line, --chat-template, the idle timeout."""
import json
import socket
import time

import openai
import pytest

from conftest import API_KEY, Server, request

PROMPT = "Once upon a time"


def test_every_sampling_field_is_accepted_and_range_checked(client):
    r = client.completions.create(model="stories", prompt=PROMPT, max_tokens=8, temperature=0.7, top_p=0.9, seed=3,
                                  presence_penalty=0.5, frequency_penalty=0.5, user="someone",
                                  extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1})
    assert r.usage.completion_tokens == 8
    for field, value in [("top_k", -5), ("min_p", 2), ("repetition_penalty", 0), ("presence_penalty", 3),
                         ("frequency_penalty", -3), ("n", 0), ("max_tokens", 0), ("seed", "x"), ("stop", 5),
                         ("user", 7), ("logit_bias", {"99999": 1})]:
        with pytest.raises(openai.BadRequestError) as e:
            client.completions.create(model="stories", prompt=PROMPT, extra_body={field: value})
        assert e.value.body["param"] == field, field


def test_max_completion_tokens(client):
    r = client.chat.completions.create(model="stories", messages=[{"role": "user", "content": "Hi"}],
                                       max_completion_tokens=5, temperature=0)
    assert r.usage.completion_tokens == 5 and r.choices[0].finish_reason == "length"


def test_metrics_names(server, client):
    client.completions.create(model="stories", prompt=PROMPT, max_tokens=4)
    status, headers, body = request(server.port, "GET", "/metrics", headers={"Authorization": f"Bearer {API_KEY}"})
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    for name in ["tessera_requests_total{status=\"200\"}", "tessera_prompt_tokens_total",
                 "tessera_generation_tokens_total", "tessera_time_to_first_token_seconds_bucket",
                 "tessera_inter_token_latency_seconds_bucket", "tessera_e2e_request_latency_seconds_count",
                 "tessera_num_requests_running", "tessera_num_requests_waiting", "tessera_kv_cache_usage_ratio",
                 "tessera_prefix_cache_hit_rate", "tessera_num_preemptions_total"]:
        assert name in text, name
    assert server.metric("tessera_generation_tokens_total") >= 4


def test_one_log_line_per_request(server, client):
    client.with_options(default_headers={"X-Request-Id": "log-check-1"}).completions.create(
        model="stories", prompt=PROMPT, max_tokens=3, temperature=0)
    time.sleep(0.2)
    line = next(l for l in server.logs().splitlines() if "id=log-check-1" in l)
    assert line.startswith("tessera: POST /v1/completions 200 prompt=5 completion=3 ttft=")
    assert " total=" in line


def test_chat_template_override(tmp_path):
    tmpl = tmp_path / "chatml.jinja"
    tmpl.write_text("{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}"
                    "{% endfor %}{{ '<|im_start|>assistant\\n' }}")
    s = Server("--chat-template", str(tmpl))
    try:
        status, _, body = request(s.port, "POST", "/tokenize", body={"messages": [{"role": "user", "content": "Hi"}]})
        ids = json.loads(body)["tokens"]
        status, _, body = request(s.port, "POST", "/detokenize", body={"tokens": ids})
        assert json.loads(body)["prompt"] == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        assert f"chat format jinja ({tmpl})" in s.logs()
        status, _, body = request(s.port, "POST", "/apply-template", body={"messages": [{"role": "user", "content": "Hi"}]})
        assert json.loads(body)["prompt"] == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    finally:
        assert s.stop() == 0


def test_idle_keep_alive_connections_are_closed():
    s = Server("--idle-timeout", "0.5")
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = b""
            while not reply.endswith(b"\r\n\r\n{}"):  # headers and body may come in two segments
                reply += sock.recv(4096)
            assert b" 200 " in reply
            t0 = time.time()
            assert sock.recv(100) == b""
            assert 0.3 < time.time() - t0 < 3
    finally:
        assert s.stop() == 0
