"""tokenizer/jinja against Python's jinja2 as transformers configures it: every template of ../shared/chat_templates
over N_CONV generated conversations (conversations.py), rendered by build/jinja-run in one process. Where Python
renders, the text must be the same bytes; where Python raises (raise_exception, undefined values, type errors), we
must fail with the same message."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conversations import NOW, ROOT, conversation, reference_render, reference_template, templates

JINJA_RUN = Path(os.environ.get("TESSERA_JINJA_RUN", ROOT / "build" / "jinja-run"))
N_CONV = int(os.environ.get("TESSERA_JINJA_CONVERSATIONS", "500"))
TEMPLATES = templates()


@pytest.fixture(scope="session")
def contexts():
    return [conversation(seed) for seed in range(N_CONV)]


@pytest.fixture(scope="session")
def ours(contexts, tmp_path_factory):
    """(template path, seed) -> ("ok", text) | ("error", message), from one jinja-run over every case."""
    cases = tmp_path_factory.mktemp("jinja") / "cases.jsonl"
    with open(cases, "w", encoding="utf-8") as f:
        for path in TEMPLATES:
            for ctx in contexts:
                f.write(json.dumps({"template": str(path), "context": ctx, "now": NOW}, ensure_ascii=False) + "\n")
    with open(cases, "rb") as f:
        out = subprocess.run([str(JINJA_RUN)], stdin=f, capture_output=True, check=True, timeout=600).stdout
    lines = out.decode("utf-8").splitlines()
    assert len(lines) == len(TEMPLATES) * len(contexts)
    res, it = {}, iter(lines)
    for path in TEMPLATES:
        for seed in range(len(contexts)):
            r = json.loads(next(it))
            res[(path, seed)] = ("ok", r["ok"]) if "ok" in r else ("error", r["error"])
    return res


def test_enough_templates():
    assert len(TEMPLATES) >= 75, f"only {len(TEMPLATES)} templates under ../shared/chat_templates"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_template(path, contexts, ours):
    try:
        compiled = reference_template(path.read_text(encoding="utf-8"))
    except Exception as e:  # noqa: BLE001
        compiled, compile_error = None, str(e)
    bad, n_ok = [], 0
    for seed, ctx in enumerate(contexts):
        want = reference_render(compiled, ctx) if compiled else ("error", compile_error)
        got = ours[(path, seed)]
        n_ok += want[0] == "ok"
        if want != got:
            bad.append((seed, want, got))
    detail = "\n".join(f"seed {s}:\n  python: {w!r:.600}\n  ours:   {g!r:.600}" for s, w, g in bad[:3])
    assert not bad, f"{len(bad)} of {len(contexts)} conversations differ ({n_ok} rendered by Python)\n{detail}"
