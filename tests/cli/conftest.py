"""Shared fixtures for the command-line tests: the binary, the models."""
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESSERA = ROOT / "build" / "tessera"
STORIES = Path(os.environ.get("TESSERA_STORIES260K", ROOT.parent / "shared" / "models" / "stories260K"))
DEMO = ROOT / "build" / "demo-model"


def run(*args, timeout=120):
    """Runs build/tessera with args; returns the CompletedProcess (text)."""
    return subprocess.run([str(TESSERA), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def read_safetensors(path):
    """(header dict, data bytes) of a safetensors file."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def write_safetensors(path, header, data):
    """Writes a header dict and data bytes as a safetensors file."""
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + data)


@pytest.fixture(scope="session")
def stories():
    if not (STORIES / "config.json").exists():
        pytest.fail(f"{STORIES} is missing: the tests need ../shared/models/stories260K")
    return STORIES


@pytest.fixture
def model_copy(tmp_path, stories):
    """A writable copy of stories260K to break in one way per test."""
    dst = tmp_path / "model"
    shutil.copytree(stories, dst)
    for f in dst.iterdir():
        f.chmod(0o644)
    return dst
