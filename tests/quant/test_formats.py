"""kernels/quant.c against the gguf package (gguf.quants), bit for bit.

Random blocks of every type (random bytes, the f16 scale fields set to
finite values from subnormal to ~8), dequantized by build/quant-tool
(dequantize_row, and dequantize_one element by element) and by
gguf.quants.dequantize; random float rows quantized to Q8_0 and Q4_0 by both.
Equal means equal float32 bit patterns (viewed as uint32) and equal bytes.
"""
import os
import subprocess

import numpy as np
import pytest
from gguf import GGMLQuantizationType as QT
from gguf import quants

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "build", "quant-tool")

# name: (gguf type, block elements, block bytes, offsets of f16 scale fields)
TYPES = {
    "F32": (QT.F32, 1, 4, ()),
    "F16": (QT.F16, 1, 2, ()),
    "BF16": (QT.BF16, 1, 2, ()),
    "Q8_0": (QT.Q8_0, 32, 34, (0,)),
    "Q4_0": (QT.Q4_0, 32, 18, (0,)),
    "Q4_K": (QT.Q4_K, 256, 144, (0, 2)),
    "Q6_K": (QT.Q6_K, 256, 210, (208,)),
}
# several thousand blocks in all per type, odd counts included
BLOCK_COUNTS = [1, 3, 7, 64, 999, 4097]


def tool(name, op, data):
    r = subprocess.run([TOOL, name, op], input=data.tobytes(), capture_output=True, check=True)
    return r.stdout


def f16_scales(rng, n):
    """Finite halves, subnormal to ~8, either sign, some exact zeros."""
    v = rng.uniform(1, 2, n) * np.exp2(rng.integers(-26, 3, n)) * rng.choice([-1, 1], n)
    v[rng.random(n) < 0.02] = 0
    return v.astype(np.float16)


def random_blocks(name, n_blocks, rng):
    qt, _, size, fields = TYPES[name]
    raw = rng.integers(0, 256, (n_blocks, size), dtype=np.uint8)
    for off in fields:
        raw[:, off:off + 2] = f16_scales(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw


def bits(b):
    return np.frombuffer(b, dtype=np.uint32)


@pytest.fixture(scope="module", autouse=True)
def built():
    if not os.path.exists(TOOL):
        pytest.fail(f"{TOOL} missing: run make test-quant")


@pytest.mark.parametrize("name", list(TYPES))
def test_dequantize_matches_gguf(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    qt, per, size, _ = TYPES[name]
    for n_blocks in BLOCK_COUNTS:
        raw = random_blocks(name, n_blocks, rng)
        want = quants.dequantize(raw.reshape(-1), qt).astype(np.float32, copy=False).reshape(-1)
        assert want.size == n_blocks * per
        got = tool(name, "dequant", raw)
        one = tool(name, "dequant-one", raw)
        assert np.array_equal(bits(got), want.view(np.uint32)), f"{name} {n_blocks} blocks: dequantize_row"
        assert np.array_equal(bits(one), bits(got)), f"{name} {n_blocks} blocks: dequantize_one"


def quant_rows(rng, n_blocks):
    """Random blocks of many magnitudes, and blocks that hit the edge cases:
    all zero (signed zeros), ties of roundf (Q8_0 with amax 127: d = 1),
    exact integers (Q4_0 with max -8: d = 1), equal |max| of either sign."""
    x = rng.standard_normal((n_blocks, 32)) * np.exp2(rng.integers(-20, 12, (n_blocks, 1)))
    kind = rng.integers(0, 8, n_blocks)
    zeros = kind == 1
    x[zeros] = rng.choice([0.0, -0.0], (zeros.sum(), 32))
    ties = kind == 2
    x[ties] = rng.integers(-127, 127, (ties.sum(), 32)) + 0.5
    x[ties, rng.integers(0, 32)] = rng.choice([-127.0, 127.0])
    ints = kind == 3
    x[ints] = rng.integers(-8, 8, (ints.sum(), 32))
    x[ints, rng.integers(0, 32)] = -8.0
    small = kind == 4
    x[small] = rng.integers(-3, 4, (small.sum(), 32)) * rng.uniform(0.1, 10)
    return x.astype(np.float32)


@pytest.mark.parametrize("name", ["Q8_0", "Q4_0"])
def test_quantize_matches_gguf(name):
    rng = np.random.default_rng(7 + sum(map(ord, name)))
    qt = TYPES[name][0]
    for n_blocks in BLOCK_COUNTS:
        x = quant_rows(rng, n_blocks)
        want = quants.quantize(x.reshape(-1), qt)
        got = np.frombuffer(tool(name, "quant", x), dtype=np.uint8)
        assert np.array_equal(got, want.reshape(-1)), f"{name} {n_blocks} blocks: quantize"
        back = tool(name, "dequant", got)
        assert np.array_equal(bits(back), quants.dequantize(want, qt).reshape(-1).view(np.uint32))


def test_tool_rejects_bad_input():
    r = subprocess.run([TOOL, "Q4_K", "dequant"], input=b"x" * 145, capture_output=True)
    assert r.returncode == 2
    r = subprocess.run([TOOL, "Q6_K", "quant"], input=b"\0" * 128, capture_output=True)
    assert r.returncode == 2


def test_q4_0_zero_block_sign_follows_gguf():
    """The one place found where gguf-py and ggml's quantize_row_q4_0_ref
    differ: an all-zero block whose first element is -0.0 gets d = +0.0 from
    numpy's argmax (max = x[0] = -0.0, / -8), -0.0 (0x8000) from ggml (max
    stays its initial +0.0). We follow gguf-py."""
    for first, d in [(-0.0, 0x0000), (0.0, 0x8000)]:
        x = np.zeros(32, dtype=np.float32)
        x[0] = first
        got = np.frombuffer(tool("Q4_0", "quant", x), dtype=np.uint8)
        want = quants.quantize(x, QT.Q4_0)
        assert np.array_equal(got, want)
        assert got[:2].view(np.uint16)[0] == d
        assert (got[2:] == 0x88).all()
