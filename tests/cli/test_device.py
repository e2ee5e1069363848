"""--device and --dtype on the command line: the emulated CUDA backend
(build/tessera-emu) generates the CPU backend's greedy tokens, and a build
without CUDA says so; the default KV cache on a GPU counts the weights at
their size there (quantized ones as stored)."""
import os
import re
import subprocess

import pytest

from conftest import DEMO, ROOT, TESSERA, run

EMU = ROOT / "build" / "tessera-emu"


def ids(binary, stories, prompt, *extra):
    p = subprocess.run([str(binary), "generate", str(stories), "-p", prompt, "-n", "100", "--temperature", "0",
                        "--ids", "--ignore-eos", *extra], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.parametrize("prompt", ["Once upon a time", "Lily liked"])
def test_emulated_cuda_generates_cpu_tokens(stories, prompt):
    if not EMU.exists():
        pytest.fail(f"{EMU} is missing: make emu builds it")
    want = ids(TESSERA, stories, prompt)
    assert len(want) == 100
    assert ids(EMU, stories, prompt, "--device", "cuda", "--dtype", "float32") == want


def test_cpu_build_rejects_cuda(stories):
    if (ROOT / "build" / "variant").read_text().strip() != "cpu":
        pytest.skip("build/tessera was built with CUDA=1")
    p = run("generate", stories, "-p", "hi", "--device", "cuda")
    assert p.returncode == 2
    assert "no CUDA backend" in p.stderr and "make CUDA=1" in p.stderr


def test_bad_device_and_dtype(stories):
    for opt in [("--device", "tpu"), ("--dtype", "int3")]:
        p = run("generate", stories, "-p", "hi", *opt)
        assert p.returncode == 2
        assert opt[0] in p.stderr


def kv_blocks(model, *extra):
    """KV blocks of tessera-emu's default budget for model on a 320 MB emulated GPU (256 sequences would
    want more: the budget decides): 0.9 of it, less the weights and a 256 MiB margin."""
    p = subprocess.run([str(EMU), "bench", str(model), "--num-prompts", "1", "--concurrency", "1", "--input-len", "8",
                        "--output-len", "2", "--device", "cuda", "--max-num-seqs", "256", *extra],
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, EMU_DEVICE_MEMORY="320000000"))
    assert p.returncode == 0, p.stderr
    return int(re.search(r"KV cache: (\d+) blocks of 16 tokens", p.stderr).group(1))


def test_quantized_weights_leave_more_kv_cache():
    """A Q4_K_M GGUF's weights stay in their blocks on the GPU (0.89 MB for 1,377,536 weights, against 2.76 MB
    for its F32 twin uploaded as bf16: 1.86 MB = 113 blocks of 16 KiB more); --quantization q8_0 / q4_0 on
    the demo model: its layers at 34 / 18 bytes per 32 weights."""
    quant = kv_blocks(ROOT / "build" / "gguf" / "quant" / "Q4_K_M.gguf")
    twin = kv_blocks(ROOT / "build" / "gguf" / "quant" / "Q4_K_M-ref.gguf")
    assert 112 <= quant - twin <= 115, (quant, twin)
    plain, q8, q4 = kv_blocks(DEMO), kv_blocks(DEMO, "--quantization", "q8_0"), kv_blocks(DEMO, "--quantization", "q4_0")
    assert plain < q8 < q4, (plain, q8, q4)
    fp8 = kv_blocks(DEMO, "--quantization", "fp8")  # a byte a weight: under q8_0's 34 bytes a 32, over q4_0's 18
    assert q8 < fp8 < q4, (q8, fp8, q4)


def test_fp8_kv_cache_holds_twice_the_tokens(stories):
    """--kv-cache-dtype fp8 stores K/V as one byte each: the same --kv-cache-memory holds twice the blocks of
    bfloat16's; the CPU backend refuses it (its cache is float32), and a bad value is named."""
    half = kv_blocks(stories, "--kv-cache-memory", "4M", "--kv-cache-dtype", "fp8")
    full = kv_blocks(stories, "--kv-cache-memory", "4M")
    assert half in (2 * full, 2 * full + 1), (half, full)  # 4 MiB / 5,120 bytes a block: 819, / 10,240: 409
    p = run("generate", stories, "-p", "hi", "--kv-cache-dtype", "fp8")
    assert p.returncode == 2 and "needs --device cuda" in p.stderr
    p = run("generate", stories, "-p", "hi", "--kv-cache-dtype", "int4")
    assert p.returncode == 2 and "--kv-cache-dtype must be auto or fp8" in p.stderr
    p = run("generate", stories, "-p", "hi", "--quantization", "fp8")
    assert p.returncode == 2 and "--quantization fp8 needs --device cuda" in p.stderr
