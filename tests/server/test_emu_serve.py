"""The CUDA backend, emulated (build/tessera-emu --device cuda), behind the
server: greedy completions and streamed chat equal the CPU server's."""
import json

import pytest

from conftest import API_KEY, ROOT, Server, request

EMU = ROOT / "build" / "tessera-emu"
AUTH = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def servers():
    if not EMU.exists():
        pytest.fail(f"{EMU} is missing: make emu builds it")
    cpu = Server("--api-key", API_KEY)
    gpu = Server("--api-key", API_KEY, "--device", "cuda", "--dtype", "float32", binary=EMU)
    yield cpu, gpu
    assert gpu.stop() == 0, gpu.logs()
    assert cpu.stop() == 0, cpu.logs()


def completion(port, prompt):
    body = {"model": "stories", "prompt": prompt, "max_tokens": 40, "temperature": 0}
    status, _, data = request(port, "POST", "/v1/completions", body, AUTH)
    assert status == 200, data
    return json.loads(data)["choices"][0]["text"]


def streamed_chat(port):
    body = {"model": "stories", "messages": [{"role": "user", "content": "Tell me about a cat."}],
            "max_tokens": 30, "temperature": 0, "stream": True}
    status, _, data = request(port, "POST", "/v1/chat/completions", body, AUTH)
    assert status == 200, data
    text = ""
    for line in data.decode().splitlines():
        if line.startswith("data: {"):
            delta = json.loads(line[6:])["choices"][0]["delta"]
            text += delta.get("content") or ""
    assert data.decode().rstrip().endswith("data: [DONE]")
    return text


def test_emulated_cuda_server_matches_cpu(servers):
    cpu, gpu = servers
    for prompt in ["Once upon a time", "The little bird"]:
        want = completion(cpu.port, prompt)
        assert want
        assert completion(gpu.port, prompt) == want
    assert streamed_chat(gpu.port) == streamed_chat(cpu.port)


def test_emulated_cuda_server_constrains_as_cpu(servers):
    """Structured outputs on the CUDA backend: rows with a grammar take the host path (never the device argmax),
    so greedy constrained output equals the CPU server's and follows the schema."""
    schema = {"type": "object", "additionalProperties": False, "required": ["name", "age", "pets"], "properties": {
        "name": {"type": "string", "maxLength": 10}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "pets": {"type": "array", "maxItems": 3, "items": {"enum": ["cat", "dog", "bird"]}}}}
    outs = []
    for port in (s.port for s in servers):
        for temperature, seed in ((0, 0), (1, 7)):
            body = {"model": "stories", "messages": [{"role": "user", "content": "A person, please."}],
                    "max_tokens": 200, "temperature": temperature, "seed": seed,
                    "structured_outputs": {"disable_any_whitespace": True},
                    "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}}}
            status, _, data = request(port, "POST", "/v1/chat/completions", body, AUTH)
            assert status == 200, data
            c = json.loads(data)["choices"][0]
            assert c["finish_reason"] == "stop", c
            doc = json.loads(c["message"]["content"])
            assert set(doc) == {"name", "age", "pets"} and 0 <= doc["age"] <= 120 and len(doc["name"]) <= 10
            outs.append(c["message"]["content"])
    assert outs[:2] == outs[2:]  # float32 CPU and emulated CUDA: the same tokens, greedy and seeded
