#!/usr/bin/env python3
"""Writes a Hugging Face model folder (config.json + safetensors, sharded or
not) as a GGUF file with the gguf package's GGUFWriter, the way llama.cpp's
convert_hf_to_gguf.py does for llama (Mistral too), qwen2 and qwen3:

- the same metadata keys ({arch}.context_length, .embedding_length, ...);
- the same tensor names (token_embd, blk.N.attn_q, ...);
- llama's q/k weights permuted by LlamaModel.permute (HF's rotate-half RoPE
  layout -> ggml's interleaved one), which the loader must undo;
- llama3 RoPE scaling as the rope_freqs tensor of per-frequency factors;
- 1-D tensors (norms, biases) stored as F32, as the converter stores them.

convert_hf_to_gguf.py itself needs torch, which the test environment lacks;
this follows its code (LlamaModel.permute, generate_extra_tensors) instead.
It writes no tokenizer.ggml.* vocabulary, only the special ids.

    make_gguf.py SRC_DIR OUT.gguf [--outtype same|f32|f16|q8_0|q4_0]
    make_gguf.py --tests OUT_DIR   # every tests/data/golden model + stories260K
"""
import argparse
import json
import math
import os
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import gguf

ROOT = Path(__file__).resolve().parents[1]
ARCHS = {"LlamaForCausalLM": "llama", "MistralForCausalLM": "llama",
         "Qwen2ForCausalLM": "qwen2", "Qwen3ForCausalLM": "qwen3"}
LAYER_NAMES = {
    "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm",
    "self_attn.k_norm": "attn_k_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
NP = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}  # BF16 kept as raw bits
GTYPE = {"F32": gguf.GGMLQuantizationType.F32, "F16": gguf.GGMLQuantizationType.F16,
         "BF16": gguf.GGMLQuantizationType.BF16, "Q8_0": gguf.GGMLQuantizationType.Q8_0,
         "Q4_0": gguf.GGMLQuantizationType.Q4_0}
QUANT = {"q8_0": "Q8_0", "q4_0": "Q4_0"}


def quantize(dtype, arr, qtype):
    """A 2-D weight as qtype by the gguf package's quantizer (ggml's reference
    one); F16 where its rows are not whole blocks, as convert_hf_to_gguf.py
    falls back."""
    x = to_f32(dtype, arr)
    if x.shape[-1] % 32:
        return "F16", x.astype(np.float16)
    return qtype, gguf.quants.quantize(x, GTYPE[qtype])


def read_safetensors(folder):
    """{name: (dtype string, numpy array)} of every safetensors file of folder."""
    index = folder / "model.safetensors.index.json"
    files = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() \
        else ["model.safetensors"]
    out = {}
    for f in files:
        raw = (folder / f).read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        for name, e in header.items():
            if name == "__metadata__":
                continue
            b, en = e["data_offsets"]
            arr = np.frombuffer(raw[8 + n + b:8 + n + en], dtype=NP[e["dtype"]]).reshape(e["shape"])
            out[name] = (e["dtype"], arr)
    return out


def to_f32(dtype, arr):
    if dtype == "BF16":
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(np.float32)


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")
    if parts[:2] != ["model", "layers"]:
        return None
    stem, ext = ".".join(parts[3:-1]), parts[-1]
    return f"blk.{parts[2]}.{LAYER_NAMES[stem]}.{ext}" if stem in LAYER_NAMES else None


def rope_factors(cfg, head_dim):
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors for llama3."""
    rs = cfg["rope_scaling"]
    base = cfg.get("rope_theta", 10000.0)
    freqs = 1.0 / (np.float32(base) ** (np.arange(0, head_dim, 2, dtype=np.float32) / np.float32(head_dim)))
    factor = rs.get("factor", 8.0)
    low, high = rs.get("low_freq_factor", 1.0), rs.get("high_freq_factor", 4.0)
    old = rs.get("original_max_position_embeddings", 8192)
    out = []
    for f in freqs.astype(np.float32):
        wavelen = 2 * math.pi / float(f)
        if wavelen < old / high:
            out.append(1)
        elif wavelen > old / low:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_metadata(w, arch, cfg, gen):
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    w.add_context_length(cfg.get("max_position_embeddings", 2048))
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(cfg.get("num_key_value_heads", heads))
    w.add_rope_freq_base(cfg.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(cfg.get("rms_norm_eps", 1e-6))
    if cfg.get("head_dim"):
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    if arch == "llama":
        w.add_vocab_size(cfg["vocab_size"])
        w.add_rope_dimension_count(head_dim)
    rs = cfg.get("rope_scaling") or {}
    if rs.get("rope_type", rs.get("type")) == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rs["factor"])
    for key, add in (("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id)):
        v = cfg.get(key, gen.get(key))  # SpecialVocab's fallback is config.json
        if isinstance(v, list):
            v = v[0]
        if v is not None:
            add(v)
    return head_dim


def convert(src, out, outtype="same"):
    src, out = Path(src), Path(out)
    cfg = json.loads((src / "config.json").read_text())
    gen_path = src / "generation_config.json"
    gen = json.loads(gen_path.read_text()) if gen_path.exists() else {}
    arch = ARCHS[cfg["architectures"][0]]
    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(src.name)
    head_dim = write_metadata(w, arch, cfg, gen)
    heads, kv_heads = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    tensors = read_safetensors(src)
    if cfg.get("tie_word_embeddings"):
        tensors.pop("lm_head.weight", None)
    for hf, (dtype, arr) in tensors.items():
        name = gguf_name(hf)
        if name is None:
            continue
        if arch == "llama" and (".q_proj." in hf or ".k_proj." in hf):
            arr = permute(arr, heads, kv_heads if ".k_proj." in hf else None)
        if arr.ndim <= 1:
            dtype, arr = "F32", to_f32(dtype, arr)
        elif outtype == "f32" and dtype != "F32":
            dtype, arr = "F32", to_f32(dtype, arr)
        elif outtype == "f16" and dtype != "F16":
            dtype, arr = "F16", to_f32(dtype, arr).astype(np.float16)
        elif outtype in QUANT:
            dtype, arr = quantize(dtype, arr, QUANT[outtype])
        w.add_tensor(name, np.ascontiguousarray(arr), raw_dtype=GTYPE[dtype] if dtype not in NP or dtype == "BF16"
                     else None)
    rs = cfg.get("rope_scaling") or {}
    if arch == "llama" and rs.get("rope_type", rs.get("type")) == "llama3":
        w.add_tensor("rope_freqs.weight", rope_factors(cfg, head_dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def make_test_files(out_dir):
    """build/gguf: golden/<name>.gguf (each golden model in its own dtype),
    stories260K/ (stories260K.gguf next to its tokenizer files),
    stories260K-q8_0/ and -q4_0/ (quantized by the gguf package)."""
    out_dir = Path(out_dir)
    (out_dir / "golden").mkdir(parents=True, exist_ok=True)
    for src in sorted((ROOT / "tests/data/golden").iterdir()):
        convert(src, out_dir / "golden" / f"{src.name}.gguf")
    stories = Path(os.environ.get("TESSERA_STORIES260K", ROOT.parent / "shared/models/stories260K"))
    dst = out_dir / "stories260K"
    dst.mkdir(exist_ok=True)
    convert(stories, dst / "stories260K.gguf")
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copyfile(stories / f, dst / f)
    for q in QUANT:  # each beside the same tokenizer files
        qdir = out_dir / f"stories260K-{q}"
        shutil.copytree(dst, qdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.gguf"))
        convert(stories, qdir / f"stories260K-{q}.gguf", q)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--outtype", choices=["same", "f32", "f16", "q8_0", "q4_0"], default="same")
    ap.add_argument("--tests", metavar="OUT_DIR")
    a = ap.parse_args()
    if a.tests:
        make_test_files(a.tests)
    elif a.src and a.out:
        convert(a.src, a.out, a.outtype)
    else:
        ap.error("give SRC OUT, or --tests OUT_DIR")


if __name__ == "__main__":
    sys.exit(main())
