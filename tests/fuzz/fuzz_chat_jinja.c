/* fuzz_chat_jinja.c: the Jinja chat-template renderer (tokenizer/jinja):
 * jinja_compile, then jinja_render twice.
 *
 * Input: the template text up to the first 0 byte; the rest is the context:
 * a JSON object when it parses as one, otherwise the bytes split at 0 bytes
 * become the contents of alternating user/assistant messages in a fixed
 * context (tools, bos/eos tokens, add_generation_prompt). Beyond no crash,
 * leak or undefined behaviour (and libFuzzer's timeout: the renderer bounds
 * its own work): an error leaves a message; the same render twice gives the
 * same result; with a UTF-8 template and context the output is UTF-8. */
#include <jansson.h>

#include "../../base/strbuf.h"
#include "../../tokenizer/jinja/jinja.h"
#include "fuzz.h"

#define MAX_MSGS 8

static json_t *default_context(struct carve *c)
{
    json_t *msgs = json_array();
    for (int i = 0; c->n && i < MAX_MSGS; i++) {
        char *text = carve_cstr(c);
        json_t *s = json_string(text); /* NULL when not UTF-8 */
        json_array_append_new(msgs, json_pack("{s:s, s:o}", "role", i % 2 ? "assistant" : "user", "content",
                                              s ? s : json_string("?")));
        free(text);
    }
    json_t *tools = json_loads("[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"description\": \"d\", "
                               "\"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"string\"}}}}}]",
                               0, NULL);
    return json_pack("{s:o, s:o, s:b, s:s, s:s}", "messages", msgs, "tools", tools, "add_generation_prompt", 1,
                     "bos_token", "<s>", "eos_token", "</s>");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct carve c = {data, size};
    const uint8_t *z = memchr(data, 0, size);
    size_t tlen = z ? (size_t)(z - data) : size;
    const char *text = (const char *)data;
    c.p += tlen + (z ? 1 : 0);
    c.n -= tlen + (z ? 1 : 0);
    bool utf8 = utf8_valid(text, tlen);

    char err[256] = "";
    jinja_template *t = jinja_compile(text, tlen, err, sizeof(err));
    if (!t) {
        FUZZ_ASSERT(err[0], "compile failed without a message");
        return 0;
    }
    json_t *ctx = json_loadb((const char *)c.p, c.n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(ctx)) {
        json_decref(ctx);
        ctx = default_context(&c);
    }
    struct strbuf out = {0}, again = {0};
    char err2[256] = "";
    int rc = jinja_render(t, ctx, 1753358400, &out, err, sizeof(err));
    int rc2 = jinja_render(t, ctx, 1753358400, &again, err2, sizeof(err2));
    FUZZ_ASSERT(rc == rc2, "render gave %d then %d", rc, rc2);
    if (rc == 0) {
        FUZZ_ASSERT(out.len == again.len && (!out.len || !memcmp(out.s, again.s, out.len)), "not deterministic");
        FUZZ_ASSERT(!utf8 || utf8_valid(out.s ? out.s : "", out.len), "output is not UTF-8");
    } else {
        FUZZ_ASSERT(rc == -1 && err[0], "error without a message");
        FUZZ_ASSERT(!strcmp(err, err2), "errors differ: %s / %s", err, err2);
    }
    strbuf_free(&out);
    strbuf_free(&again);
    json_decref(ctx);
    jinja_free(t);
    return 0;
}
