#!/usr/bin/env python3
"""Quantized GGUF test models, each beside its dequantized twin.

For each scheme below, <scheme>.gguf is a small llama model (hidden 256, so
that K-quant rows are whole 256-blocks) whose 2-D weights are stored
quantized, and <scheme>-ref.gguf the same model with every weight replaced
by the gguf package's dequantization of it, as F32. Our forward on the first
must match our forward on the second up to the 8-bit activation rounding
(tests/unit/test_quant_model.c).

Q8_0 and Q4_0 weights are random normal floats quantized by the gguf package
(its quantizers are ggml's reference ones). The package has no Q4_K or Q6_K
quantizer: those weights are random blocks with scales chosen for unit-scale
activations, as valid as any quantizer's output. Q4_K_M mixes types the way
llama-quantize's Q4_K_M does (attn_v, ffn_down and output in Q6_K).

A Q4_K_M model with a real vocabulary (make_with_vocab: stories260K's 512
pieces, and an LM head 8 x larger, so that the greedy choice has clear
gaps) is what llama.cpp decodes for tests/cli/test_gguf_llama_cpp.py.

    make_quant_gguf.py OUT_DIR
    make_quant_gguf.py --with-vocab VOCAB_DIR OUT.gguf
"""
import json
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import quants

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_gguf  # noqa: E402

CFG = dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
           num_key_value_heads=2, vocab_size=384, max_position_embeddings=256, rms_norm_eps=1e-5,
           rope_theta=10000.0, bos_token_id=1, eos_token_id=2)
SCHEMES = {
    "Q8_0": dict(default=Q.Q8_0),
    "Q4_0": dict(default=Q.Q4_0),
    "Q4_K": dict(default=Q.Q4_K),
    "Q6_K": dict(default=Q.Q6_K),
    "Q4_K_M": dict(default=Q.Q4_K, attn_v=Q.Q6_K, ffn_down=Q.Q6_K, output=Q.Q6_K),
}


def f16_bits(x):
    return np.asarray(x, dtype=np.float16).view(np.uint8).reshape(*np.shape(x), 2)


def random_blocks(rng, qtype, rows, cols, gain=1.0):
    """rows x cols of random K-quant blocks whose values have std ~ gain/sqrt(cols)."""
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    b = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    s = gain / np.sqrt(cols)
    if qtype == Q.Q4_K:  # x = d*sc*q - dmin*m: dmin = 7.5 d centres q's mean
        d = s / 300 * rng.uniform(0.5, 1.5, size=b.shape[:2])
        b[..., 0:2] = f16_bits(d)
        b[..., 2:4] = f16_bits(7.5 * d)
    else:  # Q6_K: x = d*sc*(q - 32)
        b[..., 208:210] = f16_bits(s / 1300 * rng.uniform(0.5, 1.5, size=b.shape[:2]))
    return b.reshape(rows, -1)


def weight(rng, qtype, rows, cols, gain=1.0):
    """(raw quantized rows, their dequantization as F32)."""
    if qtype in (Q.Q8_0, Q.Q4_0):
        raw = quants.quantize(rng.normal(0, gain / np.sqrt(cols), size=(rows, cols)).astype(np.float32), qtype)
    else:
        raw = random_blocks(rng, qtype, rows, cols, gain)
    return raw, quants.dequantize(raw, qtype).astype(np.float32)


def tensors(scheme, rng, c=CFG, head_gain=1.0):
    """[(gguf name, qtype or None for F32 vectors, raw, f32)] of one model."""
    out = []
    H, inter, hd = c["hidden_size"], c["intermediate_size"], c["hidden_size"] // c["num_attention_heads"]
    kv = c["num_key_value_heads"] * hd

    def add(name, rows, cols, gain=1.0):
        stem = name.split(".")[-2] if name.startswith("blk.") else name.split(".")[0]
        qt = scheme.get(stem, scheme["default"])
        out.append((name, qt, *weight(rng, qt, rows, cols, gain)))

    def vec(name, n):
        v = (1 + 0.1 * rng.standard_normal(n)).astype(np.float32)
        out.append((name, None, v, v))

    add("token_embd.weight", c["vocab_size"], H)
    for i in range(c["num_hidden_layers"]):
        vec(f"blk.{i}.attn_norm.weight", H)
        vec(f"blk.{i}.ffn_norm.weight", H)
        for stem, rows, cols in (("attn_q", H, H), ("attn_k", kv, H), ("attn_v", kv, H), ("attn_output", H, H),
                                 ("ffn_gate", inter, H), ("ffn_up", inter, H), ("ffn_down", H, inter)):
            add(f"blk.{i}.{stem}.weight", rows, cols)
    vec("output_norm.weight", H)
    add("output.weight", c["vocab_size"], H, head_gain)
    return out


def write(path, ts, quantized, c=CFG, vocab_src=None):
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(path.stem)
    make_gguf.write_metadata(w, "llama", dict(c, architectures=["LlamaForCausalLM"]), {})
    if vocab_src:
        import llama_cpp_greedy
        llama_cpp_greedy.add_spm_vocab(w, vocab_src)
    for name, qt, raw, f32 in ts:
        if quantized and qt is not None:
            w.add_tensor(name, raw, raw_dtype=qt)
        else:
            w.add_tensor(name, f32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make(out_dir):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, (name, scheme) in enumerate(SCHEMES.items()):
        ts = tensors(scheme, np.random.default_rng(1234 + i))
        write(out_dir / f"{name}.gguf", ts, True)
        write(out_dir / f"{name}-ref.gguf", ts, False)


def make_with_vocab(vocab_src, out):
    """OUT: Q4_K_M with vocab_src's tokenizer.model (and its vocab_size), the LM head's gain 8."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    c = dict(CFG, vocab_size=json.loads((Path(vocab_src) / "config.json").read_text())["vocab_size"])
    write(out, tensors(SCHEMES["Q4_K_M"], np.random.default_rng(99), c, head_gain=8.0), True, c, vocab_src)
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--with-vocab":
        make_with_vocab(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 2:
        make(sys.argv[1])
    else:
        sys.exit(__doc__)
