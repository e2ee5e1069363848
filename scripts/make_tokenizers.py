#!/usr/bin/env python3
"""Builds tokenizer folders (tokenizer.json + tokenizer_config.json, as Hugging Face ships them) for the
tokenizer.json tests, from pip packages and ../shared only (no model hub):

  llama3        Llama 3's tiktoken file from the llama-models package, converted with transformers'
                TikTokenConverter: Meta's pattern, the 256 special tokens as llama-models names them, a
                post-processor adding <|begin_of_text|>, Llama 3.1's chat template (../shared/chat_templates)
  tekken        mistral-common's newest Tekken file, converted with transformers' MistralConverter
                (convert_tekken_tokenizer), a post-processor adding <s>
  qwen2style    a 6K byte-level BPE trained here with Qwen2's pre-tokenizer, NFC normalizer, ByteLevel decoder
                and <|endoftext|>, <|im_start|>, <|im_end|>, on tests/data/tokenizer_mix.txt
  gguf-NAME     one per byte-level vocabulary in ../shared/tokenizer_tests (llama-bpe, qwen2, qwen35, gpt-2,
                deepseek-llm, command-r): tokens, merges and special tokens from the GGUF file, the normalizer,
                pre-tokenizer and post-processor of the family's Hugging Face tokenizer.json. Each is checked
                with the tokenizers package against the file's .inp/.out pairs before it is kept.
  stories260K   ../shared/models/stories260K's tokenizer.model (runs of spaces kept, as Llama 2's: see
                build_stories), tokenizer_config.json and, converted with transformers' LlamaConverter,
                tokenizer.json: both files in one folder

usage: make_tokenizers.py CACHE_DIR [NAME ...]   (default: all; a folder is rebuilt only when this script,
       the package versions or its sources change; CACHE_DIR/index.json lists what was built)
"""
import base64
import hashlib
import json
import os
import re
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TESSERA_SHARED", ROOT.parent / "shared"))
GGUF_DIR = SHARED / "tokenizer_tests"
STORIES = SHARED / "models" / "stories260K"
MIX = ROOT / "tests" / "data" / "tokenizer_mix.txt"
TEST_SEP = "\n__ggml_vocab_test__\n"

LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
             r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN35_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# DeepSeek LLM's tokenizer.json splits (llama.cpp's LLAMA_VOCAB_PRE_TYPE_DEEPSEEK_LLM lists the same); the
# escaped characters are those that NFC would replace (U+1F7D, U+1FD3, U+1FDB, U+1FBE, U+2126, U+212A): an
# editor that normalizes would empty their ranges
DEEPSEEK_SPLITS = [
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-\u1f7dᾀ-ᾴᾶ-ᾼ\u1fbeῂ-ῄῆ-ῌῐ-\u1fd3ῖ-\u1fdbῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤ\u2126ℨ\u212a-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
]


def split(pattern):
    return pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False)


def bos_template(bos, bos_id):
    return processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1",
                                         special_tokens=[(bos, bos_id)])


def bytelevel_then_bos(bos, bos_id):
    """Meta's Llama 3 post-processor: ByteLevel (offsets only), then BOS."""
    return processors.Sequence([processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
                                bos_template(bos, bos_id)])


def write_config(out, tok, **config):
    """tokenizer_config.json with added_tokens_decoder as transformers writes it."""
    added = {}
    for i, t in sorted(tok.get_added_tokens_decoder().items()):
        added[str(i)] = {"content": t.content, "lstrip": t.lstrip, "normalized": t.normalized, "rstrip": t.rstrip,
                         "single_word": t.single_word, "special": t.special}
    cfg = {"added_tokens_decoder": added, **config}
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- llama3 (tiktoken, llama-models)

def build_llama3(out):
    from llama_models.llama3 import tokenizer as meta
    from transformers.convert_slow_tokenizer import TikTokenConverter
    path = Path(meta.__file__).parent / "tokenizer.model"
    specials = sorted(meta.Tokenizer.get_instance().special_tokens.items(), key=lambda kv: kv[1])
    names = [name for name, _ in specials]
    assert len(names) == 256 and names[0] == "<|begin_of_text|>"
    tok = TikTokenConverter(vocab_file=str(path), pattern=meta.Tokenizer.pat_str, extra_special_tokens=names).converted()
    assert tok.token_to_id("<|begin_of_text|>") == 128000 and tok.get_vocab_size() == 128256
    tok.post_processor = bytelevel_then_bos("<|begin_of_text|>", 128000)
    tok.save(str(out / "tokenizer.json"))
    template = SHARED / "chat_templates" / "llama.cpp" / "meta-llama-Llama-3.1-8B-Instruct.jinja"
    extra = {"chat_template": template.read_text()} if template.exists() else {}
    write_config(out, tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", clean_up_tokenization_spaces=True,
                 model_input_names=["input_ids", "attention_mask"], model_max_length=131072,
                 tokenizer_class="PreTrainedTokenizerFast", **extra)
    return [path]


# ---------------------------------------------------------------- tekken (mistral-common)

def tekken_file():
    import mistral_common
    files = sorted((Path(mistral_common.__file__).parent / "data").glob("tekken_*.json"))
    return files[-1]


def build_tekken(out):
    from transformers.integrations.mistral.tokenizer import MistralConverter
    path = tekken_file()
    tok = MistralConverter(vocab_file=str(path)).converted()
    bos = tok.token_to_id("<s>")
    assert bos == 1, bos
    tok.post_processor = bytelevel_then_bos("<s>", bos)
    tok.save(str(out / "tokenizer.json"))
    write_config(out, tok, add_bos_token=True, add_eos_token=False, bos_token="<s>", eos_token="</s>",
                 unk_token="<unk>", clean_up_tokenization_spaces=False, model_max_length=1024000,
                 tokenizer_class="PreTrainedTokenizerFast")
    return [path]


# ---------------------------------------------------------------- qwen2style (trained here)

QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_qwen2style(out):
    from tokenizers import trainers
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [split(QWEN2_PAT), pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=6000, min_frequency=2, show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lines = MIX.read_text(encoding="utf-8").split("\n")
    tok.train_from_iterator(lines, trainer=trainer)
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in QWEN_SPECIALS])
    tok.save(str(out / "tokenizer.json"))
    write_config(out, tok, add_bos_token=False, add_prefix_space=False, bos_token=None, eos_token="<|im_end|>",
                 pad_token="<|endoftext|>", unk_token=None, errors="replace", clean_up_tokenization_spaces=False,
                 model_max_length=32768, split_special_tokens=False, tokenizer_class="Qwen2Tokenizer",
                 additional_special_tokens=["<|im_start|>", "<|im_end|>"])
    return [MIX]


# ---------------------------------------------------------------- GGUF vocabularies (../shared/tokenizer_tests)

def gguf_family(pre):
    """normalizer, pre_tokenizer, post_processor(bos, bos_id), ignore_merges, added-token normalized flag."""
    bl = pre_tokenizers.ByteLevel
    if pre == "llama-bpe":
        return (None, [split(LLAMA3_PAT), bl(add_prefix_space=False, trim_offsets=True, use_regex=False)],
                bytelevel_then_bos, True, False)
    if pre in ("qwen2", "qwen35"):
        pat = QWEN2_PAT if pre == "qwen2" else QWEN35_PAT
        # Qwen3.5 has no NFC normalizer: its .out keeps NFD text decomposed (combining marks: \p{M})
        return (normalizers.NFC() if pre == "qwen2" else None,
                [split(pat), bl(add_prefix_space=False, trim_offsets=False, use_regex=False)], None, False, False)
    if pre == "gpt-2":
        return None, [bl(add_prefix_space=False, trim_offsets=True, use_regex=True)], None, False, False
    if pre == "deepseek-llm":
        pres = [split(p) for p in DEEPSEEK_SPLITS] + [bl(add_prefix_space=False, trim_offsets=True, use_regex=False)]
        return normalizers.Sequence([]), pres, bos_template, False, True
    if pre == "command-r":
        pres = [pre_tokenizers.Digits(individual_digits=True),
                bl(add_prefix_space=False, trim_offsets=True, use_regex=True)]
        return normalizers.NFC(), pres, bos_template, False, False
    raise ValueError(f"no tokenizer.json recipe for tokenizer.ggml.pre = {pre}")


def read_gguf(path):
    from gguf import GGUFReader
    f = GGUFReader(str(path)).fields
    get = lambda k, d=None: f[k].contents() if k in f else d  # noqa: E731
    return SimpleNamespace(pre=get("tokenizer.ggml.pre"), tokens=get("tokenizer.ggml.tokens"),
                           types=get("tokenizer.ggml.token_type"), merges=get("tokenizer.ggml.merges"),
                           bos=get("tokenizer.ggml.bos_token_id"), eos=get("tokenizer.ggml.eos_token_id"),
                           add_bos=get("tokenizer.ggml.add_bos_token"), template=get("tokenizer.chat_template"))


def build_gguf(out, name):
    path = GGUF_DIR / f"ggml-vocab-{name}.gguf"
    g = read_gguf(path)
    n = len(g.tokens)
    while n and re.fullmatch(r"\[PAD\d+\]", g.tokens[n - 1]):  # llama.cpp's padding, not in the HF release
        n -= 1
    normalizer, pres, post, ignore_merges, added_normalized = gguf_family(g.pre)
    vocab = {g.tokens[i]: i for i in range(n)}
    merges = [tuple(m.split(" ", 1)) for m in g.merges]
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False, ignore_merges=ignore_merges))
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence(pres) if len(pres) > 1 else pres[0]
    tok.decoder = decoders.ByteLevel()
    added = [AddedToken(g.tokens[i], special=g.types[i] == 3, normalized=added_normalized and g.types[i] != 3)
             for i in range(n) if g.types[i] in (3, 4)]
    tok.add_tokens(added)
    bos = g.tokens[g.bos] if g.bos is not None else None
    tok.post_processor = post(bos, g.bos) if post else processors.ByteLevel(trim_offsets=False)
    for t in added:
        assert tok.token_to_id(t.content) == vocab[t.content], t.content
    tok.save(str(out / "tokenizer.json"))
    config = {"add_bos_token": bool(post), "add_eos_token": False, "bos_token": bos, "eos_token": g.tokens[g.eos],
              "clean_up_tokenization_spaces": False, "tokenizer_class": "PreTrainedTokenizerFast"}
    if g.template:
        config["chat_template"] = g.template
    write_config(out, tok, **config)
    check_gguf(out, name)
    return [path, path.with_name(path.name + ".inp"), path.with_name(path.name + ".out")]


def gguf_cases(name):
    """(text, ids) of NAME's .inp/.out files."""
    base = GGUF_DIR / f"ggml-vocab-{name}.gguf"
    texts = base.with_name(base.name + ".inp").read_text(encoding="utf-8").split(TEST_SEP)[:-1]
    outs = base.with_name(base.name + ".out").read_text().split("\n")[: len(texts)]
    assert len(texts) == len(outs), name
    return [(t, [int(x) for x in o.split()]) for t, o in zip(texts, outs)]


def check_gguf(out, name):
    """The tokenizers package on the built tokenizer.json must give every .out line."""
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    bad = [(t, ids, tok.encode(t, add_special_tokens=False).ids) for t, ids in gguf_cases(name)]
    bad = [b for b in bad if b[1] != b[2]]
    if bad:
        lines = "\n".join(f"  {t!r}: expected {e}, got {g}" for t, e, g in bad[:5])
        raise SystemExit(f"make_tokenizers: gguf-{name}: {len(bad)} .inp strings differ from .out:\n{lines}")


# ---------------------------------------------------------------- stories260K: tokenizer.model + tokenizer.json

def _llama_converter():
    """transformers' LlamaConverter; its BPE model built as transformers 4.x built it (merges in piece-score
    order), since 5.x's SpmExtractor.extract() no longer takes the scores it is given (AttributeError)."""
    from transformers.convert_slow_tokenizer import LlamaConverter
    from transformers.tokenization_utils_base import generate_merges

    class Converter(LlamaConverter):
        def tokenizer(self, proto):
            if proto.trainer_spec.model_type != 2:
                return super().tokenizer(proto)
            scores = self.vocab(proto)
            vocab = {piece: i for i, (piece, _) in enumerate(scores)}
            return Tokenizer(models.BPE(vocab, generate_merges(vocab, scores), unk_token=proto.trainer_spec.unk_piece,
                                        fuse_unk=True, byte_fallback=True, dropout=None))
    return Converter


def build_stories(out):
    import sentencepiece as spm
    _LlamaConverter = _llama_converter()
    from transformers.convert_slow_tokenizer import import_protobuf
    model = STORIES / "tokenizer.model"
    # stories260K's model collapses runs of spaces (normalizer_spec.remove_extra_whitespaces), which no
    # tokenizer.json can say (LlamaConverter ignores it): the copy here has Llama 2's setting (false), so
    # that both files describe one tokenizer
    proto = import_protobuf().ModelProto()
    proto.ParseFromString(model.read_bytes())
    proto.normalizer_spec.remove_extra_whitespaces = False
    (out / "tokenizer.model").write_bytes(proto.SerializeToString())
    sp = spm.SentencePieceProcessor(model_file=str(out / "tokenizer.model"))
    orig = SimpleNamespace(vocab_file=str(out / "tokenizer.model"), legacy=True, add_prefix_space=True,
                           convert_ids_to_tokens=sp.id_to_piece)
    tok = _LlamaConverter(orig).converted()
    tok.add_special_tokens([AddedToken(sp.id_to_piece(i), special=True, normalized=False) for i in range(3)])
    tok.post_processor = bos_template(sp.id_to_piece(sp.bos_id()), sp.bos_id())
    tok.save(str(out / "tokenizer.json"))
    cfg = json.loads((STORIES / "tokenizer_config.json").read_text())
    cfg.setdefault("tokenizer_class", "LlamaTokenizerFast")
    cfg["legacy"] = True
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return [model, STORIES / "tokenizer_config.json"]


GGUF_NAMES = ["llama-bpe", "qwen2", "qwen35", "gpt-2", "deepseek-llm", "command-r"]
BUILDERS = {"llama3": build_llama3, "tekken": build_tekken, "qwen2style": build_qwen2style,
            "stories260K": build_stories}
BUILDERS.update({f"gguf-{n}": (lambda out, n=n: build_gguf(out, n)) for n in GGUF_NAMES})
PACKAGES = ["tokenizers", "transformers", "tiktoken", "llama-models", "mistral-common", "gguf", "sentencepiece"]


def cache_key(name):
    h = hashlib.sha256(Path(__file__).read_bytes())
    for p in PACKAGES:
        h.update(f"{p}={metadata.version(p)}".encode())
    h.update(name.encode())
    return h.hexdigest()[:16]


def build(cache, name):
    """Builds cache/name unless it is there for the same key; returns (key, seconds)."""
    out, key = cache / name, cache_key(name)
    stamp = out / ".built"
    if stamp.exists() and stamp.read_text().split()[0] == key:
        return key, 0.0
    t0 = time.time()
    tmp = cache / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    sources = BUILDERS[name](tmp)
    digest = hashlib.sha256(b"".join(Path(s).read_bytes() for s in sources)).hexdigest()[:16]
    (tmp / ".built").write_text(f"{key} {digest}\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return key, time.time() - t0


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    cache = Path(argv[1])
    names = argv[2:] or list(BUILDERS)
    unknown = [n for n in names if n not in BUILDERS]
    if unknown:
        print(f"make_tokenizers: unknown folder(s) {unknown}; known: {list(BUILDERS)}", file=sys.stderr)
        return 2
    cache.mkdir(parents=True, exist_ok=True)
    for name in names:
        key, secs = build(cache, name)
        print(f"make_tokenizers: {cache / name}: {'built in %.1f s' % secs if secs else 'up to date'}")
    index = {n: str(cache / n) for n in BUILDERS if (cache / n / ".built").exists()}
    (cache / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
