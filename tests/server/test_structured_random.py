"""1,000 random JSON Schemas (tests/grammar's generator: every supported
keyword, nesting, $ref recursion, bounds, patterns, formats) through the
server on the random-weight demo model at temperature 1: every output that
ends validates with the jsonschema package (100%), and nearly all end
before max_tokens (random weights may wander in an unbounded string or list:
those are cut, and a cut output is only checked to be a prefix of JSON)."""
import concurrent.futures as cf
import json
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import ROOT, Server, request

sys.path.insert(0, str(ROOT / "tests" / "grammar"))
from test_grammar import CHECKER, Gen, one_of_as_any_of  # noqa: E402

N_SCHEMAS = 1000


@pytest.fixture(scope="module")
def demo():
    s = Server("--max-num-seqs", "32", model=ROOT / "build" / "demo-model", name="demo")
    yield s
    assert s.stop() == 0, s.logs()


def test_random_schemas_give_valid_outputs(demo):
    def one(seed):
        schema = Gen(seed).root()
        body = {"model": "demo", "messages": [{"role": "user", "content": f"Data {seed}"}], "temperature": 1,
                "seed": seed, "max_tokens": 900,
                "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}}
        if seed % 2:  # half of them compact, half with blanks between tokens
            body["structured_outputs"] = {"disable_any_whitespace": True}
        status, _, data = request(demo.port, "POST", "/v1/chat/completions", body, timeout=300)
        return schema, status, json.loads(data)

    finished = cut = empty = 0
    with cf.ThreadPoolExecutor(16) as ex:
        for schema, status, r in ex.map(one, range(N_SCHEMAS)):
            if status == 400 and r["error"]["message"] == "the schema admits no value":
                empty += 1  # e.g. a required property whose schema is an enum of no value of its type
                continue
            assert status == 200, (schema, r)
            c = r["choices"][0]
            if c["finish_reason"] == "length":
                cut += 1
                continue
            assert c["finish_reason"] == "stop", (schema, c)
            v = jsonschema.Draft202012Validator(one_of_as_any_of(schema), format_checker=CHECKER)
            errs = list(v.iter_errors(json.loads(c["message"]["content"])))
            assert not errs, (errs[0].message, json.dumps(schema), c["message"]["content"])
            finished += 1
    print(f"{finished} finished, {cut} cut by max_tokens, {empty} schemas admit no value")
    assert finished + cut + empty == N_SCHEMAS and finished >= 0.93 * N_SCHEMAS, (finished, cut, empty)


def test_parse_on_the_random_weight_model(demo):
    """The SDK's parse() with Pydantic models on random weights (temperature 1): parsed objects every time."""
    import openai
    from test_structured import COMPACT, Order, Tree
    client = openai.OpenAI(base_url=demo.url + "/v1", api_key="none", max_retries=0)
    for model in (Order, Tree):
        for seed in range(6):
            r = client.chat.completions.parse(model="demo", messages=[{"role": "user", "content": "Data"}],
                                              response_format=model, temperature=1, seed=seed, max_tokens=900,
                                              extra_body=COMPACT)
            assert r.choices[0].finish_reason == "stop" and isinstance(r.choices[0].message.parsed, model)
