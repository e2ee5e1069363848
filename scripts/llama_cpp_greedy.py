#!/usr/bin/env python3
"""Golden greedy tokens from llama.cpp, for tests; and the GGUF files to get them from.

    llama_cpp_greedy.py MODEL.gguf -n N [-p PROMPT ...] [--prompts-file F] [-o OUT.json] [--stop-at-eos]
                        [--kv-f32]
        Tokenizes each prompt with llama.cpp's own tokenizer (the vocabulary stored in the GGUF; BOS added
        when the file's tokenizer.ggml.add_bos_token says so, as llama_tokenize does), then decodes N tokens
        greedily (argmax of the raw logits: temperature 0, top_k 1, no repetition penalty), one
        llama_decode per token with only the last position's logits. EOS does not stop it unless
        --stop-at-eos. llama.cpp's KV cache is F16 unless --kv-f32 (tessera's CPU cache is F32). Writes
        JSON (to OUT or stdout):
          {"model": ..., "llama_cpp_python": VERSION, "n": N, "add_bos": bool, "eos_id": ID, "kv_cache": TYPE,
           "results": [{"prompt": TEXT, "prompt_ids": [...], "tokens": [...], "text": DECODED,
                        "top2_gap": [top1 - top2 logit at each step, ...]}, ...]}
        A small top2_gap flags a step where another engine may fairly pick a different token.

    llama_cpp_greedy.py --make-gguf SRC_DIR OUT.gguf [--outtype same|f32|f16|q8_0|q4_0] [--quantize Q8_0,Q4_0,...]
        scripts/make_gguf.py's conversion of a Hugging Face llama folder, plus the sentencepiece vocabulary
        (tokenizer.ggml.*, as llama.cpp's convert_hf_to_gguf.py writes it from tokenizer.model, padded
        with [PADn] tokens up to config.json's vocab_size) that llama.cpp needs to load the file, which
        make_gguf.py leaves out. Then writes OUT-<type>.gguf with build/llama-cpp's llama-quantize for each
        type, and prints the type that llama-quantize chose for each tensor (gguf's GGUFReader).

    llama_cpp_greedy.py --types FILE.gguf ...    per-tensor types of GGUF files

llama.cpp comes from scripts/build_llama_cpp.sh (built on first use; slow once on 2 cores); the llama_cpp
package is the llama-cpp-python sdist's pure-Python folder over that build's libllama.so.
Example (stories260K, as in the tests):
    .venv/bin/python scripts/llama_cpp_greedy.py --make-gguf /work/shared/models/stories260K \\
        build/llama-golden/stories260K.gguf --quantize Q8_0,Q4_0
    .venv/bin/python scripts/llama_cpp_greedy.py build/llama-golden/stories260K-q8_0.gguf -n 32 \\
        -p "Once upon a time" -p "The cat sat" -o build/llama-golden/stories260K-q8_0.json
"""
import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "scripts" / "build_llama_cpp.sh"
_env = None


def llama_env():
    """{'LLAMA_CPP_BIN', 'LLAMA_CPP_LIB_PATH', 'LLAMA_CPP_PYTHONPATH'} from build_llama_cpp.sh (builds if needed)."""
    global _env
    if _env is None:
        out = subprocess.run(["bash", str(BUILD_SCRIPT), "--env"], stdout=subprocess.PIPE, text=True, check=True).stdout
        _env = {}
        for line in out.splitlines():
            if line.startswith("export "):
                k, _, v = line[len("export "):].partition("=")
                _env[k] = v.strip("'")
    return _env


def import_llama_cpp():
    """The llama_cpp package over build/llama-cpp's libllama.so."""
    e = llama_env()
    os.environ["LLAMA_CPP_LIB_PATH"] = e["LLAMA_CPP_LIB_PATH"]
    for p in reversed(e["LLAMA_CPP_PYTHONPATH"].split(":")):
        if p not in sys.path:
            sys.path.insert(0, p)
    import llama_cpp
    return llama_cpp


def llama_tool(name):
    return str(Path(llama_env()["LLAMA_CPP_BIN"]) / name)


# ------------------------------------------------------------------ GGUF with a vocabulary

def add_spm_vocab(w, src):
    """tokenizer.ggml.* of src/tokenizer.model, as convert_hf_to_gguf.py's _set_vocab_sentencepiece."""
    import gguf
    import sentencepiece
    src = Path(src)
    cfg = json.loads((src / "config.json").read_text())
    sp = sentencepiece.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
    T = gguf.TokenType
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        types.append(T.UNKNOWN if sp.is_unknown(i) else T.CONTROL if sp.is_control(i)
                     else T.UNUSED if sp.is_unused(i) else T.BYTE if sp.is_byte(i) else T.NORMAL)
    n_vocab = cfg.get("vocab_size", len(tokens))
    for i in range(1, n_vocab - len(tokens) + 1):  # the converter pads to the embedding's rows
        tokens.append(f"[PAD{i}]".encode())
        scores.append(-1000.0)
        types.append(T.UNUSED)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    if sp.unk_id() >= 0:
        w.add_unk_token_id(sp.unk_id())
    tc_path = src / "tokenizer_config.json"
    tc = json.loads(tc_path.read_text()) if tc_path.exists() else {}
    w.add_add_bos_token(bool(tc.get("add_bos_token", True)))
    w.add_add_eos_token(bool(tc.get("add_eos_token", False)))


def make_gguf_with_vocab(src, out, outtype="same"):
    """make_gguf.convert(src, out, outtype) with add_spm_vocab's keys added before the header is written."""
    import gguf
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_gguf
    base = gguf.GGUFWriter

    class VocabWriter(base):
        def write_header_to_file(self, *a, **k):
            add_spm_vocab(self, src)
            return super().write_header_to_file(*a, **k)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    make_gguf.gguf.GGUFWriter = VocabWriter
    try:
        make_gguf.convert(src, tmp, outtype)
    finally:
        make_gguf.gguf.GGUFWriter = base
    os.replace(tmp, out)
    return out


def quantize(src, out, qtype, threads=2):
    """llama-quantize SRC OUT QTYPE; returns OUT (skipped when OUT is newer than SRC)."""
    src, out = Path(src), Path(out)
    if out.exists() and out.stat().st_mtime >= src.stat().st_mtime:
        return out
    tmp = out.with_name(out.name + ".tmp")
    r = subprocess.run([llama_tool("llama-quantize"), str(src), str(tmp), qtype, str(threads)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        sys.exit(f"llama-quantize {qtype} failed:\n{r.stdout[-3000:]}")
    os.replace(tmp, out)
    return out


def tensor_types(path):
    """[(name, type name, shape, bytes)] of a GGUF file."""
    from gguf import GGUFReader
    r = GGUFReader(str(path))
    return [(t.name, t.tensor_type.name, [int(x) for x in t.shape], int(t.n_bytes)) for t in r.tensors]


def print_types(path):
    rows = tensor_types(path)
    print(f"{path}: {sum(b for *_, b in rows)} tensor bytes")
    summary = {}
    for name, ty, shape, nb in rows:
        key = name.split(".", 2)[-1] if name.startswith("blk.") else name
        summary.setdefault(key, set()).add(ty)
    for key, tys in summary.items():
        print(f"  {key:24s} {','.join(sorted(tys))}")


# ------------------------------------------------------------------ greedy decoding

def greedy(model_path, prompts, n, stop_at_eos=False, n_ctx=None, kv_f32=False):
    import numpy as np
    L = import_llama_cpp()
    kv = dict(type_k=L.GGML_TYPE_F32, type_v=L.GGML_TYPE_F32) if kv_f32 else {}
    llm = L.Llama(model_path=str(model_path), n_ctx=n_ctx or 0, n_threads=2, n_threads_batch=2,
                  n_batch=512, logits_all=False, verbose=False, seed=0, **kv)
    n_vocab = llm.n_vocab()
    eos = llm.token_eos()
    add_bos = bool(llm._model.add_bos_token())
    results = []
    for prompt in prompts:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False)  # add_bos: as the vocab says
        if len(ids) + n > llm.n_ctx():
            sys.exit(f"prompt of {len(ids)} tokens + {n} does not fit the context of {llm.n_ctx()}")
        llm.reset()
        llm._ctx.kv_cache_clear()
        toks, gaps = [], []
        batch = ids
        for _ in range(n):
            llm.eval(batch)
            logits = np.ctypeslib.as_array(L.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,)).astype(np.float64)
            top2 = np.argpartition(-logits, 1)[:2]
            tok = int(np.argmax(logits))  # lowest id among equal maxima
            other = max((float(logits[i]) for i in top2 if i != tok), default=float("-inf"))
            toks.append(tok)
            gaps.append(round(float(logits[tok]) - other, 6))
            if stop_at_eos and tok == eos:
                break
            batch = [tok]
        text = llm.detokenize(toks).decode("utf-8", errors="replace")
        results.append({"prompt": prompt, "prompt_ids": [int(i) for i in ids], "tokens": toks, "text": text,
                        "top2_gap": gaps})
    out = {"model": str(model_path), "llama_cpp_python": L.__version__, "n": n, "add_bos": add_bos,
           "eos_id": int(eos), "kv_cache": "f32" if kv_f32 else "f16", "results": results}
    del llm
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="GGUF file to decode with")
    ap.add_argument("-n", type=int, default=32, help="tokens to generate per prompt (default 32)")
    ap.add_argument("-p", "--prompt", action="append", default=[], help="a prompt (repeatable)")
    ap.add_argument("--prompts-file", help="a JSON list of prompts, or text with one prompt per line")
    ap.add_argument("-o", "--out", help="JSON output file (default stdout)")
    ap.add_argument("--stop-at-eos", action="store_true")
    ap.add_argument("--kv-f32", action="store_true", help="llama.cpp's KV cache in F32 (default F16)")
    ap.add_argument("--make-gguf", nargs=2, metavar=("SRC_DIR", "OUT.gguf"))
    ap.add_argument("--outtype", choices=["same", "f32", "f16", "q8_0", "q4_0"], default="same")
    ap.add_argument("--quantize", default="", help="with --make-gguf: comma list of llama-quantize types")
    ap.add_argument("--types", nargs="+", metavar="FILE.gguf")
    a = ap.parse_args()
    if a.types:
        for f in a.types:
            print_types(f)
        return
    if a.make_gguf:
        src, out = a.make_gguf
        out = make_gguf_with_vocab(src, out, a.outtype)
        print_types(out)
        for q in [q.strip() for q in a.quantize.split(",") if q.strip()]:
            qo = out.with_name(f"{out.stem}-{q.lower()}.gguf")
            quantize(out, qo, q)
            print_types(qo)
        return
    if not a.model:
        ap.error("give MODEL.gguf (or --make-gguf / --types)")
    prompts = list(a.prompt)
    if a.prompts_file:
        txt = Path(a.prompts_file).read_text()
        try:
            prompts += json.loads(txt)
        except json.JSONDecodeError:
            prompts += [l for l in txt.splitlines() if l.strip()]
    if not prompts:
        ap.error("no prompts: give -p or --prompts-file")
    res = greedy(a.model, prompts, a.n, a.stop_at_eos, kv_f32=a.kv_f32)
    text = json.dumps(res, indent=1) + "\n"
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text)
        print(f"wrote {a.out}: {len(res['results'])} prompts x {a.n} tokens", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
