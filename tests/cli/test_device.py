"""--device and --dtype on the command line: the emulated CUDA backend
(build/tessera-emu) generates the CPU backend's greedy tokens, and a build
without CUDA says so."""
import subprocess

import pytest

from conftest import ROOT, TESSERA, run

EMU = ROOT / "build" / "tessera-emu"


def ids(binary, stories, prompt, *extra):
    p = subprocess.run([str(binary), "generate", str(stories), "-p", prompt, "-n", "100", "--temperature", "0",
                        "--ids", "--ignore-eos", *extra], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.parametrize("prompt", ["Once upon a time", "Lily liked"])
def test_emulated_cuda_generates_cpu_tokens(stories, prompt):
    if not EMU.exists():
        pytest.fail(f"{EMU} is missing: make emu builds it")
    want = ids(TESSERA, stories, prompt)
    assert len(want) == 100
    assert ids(EMU, stories, prompt, "--device", "cuda", "--dtype", "float32") == want


def test_cpu_build_rejects_cuda(stories):
    if (ROOT / "build" / "variant").read_text().strip() != "cpu":
        pytest.skip("build/tessera was built with CUDA=1")
    p = run("generate", stories, "-p", "hi", "--device", "cuda")
    assert p.returncode == 2
    assert "no CUDA backend" in p.stderr and "make CUDA=1" in p.stderr


def test_bad_device_and_dtype(stories):
    for opt in [("--device", "tpu"), ("--dtype", "int3")]:
        p = run("generate", stories, "-p", "hi", *opt)
        assert p.returncode == 2
        assert opt[0] in p.stderr
