/* test_jinja.c: the Jinja renderer (tokenizer/jinja) on the semantics that
 * are easy to get wrong: whitespace control under trim_blocks and
 * lstrip_blocks, loop variables, scoping and namespace(), macros (recursion,
 * caller), slicing, Python's printing of numbers and containers, tojson,
 * Undefined, the sandbox, error messages, resource bounds and concurrent
 * renders. The expected texts were produced by Python's jinja2 as
 * transformers configures it (tests/jinja/conversations.py's
 * reference_template); tests/jinja compares whole chat templates. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../../tokenizer/jinja/jinja.h"

#define NOW 1753358400 /* 2025-07-24 12:00 UTC */

enum { JINJA_OK, JINJA_ERR };

/* Renders tpl over the JSON context; 0 with the text in *out, or -1 with err. */
static int render(const char *tpl, const char *ctx_json, char **out, char *err, size_t cap)
{
    jinja_template *t = jinja_compile(tpl, strlen(tpl), err, cap);
    if (!t)
        return -2;
    json_error_t jerr;
    json_t *ctx = json_loads(ctx_json, 0, &jerr);
    cr_assert(ctx, "bad test context: %s", jerr.text);
    struct strbuf b = {0};
    int rc = jinja_render(t, ctx, NOW, &b, err, cap);
    *out = strbuf_take(&b);
    json_decref(ctx);
    jinja_free(t);
    return rc;
}

static void check(const char *tpl, const char *ctx_json, int kind, const char *want)
{
    char err[512] = "", *out = NULL;
    setenv("TZ", "UTC", 1);
    tzset();
    int rc = render(tpl, ctx_json, &out, err, sizeof(err));
    if (kind == JINJA_OK) {
        cr_assert_eq(rc, 0, "%s: failed: %s", tpl, err);
        cr_assert_str_eq(out, want, "%s", tpl);
    } else {
        cr_assert_eq(rc, -1, "%s: rendered %s", tpl, out ? out : "");
        cr_assert_str_eq(err, want, "%s", tpl);
    }
    free(out);
}

/* trim_blocks, lstrip_blocks and - markers */
Test(jinja, trim_blocks_lstrip_blocks_and_markers)
{
    check("{% if true %}\n  a\n{% endif %}\n  {%- if true -%}  b  {%- endif %}\n{# c #}\nd\n"
          "    {% if x %}yes{% endif %}\n  {{ x }}\n{%+ if x %}kept{% endif %}\n",
          "{\"x\": 1}",
          JINJA_OK, "  a\nbd\nyes  1\nkept");
}

/* loop variables */
Test(jinja, loop_variables)
{
    check("{% for i in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.r"
          "evindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ "
          "loop.nextitem }}{{ loop.cycle('x','y') }};{% endfor %}",
          "{}",
          JINJA_OK, "1032TrueFalse3bx;2121FalseFalse3acy;3210FalseTrue3bx;");
}

/* break, continue and else */
Test(jinja, break_continue_and_else)
{
    check("{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i > 4 %}{% "
          "break %}{% endif %}{{ i }}{% else %}none{% endfor %}|{% for i in [] %}x{% else %}"
          "empty{% endfor %}",
          "{}",
          JINJA_OK, "0134|empty");
}

/* filter and unpacking */
Test(jinja, filter_and_unpacking)
{
    check("{% for k, v in d|dictsort if v > 1 %}{{ k }}={{ v }}({{ loop.index }}/{{ loop.len"
          "gth }}) {% endfor %}",
          "{\"d\": {\"b\": 2, \"a\": 1, \"c\": 3}}",
          JINJA_OK, "b=2(1/2) c=3(2/2) ");
}

/* namespace carries values out of loops, set does not */
Test(jinja, namespace_carries_values_out_of_loops_set_does_not)
{
    check("{% set ns = namespace(n=0, names=[]) %}{% set x = 1 %}{% for m in ms %}{% set ns."
          "n = ns.n + 1 %}{% set ns.names = ns.names + [m] %}{% set x = 2 %}{% endfor %}{{ n"
          "s.n }} {{ ns.names }} {{ x }}",
          "{\"ms\": [\"a\", \"b\"]}",
          JINJA_OK, "2 ['a', 'b'] 1");
}

/* recursion */
Test(jinja, recursion)
{
    check("{% macro t(x) %}{% if x is mapping %}{{ '{' }}{% for k, v in x.items() %}{{ k }}:"
          "{{ t(v) }}{% if not loop.last %},{% endif %}{% endfor %}{{ '}' }}{% elif x is seq"
          "uence and x is not string %}[{% for v in x %}{{ t(v) }}{% endfor %}]{% else %}{{ "
          "x }}{% endif %}{% endmacro %}{{ t({'a': [1, {'b': none}], 'c': 'd'}) }}",
          "{}",
          JINJA_OK, "{a:[1{b:None}],c:d}");
}

/* defaults, keywords, call, filter and set blocks */
Test(jinja, defaults_keywords_call_filter_and_set_blocks)
{
    check("{% macro f(a, b=2) %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(1, b=3) }}{% ma"
          "cro w(t) %}<{{ caller(t) }}>{% endmacro %}{% call(x) w('a') %}[{{ x }}]{% endcall"
          " %} {% filter upper %}abc{% endfilter %} {% set b %} B {% endset %}|{{ b }}|{% se"
          "t c | trim %} C {% endset %}{{ c }}",
          "{}",
          JINJA_OK, "[12][13]<[a]> ABC | B |C");
}

/* slices and indexes */
Test(jinja, slices_and_indexes)
{
    check("{{ [1,2,3,4][::-1] }} {{ 'héllo'[1:3] }} {{ 'abcdef'[::2] }} {{ [1,2,3][-1] }} {{"
          " 'abc'[-5:10] }} {{ [1,2,3,4,5][4:1:-2] }} {{ 'héllo'[::-1] }} {{ [1][5] }}",
          "{}",
          JINJA_OK, "[4, 3, 2, 1] él ace 3 abc [5, 3] olléh ");
}

/* Python number printing and arithmetic */
Test(jinja, python_number_printing_and_arithmetic)
{
    check("{{ 1.0 }} {{ 3 / 2 }} {{ 4 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % "
          "-3 }} {{ 2 ** 10 }} {{ 1e16 }} {{ 1.5e-5 }} {{ 0.1 + 0.2 }} {{ true }} {{ none }}"
          " {{ 10 / 4 * 2 }} {{ 1 == 1.0 }} {{ -0.0 }} {{ 123456789.123 }} {{ 'ab' * 3 }} {{"
          " [1] + [2] }}",
          "{}",
          JINJA_OK, "1.0 1.5 2.0 3 -4 2 -2 1024 1e+16 1.5e-05 0.30000000000000004 True None 5.0 True -"
          "0.0 123456789.123 ababab [1, 2]");
}

/* Python repr inside lists and dicts */
Test(jinja, python_repr_inside_lists_and_dicts)
{
    check("{{ ['a', \"it's\", 1, 1.5, none, true, {'k': (1,)}] }} {{ {'a': 'b'}|string }} {{"
          " x }} {{ ('a', 2) }}",
          "{\"x\": [\"é\\n\", {\"q\": \"\\\"'\"}]}",
          JINJA_OK, "['a', \"it's\", 1, 1.5, None, True, {'k': (1,)}] {'a': 'b'} ['é\\n', {'q': '\"\\'"
          "'}] ('a', 2)");
}

/* transformers' tojson */
Test(jinja, transformers_tojson)
{
    check("{{ {'a': 'é\"', 'b': [1, 2.5, none, true]}|tojson }} {{ [{'x': 1}, []]|tojson(ind"
          "ent=2) }} {{ 'é🙂'|tojson(ensure_ascii=true) }} {{ {'b': 1, 'a': 2}|tojson(sort_ke"
          "ys=true) }} {{ x|tojson }}",
          "{\"x\": {\"n\": 1.0, \"s\": \"tab\\t<>&\"}}",
          JINJA_OK, "{\"a\": \"é\\\"\", \"b\": [1, 2.5, null, true]} [\n  {\n    \"x\": 1\n  },\n  []\n"
          "] \"\\u00e9\\ud83d\\ude42\" {\"a\": 2, \"b\": 1} {\"n\": 1.0, \"s\": \"tab\\t<>&\""
          "}");
}

/* string methods */
Test(jinja, string_methods)
{
    check("{{ '  a b  '.strip() }}|{{ 'xxhixx'.strip('x') }}|{{ 'a,b,,c'.split(',') }}|{{ ' "
          "a  b '.split() }}|{{ 'a b c'.split(' ', 1) }}|{{ 'Hello'.startswith('He') }}|{{ '"
          "hello world'.title() }}|{{ 'abc'.upper() }}|{{ 'a-b'.replace('-', '+') }}|{{ '{} "
          "and {}'.format(1, 'x') }}|{{ 'abc'.find('c') }}|{{ 'x'.endswith(('y', 'x')) }}|{{"
          " '  r'.lstrip() }}|{{ 'r  '.rstrip() }}|",
          "{}",
          JINJA_OK, "a b|hi|['a', 'b', '', 'c']|['a', 'b']|['a', 'b c']|True|Hello World|ABC|a+b|1 and"
          " x|2|True|r|r|");
}

/* common filters */
Test(jinja, common_filters)
{
    check("{{ [3,1,2]|sort }} {{ ['b','A','a']|sort }} {{ [{'n':2},{'n':1}]|sort(attribute='"
          "n')|map(attribute='n')|join(',') }} {{ ['a','A','b']|unique|list }} {{ 'x\ny'|ind"
          "ent(2, first=true) }} {{ none|default('d') }} {{ u|default('d') }} {{ ''|default("
          "'e', true) }} {{ [1,2,3]|first }}{{ [1,2,3]|last }} {{ '42'|int + 1 }} {{ 2.5|rou"
          "nd }} {{ 2.675|round(2) }} {{ -3|abs }} {{ [1,2]|length }} {{ 'héllo'|length }} {"
          "{ ' t '|trim }} {{ 'ab'|upper }} {{ 'hello wORLD'|capitalize }} {{ {'b': 1, 'a': "
          "2}|items|list }} {{ [{'r': 'u'}, {'r': 'a'}]|selectattr('r', 'equalto', 'a')|list"
          " }} {{ [{'r': 'u'}, {'x': 1}]|rejectattr('r')|list }} {{ ['a', 'b']|map('upper')|"
          "list }} {{ [1, 2, 3]|select('odd')|list }} {{ [4, 1]|min }}{{ [4, 1]|max }}",
          "{}",
          JINJA_OK, "[1, 2, 3] ['A', 'a', 'b'] 1,2 ['a', 'b']   x\n  y None d e 13 43 2.0 2.67 3 2 5 t"
          " AB Hello world [('b', 1), ('a', 2)] [{'r': 'a'}] [{'x': 1}] ['A', 'B'] [1, 3] 14");
}

/* generators are truthy and have no len */
Test(jinja, generators_are_truthy_and_have_no_len)
{
    check("{{ 'yes' if ([]|select) else 'no' }} {{ 'yes' if [] else 'no' }}",
          "{}",
          JINJA_OK, "yes no");
}

/* is tests */
Test(jinja, is_tests)
{
    check("{{ u is defined }}{{ u is undefined }}{{ none is none }}{{ 's' is string }}{{ 1 i"
          "s number }}{{ true is number }}{{ true is integer }}{{ 1.0 is float }}{{ {} is ma"
          "pping }}{{ 's' is iterable }}{{ [] is sequence }}{{ true is boolean }}{{ 3 is odd"
          " }}{{ 4 is even }}{{ 1 is equalto 1 }}{{ 'a' is in 'abc' }}{{ 1 is not none }}{{ "
          "6 is divisibleby 3 }}{{ false is false }}",
          "{}",
          JINJA_OK, "FalseTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue");
}

/* undefined values print empty and are falsy */
Test(jinja, undefined_values_print_empty_and_are_falsy)
{
    check("[{{ u }}][{{ d.missing }}][{{ d['missing'] }}][{{ u|length }}][{% for x in u %}x{"
          "% endfor %}][{{ 'no' if not u }}][{{ u ~ 'c' }}]",
          "{\"d\": {}}",
          JINJA_OK, "[][][][0][][no][c]");
}

/* raise_exception */
Test(jinja, raise_exception)
{
    check("{{ raise_exception('Conversation roles must alternate user/assistant/user/assista"
          "nt/...') }}",
          "{}",
          JINJA_ERR, "Conversation roles must alternate user/assistant/user/assistant/...");
}

/* undefined name */
Test(jinja, undefined_name)
{
    check("{{ foo.bar }}",
          "{}",
          JINJA_ERR, "'foo' is undefined");
}

/* undefined attribute */
Test(jinja, undefined_attribute)
{
    check("{{ x.y.z }}",
          "{\"x\": {}}",
          JINJA_ERR, "'dict object' has no attribute 'y'");
}

/* sandbox forbids mutation */
Test(jinja, sandbox_forbids_mutation)
{
    check("{% set l = [] %}{% set _ = l.append(1) %}",
          "{}",
          JINJA_ERR, "access to attribute 'append' of 'list' object is unsafe.");
}

/* type error */
Test(jinja, type_error)
{
    check("{{ 'a' + 1 }}",
          "{}",
          JINJA_ERR, "can only concatenate str (not \"int\") to str");
}

/* ordering */
Test(jinja, ordering)
{
    check("{{ 1 < 'a' }}",
          "{}",
          JINJA_ERR, "'<' not supported between instances of 'int' and 'str'");
}

/* unpacking */
Test(jinja, unpacking)
{
    check("{% for a, b in [[1, 2, 3]] %}{% endfor %}",
          "{}",
          JINJA_ERR, "too many values to unpack (expected 2)");
}

/* safe strings escape what is added to them */
Test(jinja, safe_strings_escape_what_is_added_to_them)
{
    check("{{ 'a'|safe + '<b>' }} {{ '<c>' ~ 'd'|safe }}",
          "{}",
          JINJA_OK, "a&lt;b&gt; <c>d");
}

/* strftime_now formats the given time */
Test(jinja, strftime_now_formats_the_given_time)
{
    check("{{ strftime_now('%Y-%m-%d %H:%M %d %B') }}",
          "{}",
          JINJA_OK, "2025-07-24 12:00 24 July");
}

/* concatenations print their pieces */
Test(jinja, concatenations_print_their_pieces)
{
    check("{{ 'a' + 'b' + 'c' }}|{{ 'x' ~ 1 ~ none ~ u }}|{{ 1 + 2 }}|{{ [1] + [2] }}|{{ 'a'"
          " + ('<b>'|safe) }}|{{ '' + '' }}|",
          "{}",
          JINJA_OK, "abc|x1None|3|[1, 2]|a<b>||");
}

/* indent and splitlines follow str.splitlines */
Test(jinja, indent_and_splitlines_follow_str_splitlines)
{
    check("{{ '\\nx\\n\\ny\\n'|indent(2, first=true) }}|{{ 'a\\r\\nb'|indent(2) }}|{{ 'a\\n\\"
          "nb'|indent(2, blank=true) }}|{{ 'a\\u2028b'.splitlines() }}|{{ 'a\\n'.splitlines("
          ") }}|{{ 'a\\n'|indent('> ') }}",
          "{}",
          JINJA_OK, "  \n  x\n\n  y\n|a\n  b|a\n  \n  b|['a', 'b']|['a']|a\n");
}

/* concatenation with an int */
Test(jinja, concatenation_with_an_int)
{
    check("{{ '' + 1 }}",
          "{}",
          JINJA_ERR, "can only concatenate str (not \"int\") to str");
}

/* int plus str */
Test(jinja, int_plus_str)
{
    check("{{ 1 + 2 + 'x' }}",
          "{}",
          JINJA_ERR, "unsupported operand type(s) for +: 'int' and 'str'");
}

/* undefined in a concatenation */
Test(jinja, undefined_in_a_concatenation)
{
    check("{{ 'a' + m.missing }}",
          "{\"m\": {}}",
          JINJA_ERR, "'dict object' has no attribute 'missing'");
}

/* attribute of a missing namespace attribute */
Test(jinja, attribute_of_a_missing_namespace_attribute)
{
    check("{% set ns = namespace() %}{{ ns.a.b }}",
          "{}",
          JINJA_ERR, "'transformers.utils.chat_template_utils.TemplateNamespace object' has no attribut"
          "e 'a'");
}

/* generator has no len */
Test(jinja, generator_has_no_len)
{
    check("{{ [1]|map('string')|length }}",
          "{}",
          JINJA_ERR, "object of type 'generator' has no len()");
}

/* generator is not JSON */
Test(jinja, generator_is_not_json)
{
    check("{{ [1]|select|tojson }}",
          "{}",
          JINJA_ERR, "Object of type generator is not JSON serializable");
}

Test(jinja, syntax_errors_name_the_line)
{
    const char *bad[] = {"{% if %}", "a\n{% for x in y %}", "{{ x", "{% endif %}", "{{ (1 }}", "{# open",
                         "{% set %}", "{{ 'unterminated }}", "{% frobnicate %}", "{{ a | }}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char err[256] = "";
        jinja_template *t = jinja_compile(bad[i], strlen(bad[i]), err, sizeof(err));
        cr_assert_null(t, "%s compiled", bad[i]);
        cr_assert(!strncmp(err, "line ", 5), "%s: %s", bad[i], err);
    }
    char err[256];
    jinja_template *t = jinja_compile("a\n{% for x in y %}", 18, err, sizeof(err));
    cr_assert_null(t);
    cr_assert(strstr(err, "line 2") && strstr(err, "endfor"), "%s", err);
    jinja_free(NULL);
}

Test(jinja, work_is_bounded)
{
    const char *cases[][2] = {
        {"{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop iterations"},
        {"{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "maximum recursion depth exceeded"},
        {"{% set s = 'x' * 1000000 %}{% for i in range(100) %}{{ s }}{% endfor %}", "output too long"},
        {"{{ 'x' * 10000000000 }}", "output too long"},
        {"{{ range(1000000) }}", "Range too big"},
        {"{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
         "too long"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char err[256] = "", *out = NULL;
        int rc = render(cases[i][0], "{}", &out, err, sizeof(err));
        cr_assert_eq(rc, -1, "%s rendered", cases[i][0]);
        cr_assert(strstr(err, cases[i][1]), "%s: %s", cases[i][0], err);
        free(out);
    }
}

Test(jinja, deep_nesting_fails_cleanly)
{
    size_t n = 5000;
    char *tpl = malloc(n * 2 + 16);
    strcpy(tpl, "{{ ");
    for (size_t i = 0; i < n; i++)
        strcat(tpl, "(");
    strcat(tpl, "1");
    char err[256];
    cr_assert_null(jinja_compile(tpl, strlen(tpl), err, sizeof(err)));
    free(tpl);
}

struct job {
    const jinja_template *t;
    json_t *ctx;
    int ok;
};

static void *render_many(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < 200; i++) {
        struct strbuf b = {0};
        char err[128];
        j->ok += jinja_render(j->t, j->ctx, NOW, &b, err, sizeof(err)) == 0 && !strcmp(b.s, "a1,b2,");
        strbuf_free(&b);
    }
    return NULL;
}

Test(jinja, one_template_many_threads)
{
    const char *src = "{% for m in ms %}{{ m.k }}{{ loop.index }},{% endfor %}";
    char err[128];
    jinja_template *t = jinja_compile(src, strlen(src), err, sizeof(err));
    cr_assert(t, "%s", err);
    json_t *ctx = json_loads("{\"ms\": [{\"k\": \"a\"}, {\"k\": \"b\"}]}", 0, NULL);
    pthread_t th[4];
    struct job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (struct job){t, ctx, 0};
        pthread_create(&th[i], NULL, render_many, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(jobs[i].ok, 200);
    }
    json_decref(ctx);
    jinja_free(t);
}
