"""The bytes of each token of a tokenizer.json, for build/grammar-run.

    python tests/grammar/vocab.py TOKENIZER_DIR OUT_FILE
    python tests/grammar/vocab.py --gguf FILE.gguf OUT_FILE     (the gguf package)

The benchmark's 32K vocabulary: --gguf ../shared/tokenizer_tests/ggml-vocab-llama-spm.gguf
build/grammar/llama-spm.vocab (Llama 2's SentencePiece vocabulary).

Byte-level BPE (GPT-2, Llama 3, Qwen): token strings through the inverse of
the ByteLevel byte-to-unicode map. SentencePiece-style (Metaspace, byte
fallback): '▁' is ' ' and <0xNN> that byte. Special added tokens have no
bytes (control tokens); the EOS ids are tokenizer_config.json's eos_token
plus the usual end markers present in the vocabulary.
"""
import json
import os
import sys


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def is_byte_level(tj):
    def walk(x):
        if isinstance(x, dict):
            if x.get("type") == "ByteLevel":
                return True
            return any(walk(v) for v in x.values())
        if isinstance(x, list):
            return any(walk(v) for v in x)
        return False
    return walk(tj.get("pre_tokenizer")) or walk(tj.get("decoder"))


def token_bytes(folder):
    tj = json.load(open(os.path.join(folder, "tokenizer.json"), encoding="utf-8"))
    vocab = dict(tj["model"]["vocab"])
    special = set()
    for a in tj.get("added_tokens", []):
        vocab[a["content"]] = a["id"]
        if a.get("special"):
            special.add(a["id"])
    n = max(vocab.values()) + 1
    out = [b""] * n
    bl = is_byte_level(tj)
    inv = bytes_to_unicode()
    for tok, i in vocab.items():
        if i in special:
            continue
        if bl:
            try:
                out[i] = bytes(inv[c] for c in tok)
            except KeyError:
                out[i] = tok.encode("utf-8")
        elif len(tok) == 6 and tok.startswith("<0x") and tok.endswith(">"):
            out[i] = bytes([int(tok[3:5], 16)])
        else:
            out[i] = tok.replace("▁", " ").encode("utf-8")
    eos = []
    cfg = os.path.join(folder, "tokenizer_config.json")
    names = ["</s>", "<|end_of_text|>", "<|eot_id|>", "<|endoftext|>", "<|im_end|>"]
    if os.path.exists(cfg):
        e = json.load(open(cfg, encoding="utf-8")).get("eos_token")
        if isinstance(e, dict):
            e = e.get("content")
        if isinstance(e, str):
            names.insert(0, e)
    for name in names:
        if name in vocab and vocab[name] not in eos:
            eos.append(vocab[name])
            out[vocab[name]] = b""
    return out, eos


def gguf_token_bytes(path):
    """A GGUF file's vocabulary (SentencePiece style: byte tokens <0xNN>, '▁' for spaces)."""
    import gguf
    f = gguf.GGUFReader(path).fields
    toks, types = f["tokenizer.ggml.tokens"], f["tokenizer.ggml.token_type"]
    kinds = [int(types.parts[i][0]) for i in types.data]
    eos = int(f["tokenizer.ggml.eos_token_id"].parts[-1][0])
    out = []
    for k, i in enumerate(toks.data):
        s = bytes(toks.parts[i]).decode("utf-8")
        if kinds[k] == 6:  # byte
            out.append(bytes([int(s[3:5], 16)]))
        elif kinds[k] in (2, 3, 5):  # unknown, control, unused
            out.append(b"")
        else:
            out.append(s.replace("\u2581", " ").encode("utf-8"))
    out[eos] = b""
    return out, [eos]


def write(folder, path, gguf_file=None):
    toks, eos = gguf_token_bytes(gguf_file) if gguf_file else token_bytes(folder)
    with open(path, "w") as f:
        f.write("TESSERA-VOCAB %d %d %s\n" % (len(toks), len(eos), " ".join(map(str, eos))))
        for t in toks:
            f.write(t.hex() + "\n")
    return len(toks), eos


if __name__ == "__main__":
    if sys.argv[1] == "--gguf":
        print(write(None, sys.argv[3], gguf_file=sys.argv[2]))
    else:
        print(write(sys.argv[1], sys.argv[2]))
