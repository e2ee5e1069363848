"""The HTTP layer over raw sockets: pipelining, keep-alive, limits, timeouts, disconnects, many clients."""
import json
import os
import socket
import threading
import time

import openai

from conftest import API_KEY, request

AUTH = f"Authorization: Bearer {API_KEY}\r\n"


def connect(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return s


def read_responses(sock, n):
    """Reads n whole responses (Content-Length bodies) from sock; returns [(status, body)]."""
    buf, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            assert data, "connection closed early"
            buf += data
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        length = next(int(l.split(":")[1]) for l in lines if l.lower().startswith("content-length"))
        while len(buf) < length:
            buf += sock.recv(65536)
        out.append((int(lines[0].split()[1]), buf[:length]))
        buf = buf[length:]
    return out


def test_pipelined_requests_are_answered_in_order(server):
    body = json.dumps({"model": "stories", "prompt": "Once", "max_tokens": 3, "temperature": 0})
    post = (f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}")
    with connect(server) as s:
        s.sendall(("GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + post + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n").encode())
        replies = read_responses(s, 3)
    assert [r[0] for r in replies] == [200, 200, 404]
    assert json.loads(replies[1][1])["usage"]["completion_tokens"] == 3


def test_keep_alive_and_chunked_request_body(server):
    body = json.dumps({"model": "stories", "prompt": "Once", "max_tokens": 2}).encode()
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (5, body[:5], len(body) - 5, body[5:])
    with connect(server) as s:
        for _ in range(3):
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_responses(s, 1)[0][0] == 200
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + AUTH.encode() +
                  b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
        status, reply = read_responses(s, 1)[0]
        assert status == 200 and json.loads(reply)["usage"]["completion_tokens"] == 2


def test_body_over_the_limit_is_413(server):
    with connect(server) as s:
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n")
        status, body = read_responses(s, 1)[0]
    assert status == 413 and json.loads(body)["error"]["message"]


def test_headers_over_the_limit_are_431(server):
    with connect(server) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
        assert read_responses(s, 1)[0][0] == 431


def test_a_header_that_never_ends_is_dropped(server):
    with connect(server) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: still typ")
        t0 = time.time()
        assert s.recv(100) == b""  # the server closes after --header-timeout 1
        assert time.time() - t0 < 5
    assert request(server.port, "GET", "/health")[0] == 200


def test_disconnect_mid_stream_frees_the_kv_blocks(server):
    body = json.dumps({"model": "stories", "prompt": "Once upon a time", "max_tokens": 450, "stream": True,
                       "ignore_eos": True})
    with connect(server) as s:
        s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n"
                   + body).encode())
        got = b""
        while got.count(b"data: ") < 5:
            got += s.recv(4096)
        assert server.metric("tessera_kv_cache_blocks_used") > 0
    deadline = time.time() + 10
    while time.time() < deadline and (server.metric("tessera_kv_cache_blocks_used") or
                                      server.metric("tessera_num_requests_running")):
        time.sleep(0.05)
    assert server.metric("tessera_kv_cache_blocks_used") == 0
    assert server.metric("tessera_num_requests_running") == 0


def test_256_concurrent_streams_complete_with_the_right_text(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0, timeout=120)
    prompts = ["Once upon a time", "The little dog", "Lily and Ben", "One day"]
    expected = {p: client.completions.create(model="stories", prompt=p, max_tokens=16, temperature=0).choices[0].text
                for p in prompts}
    results, errors = [None] * 256, []

    def run(i):
        try:
            p = prompts[i % len(prompts)]
            stream = client.completions.create(model="stories", prompt=p, max_tokens=16, temperature=0, stream=True)
            results[i] = (p, "".join(c.choices[0].text for c in stream))
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(256)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors[:3]
    for p, text in results:
        assert text == expected[p]
    assert server.metric("tessera_kv_cache_blocks_used") == 0


def test_sigterm_lets_a_running_stream_finish_and_exits_0():
    import signal
    from conftest import Server
    s = Server()
    body = json.dumps({"model": "stories", "prompt": "Once upon a time", "max_tokens": 200, "stream": True,
                       "ignore_eos": True})
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
    sock.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n" + body).encode())
    got = b""
    while got.count(b"data: ") < 3:
        got += sock.recv(65536)
    s.proc.send_signal(signal.SIGTERM)
    while b"data: [DONE]" not in got:
        more = sock.recv(65536)
        assert more, "the stream was cut by the shutdown"
        got += more
    sock.close()
    assert s.proc.wait(timeout=30) == 0
    events = [json.loads(l[6:]) for l in got.decode().split("\r\n") if l.startswith("data: {")]
    assert events[-1]["choices"][0]["finish_reason"] == "length"
    assert "SIGTERM" in s.logs()
    s.log.close()
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused, "the server still accepts connections after stopping"


def test_health_is_503_while_the_model_loads(tmp_path):
    import subprocess
    from conftest import STORIES, TESSERA, free_port
    port = free_port()
    proc = subprocess.Popen([str(TESSERA), "serve", str(STORIES), "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "TESSERA_TEST_LOAD_DELAY_MS": "1500"})
    try:
        deadline = time.time() + 10
        status = None
        while time.time() < deadline:
            try:
                status = request(port, "GET", "/health", timeout=1)[0]
                break
            except OSError:
                time.sleep(0.05)
        assert status == 503
        code, _, body = request(port, "POST", "/v1/completions", body={"prompt": "x"})
        assert code == 503 and json.loads(body)["error"]["message"] == "the model is loading"
        while time.time() < deadline and request(port, "GET", "/health")[0] != 200:
            time.sleep(0.05)
        assert request(port, "GET", "/health")[0] == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_http10_stream_is_plain_and_ends_with_the_connection(server):
    body = json.dumps({"model": "stories", "prompt": "Once", "max_tokens": 4, "stream": True})
    with connect(server) as s:
        s.sendall((f"POST /v1/completions HTTP/1.0\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n" + body).encode())
        got = b""
        while more := s.recv(65536):
            got += more
    head, _, rest = got.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding" not in head and b"Connection: close" in head
    assert rest.startswith(b"data: {") and rest.endswith(b"data: [DONE]\n\n")


def test_a_slow_body_is_not_cut_by_the_header_timeout(server):
    body = json.dumps({"model": "stories", "prompt": "Once", "max_tokens": 2}).encode()
    with connect(server) as s:
        s.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: {len(body)}\r\n\r\n".encode())
        for i in range(0, len(body), len(body) // 4 + 1):  # 4 pieces over ~1.6 s; --header-timeout is 1 s
            time.sleep(0.4)
            s.sendall(body[i:i + len(body) // 4 + 1])
        assert read_responses(s, 1)[0][0] == 200


def test_requests_the_kv_pool_cannot_hold():
    from conftest import Server
    s = Server("--kv-cache-memory", "200K")  # stories260K: 20 KiB a block: 10 blocks, 160 tokens
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0)
        r = c.completions.create(model="stories", prompt="Once upon a time", temperature=0,
                                 extra_body={"ignore_eos": True})
        assert r.choices[0].finish_reason == "length"
        assert r.usage.prompt_tokens + r.usage.completion_tokens == 160  # no max_tokens: as far as the pool goes
        try:
            c.completions.create(model="stories", prompt="Once upon a time", max_tokens=400)
            raise AssertionError("a request larger than the pool was accepted")
        except openai.BadRequestError as e:
            assert "pool" in e.message
    finally:
        assert s.stop() == 0
