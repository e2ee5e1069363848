"""Snippets of Jinja through build/jinja-run against Python's jinja2 as transformers configures it: the semantics
chat templates lean on (Python's printing, operators, slicing, str/dict/list methods, filters, tests, loops, macros,
whitespace control) and the error messages, one template per snippet (plus all the LINES at once)."""
import json
import subprocess

from conversations import NOW, reference_render, reference_template
from test_jinja_conformance import JINJA_RUN

LINES = r"""
{{ 'Hello'|lower }}|{{ 'hello world'|title }}|{{ 'a-b c(d'|title }}|{{ "it's"|title }}
{{ [1,2,3]|sum }}|{{ [1.5, 2]|sum }}|{{ ['a','b']|join }}|{{ [1,[2,3]]|join(',') }}
{{ {'a': 1}.get('a') }}|{{ {'a': 1}.get('b', 'x') }}|{{ {'a': 1}.get('b') }}|{{ {'a':1}.keys()|list }}|{{ {'a':1}.values()|list }}
{{ 'abc'.startswith(('x', 'a')) }}|{{ 'a b'.split(' ') }}|{{ ''.split() }}|{{ ''.split(',') }}|{{ 'a,b'.split(',', 0) }}
{{ 3 > 2 > 1 }}|{{ 1 < 2 < 1 }}|{{ not 1 in [1] }}|{{ 'a' not in 'abc' }}|{{ none is none and true }}
{{ 1 if true else 2 }}|{{ (1, 2) == (1, 2) }}|{{ [1, 2] == (1, 2) }}|{{ {'a': 1} == {'a': 1.0} }}
{{ '%s is %d' % ('x', 3) }}|{{ '%.2f' % 3.14159 }}|{{ '%r' % 'q' }}|{{ '100%%' % () }}
{{ 1.5|int }}|{{ -1.5|int }}|{{ '  7 '|int }}|{{ '1e3'|int }}|{{ 'x'|float }}|{{ true|int }}|{{ '0x1A'|int }}
{{ 0.1 * 3 }}|{{ 1 / 3 }}|{{ 2 ** 62 }}|{{ 2 ** -1 }}|{{ 7.0 // 2 }}|{{ -7.5 % 2 }}|{{ 1e300 * 1e10 }}|{{ 5e-324 }}
{{ [3, 1, 2]|sort(reverse=true) }}|{{ ['b', 'a', 'C']|sort(case_sensitive=true) }}|{{ [{'k': 'b'}, {'k': 'A'}]|sort(attribute='k')|map(attribute='k')|list }}
{{ {'b': 1, 'A': 2}|dictsort }}|{{ {'b': 1, 'a': 2}|dictsort(by='value') }}|{{ {'b': 1, 'a': 2}|dictsort(reverse=true) }}
{{ 'abc'|reverse }}|{{ [1, 2]|reverse|list }}|{{ 'ab'|list }}|{{ {'x': 1}|list }}|{{ [1, 2, 3]|first }}|{{ []|first }}
{{ 'x'|center(5) if false }}|{{ 'héllo wörld'|upper }}|{{ 'ß'|upper }}|{{ 'ÀB'|lower }}|{{ 'hello'|capitalize }}
{{ [1, 2, 3]|select('odd')|list }}|{{ [1, 2, 3]|reject('odd')|list }}|{{ [1, 2, 3]|select('gt', 1)|list }}|{{ [1, none]|select|list }}
{{ [{'a': {'b': 1}}]|map(attribute='a.b')|list }}|{{ [{'a': 1}, {}]|map(attribute='a', default=0)|list }}|{{ ['1', '2']|map('int')|sum }}
{{ [1, 2, 2, 'a', 'A']|unique|list }}|{{ ['a', 'A']|unique(case_sensitive=true)|list }}|{{ [3, 5, 1]|max }}|{{ ['b', 'A']|min }}
{{ 'x' in {'x': 1} }}|{{ 1 in [1.0] }}|{{ '' in 'abc' }}|{{ 'ab' ~ 1 ~ 2.0 ~ true ~ none }}
{% for a, b in [(1, 2), [3, 4]] %}{{ a }}{{ b }}{% endfor %}|{% for x in {'k': 'v'} %}{{ x }}{% endfor %}|{% for c in 'hé' %}[{{ c }}]{% endfor %}
{% for i in range(5) if i is odd %}{{ loop.index }}{{ i }}{{ loop.last }}{% endfor %}|{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}|{{ range(3)|list }}
{% set a = [1, 2] %}{% set b = a + [3] %}{{ a }}{{ b }}|{% set t = (1,) %}{{ t }}{{ t|length }}|{% set d = {'x': [1]} %}{{ d.x[0] }}{{ d['x'][-1] }}
{{ 'abcdef'[1:-1:2] }}|{{ [1, 2, 3, 4, 5][::-2] }}|{{ 'abc'[5:] }}|{{ 'abc'[-1] }}|{{ [1, 2][-3] }}|{{ (1, 2, 3)[1:] }}
{% macro m(a, b='B', c=none) %}{{ a }}{{ b }}{{ c }}{% endmacro %}{{ m(1) }}|{{ m(1, c=3) }}|{{ m('x', 'y', 'z') }}|{{ m() }}
{% set ns = namespace(items=[]) %}{% for i in range(3) %}{% set ns.items = ns.items + [i * 2] %}{% endfor %}{{ ns.items }}|{{ ns.items|tojson }}
{{ {'a': [1, 2.0, 'x', none, true, {'b': 'é'}]}|tojson(indent=2) }}|{{ []|tojson(indent=2) }}|{{ {}|tojson }}|{{ 'a\nb"\\'|tojson }}
{{ "a\tb" }}|{{ 'a\x41\u00e9\101' }}|{{ "multi" "part" }}|{{ 'q"uote' }}|{{ "it's" }}
{{ x.y is defined }}|{{ x['y'] is undefined }}|{{ none is defined }}|{{ x is mapping }}|{{ x.z is none }}|{{ x.l is sequence }}|{{ x.l is iterable }}
{{ x|length }}|{{ x.l|length }}|{{ x.s|length }}|{{ x.s|upper }}|{{ x.l[1:] }}|{{ x.n + 1 }}|{{ x.f }}|{{ x.f * 2 }}
{{ x.s.split('é') }}|{{ x.s.replace('é', 'e') }}|{{ x.s.find('l') }}|{{ x.s.rstrip('oé') }}|{{ x.s.endswith('o') }}|{{ x.s[1] }}
{{ (x.n > 1) and 'big' or 'small' }}|{{ x.missing or 'default' }}|{{ x.missing and 'no' }}|{{ none or false }}|{{ 0 or '' }}
{{ x }}
{{ x.items()|list }}|{% for k, v in x.items() %}{{ k }}={{ v }};{% endfor %}
{%- if true %}
  indented
{%- endif %}
{% if true -%}
   stripped
{%- endif %}
   {% for i in [1] %}
   {{ i }}
   {% endfor %}
{{ '{{' }} {# comment #} {{ '}}' }}
"""
SNIPPETS = [
 "{{ x.l.append }}", "{{ x.pop('n') }}", "{{ x.update({}) }}", "{{ x.l.index(2) }}", "{{ x.l.index(9) }}", "{{ x.l.count(1) }}",
 "{{ x.s.format() }}", "{{ '{0}-{1}-{0}'.format('a', 'b') }}", "{{ '{a}'.format(a=1) }}", "{{ '{}'.format() }}",
 "{{ x.n / 0 }}", "{{ x.n // 0 }}", "{{ x.n % 0 }}", "{{ x.f / 0 }}", "{{ -x.s }}", "{{ x.l - 1 }}", "{{ x.s * 'a' }}",
 "{{ x.l < x.s }}", "{{ none < 1 }}", "{{ [1, 'a']|sort }}", "{{ x.nope() }}", "{{ x() }}", "{{ x.s() }}",
 "{{ range(1, 10, 0) }}", "{{ range('a') }}", "{{ namespace(_x=1) }}", "{% set ns = namespace() %}{% set ns._y = 1 %}",
 "{% set q = 1 %}{% set q.a = 2 %}", "{{ {'a': 1}|items|list }}", "{{ undefined_thing|items|list }}",
 "{{ x|tojson(indent='  ') }}", "{{ x|tojson(sort_keys=true) }}", "{{ x.l|tojson(separators=(',', ':')) }}",
 "{{ x.z|tojson }}", "{{ x.n|string + 'a' }}", "{{ x.l|string }}", "{{ x|string }}", "{{ (x.s|safe) + '&<>' }}",
 "{{ x.s|e }}", "{{ '<a>'|escape + '<b>' }}", "{{ 'a' is lower }}{{ 'A' is upper }}{{ '1' is lower }}",
 "{{ x.l is divisibleby 3 }}", "{{ 4 is divisibleby 2 }}", "{{ 3 is sameas 3 }}{{ none is sameas none }}",
 "{{ raise_exception('a' ~ 1) }}", "{{ raise_exception() if false }}", "{{ strftime_now('%Y') }}",
 "{% for i in x %}{{ i }}{% endfor %}", "{% for i in x.n %}{% endfor %}", "{% for i in none %}{% endfor %}",
 "{% for a, b in x.l %}{% endfor %}", "{% set a, b = x.l %}", "{% set a, b = 'xy' %}{{ b }}{{ a }}",
 "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(1, 2) }}", "{% macro f(a) %}{{ a }}{% endmacro %}{{ f(b=2) }}",
 "{% macro f(a) %}[{{ a }}]{% endmacro %}{{ f() }}", "{% macro f(a) %}{{ a.b }}{% endmacro %}{{ f() }}",
 "{% macro g() %}{{ caller() }}{% endmacro %}{{ g() }}", "{% macro g() %}{{ caller(1) }}{% endmacro %}{% call(a, b=2) g() %}{{ a }}{{ b }}{% endcall %}",
 "{% filter trim %}  x  {% endfilter %}|{% filter replace('a', 'b') %}aaa{% endfilter %}", "{% set s | upper %}abc{% endset %}{{ s }}",
 "{% for i in range(3) %}{% for j in range(3) %}{% if j == 1 %}{% break %}{% endif %}{{ i }}{{ j }}{% endfor %}{% endfor %}",
 "{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{{ loop.revindex0 }}{{ loop.depth }}{% endfor %}",
 "{% for i in [] %}{% else %}e{{ i }}{% endfor %}", "{% if x.l|length > 2 %}y{% elif x %}n{% else %}z{% endif %}",
 "a  {%- if true %} b {% endif -%}  c", "  {#- c -#}  d", "x\n  {% raw %}{{ y }}{% endraw %}\nz", "{{- ' a ' -}}",
 "line\n{%+ if true %}k{% endif %}", "{% if true %}\n\nx{% endif %}\n\n", "\n  {{ 1 }}\n  {% if 1 %}a{% endif %}\n",
 "{{ x.s[::-1] }}{{ x.s[1:3] }}{{ x.s[-2:] }}", "{{ x['s'] }}{{ x.get('s') }}{{ x.get('nope', 5) }}",
 "{{ 'a' ~ x.nope ~ 'b' }}", "{{ x.nope ~ 1 }}", "{{ x.nope + 1 }}", "{{ x.nope|default('d') + 'e' }}",
 "{{ x.nope|length }}{{ x.nope|list }}{{ x.nope|string }}{{ x.nope|trim }}", "{{ x.nope|tojson }}", "{{ x.nope.a }}",
 "{{ x.l[x.n] }}", "{{ x.l[5].a }}", "{{ x.s[10] }}", "{{ x[1] }}", "{{ x.l['a'] }}", "{{ x.z.a }}", "{{ x.z['a'] }}",
 "{{ dict(a=1, b=[2]) }}", "{{ dict([('a', 1)]) }}", "{{ dict({'a': 1}, b=2) }}", "{{ namespace(a=1).a }}",
 "{{ 10|round(-1) }}", "{{ 2.5|round(0, 'floor') }}", "{{ 2.1|round(0, 'ceil') }}", "{{ 0.125|round(2) }}", "{{ -2.5|round }}",
 "{{ 1e16|int }}", "{{ 123456789012345678 }}", "{{ 1.0e-7 }}", "{{ 12345678901234567890.0 }}", "{{ 0.1 + 0.7 }}", "{{ 1/7 }}",
 "{{ [none, true, 1.0, 'é\\n\\x00\\x7f\\u2028'] }}", "{{ {1: 'a', 'b': none} }}", "{{ ('a',) }}{{ () }}{{ [()] }}",
]
CONTEXT = {"x": {"n": 2, "f": 1.5, "s": "héllo", "l": [1, 2, 3], "z": None}}


def test_snippets():
    lines = LINES.strip("\n").split("\n")
    cases = [t for t in lines + SNIPPETS + [LINES] if compiles(t)]
    assert len(cases) > 140
    inp = "".join(json.dumps({"template_text": t, "context": CONTEXT, "now": NOW}, ensure_ascii=False) + "\n"
                  for t in cases)
    out = subprocess.run([str(JINJA_RUN)], input=inp, capture_output=True, text=True, check=True).stdout.splitlines()
    bad = []
    for t, line in zip(cases, out):
        r = json.loads(line)
        got = ("ok", r["ok"]) if "ok" in r else ("error", r["error"])
        want = reference_render(reference_template(t), CONTEXT)
        if got != want:
            bad.append(f"{t!r}\n  python: {want!r}\n  ours:   {got!r}")
    assert not bad, f"{len(bad)} of {len(cases)} differ:\n" + "\n".join(bad[:5])


def compiles(t):
    """Whether jinja2 compiles it (a line of LINES may hold half a block)."""
    try:
        reference_template(t)
        return True
    except Exception:  # noqa: BLE001
        return False
