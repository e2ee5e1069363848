"""Bad model folders: one line on stderr naming the file and the problem,
exit code 2, never a crash."""
import json
import shutil
import struct

import pytest

from conftest import ROOT, read_safetensors, run, write_safetensors


def expect_bad(folder, file_part, *words):
    r = run("generate", folder, "-p", "hi", "-n", "1")
    assert r.returncode == 2, f"exit {r.returncode}: {r.stderr}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert file_part in lines[0], lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (folder / "config.json").write_text(json.dumps(cfg))


def test_missing_folder(tmp_path):
    expect_bad(tmp_path / "nothing-here", "tokenizer.model", "missing")


def test_missing_config(model_copy):
    (model_copy / "config.json").unlink()
    expect_bad(model_copy, "config.json", "missing")


def test_bad_json_config(model_copy):
    (model_copy / "config.json").write_text('{"hidden_size": 64,,}')
    expect_bad(model_copy, "config.json", "bad JSON", "line 1")


def test_config_missing_key(model_copy):
    edit_config(model_copy, hidden_size=None)
    expect_bad(model_copy, "config.json", "hidden_size")


def test_config_wrong_type(model_copy):
    edit_config(model_copy, num_hidden_layers="five")
    expect_bad(model_copy, "config.json", "num_hidden_layers")


def test_unsupported_architecture(model_copy):
    edit_config(model_copy, architectures=["GPT2LMHeadModel"])
    expect_bad(model_copy, "config.json", "GPT2LMHeadModel", "not supported")


def test_heads_not_divisible(model_copy):
    edit_config(model_copy, num_key_value_heads=3)
    expect_bad(model_copy, "config.json", "num_key_value_heads")


def test_missing_weights(model_copy):
    (model_copy / "model.safetensors").unlink()
    expect_bad(model_copy, "model.safetensors", "missing")


def test_truncated_safetensors(model_copy):
    p = model_copy / "model.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    expect_bad(model_copy, "model.safetensors", "truncated")


def test_tiny_safetensors(model_copy):
    (model_copy / "model.safetensors").write_bytes(b"\x01\x02")
    expect_bad(model_copy, "model.safetensors", "truncated")


def test_lying_header_length(model_copy):
    p = model_copy / "model.safetensors"
    raw = bytearray(p.read_bytes())
    raw[:8] = struct.pack("<Q", 1 << 40)
    p.write_bytes(bytes(raw))
    expect_bad(model_copy, "model.safetensors", "header length")


def test_header_not_json(model_copy):
    p = model_copy / "model.safetensors"
    raw = bytearray(p.read_bytes())
    raw[8:12] = b"!!!!"
    p.write_bytes(bytes(raw))
    expect_bad(model_copy, "model.safetensors", "not a JSON object")


def test_offsets_past_the_data(model_copy):
    p = model_copy / "model.safetensors"
    header, data = read_safetensors(p)
    name = "model.norm.weight"
    b, e = header[name]["data_offsets"]
    header[name]["data_offsets"] = [len(data) + 8, len(data) + 8 + (e - b)]
    write_safetensors(p, header, data)
    expect_bad(model_copy, "model.safetensors", name, "outside")


def test_missing_tensor(model_copy):
    p = model_copy / "model.safetensors"
    header, data = read_safetensors(p)
    del header["model.layers.3.mlp.up_proj.weight"]
    write_safetensors(p, header, data)
    expect_bad(model_copy, "model.layers.3.mlp.up_proj.weight", "missing")


def test_wrong_shape(model_copy):
    p = model_copy / "model.safetensors"
    header, data = read_safetensors(p)
    name = "model.layers.0.self_attn.q_proj.weight"
    header[name]["shape"] = [32, 128]  # same byte count, wrong shape
    write_safetensors(p, header, data)
    expect_bad(model_copy, "model.safetensors", name, "shape [32, 128]", "expected [64, 64]")


def test_unsupported_dtype(model_copy):
    p = model_copy / "model.safetensors"
    header, data = read_safetensors(p)
    name = "model.layers.1.mlp.down_proj.weight"
    header[name]["dtype"] = "I32"  # same element size as F32
    write_safetensors(p, header, data)
    expect_bad(model_copy, "model.safetensors", name, "I32")


def test_unknown_dtype(model_copy):
    p = model_copy / "model.safetensors"
    header, data = read_safetensors(p)
    header["model.norm.weight"]["dtype"] = "Q4_K"
    write_safetensors(p, header, data)
    expect_bad(model_copy, "model.safetensors", "Q4_K")


def test_sharded_index_names_a_missing_shard(model_copy):
    (model_copy / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}))
    expect_bad(model_copy, "model-00002-of-00002.safetensors", "cannot open")


def test_sharded_index_names_a_tensor_not_in_the_shard(model_copy):
    (model_copy / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"model.norm.weight": "model.safetensors", "not.there": "model.safetensors"}}))
    expect_bad(model_copy, "model.safetensors.index.json", "not.there")


def test_bad_index_json(model_copy):
    (model_copy / "model.safetensors.index.json").write_text("[1, 2")
    expect_bad(model_copy, "model.safetensors.index.json", "bad JSON")


def test_missing_tokenizer(model_copy):
    (model_copy / "tokenizer.model").unlink()
    expect_bad(model_copy, "tokenizer.model", "missing")


def test_corrupt_tokenizer(model_copy):
    (model_copy / "tokenizer.model").write_bytes(b"\xff\xfe not a protobuf at all \x00\x01")
    expect_bad(model_copy, "tokenizer.model", "not a SentencePiece model")


def test_bad_tokenizer_config(model_copy):
    (model_copy / "tokenizer_config.json").write_text("{oops")
    expect_bad(model_copy, "tokenizer_config.json", "bad JSON")


def test_bad_generation_config(model_copy):
    (model_copy / "generation_config.json").write_text('{"eos_token_id": "two"}')
    expect_bad(model_copy, "generation_config.json", "eos_token_id")


@pytest.mark.parametrize("rope", [{"rope_type": "yarn", "factor": 4.0}, {"factor": 2.0}, "linear"])
def test_bad_rope_scaling(model_copy, rope):
    edit_config(model_copy, rope_scaling=rope)
    expect_bad(model_copy, "config.json", "rope_scaling")


@pytest.fixture
def qwen_copy(tmp_path, stories):
    """A writable copy of a golden Qwen model (tests/data/golden) with stories260K's tokenizer."""
    def make(name):
        dst = tmp_path / name
        shutil.copytree(ROOT / "tests" / "data" / "golden" / name, dst)
        for f in ("tokenizer.model", "tokenizer_config.json"):
            shutil.copy(stories / f, dst / f)
        for f in dst.iterdir():
            f.chmod(0o644)
        return dst
    return make


@pytest.mark.parametrize("tensor", ["model.layers.1.self_attn.k_proj.bias", "model.layers.0.self_attn.q_proj.bias"])
def test_qwen2_missing_bias(qwen_copy, tensor):
    folder = qwen_copy("qwen2-bias-f32")
    p = folder / "model.safetensors"
    header, data = read_safetensors(p)
    del header[tensor]
    write_safetensors(p, header, data)
    expect_bad(folder, "model.safetensors", tensor, "missing")


def test_qwen2_bias_of_wrong_length(qwen_copy):
    folder = qwen_copy("qwen2-bias-f32")
    p = folder / "model.safetensors"
    header, data = read_safetensors(p)
    name = "model.layers.0.self_attn.v_proj.bias"
    header[name]["shape"] = [16, 2]  # same byte count
    write_safetensors(p, header, data)
    expect_bad(folder, "model.safetensors", name, "shape [16, 2]", "expected [32]")


def test_qwen3_missing_qk_norm(qwen_copy):
    folder = qwen_copy("qwen3-qknorm-f32")
    p = folder / "model.safetensors"
    header, data = read_safetensors(p)
    del header["model.layers.1.self_attn.k_norm.weight"]
    write_safetensors(p, header, data)
    expect_bad(folder, "model.safetensors", "model.layers.1.self_attn.k_norm.weight", "missing")


@pytest.mark.parametrize("changes, words", [
    ({"use_sliding_window": "yes"}, ["use_sliding_window", "true or false"]),
    ({"use_sliding_window": True, "sliding_window": None, "max_window_layers": 0},
     ["use_sliding_window", "sliding_window", "not set"]),
    ({"sliding_window": -5}, ["sliding_window"]),
    ({"max_window_layers": "all"}, ["max_window_layers"]),
    ({"mlp_bias": True}, ["mlp_bias", "not supported"]),
    ({"attention_bias": "no"}, ["attention_bias", "true or false"]),
])
def test_qwen2_bad_fields(qwen_copy, changes, words):
    folder = qwen_copy("qwen2-bias-f32")
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))
    expect_bad(folder, "config.json", *words)


def test_llama_attention_bias_unsupported(model_copy):
    edit_config(model_copy, attention_bias=True)
    expect_bad(model_copy, "config.json", "attention_bias", "LlamaForCausalLM")
