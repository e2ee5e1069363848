"""Hostile clients: bytes that are not UTF-8, oversized fields, slow and excess connections, HEAD, Host,
the auth scheme, prompts that take long to tokenize, and a shutdown that cuts streams at its deadline.
Each test is the regression test of a finding of the hardening issue."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import openai
import pytest

from conftest import API_KEY, STORIES, TESSERA, Server, free_port, request

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def raw(port, data, timeout=10):
    """Sends raw bytes on a new connection; returns everything read until the server closes or times out."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        try:
            while more := s.recv(65536):
                got += more
                if b"\r\n\r\n" in got:
                    head, _, body = got.partition(b"\r\n\r\n")
                    length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")]
                    if length and len(body) >= length[0]:
                        break
        except socket.timeout:
            pass
    return got


def split(reply):
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    return int(lines[0].split()[1]), headers, body


def error_of(body):
    """The error object of a JSON body that must be valid UTF-8 (strict decode)."""
    return json.loads(body.decode("utf-8"))["error"]


def test_an_incomplete_utf8_character_in_the_path_is_a_404_with_valid_json(server):
    status, _, body = split(raw(server.port, b"GET /\xe2\x82 HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert status == 404
    assert "\ufffd" in error_of(body)["message"]
    for junk in (b"/\xff\xfe", b"/\xc0\xaf", b"/\xed\xa0\x80", b"/a\x01b"):  # bad lead, overlong, surrogate, control
        status, _, body = split(raw(server.port, b"GET " + junk + b" HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status in (400, 404)
        error_of(body)
    assert request(server.port, "GET", "/health")[0] == 200


@pytest.mark.parametrize("field", ["model", "role", "logit_bias"])
def test_long_non_ascii_values_are_cut_between_characters(server, field):
    """Error messages quote the client's value; cut at 512 bytes they must not end inside a character."""
    word = "é" * 300 + "😀" * 100
    body = {"model": "stories", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    if field == "model":
        body["model"] = word
    elif field == "role":
        body["messages"][0]["role"] = word
    else:
        body["logit_bias"] = {word: 1}
    status, _, reply = request(server.port, "POST", "/v1/chat/completions", body=body, headers=AUTH)
    assert status in (400, 404)
    message = error_of(reply)["message"]
    assert "é" in message and len(message.encode()) < 512


def test_stop_strings_are_limited_in_count_and_length(client):
    with pytest.raises(openai.BadRequestError, match="at most 16 stop strings"):
        client.completions.create(model="stories", prompt="Once", max_tokens=1, stop=[str(i) for i in range(17)])
    with pytest.raises(openai.BadRequestError, match="at most 1024 bytes"):
        client.completions.create(model="stories", prompt="Once", max_tokens=1, stop=["x" * 1025])
    r = client.completions.create(model="stories", prompt="Once", max_tokens=2, stop=["x" * 1024] * 16)
    assert r.choices[0].finish_reason == "length"


def test_prompt_text_is_limited(client):
    with pytest.raises(openai.BadRequestError, match="at most 4194304"):
        client.completions.create(model="stories", prompt=["a" * (2 << 20), "b" * (2 << 20) + "c"], max_tokens=1)
    with pytest.raises(openai.BadRequestError, match="at most 4194304"):
        client.chat.completions.create(model="stories", max_tokens=1, messages=[
            {"role": "user", "content": [{"type": "text", "text": "a" * (3 << 20)}, {"type": "text", "text": "b" * (1 << 20)}]}])


def test_a_long_prompt_does_not_block_the_loop(server):
    """Tokenizing ~1M tokens takes seconds, on a worker thread: /health answers meanwhile."""
    text = ("Once upon a time there was a little girl named Lily. " * 80000)[:3_900_000]
    done, result = threading.Event(), {}

    def big():
        t0 = time.time()
        result["status"], _, result["body"] = request(server.port, "POST", "/v1/completions", headers=AUTH,
                                                      body={"model": "stories", "prompt": text, "max_tokens": 1})
        result["took"] = time.time() - t0
        done.set()

    th = threading.Thread(target=big)
    th.start()
    latencies = []
    while not done.is_set():
        t0 = time.time()
        assert request(server.port, "GET", "/health")[0] == 200
        latencies.append(time.time() - t0)
        time.sleep(0.02)
    th.join()
    assert result["status"] == 400 and b"context_length_exceeded" in result["body"]
    assert len(latencies) >= 5, result
    assert max(latencies) < result["took"] / 4, (max(latencies), result["took"])


def test_head_is_get_without_a_body_and_405_without_a_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = s.recv(65536)
        status, headers, body = split(reply)
        assert status == 200 and headers["content-length"] == "2" and body == b""
        s.sendall(b"HEAD /v1/completions HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = s.recv(65536)
        status, headers, body = split(reply)
        assert status == 405 and "HEAD" in headers["allow"] and body == b""
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection is still in step
        assert split(s.recv(65536))[:1] == (200,)


def test_http11_needs_host(server):
    status, _, body = split(raw(server.port, b"GET /health HTTP/1.1\r\n\r\n"))
    assert status == 400 and "Host" in error_of(body)["message"]
    status, _, _ = split(raw(server.port, b"GET /health HTTP/1.0\r\n\r\n"))
    assert status == 200


def test_the_auth_scheme_is_case_insensitive(server):
    body = {"model": "stories", "prompt": "Once", "max_tokens": 1}
    for scheme in ("bearer", "BEARER", "Bearer"):
        assert request(server.port, "POST", "/v1/completions", body=body,
                       headers={"Authorization": f"{scheme} {API_KEY}"})[0] == 200
    for bad in (f"Bearer {API_KEY}x", f"Bearer {API_KEY[:-1]}", "Bearer ", f"Basic {API_KEY}"):
        assert request(server.port, "POST", "/v1/completions", body=body, headers={"Authorization": bad})[0] == 401


def test_slow_bodies_are_cut_at_the_body_deadline():
    s = Server("--body-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
            t0, got = time.time(), b""
            try:
                while time.time() - t0 < 5:  # one byte every 0.2 s: each piece must not renew the deadline
                    sock.sendall(b" ")
                    time.sleep(0.2)
            except OSError:
                pass
            while more := sock.recv(65536):
                got += more
            assert split(got)[0] == 408
            assert 0.8 < time.time() - t0 < 4
        assert request(s.port, "GET", "/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_connections_beyond_the_limit_get_503_with_retry_after():
    s = Server("--max-connections", "4")
    try:
        held = [socket.create_connection(("127.0.0.1", s.port), timeout=10) for _ in range(4)]
        time.sleep(0.2)
        status, headers, body = split(raw(s.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status == 503 and headers["retry-after"] and error_of(body)["type"] == "server_error"
        for h in held:
            h.close()
        deadline = time.time() + 5
        while time.time() < deadline and request(s.port, "GET", "/health")[0] != 200:
            time.sleep(0.05)
        assert request(s.port, "GET", "/health")[0] == 200
    finally:
        assert s.stop() == 0


def test_every_503_carries_retry_after():
    s = Server("--max-num-seqs", "1", "--max-queue", "0")
    try:
        body = {"model": "stories", "prompt": "Once", "max_tokens": 400, "ignore_eos": True, "stream": True}
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as busy:
            data = json.dumps(body)
            busy.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n{data}"
                         .encode())
            busy.recv(100)
            status, headers, reply = request(s.port, "POST", "/v1/completions", body={**body, "stream": False})
            assert status == 503 and headers["retry-after"] and "overloaded" in error_of(reply)["message"]
    finally:
        assert s.stop() == 0
    port = free_port()
    proc = subprocess.Popen([str(TESSERA), "serve", str(STORIES), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TESSERA_TEST_LOAD_DELAY_MS": "1500"})
    try:
        deadline, seen = time.time() + 10, None
        while time.time() < deadline and seen is None:
            try:
                seen = request(port, "GET", "/health", timeout=1)
            except OSError:
                time.sleep(0.05)
        assert seen[0] == 503 and seen[1]["retry-after"]
        status, headers, _ = request(port, "POST", "/v1/completions", body={"prompt": "x"})
        assert status == 503 and headers["retry-after"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_the_shutdown_deadline_ends_streams_with_an_error_event_and_done():
    s = Server("--shutdown-timeout", "0.3", "--max-num-seqs", "2")
    body = json.dumps({"model": "stories", "prompt": "Once upon a time", "max_tokens": 480, "stream": True,
                       "ignore_eos": True, "n": 16})
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n" + body).encode())
    got = b""
    while got.count(b"data: ") < 3:
        got += sock.recv(65536)
    s.proc.send_signal(signal.SIGTERM)
    while more := sock.recv(65536):
        got += more
    sock.close()
    assert s.proc.wait(timeout=30) == 0
    s.log.close()
    assert got.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"), got[-200:]  # the chunked body ends properly
    events = [l[6:] for l in got.decode().split("\r\n") if l.startswith("data: ")]
    error = json.loads(events[-2])["error"]
    assert "shutting down" in error["message"] and error["type"] == "server_error"


def test_a_chat_template_from_a_pipe(tmp_path):
    tmpl = "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n'}}{% endfor %}"
    fifo = tmp_path / "template"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(tmpl))
    writer.start()
    s = Server("--chat-template", str(fifo))
    try:
        writer.join()
        assert f"chat format jinja ({fifo})" in s.logs()
    finally:
        assert s.stop() == 0


def test_a_missing_chat_template_file_is_a_clear_error(tmp_path):
    r = subprocess.run([str(TESSERA), "serve", str(STORIES), "--port", str(free_port()), "--chat-template",
                        str(tmp_path / "nope.jinja")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nope.jinja" in r.stderr and "cannot be read" in r.stderr
