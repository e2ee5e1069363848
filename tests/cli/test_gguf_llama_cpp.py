"""Quantized GGUF files against llama.cpp: the same greedy tokens.

tests/data/llama-cpp/stories260K-<type>.json holds llama.cpp's (llama-cpp-python's) greedy
continuations of 6 prompts on stories260K written as Q8_0 / Q4_0 GGUF with its SentencePiece
vocabulary (scripts/llama_cpp_greedy.py, which also rebuilds the file here, byte for byte: the
gguf package's quantizer is ggml's reference one, and the sha256 is checked), and llama.cpp's gap
between its two best logits at every step. K-quants: stories260K's rows (64) are not whole Q4_K
blocks, and the gguf package has no K-quant quantizer, so random-q4_k_m.json is llama.cpp on a
random Q4_K_M-mixed model (Q4_K, with attn_v, ffn_down and the LM head in Q6_K; hidden 256) with
stories260K's vocabulary, rebuilt here by scripts/make_quant_gguf.py --with-vocab; llama.cpp ran it
with an F32 KV cache (with its default F16 cache 3 of the 6 prompts parted from ours at gaps of
0.10-0.15; with F32, tessera's cache type, one parts, at a gap of 0.04).

Both engines round activations to 8 bits (and our prompts may run in bf16 on AMX), in their own
summation order, so their logits differ by a few hundredths. Where llama.cpp's top two logits
are within GAP of each other either token is a fair greedy choice and the continuations may part
there; so each prompt is compared up to its first such step (N per prompt: 0 to 48, logged),
and the prompts together must compare at least MIN_STEPS tokens. Measured: every divergence
fell on a step with a gap below 0.08."""
import hashlib
import json
import shutil
import sys

import pytest

from conftest import ROOT, run

sys.path.insert(0, str(ROOT / "scripts"))
import llama_cpp_greedy  # noqa: E402
import make_quant_gguf  # noqa: E402

GAP = 0.1
MIN_STEPS = 100


@pytest.fixture(scope="module", params=["stories260K-q8_0", "stories260K-q4_0", "random-q4_k_m"])
def case(request, tmp_path_factory, stories):
    name = request.param
    golden = json.loads((ROOT / f"tests/data/llama-cpp/{name}.json").read_text())
    d = tmp_path_factory.mktemp(name)
    if name.startswith("random"):
        path = make_quant_gguf.make_with_vocab(stories, d / f"{name}.gguf")
    else:
        path = llama_cpp_greedy.make_gguf_with_vocab(stories, d / f"{name}.gguf", name.split("-")[1])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == golden["gguf_sha256"], \
        "the rebuilt GGUF is not the file llama.cpp ran: regenerate tests/data/llama-cpp (see its made_by)"
    return path, golden


def test_prompt_ids_are_llama_cpps(case):
    path, golden = case
    for r in golden["results"]:
        got = run("tokenize", path, r["prompt"])
        assert got.returncode == 0, got.stderr
        assert [int(x) for x in got.stdout.split()] == r["prompt_ids"], r["prompt"]


def test_greedy_tokens_are_llama_cpps(case):
    path, golden = case
    compared = 0
    for r in golden["results"]:
        out = run("generate", path, "-p", r["prompt"], "-n", golden["n"], "--temperature", 0, "--ids",
                  "--ignore-eos")
        assert out.returncode == 0, out.stderr
        ours = [int(x) for x in out.stdout.split()]
        n = next((i for i, g in enumerate(r["top2_gap"]) if g < GAP), len(r["tokens"]))
        print(f"{path.name} {r['prompt']!r}: {n} steps before a gap < {GAP}")
        assert ours[:n] == r["tokens"][:n], f"{r['prompt']!r}: {ours[:n]} != {r['tokens'][:n]}"
        compared += n
    assert compared >= MIN_STEPS, f"only {compared} steps compared"
