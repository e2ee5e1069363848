"""engine/grammar end to end: random JSON Schemas of every supported keyword,
outputs drawn by random walks through the token masks of real vocabularies
(build/grammar-run), each validated with the jsonschema package: 100%.

Vocabularies: Llama 3's (128K, byte-level BPE; build/tokenizers/llama3 from
scripts/make_tokenizers.py) when present, and stories260K's (512,
SentencePiece-style with byte fallback) from ../shared/models/stories260K.
"""
import datetime
import json
import os
import random
import re
import subprocess
import uuid

import jsonschema
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUN = os.path.join(ROOT, "build", "grammar-run")
N_SCHEMAS = 1000

PATTERNS = [
    "^[a-z]+$", "^\\d{3}-\\d{4}$", "^(foo|bar)[0-9]*$", "ab+c", "^[A-Z][a-z]{0,5}$", "^\\w+@\\w+\\.com$",
    "[^\\s]+", "^(?:\\+1)?\\d{10}$", "^[\\u00e0-\\u00ff]{2,4}$", "^x?y*z+$", "^(a|b|c)(d|e)?$", "q\\.r",
    "^[^\"\\\\]{1,3}$", "^.{2}$", "^[0-9a-f]{4,}$", "^\"[a-z]\"$",
]
FORMATS = ["date", "time", "date-time", "uuid", "email"]
WORDS = ["id", "name", "value", "tags", "kind", "a b", "é", "x\"y", "count", "items", "meta", "next"]


def fmt_ok(fmt, s):
    """Stricter than jsonschema's own checkers, some of which need extra packages."""
    if fmt == "date":
        datetime.date.fromisoformat(s)
        return re.fullmatch(r"\d{4}-\d{2}-\d{2}", s) is not None
    if fmt == "time":
        return re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)", s) is not None
    if fmt == "date-time":
        d, _, t = s.partition("T")
        return fmt_ok("date", d) and fmt_ok("time", t)
    if fmt == "uuid":
        return str(uuid.UUID(s)) == s
    if fmt == "email":
        return re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", s) is not None
    return True


CHECKER = jsonschema.FormatChecker()
for _f in FORMATS:
    CHECKER.checks(_f, raises=(ValueError,))(lambda s, f=_f: not isinstance(s, str) or fmt_ok(f, s))


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.defs = {}

    def leaf(self):
        r = self.r
        k = r.choice(["string", "string", "integer", "number", "boolean", "null", "enum", "const", "pattern",
                      "format", "intrange", "types"])
        if k == "string":
            s = {"type": "string"}
            if r.random() < 0.5:
                lo = r.randint(0, 4)
                s["minLength"] = lo
                if r.random() < 0.7:
                    s["maxLength"] = lo + r.randint(0, 6)
            return s
        if k == "intrange":
            s = {"type": "integer"}
            lo = r.choice([-1000, -15, -1, 0, 1, 7, 100, 12345])
            hi = lo + r.choice([0, 1, 9, 10, 99, 1000, 10 ** 6])
            for key, v in (("minimum", lo), ("maximum", hi)):
                if r.random() < 0.75:
                    s[key] = v
            if r.random() < 0.3:
                s["exclusiveMinimum"] = lo - 1 if "minimum" not in s else lo - 2
            if r.random() < 0.3 and "maximum" in s:
                s["exclusiveMaximum"] = hi + 1
            return s
        if k in ("integer", "number", "boolean", "null"):
            return {"type": k}
        if k == "enum":
            vals = r.sample(["red", "green", "blue", 1, 2.5, None, True, "é\"\\", {"a": [1, 2]}, [], "x y"], r.randint(1, 4))
            return {"enum": vals}
        if k == "const":
            return {"const": r.choice(["fixed", 42, None, False, {"k": "v"}, [1, "two"]])}
        if k == "pattern":
            return {"type": "string", "pattern": r.choice(PATTERNS)}
        if k == "format":
            return {"type": "string", "format": r.choice(FORMATS)}
        return {"type": r.sample(["string", "integer", "null", "boolean", "number"], 2)}

    def schema(self, depth):
        r = self.r
        if depth >= 3 or r.random() < 0.35:
            return self.leaf()
        k = r.choice(["object", "object", "array", "tuple", "anyOf", "oneOf", "allOf", "ref", "list_or_null"])
        if k == "object":
            names = r.sample(WORDS, r.randint(0, 4))
            props = {n: self.schema(depth + 1) for n in names}
            s = {"type": "object", "properties": props}
            if names:
                s["required"] = r.sample(names, r.randint(0, len(names)))
            a = r.choice(["absent", "false", "false", "true", "schema"])
            if a == "false":
                s["additionalProperties"] = False
            elif a == "true":
                s["additionalProperties"] = True
            elif a == "schema":
                s["additionalProperties"] = self.leaf()
            if r.random() < 0.3:
                s["title"] = "T"
                s["description"] = "ignored"
            return s
        if k == "array":
            s = {"type": "array", "items": self.schema(depth + 1)}
            if r.random() < 0.5:
                s["minItems"] = r.randint(0, 3)
            if r.random() < 0.5:
                s["maxItems"] = s.get("minItems", 0) + r.randint(0, 3)
            return s
        if k == "tuple":
            s = {"type": "array", "prefixItems": [self.schema(depth + 1) for _ in range(r.randint(1, 3))]}
            s["items"] = r.choice([False, self.leaf(), True])
            if r.random() < 0.3:
                s["minItems"] = len(s["prefixItems"])
            return s
        if k in ("anyOf", "oneOf"):
            return {k: [self.schema(depth + 1) for _ in range(r.randint(2, 3))]}
        if k == "allOf":
            return {"allOf": [self.schema(depth + 1)], "description": "pydantic style"}
        if k == "list_or_null":
            return {"anyOf": [{"type": "array", "items": self.leaf()}, {"type": "null"}], "default": None}
        name = "D%d" % len(self.defs)
        self.defs[name] = None  # taken before the nested schemas pick theirs (else D0 could become {"$ref": D0})
        if r.random() < 0.4:  # recursive: a tree of nodes
            self.defs[name] = {"type": "object", "properties": {"v": self.leaf(), "kids": {
                "type": "array", "items": {"$ref": "#/$defs/" + name}, "maxItems": 2}},
                "required": ["v"], "additionalProperties": False}
        else:
            self.defs[name] = self.schema(depth + 1)
        return {"$ref": "#/$defs/" + name}

    def root(self):
        s = self.schema(0)
        if self.defs:
            s = {"allOf": [s]} if "$ref" in s and self.r.random() < 0.5 else s
            s = dict(s)
            s["$defs"] = self.defs
        return s


def one_of_as_any_of(s):
    """The grammar reads oneOf as anyOf (documented): an output may match more than one alternative."""
    if isinstance(s, dict):
        return {("anyOf" if k == "oneOf" else k): one_of_as_any_of(v) for k, v in s.items()}
    if isinstance(s, list):
        return [one_of_as_any_of(v) for v in s]
    return s


def vocabs():
    from vocab import write  # tests/grammar/vocab.py
    out = []
    os.makedirs(os.path.join(ROOT, "build", "grammar"), exist_ok=True)
    for name, folder in (("llama3", os.path.join(ROOT, "build", "tokenizers", "llama3")),
                         ("stories260K", os.path.join(ROOT, "..", "shared", "models", "stories260K"))):
        tj = os.path.join(folder, "tokenizer.json")
        if name == "stories260K" and not os.path.exists(tj):
            folder = os.path.join(ROOT, "build", "tokenizers", "stories260K")
            tj = os.path.join(folder, "tokenizer.json")
        if not os.path.exists(tj):
            continue
        path = os.path.join(ROOT, "build", "grammar", name + ".vocab")
        if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(tj):
            write(folder, path)
        out.append((name, path))
    return out


VOCABS = vocabs()


def run(vocab, cases):
    inp = "".join(json.dumps(c) + "\n" for c in cases)
    p = subprocess.run([RUN, "--vocab", vocab], input=inp.encode(), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    lines = p.stdout.decode().split("\n")[:-1]  # not splitlines: U+2028 may be in a text
    assert len(lines) == len(cases)
    return [json.loads(x) for x in lines]


def check_outputs(res, validate):
    assert "error" not in res, res
    for o in res["outputs"]:
        assert o["text"] is not None, "not UTF-8: %s" % o.get("hex")
        assert o["complete"] and not o["stuck"], o
        validate(o["text"])


@pytest.fixture(scope="module", params=[v[0] for v in VOCABS])
def vocab(request):
    return dict(VOCABS)[request.param]


def test_have_vocabularies():
    # make test-grammar builds both (scripts/make_tokenizers.py); neither may go missing unnoticed
    assert [v[0] for v in VOCABS] == ["llama3", "stories260K"], "run scripts/make_tokenizers.py build/tokenizers llama3 stories260K"


def test_random_schemas(vocab):
    schemas = [Gen(1000 + i).root() for i in range(N_SCHEMAS)]
    cases = [{"kind": "schema", "spec": s, "n": 2, "seed": i, "max_ws": random.Random(i).choice([0, 2, 16])}
             for i, s in enumerate(schemas)]
    results = run(vocab, cases)
    errors, outputs = [], 0
    for s, c, res in zip(schemas, cases, results):
        if "error" in res:
            errors.append((res["error"], s))
            continue
        v = jsonschema.Draft202012Validator(one_of_as_any_of(s), format_checker=CHECKER)

        def validate(text, s=s, v=v):
            doc = json.loads(text)
            errs = list(v.iter_errors(doc))
            assert not errs, "%s\nschema: %s\noutput: %s" % (errs[0].message, json.dumps(s), text)
        check_outputs(res, validate)
        outputs += len(res["outputs"])
    # the generator only uses supported keywords: every schema compiles, or
    # admits no value (e.g. an enum filtered to nothing by its type)
    for e, s in errors:
        assert "admits no value" in e, (e, s)
    assert len(errors) < N_SCHEMAS // 50
    assert outputs >= N_SCHEMAS


def pydantic_schemas():
    from enum import Enum
    from typing import List, Literal, Optional, Union
    from pydantic import BaseModel, Field

    class Color(str, Enum):
        red = "red"
        green = "green"

    class Address(BaseModel):
        street: str
        city: str = Field(max_length=20)
        zip: Optional[str] = Field(default=None, pattern=r"^\d{5}$")

    class Person(BaseModel):
        name: str
        age: int = Field(ge=0, le=150)
        email: Optional[str] = None
        color: Color = Color.red
        tags: List[str] = Field(default_factory=list, max_length=4)
        address: Address
        friends: List["Person"] = Field(default_factory=list, max_length=2)
        kind: Literal["person", "bot"] = "person"
        score: Union[int, float, None] = None

    class Step(BaseModel):
        explanation: str
        output: str

    class Math(BaseModel):  # OpenAI's structured outputs example, strict
        steps: List[Step]
        final_answer: str

    class Pet(BaseModel):
        pet_type: Literal["cat", "dog"]
        name: str
        lives: Optional[int] = Field(default=None, ge=1, le=9)

    class Owner(BaseModel):
        pets: List[Pet] = Field(min_length=1, max_length=3)
        tuple_field: tuple[int, str]

    out = [m.model_json_schema() for m in (Person, Math, Owner, Address)]
    strict = Math.model_json_schema()
    strict["additionalProperties"] = False
    strict["$defs"]["Step"]["additionalProperties"] = False
    out.append(strict)
    return out


def test_pydantic_schemas(vocab):
    schemas = pydantic_schemas()
    cases = [{"kind": "schema", "spec": s, "n": 8, "seed": i} for i, s in enumerate(schemas)]
    for s, res in zip(schemas, run(vocab, cases)):
        v = jsonschema.Draft202012Validator(s, format_checker=CHECKER)
        check_outputs(res, lambda t, v=v: v.validate(json.loads(t)))


def test_json_object_regex_choice(vocab):
    regexes = ["[a-z]{3}-\\d+", "(yes|no)!?", "\\w+@\\w+\\.(com|org)", "[\\u4e00-\\u9fff]{1,3}", "(ab)*c{2,4}"]
    choices = [["yes", "no"], ["positive", "negative", "neutral"], ["é", "ü", "日本"]]
    cases = [{"kind": "object", "n": 5, "seed": 1}]
    cases += [{"kind": "regex", "spec": r, "n": 5, "seed": i} for i, r in enumerate(regexes)]
    cases += [{"kind": "choice", "spec": c, "n": 5, "seed": i} for i, c in enumerate(choices)]
    res = run(vocab, cases)
    check_outputs(res[0], lambda t: isinstance(json.loads(t), dict) or pytest.fail(t))
    for r, x in zip(regexes, res[1:]):
        check_outputs(x, lambda t, r=r: re.fullmatch(r, t) or pytest.fail("%r !~ %r" % (t, r)))
    for c, x in zip(choices, res[1 + len(regexes):]):
        check_outputs(x, lambda t, c=c: t in c or pytest.fail(t))


def test_forced_tool_calls(vocab):
    params = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
              "required": ["city"], "additionalProperties": False}
    call = {"type": "object", "properties": {"name": {"const": "get_weather"}, "arguments": params},
            "required": ["name", "arguments"], "additionalProperties": False}
    hermes = {"kind": "schema", "spec": call, "n": 6, "seed": 3, "prefix": "<tool_call>\n",
              "suffix": "\n</tool_call>", "repeat": True, "separator": "\n", "max_repeat": 3}
    mistral = {"kind": "schema", "spec": {"type": "array", "items": call, "minItems": 1}, "n": 6, "seed": 4,
               "prefix": "[TOOL_CALLS]"}
    v = jsonschema.Draft202012Validator(call)
    rh, rm = run(vocab, [hermes, mistral])

    def hermes_ok(t):
        blocks = re.findall(r"<tool_call>\n(.*?)\n</tool_call>", t, re.S)
        assert 1 <= len(blocks) <= 3 and t == "\n".join("<tool_call>\n%s\n</tool_call>" % b for b in blocks), t
        for b in blocks:
            v.validate(json.loads(b))

    def mistral_ok(t):
        assert t.startswith("[TOOL_CALLS]"), t
        calls = json.loads(t[len("[TOOL_CALLS]"):])
        assert calls
        for c in calls:
            v.validate(c)
    check_outputs(rh, hermes_ok)
    check_outputs(rm, mistral_ok)


def test_masks_equal_brute_force(vocab):
    """Every mask of a few walks against every token's bytes stepped from the state."""
    schemas = pydantic_schemas()[:2] + [Gen(7).root(), {"type": "string", "maxLength": 5},
                                        {"type": "integer", "minimum": -30, "maximum": 2000}]
    cases = [{"kind": "schema", "spec": s, "n": 1, "seed": i, "check": True, "max_tokens": 40} for i, s in enumerate(schemas)]
    cases.append({"kind": "object", "n": 1, "seed": 9, "check": True, "max_tokens": 40})
    for res in run(vocab, cases):
        assert "outputs" in res, res


def test_unsupported_keywords_are_errors(vocab):
    bad = [({"type": "object", "properties": {"x": {"not": {}}}}, "'not' at /properties/x"),
           ({"type": "number", "maximum": 3}, "'maximum' for type number"),
           ({"type": "array", "uniqueItems": True}, "'uniqueItems'")]
    res = run(vocab, [{"kind": "schema", "spec": s} for s, _ in bad])
    for (s, want), r in zip(bad, res):
        assert want in r.get("error", ""), r
