"""tessera tokenize: ids of a text, of stdin, of JSONL lines; texts of ids; bad folders and usage.
References: tests/data/stories260K_tokenizer.json (recorded with sentencepiece and transformers)."""
import json
import subprocess

import pytest

from conftest import ROOT, TESSERA, run

CASES = json.loads((ROOT / "tests" / "data" / "stories260K_tokenizer.json").read_text())["cases"]


def tokenize(*args, stdin=None):
    r = subprocess.run([str(TESSERA), "tokenize", *map(str, args)], input=stdin, capture_output=True, text=True,
                       timeout=60)
    return r


def test_help_lists_the_options():
    r = run("tokenize", "--help")
    assert r.returncode == 0
    for opt in ("--no-special", "--tokenizer", "--jsonl", "--decode", "--bench"):
        assert opt in r.stdout
    assert "tokenize MODEL_DIR" in run("--help").stdout


@pytest.mark.parametrize("case", CASES[:12], ids=lambda c: c["text"][:24])
def test_text_argument(stories, case):
    r = run("tokenize", stories, case["text"])
    assert r.returncode == 0, r.stderr
    assert [int(x) for x in r.stdout.split()] == case["hf_ids"]
    r = run("tokenize", stories, case["text"], "--no-special")
    assert [int(x) for x in r.stdout.split()] == case["ids"]


def test_stdin_as_is(stories):
    text = CASES[0]["text"]
    assert tokenize(stories, "--no-special", stdin=text).stdout.split() == list(map(str, CASES[0]["ids"]))
    # a final newline is part of the text
    assert tokenize(stories, stdin=text + "\n").stdout != tokenize(stories, stdin=text).stdout


@pytest.mark.parametrize("impl", ["auto", "sentencepiece"])
def test_jsonl_matches_the_references(stories, impl):
    stdin = "".join(json.dumps(c["text"]) + "\n" for c in CASES)
    for special, key in ((True, "hf_ids"), (False, "ids")):
        r = tokenize(stories, "--jsonl", "--tokenizer", impl, *([] if special else ["--no-special"]), stdin=stdin)
        assert r.returncode == 0, r.stderr
        lines = [json.loads(x) for x in r.stdout.splitlines()]
        assert len(lines) == len(CASES)
        for c, got in zip(CASES, lines):
            assert got["ids"] == c[key], c["text"]
            assert got["text"] == c["decoded"], c["text"]


def test_jsonl_odd_strings(stories):
    texts = ["", "\x00", "a\r\nb", "\ud7ff\ue000\U0010ffff", "<s></s>", "\t\t  \n"]
    stdin = "".join(json.dumps(t) + "\n" for t in texts)
    r = tokenize(stories, "--jsonl", "--no-special", stdin=stdin)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["ids"] for x in lines][0] == []
    assert len(lines) == len(texts)


def test_decode_round_trip(stories):
    stdin = "".join(json.dumps(c["hf_ids"]) + "\n" for c in CASES) + "[]\n[999999]\n"
    r = tokenize(stories, "--decode", stdin=stdin)
    assert r.returncode == 0, r.stderr
    got = [json.loads(x) for x in r.stdout.splitlines()]
    assert got == [c["decoded"] for c in CASES] + ["", ""]


def test_bench_prints_times(stories):
    r = tokenize(stories, "--bench", "3", "--jsonl", stdin="".join(json.dumps(c["text"]) + "\n" for c in CASES))
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert len(res["encode_s"]) == 3 and res["load_s"] >= 0
    assert res["inputs"] == len(CASES) and res["tokens"] == sum(len(c["hf_ids"]) for c in CASES)


def test_bad_lines_exit_2(stories):
    r = tokenize(stories, "--jsonl", stdin='"fine"\n[1, 2]\n')
    assert r.returncode == 2 and "line 2" in r.stderr and "JSON string" in r.stderr
    assert len(r.stdout.splitlines()) == 1
    r = tokenize(stories, "--decode", stdin='[1, "x"]\n')
    assert r.returncode == 2 and "line 1" in r.stderr
    r = tokenize(stories, "--jsonl", stdin='{oops\n')
    assert r.returncode == 2 and "line 1" in r.stderr


def test_usage_errors(stories):
    assert run("tokenize").returncode == 2
    r = run("tokenize", stories, "a", "b")
    assert r.returncode == 2 and "unexpected argument" in r.stderr
    r = run("tokenize", stories, "x", "--tokenizer", "wordpiece")
    assert r.returncode == 2 and "--tokenizer" in r.stderr
    r = run("tokenize", stories, "x", "--jsonl")
    assert r.returncode == 2 and "stdin" in r.stderr
    r = run("tokenize", stories, "--jsonl", "--decode")
    assert r.returncode == 2


@pytest.mark.parametrize("impl", ["auto", "sentencepiece"])
def test_bad_folder_one_line_exit_2(tmp_path, impl):
    r = run("tokenize", tmp_path / "nothing-here", "hi", "--tokenizer", impl)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "tokenizer.model" in lines[0], r.stderr


def test_corrupt_tokenizer_json_names_the_file(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{oops")
    r = run("tokenize", tmp_path, "hi", "--tokenizer", "json")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "tokenizer.json" in lines[0], r.stderr
