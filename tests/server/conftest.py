"""Fixtures for the server tests: `tessera serve` on stories260K, on a free port."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import http.client
import json

import pytest

ROOT = Path(__file__).resolve().parents[2]
TESSERA = Path(os.environ.get("TESSERA_BIN", ROOT / "build" / "tessera"))
STORIES = Path(os.environ.get("TESSERA_STORIES260K", ROOT.parent / "shared" / "models" / "stories260K"))
API_KEY = "test-key"
ORIGIN = "http://allowed.example"


def request(port, method, path, body=None, headers=None, timeout=30):
    """(status, headers dict with lower-case names, body bytes) over a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# mpirun on a CI machine: as root, more ranks than cores
MPI_ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
           "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def mpirun(ranks):
    """The launcher prefix for a job of `ranks` tensor-parallel ranks (none for 1)."""
    return ["mpirun", "-np", str(ranks)] if ranks > 1 else []


class Server:
    def __init__(self, *extra, binary=None, ranks=1, model=STORIES, name="stories"):
        if not (Path(model) / "config.json").exists():
            pytest.fail(f"{model} is missing: the tests need ../shared/models/stories260K")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ranks = ranks
        self.log = open(ROOT / "build" / f"serve-test-{self.port}.log", "w+")
        self.proc = subprocess.Popen([*mpirun(ranks), str(binary or TESSERA), "serve", str(model), "--port",
                                      str(self.port), "--served-model-name", name, "--threads", "2", *extra],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=MPI_ENV)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, self.logs()
            try:
                if request(self.port, "GET", "/health", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("server did not become ready:\n" + self.logs())

    def logs(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def rank_pid(self, rank):
        """The pid of one rank of an mpirun job (mpirun's children carry their rank)."""
        for d in Path("/proc").iterdir():
            try:
                if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    env = (d / "environ").read_bytes().split(b"\0")
                    if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
                        return int(d.name)
            except OSError:
                pass
        raise AssertionError(f"no rank {rank} under mpirun {self.proc.pid}")

    def stop(self):
        """SIGTERM to the server (rank 0 of a job: it ends the others); the exit code."""
        if self.ranks > 1:
            os.kill(self.rank_pid(0), signal.SIGTERM)
        else:
            self.proc.terminate()
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("server did not stop on SIGTERM")
        self.log.close()
        return code

    def metric(self, name):
        text = request(self.port, "GET", "/metrics", headers={"Authorization": f"Bearer {API_KEY}"})[2].decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise KeyError(name)


@pytest.fixture(scope="session")
def server():
    s = Server("--api-key", API_KEY, "--allowed-origins", ORIGIN, "--header-timeout", "1")
    yield s
    assert s.stop() == 0, s.logs()


@pytest.fixture(scope="session")
def client(server):
    import openai
    return openai.OpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0)
