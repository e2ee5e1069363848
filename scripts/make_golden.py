#!/usr/bin/env python3
"""Records the reference data the unit tests compare against, with Hugging
Face transformers (and sentencepiece). Deterministic (fixed seeds): a re-run
with the same library versions rewrites the same bytes. Writes, under tests/data/:

  golden/<name>/       tiny random-weight models saved by transformers
                       (config.json, model.safetensors or shards +
                       model.safetensors.index.json, generation_config.json):
                       llama-gqa-f32, llama-tied-f32, llama-odd-f32 (hidden 36,
                       llama3 rope), llama-bf16 (linear rope),
                       mistral-f16-sharded (head_dim 32, 7 shards),
                       qwen2-bias-f32 (q/k/v biases), qwen3-qknorm-f32 (per-head
                       q/k RMSNorm, head_dim 16 with hidden 48), qwen3-bias-f32
                       (attention_bias: q/k/v/o biases, one KV head),
                       llama3-vocab128k-bf16 (Llama 3.2 as shipped: vocabulary
                       128256, llama3 rope, tied, eos list; hidden 8),
                       mistral-nemo-bf16 (head_dim 16 with hidden 48, 4 heads), and
      reference.json   the 80 prompt ids and metadata (versions, max |logit|)
      logits.f32       transformers' float32 logits of the saved weights
                       (BF16/F16 upcast exactly to float32), one forward over
                       the whole prompt: little-endian float32 [80, vocab], or
                       [len(logit_rows), vocab] when reference.json lists
                       logit_rows (the positions kept: the 128256-token
                       vocabulary would make 41 MB of logits)
      logits_bf16.f32  (llama-bf16 only) the same computed in bfloat16; its
                       max abs difference to logits.f32 is in reference.json
                       as bf16_compute_max_abs_diff_vs_fp32
  stories260K_greedy.json     greedy continuations (200 tokens, a manual
                              argmax loop with the KV cache: no EOS stop, no
                              logit processors) of the real model
                              ../shared/models/stories260K, with the smallest
                              top-1/top-2 logit gap per prompt
  tokenizer_corpus.txt        CORPUS below, one line per case (UTF-8)
  stories260K_tokenizer.json  ids of each corpus line from the sentencepiece
                              package and from transformers' LlamaTokenizer
                              (slow), and sentencepiece's decode of the ids

CI does not run this (it needs torch). Qwen3 needs transformers >= 4.51,
which asks for torch >= 2; Debian 12's python3-torch is 1.13 and PyPI's
torch wheels for Linux pull in gigabytes of CUDA libraries, so this script
runs transformers 4.51.3 on Debian's torch 1.13: torch_compat() below adds
the few names 4.51 looks up when its modules are imported (two module
placeholders, dtype names, a no-op torch.compiler.disable), none of them on
the forward's path, and saved folders are loaded back by load_saved()
(config + tensors, strict) instead of from_pretrained, whose loading code
needs torch 2. To re-record, on Debian 12 (do not pip
install torch):
  apt-get install python3-torch python3-sentencepiece python3-numpy python3-venv
  /usr/bin/python3 -m venv --system-site-packages VENV
  VENV/bin/pip install transformers==4.51.3 safetensors==0.5.3
  VENV/bin/python scripts/make_golden.py [--out DIR] [NAME ...]
NAMEs: golden models to record (default: all, then the stories260K and
tokenizer files); --out writes under DIR instead of tests/data (to compare).
The files of llama-gqa-f32 .. mistral-f16-sharded, stories260K_greedy.json
and the tokenizer files were recorded with transformers 4.45.2 and torch 1.13
(their reference.json says so); re-recorded with 4.51.3 their weights and
greedy tokens stay the same and their logits move by at most 6e-6 (the
order of float sums), so they were left as they were.
$TESSERA_STORIES260K overrides the stories260K folder. No model hub is used.
"""
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import sentencepiece
import torch


def torch_compat():
    """Names transformers 4.51 expects of torch >= 2, on torch 1.13: looked up when
    its modules are imported, never called in a forward. A no-op on torch 2."""
    if int(torch.__version__.split(".")[0]) >= 2:
        return
    import importlib
    import types
    importlib.import_module("torch.distributed")
    for mod in ("torch.distributed.tensor", "torch.compiler"):
        m = sys.modules.setdefault(mod, types.ModuleType(mod))
        setattr(sys.modules[mod.rsplit(".", 1)[0]], mod.rsplit(".", 1)[1], m)
    torch.compiler.disable = lambda fn=None, recursive=True: fn if fn is not None else (lambda f: f)
    torch.compiler.is_compiling = lambda: False
    for name in ("float8_e4m3fn", "float8_e5m2", "uint16", "uint32", "uint64"):
        if not hasattr(torch, name):
            setattr(torch, name, object())  # dtype table entries of no tensor here


torch_compat()
import transformers  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import (LlamaConfig, LlamaForCausalLM, LlamaTokenizer, MistralConfig,  # noqa: E402
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM, Qwen3Config,
                          Qwen3ForCausalLM)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
STORIES = Path(os.environ.get("TESSERA_STORIES260K", ROOT.parent / "shared" / "models" / "stories260K"))
N_PROMPT = 80

MODELS = {
    "llama-gqa-f32": (LlamaConfig, LlamaForCausalLM, torch.float32, {}, dict(
        hidden_size=64, num_attention_heads=8, num_key_value_heads=2, intermediate_size=136,
        num_hidden_layers=2, vocab_size=320, tie_word_embeddings=False, rope_theta=10000.0,
        rms_norm_eps=1e-5, max_position_embeddings=256)),
    "llama-tied-f32": (LlamaConfig, LlamaForCausalLM, torch.float32, {}, dict(
        hidden_size=48, num_attention_heads=4, num_key_value_heads=4, intermediate_size=100,
        num_hidden_layers=2, vocab_size=256, tie_word_embeddings=True, rope_theta=500000.0,
        rms_norm_eps=1e-5, max_position_embeddings=256)),
    "llama-odd-f32": (LlamaConfig, LlamaForCausalLM, torch.float32, {}, dict(
        hidden_size=36, num_attention_heads=3, num_key_value_heads=1, head_dim=12,
        intermediate_size=75, num_hidden_layers=2, vocab_size=203, tie_word_embeddings=False,
        rms_norm_eps=1e-6, max_position_embeddings=256,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 32})),
    "llama-bf16": (LlamaConfig, LlamaForCausalLM, torch.bfloat16, {}, dict(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=160,
        num_hidden_layers=2, vocab_size=300, tie_word_embeddings=False, max_position_embeddings=256,
        rope_scaling={"rope_type": "linear", "factor": 2.0})),
    "mistral-f16-sharded": (MistralConfig, MistralForCausalLM, torch.float16, {"max_shard_size": "60KB"}, dict(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
        intermediate_size=128, num_hidden_layers=3, vocab_size=288, tie_word_embeddings=False,
        sliding_window=None, max_position_embeddings=256)),
    # Qwen2.5 as shipped: biases on q/k/v, tied, use_sliding_window false (the
    # window then has no effect; transformers 4.51 still masks with it, so it
    # stays longer than the prompt)
    "qwen2-bias-f32": (Qwen2Config, Qwen2ForCausalLM, torch.float32, {}, dict(
        hidden_size=64, num_attention_heads=4, num_key_value_heads=2, intermediate_size=96,
        num_hidden_layers=2, vocab_size=320, tie_word_embeddings=True, rope_theta=1000000.0,
        rms_norm_eps=1e-6, max_position_embeddings=512, use_sliding_window=False,
        sliding_window=4096, max_window_layers=1)),
    # Qwen3 as shipped: q_norm/k_norm, head_dim 16 != hidden 48 / 4 heads, no bias
    "qwen3-qknorm-f32": (Qwen3Config, Qwen3ForCausalLM, torch.float32, {}, dict(
        hidden_size=48, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        intermediate_size=96, num_hidden_layers=2, vocab_size=288, tie_word_embeddings=True,
        rope_theta=1000000.0, rms_norm_eps=1e-6, max_position_embeddings=512, attention_bias=False,
        use_sliding_window=False, sliding_window=None, max_window_layers=2)),
    # Qwen3 with attention_bias: q/k/v/o biases; one KV head (replicated over ranks)
    "qwen3-bias-f32": (Qwen3Config, Qwen3ForCausalLM, torch.float32, {}, dict(
        hidden_size=32, num_attention_heads=4, num_key_value_heads=1, head_dim=8,
        intermediate_size=64, num_hidden_layers=1, vocab_size=96, tie_word_embeddings=False,
        rope_theta=10000.0, rms_norm_eps=1e-6, max_position_embeddings=256, attention_bias=True,
        use_sliding_window=False, sliding_window=None)),
    # Llama 3.2 as shipped, small: vocabulary 128256, llama3 rope (factor 32,
    # original 8192: head_dim 8 has a frequency in each of its three bands),
    # tied, bos 128000, eos list; hidden 8 keeps the weights under 2 MiB
    "llama3-vocab128k-bf16": (LlamaConfig, LlamaForCausalLM, torch.bfloat16, {"rows": [0, 41, 79]}, dict(
        hidden_size=8, num_attention_heads=2, num_key_value_heads=1, head_dim=8, intermediate_size=48,
        num_hidden_layers=2, vocab_size=128256, tie_word_embeddings=True, rope_theta=500000.0,
        rms_norm_eps=1e-5, max_position_embeddings=131072,
        rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        bos_token_id=128000, eos_token_id=[128001, 128008, 128009])),
    # Mistral-Nemo's shape, small: explicit head_dim, heads x head_dim != hidden
    "mistral-nemo-bf16": (MistralConfig, MistralForCausalLM, torch.bfloat16, {}, dict(
        hidden_size=48, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        intermediate_size=112, num_hidden_layers=2, vocab_size=256, tie_word_embeddings=False,
        rope_theta=1000000.0, rms_norm_eps=1e-5, sliding_window=None, max_position_embeddings=1024)),
}
BF16_COMPUTE = {"llama-bf16"}  # also record logits computed in bfloat16

STORY_PROMPTS = ["Once upon a time", "Tom and Lily went to the park. They saw",
                 "The little dog was very sad because", "One day, a big bird"]


# tests/data/tokenizer_corpus.txt, one case a line (a newline only ends a line).
# Invisible characters are written as escapes. The 512-piece stories260K vocab
# has no piece for most non-ASCII characters, so those lines exercise byte fallback.
CORPUS = [
    'Once upon a time, there was a little girl named Lily.',
    'Hello world',
    '  two leading spaces and two trailing  ',
    'tabs\tbetween\twords\tand\t\ttwo tabs',
    'runs of     five spaces     here',
    'multiple spaces    inside   a  sentence.',
    'Numbers: 3.14159, 2026-11-24, 1,000,000 and 42.',
    '0123456789 9876543210',
    'Punctuation!? (parentheses) [brackets] {braces} <angles> "quotes" \'single\' -- em\u2014dash \u2026 ellipsis',
    'café naïve façade Ærø coöperate jalapeño',
    'Ελληνικά γράμματα και λέξεις',
    'Привет, как дела? Всё хорошо.',
    '中文字符测试 日本語のテキスト 한국어 문장',
    'Emoji: 😀 🎉 🚀 👍🏽',
    'Family: 👩\u200d👩\u200d👧 and flags 🇯🇵 🇫🇷',
    'Combining: e\u0301 vs \u00e9, a\u0308 vs \u00e4',
    'Rare: ꙮ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ∮ ∞ ≠ ≤ ≥ ← → ⇒',
    'The dog ran to the park and played with a\u00a0big red ball.',
    'She said, "I want to play!" and laughed.',
    'x=1; y=x*2+3; print(y)  # code',
    'https://example.org/path?query=1&lang=en',
    '   ',
    ' ',
    'single',
    'A',
    'Mixed: Lily 爱 🐶 and Tom ❤\ufe0f Ben.',
    'Ünïcödé ÄÖÜ äöü ß',
    'Arabic: مرحبا بالعالم Hebrew: שלום עולם',
    'Thai: สวัสดีครับ Hindi: नमस्ते दुनिया',
    'Zero width: a\u200bb and non-breaking space: a\u00a0b',
    'Math: ∑_{i=1}^{n} i² = n(n+1)/2',
    'Repeated letters: aaaaaaaaaaaa\u00a0bbbbbbbb zzzz',
    'UPPERCASE WORDS AND lowercase words',
    'The end. The end! The end?',
    '\tleading tab, trailing tab and space\t ',
    'Kana: ひらがな カタカナ ｶﾀｶﾅ, full width: ＡＢＣ１２３',
    'Skin tones and keycaps: 👋🏽 👍🏿 1\ufe0f\u20e3 #\ufe0f\u20e3, rainbow flag: 🏳\ufe0f\u200d🌈',
    'Rare CJK and symbols: 𠀀 𪚥 龘 © ® ™ § ¶ † ‡ • ‰ € £ ¥ ₹',
    'Stacked marks: Z\u0334\u0327\u034ea\u0337l\u0336g\u0338o\u0335, Vietnamese: Tiếng Việt có dấu',
    'Lily\'s mom said: "It\'s 5 o\'clock, time for dinner."',
    '',
]


def randomize(model, seed):
    """Weights large enough that errors show: linear ~N(0, 0.15), norms 1 + 0.1 N."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=g))


def logits_of(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float().numpy()


def load_saved(model_cls, folder, dtype=torch.float32):
    """The saved folder loaded back (as from_pretrained would): the config,
    every tensor of every shard (strict: none missing or left over but a tied
    lm_head), parameters in dtype; the rotary inv_freq stays float32."""
    cfg = model_cls.config_class.from_pretrained(folder)
    cfg._attn_implementation = "eager"
    model = model_cls(cfg).eval()
    state = {}
    for f in sorted(folder.glob("*.safetensors")):
        state.update(load_file(f))
    missing, extra = model.load_state_dict(state, strict=False)
    assert not extra and set(missing) <= ({"lm_head.weight"} if cfg.tie_word_embeddings else set()), (missing, extra)
    model.tie_weights()
    for p in model.parameters():
        p.data = p.data.to(dtype)
    return model


def make_tiny(name, seed, data):
    cfg_cls, model_cls, dtype, save_kw, kw = MODELS[name]
    save_kw = dict(save_kw)
    rows = save_kw.pop("rows", None)
    kw = {"bos_token_id": 1, "eos_token_id": 2, **kw}
    cfg = cfg_cls(**kw, attn_implementation="eager")
    torch.manual_seed(seed)
    model = model_cls(cfg).eval()
    randomize(model, seed)
    out = data / "golden" / name
    shutil.rmtree(out, ignore_errors=True)
    rotary = {k: v.clone() for k, v in model.named_buffers() if k.endswith("inv_freq")}
    model.to(dtype).save_pretrained(out, safe_serialization=True, **save_kw)
    rng = np.random.default_rng(seed)
    ids = [cfg.bos_token_id] + [int(x) for x in rng.integers(0, cfg.vocab_size, N_PROMPT - 1)]
    # the reference: the saved folder loaded back, computed in float32
    logits = logits_of(load_saved(model_cls, out), ids)
    # the in-memory model (for BF16/F16: its stored weights upcast) agrees exactly;
    # .to(dtype) also rounded the rotary inv_freq buffers, which from_pretrained
    # computes in float32 whatever the dtype, so those are put back first
    model.float()
    for k, v in model.named_buffers():
        if k in rotary:
            v.copy_(rotary[k])
    mem = logits_of(model, ids)
    assert np.array_equal(mem, logits), f"{name}: reloaded model differs"
    kept = logits if rows is None else logits[rows]
    kept.astype("<f4").tofile(out / "logits.f32")
    meta = {"prompt_ids": ids, "vocab_size": cfg.vocab_size, "n_positions": N_PROMPT,
            "logits_file": "logits.f32", "stored_dtype": str(dtype).replace("torch.", ""),
            "compute_dtype": "float32", "transformers_version": transformers.__version__,
            "torch_version": torch.__version__, "max_abs_logit": float(np.abs(logits).max())}
    if rows is not None:
        meta["logit_rows"] = rows
    if name in BF16_COMPUTE:  # (torch 1.13 has no float16 matmul on the CPU)
        low_logits = logits_of(load_saved(model_cls, out, dtype), ids)
        low_logits.astype("<f4").tofile(out / "logits_bf16.f32")
        meta["logits_bf16_file"] = "logits_bf16.f32"
        meta["bf16_compute_max_abs_diff_vs_fp32"] = float(np.abs(low_logits - logits).max())
    (out / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{name}: max |logit| {meta['max_abs_logit']:.3f}", {k: v for k, v in meta.items() if "diff" in k})


def greedy_stories(data):
    tok = LlamaTokenizer.from_pretrained(STORIES, legacy=True)
    model = load_saved(LlamaForCausalLM, STORIES)
    cases = []
    for prompt in STORY_PROMPTS:
        ids = tok(prompt).input_ids
        out, gaps, past = [], [], None
        x = torch.tensor([ids])
        with torch.no_grad():
            for _ in range(200):
                r = model(x, past_key_values=past, use_cache=True)
                past = r.past_key_values
                last = r.logits[0, -1].float()
                top2 = torch.topk(last, 2).values
                gaps.append(float(top2[0] - top2[1]))
                nxt = int(torch.argmax(last))
                out.append(nxt)
                x = torch.tensor([[nxt]])
        below = [i for i, g in enumerate(gaps) if g < 1e-3]
        cases.append({"prompt": prompt, "prompt_ids": ids, "output_ids": out,
                      "min_top2_gap": min(gaps), "first_step_below_1e-3": below[0] if below else None})
        print(f"{prompt!r} (min top-2 gap {min(gaps):.2e} at step {gaps.index(min(gaps))}):")
        print("   ", repr(tok.decode(ids + out, skip_special_tokens=True)))
    (data / "stories260K_greedy.json").write_text(
        json.dumps({"model": "stories260K", "n_new_tokens": 200, "cases": cases}) + "\n")


def tokenizer_cases(data):
    sp = sentencepiece.SentencePieceProcessor(model_file=str(STORIES / "tokenizer.model"))
    hf = LlamaTokenizer.from_pretrained(STORIES, legacy=True)
    assert all("\n" not in line and "\r" not in line for line in CORPUS)
    (data / "tokenizer_corpus.txt").write_text("".join(line + "\n" for line in CORPUS), encoding="utf-8")
    lines = CORPUS
    cases, same = [], True
    for line in lines:
        ids = sp.encode(line)
        hf_ids = hf(line).input_ids
        same &= hf_ids == [1] + ids
        cases.append({"text": line, "ids": ids, "hf_ids": hf_ids, "decoded": sp.decode(ids)})
    (data / "stories260K_tokenizer.json").write_text(
        json.dumps({"model": "stories260K", "cases": cases}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"tokenizer: {len(cases)} lines; hf_ids == [1] + sentencepiece ids on every line: {same}")


def main():
    import argparse
    ap = argparse.ArgumentParser(description="Records tests/data (see the docstring).")
    ap.add_argument("--out", type=Path, default=DATA, help="write here instead of tests/data")
    ap.add_argument("names", nargs="*", choices=[[], *MODELS], help="only these golden models")
    a = ap.parse_args()
    torch.set_num_threads(2)
    (a.out / "golden").mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(MODELS):  # the seed is the model's place in MODELS
        if not a.names or name in a.names:
            make_tiny(name, 1000 + i, a.out)
    if not a.names:
        greedy_stories(a.out)
        tokenizer_cases(a.out)


if __name__ == "__main__":
    sys.exit(main())
