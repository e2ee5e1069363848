#!/usr/bin/env python3
"""Records the reference data the unit tests compare against, with Hugging
Face transformers (and sentencepiece). Writes, under tests/data/:

  golden/<name>/       tiny random-weight models saved by transformers
                       (config.json, safetensors, generation_config.json), and
      reference.json   the prompt ids and metadata
      logits.f32       transformers' float32 logits, little-endian [80, vocab]
  stories260K_greedy.json     greedy continuations (200 tokens) of the real
                              model ../shared/models/stories260K
  stories260K_tokenizer.json  ids of tests/data/tokenizer_corpus.txt from the
                              sentencepiece package and from LlamaTokenizer

CI does not run this (it needs torch). To re-record, on Debian:
  apt-get install python3-torch python3-sentencepiece
  /usr/bin/python3 -m venv --system-site-packages VENV
  VENV/bin/pip install 'transformers<4.46' safetensors
  VENV/bin/python scripts/make_golden.py
"""
import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import sentencepiece
import torch
import transformers
from transformers import (LlamaConfig, LlamaForCausalLM, LlamaTokenizer, MistralConfig,
                          MistralForCausalLM)

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
}

STORY_PROMPTS = ["Once upon a time", "Tom and Lily went to the park. They saw",
                 "The little dog was very sad because", "One day, a big bird"]


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


def make_tiny(name, seed):
    cfg_cls, model_cls, dtype, save_kw, kw = MODELS[name]
    cfg = cfg_cls(**kw, bos_token_id=1, eos_token_id=2, attn_implementation="eager")
    torch.manual_seed(seed)
    model = model_cls(cfg).eval()
    randomize(model, seed)
    out = DATA / "golden" / name
    shutil.rmtree(out, ignore_errors=True)
    model.to(dtype).save_pretrained(out, safe_serialization=True, **save_kw)
    rng = np.random.default_rng(seed)
    ids = [1] + [int(x) for x in rng.integers(0, cfg.vocab_size, N_PROMPT - 1)]
    # the reference: the saved folder loaded back, computed in float32
    ref = model_cls.from_pretrained(out, torch_dtype=torch.float32, attn_implementation="eager").eval()
    logits = logits_of(ref, ids)
    if dtype == torch.float32:
        mem = logits_of(model.float(), ids)
        assert np.array_equal(mem, logits), f"{name}: reloaded model differs"
    logits.astype("<f4").tofile(out / "logits.f32")
    meta = {"prompt_ids": ids, "vocab_size": cfg.vocab_size, "n_positions": N_PROMPT,
            "logits_file": "logits.f32", "stored_dtype": str(dtype).replace("torch.", ""),
            "compute_dtype": "float32", "transformers_version": transformers.__version__,
            "torch_version": torch.__version__, "max_abs_logit": float(np.abs(logits).max())}
    if dtype == torch.bfloat16:  # (torch 1.13 has no float16 matmul on the CPU)
        low = model_cls.from_pretrained(out, torch_dtype=dtype, attn_implementation="eager").eval()
        diff = float(np.abs(logits_of(low, ids) - logits).max())
        meta[f"{meta['stored_dtype']}_compute_max_abs_diff_vs_fp32"] = diff
    (out / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{name}: max |logit| {meta['max_abs_logit']:.3f}", {k: v for k, v in meta.items() if "diff" in k})


def greedy_stories():
    tok = LlamaTokenizer.from_pretrained(STORIES, legacy=True)
    model = LlamaForCausalLM.from_pretrained(STORIES, torch_dtype=torch.float32,
                                             attn_implementation="eager").eval()
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
        print(repr(prompt), "->", repr(tok.decode(out)[:160]), f"min gap {min(gaps):.2e}")
    (DATA / "stories260K_greedy.json").write_text(
        json.dumps({"model": "stories260K", "n_new_tokens": 200, "cases": cases}) + "\n")


def tokenizer_cases():
    sp = sentencepiece.SentencePieceProcessor(model_file=str(STORIES / "tokenizer.model"))
    hf = LlamaTokenizer.from_pretrained(STORIES, legacy=True)
    lines = (DATA / "tokenizer_corpus.txt").read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    cases, same = [], True
    for line in lines:
        ids = sp.encode(line)
        hf_ids = hf(line).input_ids
        same &= hf_ids == [1] + ids
        cases.append({"text": line, "ids": ids, "hf_ids": hf_ids, "decoded": sp.decode(ids)})
    (DATA / "stories260K_tokenizer.json").write_text(
        json.dumps({"model": "stories260K", "cases": cases}, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"tokenizer: {len(cases)} lines; hf_ids == [1] + sentencepiece ids on every line: {same}")


def main():
    torch.set_num_threads(2)
    for i, name in enumerate(MODELS):
        make_tiny(name, 1000 + i)
    greedy_stories()
    tokenizer_cases()


if __name__ == "__main__":
    sys.exit(main())
