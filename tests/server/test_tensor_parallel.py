"""Tensor parallelism: `mpirun -np N tessera ...` on the CPU backend (MPI
all-reduce) and on the emulated CUDA backend (NCCL calls, emulated over
MPI), against one rank.

Greedy tokens must equal one rank's: stories260K (8 heads, 4 KV heads) over 2
and 4 ranks, the demo model (4 heads, 2 KV heads) over 4 ranks, so that each
rank holds a replica of one KV head. Logits: the top-5 logprobs of every
generated token agree within 1e-4 (the partial sums of o_proj and down_proj
are added in another order than one rank's dot products). Also: start-up
errors, a clean stop on SIGTERM to rank 0, and a killed worker ending the job.

The golden models (tests/data/golden) over 2 ranks, CPU and emulated CUDA:
every logit of the prompt within 1e-4 of transformers' (build/golden-ranks,
tests/tp/golden_ranks.c): q/k/v biases cut by rows as their weights, o_proj's
bias added once after the all-reduce, per-head q/k norms, a KV head
replicated on both ranks (qwen3-bias-f32, llama3-vocab128k-bf16).

These run once, with the plain binary (`make test-san` leaves them out:
OpenMPI's own allocations are not ours to leak-check)."""
import json
import subprocess
import time

import openai
import pytest

from conftest import API_KEY, MPI_ENV, ROOT, STORIES, TESSERA, Server, mpirun

EMU = ROOT / "build" / "tessera-emu"
GOLDEN_RANKS = ROOT / "build" / "golden-ranks"
GOLDEN = ROOT / "tests" / "data" / "golden"
DEMO = ROOT / "build" / "demo-model"
PROMPT = "Once upon a time"


def generate(model, ranks, *extra, binary=TESSERA, n=48):
    """Greedy text of `tessera generate` over `ranks` ranks (a CompletedProcess if it failed)."""
    cmd = [*mpirun(ranks), str(binary), "generate", str(model), "-p", PROMPT, "-n", str(n), "--temperature", "0",
           "--threads", "1", *map(str, extra)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=MPI_ENV)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def demo():
    if not (DEMO / "config.json").exists():
        pytest.fail(f"{DEMO} is missing: make demo builds it")
    return DEMO


@pytest.mark.parametrize("ranks", [2, 4])
def test_generate_equals_one_rank(ranks):
    one = generate(STORIES, 1)
    assert len(one) > 100
    assert generate(STORIES, ranks, "--tensor-parallel-size", ranks) == one


@pytest.mark.parametrize("ranks", [2, 4])
def test_generated_model(demo, ranks):
    """4 heads, 2 KV heads: a KV head each at 2 ranks, replicated at 4."""
    assert generate(demo, ranks) == generate(demo, 1)


def test_emulated_cuda_over_two_ranks(demo):
    """The CUDA backend's NCCL all-reduce, whose emulated stand-in goes through MPI; and a Q8_0 GGUF, its
    quantized tensors cut at whole blocks (attn_output: one block of 32 columns a rank), through the
    dequantizing GEMV, against one emulated rank."""
    emu = ("--device", "cuda", "--dtype", "float32")
    assert generate(STORIES, 2, *emu, binary=EMU, n=24) == generate(STORIES, 1, n=24)
    assert generate(demo, 4, *emu, binary=EMU, n=24) == generate(demo, 1, n=24)
    q8 = ROOT / "build" / "gguf" / "stories260K-q8_0"
    assert generate(q8, 2, *emu, binary=EMU, n=24) == generate(q8, 1, *emu, binary=EMU, n=24)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("name", ["qwen2-bias-f32", "qwen3-qknorm-f32", "qwen3-bias-f32", "llama3-vocab128k-bf16",
                                  "mistral-nemo-bf16", "llama-gqa-f32", "mistral-f16-sharded"])
def test_golden_logits_over_two_ranks(name, device):
    r = subprocess.run([*mpirun(2), str(GOLDEN_RANKS), str(GOLDEN / name), device], capture_output=True, text=True,
                       timeout=300, env=MPI_ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "over 2 ranks" in r.stdout and "max abs logit error" in r.stdout, r.stdout
    print(r.stdout.strip())


def test_heads_that_do_not_split_fail_at_start():
    r = subprocess.run([*mpirun(3), str(TESSERA), "generate", str(STORIES), "-p", "x", "-n", "4", "--threads", "1"],
                       capture_output=True, text=True, timeout=120, env=MPI_ENV)
    assert r.returncode != 0
    assert "8 heads, 4 KV heads and intermediate size 172 do not split over 3 ranks" in r.stderr


def test_tensor_parallel_size_must_match_the_job():
    r = subprocess.run([str(TESSERA), "generate", str(STORIES), "-p", "x", "--tensor-parallel-size", "2"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "--tensor-parallel-size 2, but this job has 1 rank: start it with mpirun -np 2" in r.stderr


def completion(server):
    c = openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0)
    r = c.completions.create(model="stories", prompt=PROMPT, max_tokens=32, temperature=0, logprobs=5)
    return r.choices[0].text, r.choices[0].logprobs.top_logprobs


def test_serve_two_ranks_matches_one():
    one = Server("--api-key", API_KEY)
    two = Server("--api-key", API_KEY, "--threads", "1", ranks=2)
    emu = Server("--api-key", API_KEY, "--device", "cuda", "--dtype", "float32", binary=EMU, ranks=2)
    try:
        text1, top1 = completion(one)
        for other in (two, emu):
            text2, top2 = completion(other)
            assert text2 == text1
            assert len(top2) == len(top1) == 32
            worst = 0.0
            for a, b in zip(top1, top2):
                assert set(a) == set(b)
                worst = max(worst, *(abs(a[k] - b[k]) for k in a))
            assert worst < 1e-4, worst
        c = openai.OpenAI(base_url=two.url + "/v1", api_key=API_KEY, max_retries=0)
        stream = c.chat.completions.create(model="stories", messages=[{"role": "user", "content": "A cat."}],
                                           max_tokens=24, temperature=0, stream=True)
        assert "".join(ch.choices[0].delta.content or "" for ch in stream if ch.choices)
    finally:
        assert emu.stop() == 0, emu.logs()
        assert two.stop() == 0, two.logs()  # SIGTERM to rank 0: every rank exits 0, so does mpirun
        assert one.stop() == 0, one.logs()


def test_killed_worker_ends_the_job():
    s = Server("--api-key", API_KEY, "--threads", "1", ranks=2)
    t0 = time.time()
    subprocess.run(["kill", "-9", str(s.rank_pid(1))], check=True)
    try:
        code = s.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        s.proc.kill()
        raise AssertionError("the job outlived its killed worker:\n" + s.logs())
    logs = s.logs()
    assert code != 0, logs
    assert "rank 1" in logs, logs
    print(json.dumps({"job ended after s": round(time.time() - t0, 2), "mpirun exit": code}))
