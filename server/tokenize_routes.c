/* tokenize_routes.c: POST /tokenize ({"prompt": text} or {"messages": [...]}
 * -> ids), /detokenize (ids -> text) and /apply-template (a chat request ->
 * {"prompt": the text the model receives}, llama.cpp's route), computed on a
 * worker thread like the generation routes (offload.c). */
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "oai_render.h"
#include "serve.h"

struct tok_job {
    struct srv *s;
    enum tok_route what;
    bool failed;              /* e says why */
    struct oai_error e;
    char *reply;              /* the 200 body, encoded */
};

/* The compact text of j (consumed); NULL when j is NULL or cannot be encoded. */
static char *dump(json_t *j)
{
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return t;
}

static int detokenize(struct tok_job *t, json_t *root)
{
    struct srv *s = t->s;
    json_t *tokens = json_object_get(root, "tokens"), *v;
    size_t n = json_array_size(tokens), i;
    int32_t *ids = xmalloc((n ? n : 1) * sizeof(int32_t));
    bool ok = json_is_array(tokens);
    json_array_foreach(tokens, i, v) {
        ok = ok && json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) < s->vocab;
        ids[i] = ok ? (int32_t)json_integer_value(v) : 0;
    }
    if (!ok) {
        free(ids);
        return oai_fail(&t->e, 400, "tokens", NULL, "'tokens' must be a list of token ids in [0, %d)", s->vocab);
    }
    long need = tok_decode(s->model.tok, ids, (int)n, NULL, 0);
    size_t cap = need < 0 ? (size_t)-need : (size_t)need;
    char *text = xmalloc(cap + 1);
    long len = tok_decode(s->model.tok, ids, (int)n, text, cap + 1);
    t->reply = dump(json_pack("{s:o}", "prompt", oai_text(text, len > 0 ? (size_t)len : 0)));
    free(ids);
    free(text);
    return t->reply ? 0 : oai_fail(&t->e, 500, NULL, NULL, "the reply could not be encoded");
}

static int tokenize(struct tok_job *t, json_t *root, const char *body, size_t len)
{
    struct srv *s = t->s;
    int32_t *ids = NULL;
    int n;
    json_t *prompt = json_object_get(root, "prompt");
    if (json_is_string(prompt)) {
        struct oai_prompt op = {.text = (char *)json_string_value(prompt)};
        bool add_bos = !json_is_false(json_object_get(root, "add_special_tokens")) && tok_add_bos(s->model.tok);
        n = tokenize_prompt(s->model.tok, &op, add_bos, &ids);
        if (n < 0) return oai_fail(&t->e, 400, "prompt", NULL, "the prompt cannot be tokenized");
    } else if (json_object_get(root, "messages")) {
        struct oai_request q;
        char why[512];
        if (oai_parse(&q, true, body, len, s->vocab, &t->e)) return -1;
        n = chat_prompt(&s->chat, &q, s->model.tok, &ids, NULL, why, sizeof(why));
        oai_request_free(&q);
        if (n < 0) return oai_fail(&t->e, 400, "messages", NULL, "%s", why);
    } else {
        return oai_fail(&t->e, 400, "prompt", NULL, "give 'prompt' (a string) or 'messages'");
    }
    json_t *list = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(list, json_integer(ids[i]));
    free(ids);
    t->reply = dump(json_pack("{s:o, s:i, s:i}", "tokens", list, "count", n, "max_model_len", s->max_len));
    return t->reply ? 0 : oai_fail(&t->e, 500, NULL, NULL, "the reply could not be encoded");
}

/* The text of the chat prompt: the template's rendering, or for the
 * built-in formats the text of its ids (special tokens not shown). */
static int apply_template(struct tok_job *t, const char *body, size_t len)
{
    struct srv *s = t->s;
    struct oai_request q;
    char why[512];
    if (oai_parse(&q, true, body, len, s->vocab, &t->e)) return -1;
    struct strbuf text = {0};
    int32_t *ids = NULL;
    int n = chat_prompt(&s->chat, &q, s->model.tok, &ids, &text, why, sizeof(why));
    oai_request_free(&q);
    if (n >= 0 && !s->chat.tmpl) {
        long need = -tok_decode(s->model.tok, ids, n, NULL, 0);
        char *dec = xmalloc((size_t)need + 1);
        long got = tok_decode(s->model.tok, ids, n, dec, (size_t)need + 1);
        strbuf_append(&text, dec, got > 0 ? (size_t)got : 0);
        free(dec);
    }
    free(ids);
    if (n < 0) {
        strbuf_free(&text);
        return oai_fail(&t->e, 400, "messages", NULL, "%s", why);
    }
    t->reply = dump(json_pack("{s:o}", "prompt", oai_text(text.s ? text.s : "", text.len)));
    strbuf_free(&text);
    return t->reply ? 0 : oai_fail(&t->e, 500, NULL, NULL, "the reply could not be encoded");
}

static void tok_work(void *arg, const char *body, size_t len)
{
    struct tok_job *t = arg;
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!json_is_object(root)) t->failed = oai_fail(&t->e, 400, NULL, NULL, "the body must be a JSON object");
    else if (t->what == ROUTE_APPLY_TEMPLATE) t->failed = apply_template(t, body, len) != 0;
    else t->failed = (t->what == ROUTE_DETOKENIZE ? detokenize(t, root) : tokenize(t, root, body, len)) != 0;
    json_decref(root);
}

static void tok_done(struct srv *s, struct http_request *r, void *arg)
{
    struct tok_job *t = arg;
    if (r && t->failed) reply_error(s, r, &t->e);
    else if (r) reply_text(s, r, 200, t->reply);
    free(t->reply);
    free(t);
}

void tokenize_route(struct srv *s, struct http_request *r, enum tok_route what)
{
    struct tok_job *t = xcalloc(1, sizeof(*t));
    t->s = s;
    t->what = what;
    offload(s, r, tok_work, tok_done, t);
}
