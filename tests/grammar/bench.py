"""Mask and compile times of engine/grammar (build/grammar-run --bench).

    .venv/bin/python tests/grammar/bench.py [VOCAB_FILE...]

Default vocabularies: build/grammar/*.vocab (tests/grammar/vocab.py writes
them; test_grammar.py does for Llama 3 and stories260K on its first run;
the 32K one: vocab.py --gguf ../shared/tokenizer_tests/ggml-vocab-llama-spm.gguf
build/grammar/llama-spm.vocab). The cases: the Pydantic
models of test_grammar.py, OpenAI's strict math example, a forced Hermes
tool call, JSON mode and a schema with bounded strings, 10 outputs each by
the random walk. Each grammar is compiled afresh, so its first masks are
misses that also build the per-node token tables (the cold start a new
schema pays once); later outputs of the same grammar hit the cache as a
server's would. One JSON line per vocabulary.
"""
import glob
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from test_grammar import RUN, ROOT, pydantic_schemas  # noqa: E402


def cases():
    out = [{"kind": "schema", "spec": s, "n": 10, "seed": i} for i, s in enumerate(pydantic_schemas())]
    call = {"type": "object", "properties": {"name": {"const": "get_weather"}, "arguments": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1,
                                                                              "maximum": 14}},
        "required": ["city", "days"], "additionalProperties": False}},
        "required": ["name", "arguments"], "additionalProperties": False}
    out.append({"kind": "schema", "spec": call, "n": 10, "seed": 7, "prefix": "<tool_call>\n",
                "suffix": "\n</tool_call>"})
    out.append({"kind": "object", "n": 10, "seed": 8})
    out.append({"kind": "schema", "n": 10, "seed": 9, "spec": {
        "type": "object", "properties": {"title": {"type": "string", "maxLength": 40},
                                         "code": {"type": "string", "minLength": 2, "maxLength": 8}},
        "required": ["title", "code"], "additionalProperties": False}})
    return out


def main():
    vocabs = sys.argv[1:] or sorted(glob.glob(os.path.join(ROOT, "build", "grammar", "*.vocab")))
    inp = "".join(json.dumps(c) + "\n" for c in cases()).encode()
    for v in vocabs:
        p = subprocess.run([RUN, "--vocab", v, "--bench"], input=inp, capture_output=True, check=True)
        lines = [json.loads(x) for x in p.stdout.decode().split("\n") if x]
        r = {"file": os.path.basename(v)}
        for x in lines:
            r.update(x)
        print(json.dumps(r))


if __name__ == "__main__":
    main()
