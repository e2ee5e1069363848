/* test_grammar.c: constrained decoding (engine/grammar): each JSON Schema
 * keyword on accepted and refused documents (every prefix of an accepted
 * one is accepted too), the errors for what is not supported, and token
 * masks against a brute force (every token tried on a copy of the matcher)
 * at random reachable states, over a synthetic vocabulary whose tokens
 * cross JSON structure. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../engine/grammar/grammar.h"
#include "test_util.h"

static grammar *compile_kind(enum grammar_kind kind, const char *text)
{
    char err[256];
    struct grammar_spec s = grammar_spec_default(kind, text);
    grammar *g = grammar_compile(&s, err, sizeof(err));
    cr_assert(g, "compile failed: %s: %s", text, err);
    return g;
}

static grammar *compile(const char *schema) { return compile_kind(GRAMMAR_JSON_SCHEMA, schema); }

/* The error of a schema that must not compile. */
static const char *compile_err(const char *schema)
{
    static char err[256];
    struct grammar_spec s = grammar_spec_default(GRAMMAR_JSON_SCHEMA, schema);
    grammar *g = grammar_compile(&s, err, sizeof(err));
    cr_assert_null(g, "compiled but should not: %s", schema);
    cr_assert(err[0], "no error message for %s", schema);
    return err;
}

/* The whole text is a complete output; every prefix is accepted on the way. */
static bool accepts(const grammar *g, const char *text)
{
    struct grammar_matcher *m = gm_new(g);
    bool ok = true;
    for (size_t i = 0; text[i] && ok; i++) ok = gm_accept_bytes(m, (const uint8_t *)text + i, 1);
    ok = ok && gm_can_end(m);
    gm_free(m);
    return ok;
}

static void yes(const grammar *g, const char *t) { cr_assert(accepts(g, t), "refused: %s", t); }
static void no(const grammar *g, const char *t) { cr_assert(!accepts(g, t), "accepted: %s", t); }

Test(grammar, primitive_types)
{
    grammar *g = compile("{\"type\": \"string\"}");
    yes(g, "\"\"");
    yes(g, "\"abc\"");
    yes(g, "\"a\\\"b\\\\c\\n\\u00e9\"");
    yes(g, "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
    no(g, "\"a");
    no(g, "abc");
    no(g, "\"a\nb\"");           /* raw control character */
    no(g, "\"\xc3\"");           /* truncated UTF-8 */
    no(g, "\"\xed\xa0\x80\"");   /* a surrogate in UTF-8 */
    no(g, "\"\\ud800\"");        /* a surrogate escape */
    no(g, "\"\\x\"");
    grammar_free(g);
    g = compile("{\"type\": \"number\"}");
    yes(g, "0");
    yes(g, "-12.5e+3");
    yes(g, "1E9");
    no(g, "01");
    no(g, "1.");
    no(g, ".5");
    no(g, "+1");
    grammar_free(g);
    g = compile("{\"type\": \"integer\"}");
    yes(g, "-7");
    yes(g, "120");
    no(g, "1.0");
    no(g, "007");
    grammar_free(g);
    g = compile("{\"type\": [\"boolean\", \"null\"]}");
    yes(g, "true");
    yes(g, "false");
    yes(g, "null");
    no(g, "0");
    grammar_free(g);
}

Test(grammar, integer_bounds)
{
    grammar *g = compile("{\"type\": \"integer\", \"minimum\": -15, \"maximum\": 120}");
    const char *ok[] = {"-15", "-9", "0", "7", "99", "120", "-0"};
    const char *bad[] = {"-16", "121", "1000", "-100", "00"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) yes(g, ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) no(g, bad[i]);
    /* digit by digit: after "1" the next digit must keep the value <= 120 */
    struct grammar_matcher *m = gm_new(g);
    cr_assert(gm_accept_bytes(m, (const uint8_t *)"12", 2));
    cr_assert(gm_accept_bytes(m, (const uint8_t *)"0", 1));
    cr_assert(gm_must_end(m));
    gm_reset(m);
    cr_assert(gm_accept_bytes(m, (const uint8_t *)"12", 2));
    cr_assert_not(gm_accept_bytes(m, (const uint8_t *)"1", 1));
    gm_free(m);
    grammar_free(g);
    g = compile("{\"type\": \"integer\", \"exclusiveMinimum\": 10}");
    no(g, "10");
    yes(g, "11");
    yes(g, "123456789012345678901234567890");
    no(g, "-5");
    grammar_free(g);
    g = compile("{\"type\": \"integer\", \"exclusiveMaximum\": -3}");
    yes(g, "-4");
    no(g, "-3");
    no(g, "0");
    yes(g, "-99999999999999999999999");
    grammar_free(g);
    cr_assert(strstr(compile_err("{\"type\": \"integer\", \"minimum\": 5, \"maximum\": 4}"), "no value"));
}

Test(grammar, object_properties_in_order)
{
    grammar *g = compile("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}, \"b\": {\"type\": \"string\"},"
                         " \"c\": {\"type\": \"boolean\"}}, \"required\": [\"b\"], \"additionalProperties\": false}");
    yes(g, "{\"b\":\"x\"}");
    yes(g, "{\"a\":1,\"b\":\"x\"}");
    yes(g, "{\"a\": 1, \"b\": \"x\", \"c\": true}");
    yes(g, "{ \"b\" : \"x\" ,\n\t\"c\" : false }");
    no(g, "{}");
    no(g, "{\"a\":1}");
    no(g, "{\"b\":\"x\",\"a\":1}"); /* schema order */
    no(g, "{\"b\":\"x\",\"d\":1}");
    no(g, "{\"b\":\"x\",}");
    no(g, "{,\"b\":\"x\"}");
    grammar_free(g);
}

Test(grammar, additional_properties)
{
    grammar *g = compile("{\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}},"
                         " \"additionalProperties\": {\"type\": \"string\"}}");
    yes(g, "{}");
    yes(g, "{\"id\":1,\"x\":\"y\",\"z\":\"w\"}");
    yes(g, "{\"x\":\"y\"}");
    yes(g, "{\"idx\":\"y\"}");
    no(g, "{\"id\":\"y\"}");        /* a listed name is never an additional key */
    no(g, "{\"x\":1}");
    no(g, "{\"id\":1,\"id\":\"y\"}");
    grammar_free(g);
    /* absent: none beside listed properties; any in an object that lists none */
    g = compile("{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"null\"}}}");
    yes(g, "{\"a\":null}");
    no(g, "{\"a\":null,\"q\":[1,{\"r\":{}}]}");
    grammar_free(g);
    g = compile("{\"type\": \"object\"}");
    yes(g, "{\"a\":null,\"q\":[1,{\"r\":{}}]}");
    grammar_free(g);
}

Test(grammar, arrays)
{
    grammar *g = compile("{\"type\": \"array\", \"items\": {\"type\": \"integer\"}, \"minItems\": 2, \"maxItems\": 3}");
    no(g, "[]");
    no(g, "[1]");
    yes(g, "[1,2]");
    yes(g, "[1, 2, 3]");
    no(g, "[1,2,3,4]");
    no(g, "[1,2,]");
    grammar_free(g);
    g = compile("{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"integer\"}], \"items\": false}");
    yes(g, "[]");
    yes(g, "[\"a\"]");
    yes(g, "[\"a\",1]");
    no(g, "[\"a\",1,2]");
    no(g, "[1]");
    grammar_free(g);
    g = compile("{\"type\": \"array\", \"prefixItems\": [{\"const\": 1}], \"items\": {\"type\": \"boolean\"}, \"minItems\": 3}");
    no(g, "[1,true]");
    yes(g, "[1,true,false]");
    yes(g, "[1,true,false,true]");
    no(g, "[true,true,false]");
    grammar_free(g);
    g = compile("{\"type\": \"array\", \"maxItems\": 100000}"); /* a counter, not 100,000 copies */
    int nodes;
    grammar_stats(g, &nodes, NULL, NULL);
    cr_assert_lt(nodes, 2000);
    yes(g, "[1,\"a\",[],{}]");
    grammar_free(g);
}

Test(grammar, string_lengths_count_code_points)
{
    grammar *g = compile("{\"type\": \"string\", \"minLength\": 2, \"maxLength\": 3}");
    no(g, "\"a\"");
    yes(g, "\"ab\"");
    yes(g, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    no(g, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80x\"");
    yes(g, "\"\\n\\u0041\"");
    no(g, "\"abcd\"");
    grammar_free(g);
}

Test(grammar, enum_const_anyof_allof)
{
    grammar *g = compile("{\"enum\": [\"red\", 2, null, {\"a\": [1]}]}");
    yes(g, "\"red\"");
    yes(g, "2");
    yes(g, "null");
    yes(g, "{\"a\":[1]}");
    no(g, "\"blue\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"enum\": [\"x\", 1]}");
    yes(g, "\"x\"");
    no(g, "1");
    grammar_free(g);
    g = compile("{\"const\": \"fixed\"}");
    yes(g, "\"fixed\"");
    no(g, "\"fixe\"");
    grammar_free(g);
    g = compile("{\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"string\", \"maxLength\": 1}]}");
    yes(g, "5");
    yes(g, "\"q\"");
    no(g, "\"qq\"");
    grammar_free(g);
    g = compile("{\"oneOf\": [{\"type\": \"object\", \"properties\": {\"k\": {\"const\": 1}}, \"required\": [\"k\"], "
                "\"additionalProperties\": false}, {\"type\": \"object\", \"properties\": {\"k\": {\"const\": 2}, \"v\": "
                "{\"type\": \"null\"}}, \"required\": [\"k\", \"v\"], \"additionalProperties\": false}]}");
    yes(g, "{\"k\":1}");
    yes(g, "{\"k\":2,\"v\":null}");
    no(g, "{\"k\":1,\"v\":null}");
    no(g, "{\"k\":2}");
    grammar_free(g);
    g = compile("{\"allOf\": [{\"type\": \"boolean\"}], \"description\": \"pydantic\"}");
    yes(g, "true");
    no(g, "1");
    grammar_free(g);
}

Test(grammar, refs_and_recursion)
{
    grammar *g = compile("{\"$defs\": {\"Node\": {\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"}, "
                         "\"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/Node\"}}}, \"required\": [\"v\"], "
                         "\"additionalProperties\": false}}, \"$ref\": \"#/$defs/Node\"}");
    yes(g, "{\"v\":1}");
    yes(g, "{\"v\":1,\"kids\":[{\"v\":2,\"kids\":[]},{\"v\":3,\"kids\":[{\"v\":4}]}]}");
    no(g, "{\"v\":1,\"kids\":[{}]}");
    grammar_free(g);
    g = compile("{\"definitions\": {\"a\": {\"type\": \"null\"}}, \"type\": \"array\", \"items\": {\"$ref\": \"#/definitions/a\"}}");
    yes(g, "[null,null]");
    grammar_free(g);
    g = compile("{\"type\": \"object\", \"properties\": {\"next\": {\"anyOf\": [{\"$ref\": \"#\"}, {\"type\": \"null\"}]}}, "
                "\"required\": [\"next\"], \"additionalProperties\": false}");
    yes(g, "{\"next\":{\"next\":null}}");
    grammar_free(g);
    /* a required self reference with no way out admits nothing */
    cr_assert(strstr(compile_err("{\"type\": \"object\", \"properties\": {\"x\": {\"$ref\": \"#\"}}, \"required\": [\"x\"]}"),
                     "no value"));
    cr_assert(strstr(compile_err("{\"$ref\": \"#/$defs/missing\"}"), "$ref"));
}

Test(grammar, patterns_and_formats)
{
    grammar *g = compile("{\"type\": \"string\", \"pattern\": \"^[a-z]{2,3}-\\\\d+(\\\\.\\\\d)?$\"}");
    yes(g, "\"ab-1\"");
    yes(g, "\"abc-123.4\"");
    no(g, "\"a-1\"");
    no(g, "\"ab-\"");
    no(g, "\"AB-1\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"pattern\": \"x\\\"y\"}"); /* unanchored; a quote inside */
    yes(g, "\"x\\\"y\"");
    yes(g, "\"aax\\\"ybb\"");
    no(g, "\"xy\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"pattern\": \"^[^a-c]$\"}");
    yes(g, "\"d\"");
    yes(g, "\"\xc3\xa9\"");
    no(g, "\"b\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"format\": \"date\"}");
    yes(g, "\"2024-02-28\"");
    yes(g, "\"2024-12-31\"");
    no(g, "\"2024-02-30\"");
    no(g, "\"2024-04-31\"");
    no(g, "\"2024-13-01\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"format\": \"date-time\"}");
    yes(g, "\"2024-01-02T03:04:05Z\"");
    yes(g, "\"2024-01-02T23:59:59.123+05:30\"");
    no(g, "\"2024-01-02 03:04:05Z\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"format\": \"time\"}");
    yes(g, "\"12:00:00Z\"");
    no(g, "\"24:00:00Z\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"format\": \"uuid\"}");
    yes(g, "\"123e4567-e89b-12d3-a456-426614174000\"");
    no(g, "\"123e4567e89b12d3a456426614174000\"");
    grammar_free(g);
    g = compile("{\"type\": \"string\", \"format\": \"email\"}");
    yes(g, "\"a.b+c@example.co.uk\"");
    no(g, "\"a@b\"");
    grammar_free(g);
}

Test(grammar, unsupported_keywords_are_named)
{
    struct {
        const char *schema, *want;
    } cases[] = {
        {"{\"type\": \"object\", \"properties\": {\"x\": {\"not\": {}}}}", "unsupported JSON Schema keyword 'not' at /properties/x"},
        {"{\"if\": {}}", "'if' at /"},
        {"{\"patternProperties\": {}}", "'patternProperties'"},
        {"{\"dependentRequired\": {}}", "'dependentRequired'"},
        {"{\"type\": \"integer\", \"multipleOf\": 2}", "'multipleOf'"},
        {"{\"type\": \"array\", \"uniqueItems\": true}", "'uniqueItems'"},
        {"{\"type\": \"array\", \"contains\": {}}", "'contains'"},
        {"{\"type\": \"number\", \"minimum\": 0}", "'minimum' for type number"},
        {"{\"type\": \"string\", \"format\": \"hostname\"}", "format 'hostname'"},
        {"{\"allOf\": [{}, {}]}", "allOf"},
        {"{\"type\": \"string\", \"pattern\": \"a\\\\bc\"}", "regex escape"},
        {"{\"type\": \"string\", \"pattern\": \"a^b\"}", "anchor"},
        {"{\"type\": \"strin\"}", "unknown type"},
        {"{\"type\": \"object\", \"required\": [\"q\"]}", "'q'"},
        {"not json", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const char *e = compile_err(cases[i].schema);
        cr_assert(strstr(e, cases[i].want), "%s: got \"%s\", want \"%s\"", cases[i].schema, e, cases[i].want);
    }
}

Test(grammar, bounds_refuse_absurd_schemas)
{
    /* nesting past the limit */
    char s[4096] = "";
    for (int i = 0; i < 100; i++) strcat(s, "{\"type\":\"array\",\"items\":");
    strcat(s, "{}");
    for (int i = 0; i < 100; i++) strcat(s, "}");
    cr_assert(strstr(compile_err(s), "nested"));
    /* a regex that unrolls past the state limit */
    cr_assert(strstr(compile_err("{\"type\":\"string\",\"pattern\":\"^((a{1000}){1000}){1000}$\"}"), "too large"));
    /* long literals and many alternatives: no recursion per character */
    size_t n = 300000;
    char *big = malloc(2 * n + 64);
    strcpy(big, "{\"type\":\"string\",\"pattern\":\"^");
    size_t k = strlen(big);
    for (size_t i = 0; i < n; i++) big[k++] = i % 2 ? '|' : 'a';
    strcpy(big + k, "b$\"}");
    cr_assert(strstr(compile_err(big), "too large"));
    k = strlen("{\"type\":\"string\",\"pattern\":\"^");
    for (size_t i = 0; i < 50000; i++) big[k++] = 'a';
    strcpy(big + k, "$\"}");
    grammar *g = compile(big);
    grammar_free(g);
    free(big);
    cr_assert(strstr(compile_err("{\"type\":\"string\",\"pattern\":\"a**\"}"), "multiple repeat"));
}

/* --- masks against the brute force --- */

static const char *const SYN[] = {
    "{", "}", "[", "]", ",", ":", "\"", " ", "\n", "\t", "\\", "-", ".", "e", "E", "+",
    "0", "1", "2", "5", "9", "12", "007", "a", "b", "c", "n", "u", "x", "t", "r", "f", "l", "s", "T", "Z", "@",
    "{\"", "\"}", "\",", "\":", "\": ", "\"]", "[{", "}]", "},", "],", ", \"", " \"", "\n  ", "  ",
    "true", "null", "fals", "e}", "1,", "0.5", "e+1", "-1", "\"a", "a\"", "ab", "abc", "name", "\"name\": \"",
    "\\u00", "e9", "\\\"", "\\n", "\xc3\xa9", "\xc3", "\xa9", "\xe2\x82\xac", "\xe2\x82", "\xac\"", "\xf0\x9f\x98\x80",
    "2024-", "-01", "01", "31", "T12:", "00:00Z", "kids", "\"v\":", "\"kids\":[", "v", "k", "id", "\"id\":",
    "<call>", "</call>", "\n", ";", "yes", "no", "maybe",
};
#define N_SYN ((int)(sizeof(SYN) / sizeof(*SYN)))

static uint8_t BYTES[256];

/* The synthetic vocabulary, a control token, an EOS, then every single
 * byte (some of them twice, then: tokens with equal bytes). */
static struct grammar_vocab *syn_vocab(int *n_out, int *eos)
{
    int n = N_SYN + 2 + 256;
    const uint8_t **b = malloc((size_t)n * sizeof(*b));
    uint32_t *l = malloc((size_t)n * sizeof(*l));
    for (int i = 0; i < N_SYN; i++) b[i] = (const uint8_t *)SYN[i], l[i] = (uint32_t)strlen(SYN[i]);
    b[N_SYN] = (const uint8_t *)"", l[N_SYN] = 0;         /* a control token */
    b[N_SYN + 1] = (const uint8_t *)"</s>", l[N_SYN + 1] = 4; /* EOS: bytes that never count */
    for (int i = 0; i < 256; i++) {
        BYTES[i] = (uint8_t)i;
        b[N_SYN + 2 + i] = &BYTES[i];
        l[N_SYN + 2 + i] = 1;
    }
    *eos = N_SYN + 1;
    struct grammar_vocab *v = grammar_vocab_new(n, b, l, eos, 1);
    free(b);
    free(l);
    *n_out = n;
    return v;
}

/* Fills the mask and checks every token against a copy of m. */
static void check_mask(struct grammar_matcher *m, const struct grammar_vocab *v, int n, int eos, uint32_t *bits)
{
    gm_fill_mask(m, v, bits);
    for (int t = 0; t < n; t++) {
        struct grammar_matcher *c = gm_clone(m);
        bool want = gm_accept_token(c, v, t);
        bool got = bits[t >> 5] >> (t & 31) & 1;
        cr_assert_eq(got, want, "token %d (%s): mask %d, brute force %d", t, t < N_SYN ? SYN[t] : "special", got, want);
        gm_free(c);
    }
    cr_assert_eq((bool)(bits[eos >> 5] >> (eos & 31) & 1), gm_can_end(m));
}

static void brute_force_walks(grammar *g, int walks, uint64_t seed)
{
    int n, eos;
    struct grammar_vocab *v = syn_vocab(&n, &eos);
    uint32_t *bits = calloc(grammar_vocab_mask_words(v), 4);
    struct grammar_matcher *m = gm_new(g);
    uint64_t rs = seed;
    for (int w = 0; w < walks; w++) {
        gm_reset(m);
        for (int step = 0; step < 60; step++) {
            check_mask(m, v, n, eos, bits);
            int allowed[512], na = 0;
            for (int t = 0; t < n; t++)
                if (bits[t >> 5] >> (t & 31) & 1) allowed[na++] = t;
            if (!na) {
                cr_assert(gm_terminated(m) || gm_can_end(m), "stuck at a state that cannot end");
                break;
            }
            int t = allowed[rng_next(&rs) % (uint64_t)na];
            cr_assert(gm_accept_token(m, v, t));
            if (t == eos) {
                cr_assert(gm_terminated(m));
                check_mask(m, v, n, eos, bits); /* all zero now */
                break;
            }
        }
    }
    gm_free(m);
    free(bits);
    grammar_vocab_free(v);
}

Test(grammar, masks_equal_brute_force)
{
    const char *schemas[] = {
        "{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 4}, \"id\": {\"type\": "
        "\"integer\", \"minimum\": -20, \"maximum\": 1200}, \"x\": {\"type\": \"number\"}}, \"required\": [\"name\"]}",
        "{\"$defs\": {\"N\": {\"type\": \"object\", \"properties\": {\"v\": {\"enum\": [1, \"a\", null]}, \"kids\": {\"type\": "
        "\"array\", \"items\": {\"$ref\": \"#/$defs/N\"}, \"maxItems\": 2}}, \"required\": [\"v\"], \"additionalProperties\": "
        "false}}, \"$ref\": \"#/$defs/N\"}",
        "{\"anyOf\": [{\"type\": \"array\", \"items\": {\"type\": \"boolean\"}, \"minItems\": 1}, {\"type\": \"string\", "
        "\"format\": \"date\"}, {\"type\": \"null\"}]}",
        "{\"type\": \"string\", \"pattern\": \"^(ab|c\\u00e9)+[0-9]?$\"}",
        "{\"type\": \"array\", \"prefixItems\": [{\"type\": \"string\"}, {\"const\": true}], \"items\": {\"type\": \"integer\"}}",
    };
    for (size_t i = 0; i < sizeof(schemas) / sizeof(*schemas); i++) {
        grammar *g = compile(schemas[i]);
        brute_force_walks(g, 40, 1000 + i);
        grammar_free(g);
    }
    grammar *g = compile_kind(GRAMMAR_JSON_OBJECT, NULL);
    brute_force_walks(g, 40, 7);
    grammar_free(g);
}

Test(grammar, masks_survive_a_tiny_cache)
{
    char err[256];
    struct grammar_spec s = grammar_spec_default(GRAMMAR_JSON_OBJECT, NULL);
    s.cache_bytes = 64; /* a few masks: evictions all the time */
    grammar *g = grammar_compile(&s, err, sizeof(err));
    cr_assert(g);
    brute_force_walks(g, 20, 99);
    size_t entries, bytes;
    uint64_t hits, misses;
    grammar_cache_stats(g, &entries, &bytes, &hits, &misses);
    cr_assert_leq(bytes, 64);
    cr_assert_gt(misses, 0);
    grammar_free(g);
}

Test(grammar, eos_must_end_reset_and_all_or_nothing)
{
    int n, eos;
    struct grammar_vocab *v = syn_vocab(&n, &eos);
    grammar *g = compile_kind(GRAMMAR_CHOICE, "[\"yes\", \"no\", \"maybe\"]");
    struct grammar_matcher *m = gm_new(g);
    cr_assert_not(gm_can_end(m));
    cr_assert_not(gm_accept_token(m, v, eos));
    cr_assert_not(gm_accept_token(m, v, N_SYN)); /* a control token */
    cr_assert_not(gm_accept_bytes(m, (const uint8_t *)"yex", 3));
    cr_assert(gm_accept_bytes(m, (const uint8_t *)"ye", 2)); /* unchanged by the refused bytes */
    cr_assert(gm_accept_bytes(m, (const uint8_t *)"s", 1));
    cr_assert(gm_can_end(m));
    cr_assert(gm_must_end(m));
    cr_assert(gm_accept_token(m, v, eos));
    cr_assert(gm_terminated(m));
    cr_assert_not(gm_accept_bytes(m, (const uint8_t *)"s", 1));
    gm_reset(m);
    cr_assert_not(gm_terminated(m));
    cr_assert(gm_accept_bytes(m, (const uint8_t *)"maybe", 5));
    gm_free(m);
    grammar_free(g);
    grammar_vocab_free(v);
}

Test(grammar, regex_prefix_suffix_repeat)
{
    grammar *g = compile_kind(GRAMMAR_REGEX, "(\\d{3}-)?[A-Z][a-z]*|x\\.y");
    yes(g, "123-Abc");
    yes(g, "Q");
    yes(g, "x.y");
    no(g, "12-Abc");
    no(g, "xzy");
    grammar_free(g);
    char err[256];
    struct grammar_spec s = grammar_spec_default(GRAMMAR_JSON_SCHEMA, "{\"type\": \"object\", \"properties\": {\"name\": "
                                                 "{\"const\": \"f\"}}, \"required\": [\"name\"], \"additionalProperties\": false}");
    s.prefix = "<call>";
    s.suffix = "</call>";
    s.repeat = true;
    s.separator = "\n";
    s.max_repeat = 2;
    s.max_ws = 0;
    g = grammar_compile(&s, err, sizeof(err));
    cr_assert(g, "%s", err);
    yes(g, "<call>{\"name\":\"f\"}</call>");
    yes(g, "<call>{\"name\":\"f\"}</call>\n<call>{\"name\":\"f\"}</call>");
    no(g, "<call>{\"name\":\"f\"}</call>\n<call>{\"name\":\"f\"}</call>\n<call>{\"name\":\"f\"}</call>");
    no(g, "<call>{\"name\": \"f\"}</call>"); /* max_ws 0: compact */
    no(g, "");
    brute_force_walks(g, 20, 5);
    grammar_free(g);
}

Test(grammar, whitespace_is_bounded)
{
    grammar *g = compile("{\"type\": \"array\", \"items\": {\"type\": \"null\"}}");
    yes(g, "[                null]");   /* 16 */
    no(g, "[                 null]");   /* 17 */
    no(g, " [null]");                   /* none around the whole value */
    yes(g, "[\n\tnull ,\n null\n]");
    no(g, "[\rnull]");
    grammar_free(g);
}

Test(grammar, matchers_share_the_cache)
{
    int n, eos;
    struct grammar_vocab *v = syn_vocab(&n, &eos);
    grammar *g = compile("{\"type\": \"object\", \"properties\": {\"id\": {\"type\": \"integer\"}}}");
    struct grammar_matcher *a = gm_new(g), *b = gm_new(g);
    size_t words = grammar_vocab_mask_words(v);
    uint32_t *ma = calloc(words, 4), *mb = calloc(words, 4);
    cr_assert(gm_accept_bytes(a, (const uint8_t *)"{\"id\":", 6));
    cr_assert(gm_accept_bytes(b, (const uint8_t *)"{\"id\"", 5));
    cr_assert(gm_accept_bytes(b, (const uint8_t *)":", 1));
    uint64_t hits0, hits1, misses;
    gm_fill_mask(a, v, ma);
    grammar_cache_stats(g, NULL, NULL, &hits0, &misses);
    gm_fill_mask(b, v, mb);
    grammar_cache_stats(g, NULL, NULL, &hits1, NULL);
    cr_assert_eq(hits1, hits0 + 1, "the same state in another matcher is a hit");
    cr_assert_eq(memcmp(ma, mb, words * 4), 0);
    /* a clone moves on alone */
    struct grammar_matcher *c = gm_clone(a);
    cr_assert(gm_accept_bytes(c, (const uint8_t *)"7}", 2));
    cr_assert(gm_can_end(c));
    cr_assert_not(gm_can_end(a));
    gm_free(a);
    gm_free(b);
    gm_free(c);
    free(ma);
    free(mb);
    grammar_free(g);
    grammar_vocab_free(v);
}

Test(grammar, regex_braces_as_python_reads_them)
{
    grammar *g = compile_kind(GRAMMAR_REGEX, "a{,2}b{2,}c{}d{x}");
    yes(g, "bbc{}d{x}");
    yes(g, "aabbbc{}d{x}");
    no(g, "aaabbc{}d{x}");
    no(g, "abc{}d{x}");
    grammar_free(g);
    cr_assert(strstr(compile_err("{\"type\":\"string\",\"pattern\":\"a{12345}\"}"), "over 1000"));
}

Test(grammar, past_the_stack_bound_masks_still_equal_acceptance)
{
    /* 100 alternatives, each its own rule: more live parses than a matcher
     * keeps; whatever it drops, masks and acceptance agree */
    char s[8192] = "{\"type\": \"array\", \"maxItems\": 3, \"items\": {\"anyOf\": [";
    for (int i = 0; i < 100; i++)
        snprintf(s + strlen(s), sizeof(s) - strlen(s), "%s{\"const\": \"a%d\"}, {\"const\": %d}", i ? ", " : "", i, i);
    strcat(s, "]}}");
    grammar *g = compile(s);
    brute_force_walks(g, 30, 4242);
    /* what is dropped is lost (fewer outputs, never a wrong one) */
    yes(g, "[]");
    no(g, "[\"a100\"]");
    grammar_free(g);
}
