"""The tessera command line: help, version, generation, reproducibility."""
from conftest import DEMO, run


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("tessera ")
    r = run("--help")
    assert r.returncode == 0 and "generate MODEL_DIR" in r.stdout
    r = run("generate", "--help")
    assert r.returncode == 0 and "--temperature" in r.stdout and "--seed" in r.stdout


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("frobnicate").returncode == 2
    r = run("generate", "somewhere")
    assert r.returncode == 2 and "-p PROMPT" in r.stderr
    r = run("generate", "x", "-p", "hi", "--top-p", "7")
    assert r.returncode == 2 and "--top-p" in r.stderr


def test_greedy_story(stories):
    r = run("generate", stories, "-p", "Once upon a time", "-n", "40", "--temperature", "0")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Once upon a time, there was a little girl named Lily. She loved to play outside")
    assert "prefill: 5 tokens" in r.stderr and "decode: 39 tokens" in r.stderr


def test_seed_reproducible(stories):
    args = ("generate", stories, "-p", "Tom had a", "-n", "60", "--temperature", "1.0", "--top-k", "0",
            "--top-p", "1", "--min-p", "0", "--ignore-eos")
    a = run(*args, "--seed", "7")
    b = run(*args, "--seed", "7")
    c = run(*args, "--seed", "8")
    assert a.returncode == b.returncode == c.returncode == 0
    assert a.stdout == b.stdout
    assert a.stdout != c.stdout


def test_ids_output_is_token_ids(stories):
    r = run("generate", stories, "-p", "Once upon a time", "-n", "5", "--temperature", "0", "--ids")
    assert r.returncode == 0
    ids = [int(x) for x in r.stdout.split()]
    assert len(ids) == 5 and all(0 <= i < 512 for i in ids)


def test_threads_give_the_same_greedy_tokens(stories):
    args = ("generate", stories, "-p", "The cat", "-n", "50", "--temperature", "0", "--ids", "--ignore-eos")
    assert run(*args, "--threads", "1").stdout == run(*args, "--threads", "2").stdout


def test_demo_model_runs():
    r = run("generate", DEMO, "-p", "Once upon a time", "-n", "16", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Once upon a time")


def test_serve_and_bench_usage():
    r = run("serve", "--help")
    assert r.returncode == 0 and "--api-key" in r.stdout and "--max-num-seqs" in r.stdout
    r = run("bench", "--help")
    assert r.returncode == 0 and "--concurrency" in r.stdout and "--kv-cache-memory" in r.stdout
    assert run("serve").returncode == 2
    r = run("serve", "x", "--kv-cache-memory", "lots")
    assert r.returncode == 2 and "--kv-cache-memory" in r.stderr
    r = run("bench", "x", "--concurrency", "0")
    assert r.returncode == 2 and "--concurrency" in r.stderr


def test_bench_runs_the_engine(stories):
    r = run("bench", stories, "--num-prompts", "8", "--concurrency", "4", "--input-len", "20", "--output-len", "8",
            "--json")
    assert r.returncode == 0, r.stderr
    import json
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["num_prompts"] == 8 and res["output_tokens_per_s"] > 0
    assert res["ttft_ms"]["p50"] <= res["ttft_ms"]["p99"]
    r = run("bench", stories, "--num-prompts", "4", "--input-len", "12", "--output-len", "6", "--temperature", "0.8",
            "--top-p", "0.9", "--logprobs", "5", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1])["num_prompts"] == 4
    r = run("bench", stories, "--logprobs", "21")
    assert r.returncode != 0 and "logprobs" in r.stderr


def test_serve_with_a_bad_folder_exits_2(tmp_path):
    r = run("serve", tmp_path, "--port", "0")
    assert r.returncode == 2 and f"{tmp_path}/tokenizer.model: missing" in r.stderr


def test_a_prompt_of_invalid_utf8(stories):
    """Each invalid byte is U+FFFD, three byte tokens: more ids than bytes (this aborted generate)."""
    import subprocess
    from conftest import TESSERA
    r = subprocess.run([str(TESSERA), "generate", str(stories), "-p", b"x\xff\xff\xff\xff\xff\xff", "-n", "4",
                        "--temperature", "0", "--no-echo"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert b"prefill: 21 tokens" in r.stderr
