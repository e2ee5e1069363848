"""GGUF models through the binary: `tessera generate FILE.gguf` and a folder
holding one .gguf give the tokens of the safetensors folder they were
written from (scripts/make_gguf.py, the gguf package's writer); bad files
exit 2 with one line naming the file and the problem."""
import shutil
import struct
import sys

import numpy as np
import pytest

from conftest import ROOT, run

sys.path.insert(0, str(ROOT / "scripts"))
import make_gguf  # noqa: E402

PROMPTS = ["Once upon a time", "The cat sat", "Lily and Tom went to the park. They"]


@pytest.fixture(scope="session")
def gguf_dir(tmp_path_factory, stories):
    """stories260K.gguf (F32, as the safetensors) beside the tokenizer files."""
    d = tmp_path_factory.mktemp("gguf") / "stories-gguf"
    d.mkdir()
    make_gguf.convert(stories, d / "stories260K.gguf")
    for f in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copyfile(stories / f, d / f)
    return d


@pytest.fixture
def bad(tmp_path, gguf_dir):
    """A writable copy of the GGUF folder; returns (folder, the file's bytes)."""
    d = tmp_path / "bad"
    shutil.copytree(gguf_dir, d)
    return d, bytearray((d / "stories260K.gguf").read_bytes())


def generate(model, prompt, n=40):
    r = run("generate", model, "-p", prompt, "-n", n, "--temperature", 0)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("prompt", PROMPTS)
def test_gguf_generates_the_safetensors_tokens(stories, gguf_dir, prompt):
    want = generate(stories, prompt)
    assert generate(gguf_dir / "stories260K.gguf", prompt) == want
    assert generate(gguf_dir, prompt) == want


def test_gguf_f16_matches_an_f16_safetensors_folder(tmp_path, stories):
    """An F16 GGUF and the F16 safetensors folder of the same weights."""
    f16 = tmp_path / "f16"
    shutil.copytree(stories, f16)
    tensors = make_gguf.read_safetensors(stories)
    header, data = {}, b""
    for name, (dtype, arr) in tensors.items():
        b = arr.astype(np.float16).tobytes() if arr.ndim == 2 else arr.tobytes()
        header[name] = {"dtype": "F16" if arr.ndim == 2 else dtype, "shape": list(arr.shape),
                        "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    from conftest import write_safetensors
    write_safetensors(f16 / "model.safetensors", header, data)
    g = tmp_path / "g"
    g.mkdir()
    make_gguf.convert(f16, g / "m.gguf")
    shutil.copyfile(stories / "tokenizer.model", g / "tokenizer.model")
    for p in PROMPTS[:2]:
        assert generate(g, p) == generate(f16, p)


# --- where the tensors and keys are in a file, for breaking it in one place


def layout(raw):
    """{'kv': {key: (key_pos, value_pos)}, 'tensors': {name: {...}}} of a GGUF file."""
    pos = 24
    n_tensors, n_kv = struct.unpack_from("<QQ", raw, 8)
    sizes = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}

    def string(p):
        (n,) = struct.unpack_from("<Q", raw, p)
        return raw[p + 8:p + 8 + n].decode(), p + 8 + n

    def value(t, p):
        if t == 8:
            return string(p)[1]
        if t == 9:
            et, n = struct.unpack_from("<IQ", raw, p)
            p += 12
            for _ in range(n):
                p = value(et, p)
            return p
        return p + sizes[t]

    out = {"kv": {}, "tensors": {}}
    for _ in range(n_kv):
        k, p = string(pos)
        (t,) = struct.unpack_from("<I", raw, p)
        out["kv"][k] = (pos, p + 4)
        pos = value(t, p + 4)
    for _ in range(n_tensors):
        name, p = string(pos)
        (nd,) = struct.unpack_from("<I", raw, p)
        ne_pos = p + 4
        type_pos = ne_pos + 8 * nd
        off_pos = type_pos + 4
        out["tensors"][name] = {"name_pos": pos + 8, "ne_pos": ne_pos, "n_dims": nd, "type_pos": type_pos,
                                "offset_pos": off_pos, "offset": struct.unpack_from("<Q", raw, off_pos)[0]}
        pos = off_pos + 8
    return out


def expect_bad(folder, raw, *words):
    (folder / "stories260K.gguf").write_bytes(bytes(raw))
    r = run("generate", folder, "-p", "hi", "-n", "1")
    assert r.returncode == 2, f"exit {r.returncode}: {r.stderr}"
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "stories260K.gguf" in lines[0], lines[0]
    for w in words:
        assert w in lines[0], lines[0]


def test_truncated_header(bad):
    folder, raw = bad
    expect_bad(folder, raw[:20], "truncated")


def test_truncated_data(bad):
    folder, raw = bad
    expect_bad(folder, raw[:len(raw) // 2], "outside")


def test_lying_tensor_offset(bad):
    folder, raw = bad
    t = layout(raw)["tensors"]["blk.2.ffn_up.weight"]
    struct.pack_into("<Q", raw, t["offset_pos"], 1 << 40)
    expect_bad(folder, raw, "blk.2.ffn_up.weight", "outside")


def test_misaligned_offset(bad):
    folder, raw = bad
    t = layout(raw)["tensors"]["blk.0.attn_k.weight"]
    struct.pack_into("<Q", raw, t["offset_pos"], t["offset"] + 4)
    expect_bad(folder, raw, "blk.0.attn_k.weight", "not aligned")


def test_unknown_tensor_type(bad):
    folder, raw = bad
    struct.pack_into("<I", raw, layout(raw)["tensors"]["output_norm.weight"]["type_pos"], 99)
    expect_bad(folder, raw, "output_norm.weight", "unknown type 99")


def write_with_one_tensor_as(src, dst, name, qtype):
    """src's tensors and llama.* / tokenizer.* keys into dst, tensor `name` as qtype."""
    import gguf
    r = gguf.GGUFReader(str(src))
    w = gguf.GGUFWriter(str(dst), "llama")
    for f in r.fields.values():
        if f.name.startswith("llama.") or f.name.startswith("tokenizer."):
            v = f.contents()
            (w.add_float32 if isinstance(v, float) else w.add_uint32)(f.name, v)
    for t in r.tensors:
        arr = np.array(t.data).reshape([int(x) for x in reversed(t.shape)])
        if t.name == name:
            w.add_tensor(t.name, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(t.name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_unsupported_quantized_type_is_refused(tmp_path, gguf_dir):
    """Q5_0 (a type llama-quantize uses as a fallback) has no kernels: refused at load, by name."""
    import gguf
    folder = tmp_path / "q5"
    shutil.copytree(gguf_dir, folder)
    write_with_one_tensor_as(gguf_dir / "stories260K.gguf", folder / "stories260K.gguf", "blk.0.ffn_gate.weight",
                             gguf.GGMLQuantizationType.Q5_0)
    raw = (folder / "stories260K.gguf").read_bytes()
    expect_bad(folder, raw, "blk.0.ffn_gate.weight", "Q5_0", "not supported", "Q4_K")


def test_missing_architecture_key(bad):
    folder, raw = bad
    kpos = layout(raw)["kv"]["general.architecture"][0]
    raw[kpos + 8:kpos + 8 + 20] = b"general.architecturX"
    expect_bad(folder, raw, "missing key", "general.architecture")


def test_unsupported_architecture(bad):
    folder, raw = bad
    vpos = layout(raw)["kv"]["general.architecture"][1]
    raw[vpos + 8:vpos + 13] = b"gemma"
    expect_bad(folder, raw, "gemma", "not supported")


def test_shape_mismatch(bad):
    """A smaller tensor than the config says: the file is consistent, the model is not."""
    folder, raw = bad
    t = layout(raw)["tensors"]["blk.1.ffn_up.weight"]
    struct.pack_into("<Q", raw, t["ne_pos"] + 8, 171)  # [64, 172] -> [64, 171]
    expect_bad(folder, raw, "blk.1.ffn_up.weight", "shape [171, 64], expected [172, 64]")


def test_size_overlapping_the_next_tensor(bad):
    folder, raw = bad
    t = layout(raw)["tensors"]["blk.1.ffn_up.weight"]
    struct.pack_into("<Q", raw, t["ne_pos"] + 8, 400)
    expect_bad(folder, raw, "blk.1.ffn_up.weight", "overlap")


def test_missing_tensor(bad):
    folder, raw = bad
    p = layout(raw)["tensors"]["blk.3.ffn_down.weight"]["name_pos"]
    raw[p:p + 5] = b"xxx.3"
    expect_bad(folder, raw, "blk.3.ffn_down.weight", "missing")


def test_huge_counts(bad):
    folder, raw = bad
    struct.pack_into("<Q", raw, 8, 1 << 62)
    expect_bad(folder, raw, "tensor count", "impossible")
    struct.pack_into("<QQ", raw, 8, 5, 1 << 62)
    expect_bad(folder, raw, "metadata count", "impossible")


def test_two_gguf_files(bad):
    folder, raw = bad
    (folder / "other.gguf").write_bytes(bytes(raw))
    r = run("generate", folder, "-p", "hi", "-n", "1")
    assert r.returncode == 2 and "2 .gguf files" in r.stderr, r.stderr
