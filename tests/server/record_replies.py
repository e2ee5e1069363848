"""Records the server's replies to a fixed set of requests, normalised, so that two builds can be compared:
`python tests/server/record_replies.py OUT.json [TESSERA_BIN]`, then diff the two files. Ids, timestamps,
request ids and timings are replaced by placeholders; /metrics keeps its names and every value that is not a
timing. Requests run one at a time, greedy or seeded, on stories260K, so the replies are deterministic."""
import json
import os
import re
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
if len(sys.argv) > 2:
    os.environ["TESSERA_BIN"] = sys.argv[2]
from conftest import API_KEY, ORIGIN, Server  # noqa: E402

AUTH = f"Authorization: Bearer {API_KEY}\r\n"
P = "Once upon a time"
CHAT = [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me a story"}]
KEEP_HEADERS = ("content-type", "allow", "retry-after", "transfer-encoding", "connection", "cache-control", "vary")


def raw_exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        got = b""
        while more := s.recv(65536):
            got += more
    return got


def post(path, body, extra=""):
    data = body if isinstance(body, str) else json.dumps(body)
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\n{AUTH}{extra}Content-Type: application/json\r\n"
            f"Content-Length: {len(data.encode())}\r\nConnection: close\r\n\r\n").encode() + data.encode()


def get(path, method="GET", extra=AUTH):
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode()


def dechunk(rest):
    body = b""
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        body, rest = body + rest[:n], rest[n + 2:]
    return body


def norm_json(v):
    if isinstance(v, dict):
        return {k: ("<id>" if k == "id" and isinstance(x, str) else "<t>" if k == "created" else norm_json(x))
                for k, x in v.items()}
    if isinstance(v, list):
        return [norm_json(x) for x in v]
    return v


def norm_body(headers, body, path):
    if path == "/metrics":
        out = []
        for line in body.decode().splitlines():
            if line.startswith("#"):
                out.append(line)
                continue
            name, value = line.rsplit(" ", 1)
            if name == 'tessera_requests_total{status="503"}':
                continue  # the start-up poll of /health may or may not catch the load
            timing = re.search(r"seconds|latency", name)
            out.append(f"{name} {'<timing>' if timing else value}")
        return out
    if headers.get("content-type", "").startswith("text/event-stream"):
        return [norm_json(json.loads(l[6:])) if l.startswith("data: {") else l
                for l in body.decode().split("\n") if l]
    try:
        return norm_json(json.loads(body))
    except ValueError:
        return body.decode("utf-8", "replace")


def exchange(port, name, data, path):
    got = raw_exchange(port, data)
    head, _, rest = got.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:] if ":" in l}
    body = dechunk(rest) if headers.get("transfer-encoding") == "chunked" else rest
    return {"name": name, "status": lines[0], "headers": {k: v for k, v in sorted(headers.items())
                                                          if k in KEEP_HEADERS or k.startswith("access-control")},
            "body": norm_body(headers, body, path)}


def cases():
    c = "/v1/completions"
    ch = "/v1/chat/completions"
    yield "health", get("/health", extra=""), "/health"
    yield "head health", get("/health", "HEAD", extra=""), "/health"
    yield "models", get("/v1/models"), "/v1/models"
    yield "completion", post(c, {"model": "stories", "prompt": P, "max_tokens": 12, "temperature": 0}), c
    yield "completion stream", post(c, {"prompt": P, "max_tokens": 6, "temperature": 0, "stream": True}), c
    yield "completion n=2 seeded", post(c, {"prompt": P, "max_tokens": 6, "n": 2, "seed": 7, "temperature": 1}), c
    yield "completion logprobs", post(c, {"prompt": P, "max_tokens": 4, "temperature": 0, "logprobs": 3}), c
    yield "completion logprobs stream", post(c, {"prompt": P, "max_tokens": 3, "temperature": 0, "logprobs": 2,
                                                 "stream": True, "stream_options": {"include_usage": True}}), c
    yield "completion stop", post(c, {"prompt": P, "max_tokens": 30, "temperature": 0, "stop": [" girl", "zz"]}), c
    yield "completion stop stream", post(c, {"prompt": P, "max_tokens": 30, "temperature": 0, "stop": "ay outs",
                                             "stream": True}), c
    yield "completion ids", post(c, {"prompt": [1, 403, 407], "max_tokens": 5, "temperature": 0}), c
    yield "completion list", post(c, {"prompt": [P, "The cat"], "max_tokens": 5, "temperature": 0}), c
    yield "completion bias", post(c, {"prompt": P, "max_tokens": 5, "temperature": 0, "logit_bias": {"264": 100}}), c
    yield "completion penalties", post(c, {"prompt": P, "max_tokens": 8, "temperature": 0.8, "seed": 3,
                                           "presence_penalty": 1, "frequency_penalty": 1, "repetition_penalty": 1.3,
                                           "top_k": 20, "top_p": 0.9, "min_p": 0.05}), c
    yield "completion ignore_eos", post(c, {"prompt": P, "max_tokens": 3, "temperature": 0, "ignore_eos": True}), c
    yield "completion no max_tokens", post(c, {"prompt": P, "temperature": 0}), c
    yield "completion ids empty", post(c, {"prompt": [], "max_tokens": 2}), c
    yield "chat", post(ch, {"model": "stories", "messages": CHAT, "max_tokens": 10, "temperature": 0}), ch
    yield "chat stream usage", post(ch, {"messages": CHAT, "max_tokens": 5, "temperature": 0, "stream": True,
                                         "stream_options": {"include_usage": True}}), ch
    yield "chat logprobs", post(ch, {"messages": CHAT, "max_tokens": 3, "temperature": 0, "logprobs": True,
                                     "top_logprobs": 2}), ch
    yield "chat parts developer", post(ch, {"messages": [{"role": "developer", "content": "Be nice."},
                                                         {"role": "user", "content": [{"type": "text", "text": "a"},
                                                                                      {"type": "text", "text": "b"}]}],
                                            "max_completion_tokens": 4, "temperature": 0}), ch
    yield "tokenize", post("/tokenize", {"prompt": P}), "/tokenize"
    yield "tokenize no special", post("/tokenize", {"prompt": P, "add_special_tokens": False}), "/tokenize"
    yield "tokenize messages", post("/tokenize", {"messages": CHAT}), "/tokenize"
    yield "detokenize", post("/detokenize", {"tokens": [1, 403, 407, 261]}), "/detokenize"
    for field, value in [("temperature", 3), ("top_p", 0), ("top_k", -5), ("min_p", 2), ("repetition_penalty", 0),
                         ("presence_penalty", 3), ("frequency_penalty", -3), ("n", 0), ("n", 17), ("max_tokens", 0),
                         ("seed", "x"), ("stop", 5), ("stop", ["a"] * 17), ("user", 7), ("logit_bias", {"99999": 1}),
                         ("logit_bias", {"x": 1}), ("logprobs", 21), ("stream", "yes"), ("model", 5),
                         ("stream_options", {"include_usage": True})]:
        yield f"bad {field}={json.dumps(value)[:20]}", post(c, {"prompt": P, field: value}), c
    yield "bad json", post(c, "{\"prompt\": "), c
    yield "not an object", post(c, "[1, 2]"), c
    yield "no prompt", post(c, {"max_tokens": 2}), c
    yield "empty prompt", post(c, {"prompt": "", "max_tokens": 4, "temperature": 0}), c
    yield "prompt ids out of vocab", post(c, {"prompt": [1, 99999]}), c
    yield "context exceeded", post(c, {"prompt": P, "max_tokens": 100000}), c
    yield "context exceeded long", post(c, {"prompt": "Once " * 600, "max_tokens": 10}), c
    yield "model not found", post(c, {"model": "gpt-x", "prompt": P}), c
    yield "chat no messages", post(ch, {"messages": []}), ch
    yield "chat bad role", post(ch, {"messages": [{"role": "robot", "content": "x"}]}), ch
    yield "chat top_logprobs without logprobs", post(ch, {"messages": CHAT, "top_logprobs": 2}), ch
    yield "chat image part", post(ch, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}), ch
    yield "detokenize bad", post("/detokenize", {"tokens": [1, -1]}), "/detokenize"
    yield "tokenize bad", post("/tokenize", {"x": 1}), "/tokenize"
    yield "404", get("/nowhere"), "/nowhere"
    yield "404 utf8", get("/caf\xe9".encode("latin-1").decode("latin-1")), "/x"
    yield "405", get("/v1/completions"), "/v1/completions"
    yield "405 post on get", post("/health", {}), "/health"
    yield "401", get("/v1/models", extra="Authorization: Bearer wrong\r\n"), "/v1/models"
    yield "401 none", get("/v1/models", extra=""), "/v1/models"
    yield "cors preflight", (f"OPTIONS /v1/completions HTTP/1.1\r\nHost: x\r\nOrigin: {ORIGIN}\r\n"
                             "Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n").encode(), c
    yield "cors other origin", (f"OPTIONS /v1/completions HTTP/1.1\r\nHost: x\r\nOrigin: http://evil.example\r\n"
                                "Connection: close\r\n\r\n").encode(), c
    yield "cors get", get("/v1/models", extra=AUTH + f"Origin: {ORIGIN}\r\n"), "/v1/models"
    yield "413", (f"POST {c} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n").encode(), c
    yield "431", (f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 20000}\r\n\r\n").encode(), "/health"
    yield "malformed", b"BLAH\r\n\r\n", "/"
    yield "metrics", get("/metrics"), "/metrics"


def main():
    out = Path(sys.argv[1])
    s = Server("--api-key", API_KEY, "--allowed-origins", ORIGIN)
    try:
        records = [exchange(s.port, name, data, path) for name, data, path in cases()]
    finally:
        assert s.stop() == 0, s.logs()
    out.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(records)} replies recorded in {out}")


if __name__ == "__main__":
    main()
