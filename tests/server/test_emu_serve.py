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
