/* completions.c: POST /v1/chat/completions, /v1/completions and
 * /v1/responses (translated into a chat request, responses.c). On a worker
 * thread the body is validated (openai.c), rendered with the chat template
 * and tokenized, and every prompt checked as the engine would check it, so
 * that what the engine would refuse is a 400 and nothing is submitted; back
 * on the loop the prompts become a job (jobs.c). Without max_tokens a choice
 * may run to the end of the context or of the KV pool. */
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../engine/grammar/grammar.h"
#include "serve.h"

struct gen {
    struct srv *s;
    bool chat, failed;        /* e says why */
    bool responses;           /* a Responses request: resp is its state */
    struct resp_job *resp;
    struct oai_error e;
    struct oai_request q;
    struct job_prompts p;
    grammar *grammar;         /* what the output follows, or NULL */
};

int tokenize_prompt(const tokenizer *tok, const struct oai_prompt *p, bool add_bos, int32_t **ids)
{
    if (!p->ids) return tok_encode_all(tok, p->text, strlen(p->text), add_bos, ids);
    *ids = xmalloc((p->n_ids ? p->n_ids : 1) * sizeof(int32_t));
    memcpy(*ids, p->ids, p->n_ids * sizeof(int32_t));
    return p->n_ids;
}

/* The engine's refusal as OpenAI words it. */
static int refusal(struct gen *g, const struct engine_verdict *v)
{
    const char *what = g->chat ? "messages" : "prompt";
    int n = v->n_prompt, max_tokens = v->max_tokens;
    switch (v->why) {
    case ENGINE_EMPTY_PROMPT: return oai_fail(&g->e, 400, what, NULL, "the prompt is empty");
    case ENGINE_OVER_CONTEXT:
        if (max_tokens > 0)
            return oai_fail(&g->e, 400, what, "context_length_exceeded",
                            "This model's maximum context length is %lld tokens. However, you requested %d tokens (%d "
                            "in the %s, %d in the completion). Please reduce the length of the %s or completion.",
                            (long long)v->limit, n + max_tokens, n, what, max_tokens, what);
        return oai_fail(&g->e, 400, what, "context_length_exceeded",
                        "This model's maximum context length is %lld tokens. However, your %s resulted in %d tokens, "
                        "leaving no room for the completion.", (long long)v->limit, what, n);
    case ENGINE_OVER_POOL:
        return oai_fail(&g->e, 400, what, "context_length_exceeded",
                        "the prompt has %d tokens; the KV cache holds %lld in all", n, (long long)v->limit);
    default: return oai_fail(&g->e, 400, NULL, NULL, "%s", err_msg());
    }
}

/* Every "$ref" in v that points into the document ("#...") made to point
 * into where the document now is: at "#/$defs/NAME". */
static void move_refs(json_t *v, const char *name)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x) {
            const char *ref = json_string_value(x);
            if (!strcmp(k, "$ref") && ref && ref[0] == '#') {
                char *moved = xmalloc(strlen(ref) + strlen(name) + 16);
                sprintf(moved, "#/$defs/%s%s", name, ref + 1);
                json_object_set_new(v, "$ref", json_string(moved));
                free(moved);
            } else {
                move_refs(x, name);
            }
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) move_refs(x, name);
    }
}

/* The schema of a forced call's output, as vLLM shapes it: a named
 * function's parameters; for "required", a list (of one call without
 * parallel_tool_calls) of {"name", "parameters"}, each tool's parameters
 * moved under $defs with their references. malloc'd JSON text. */
static char *forced_call_schema(const struct oai_request *q)
{
    json_t *defs = json_object(), *alts = json_array(), *t;
    size_t i;
    char *out = NULL;
    json_array_foreach(q->tools, i, t) {
        json_t *f = json_object_get(t, "function"), *params = json_object_get(f, "parameters");
        const char *name = json_string_value(json_object_get(f, "name"));
        params = params && !json_is_null(params) ? json_deep_copy(params) : json_pack("{s:s}", "type", "object");
        if (q->tool_choice == OAI_TOOLS_NAMED) {
            if (!strcmp(name, q->tool_name)) out = json_dumps(params, JSON_COMPACT);
            json_decref(params);
            continue;
        }
        char def[80];
        snprintf(def, sizeof(def), "tool_%zu", i);
        move_refs(params, def);
        json_object_set_new(defs, def, params);
        char ref[96];
        snprintf(ref, sizeof(ref), "#/$defs/%s", def);
        json_array_append_new(alts, json_pack("{s:s, s:{s:{s:s}, s:{s:s}}, s:[s,s], s:b}", "type", "object",
                                              "properties", "name", "const", name, "parameters", "$ref", ref,
                                              "required", "name", "parameters", "additionalProperties", 0));
    }
    if (!out) {
        json_t *items = json_pack("{s:o}", "anyOf", alts);
        json_t *schema = json_pack("{s:s, s:i, s:O, s:O}", "type", "array", "minItems", 1, "items", items, "$defs", defs);
        if (!q->parallel_tool_calls) json_object_set_new(schema, "maxItems", json_integer(1));
        out = json_dumps(schema, JSON_COMPACT);
        json_decref(schema);
        json_decref(items);
    } else {
        json_decref(alts);
    }
    json_decref(defs);
    return out;
}

/* The grammar the output follows (response_format, structured_outputs or
 * a forced call) from the engine's cache; 0 with none for free text, -1
 * with g->e filled when it does not compile. */
static int output_grammar(struct gen *g)
{
    struct oai_request *q = &g->q;
    bool forced = q->tool_choice == OAI_TOOLS_REQUIRED || q->tool_choice == OAI_TOOLS_NAMED;
    if (q->format == OAI_FORMAT_TEXT && !forced) return 0;
    static const enum grammar_kind kinds[] = {
        [OAI_FORMAT_JSON_OBJECT] = GRAMMAR_JSON_OBJECT, [OAI_FORMAT_JSON_SCHEMA] = GRAMMAR_JSON_SCHEMA,
        [OAI_FORMAT_REGEX] = GRAMMAR_REGEX, [OAI_FORMAT_CHOICE] = GRAMMAR_CHOICE};
    char *own = forced ? forced_call_schema(q) : NULL;
    struct grammar_spec spec = grammar_spec_default(forced ? GRAMMAR_JSON_SCHEMA : kinds[q->format],
                                                    forced ? own : q->format_text ? q->format_text : "");
    if (q->compact_json) spec.max_ws = 0;
    char why[512];
    g->grammar = engine_grammar(g->s->model.eng, &spec, why, sizeof(why));
    free(own);
    if (!g->grammar) return oai_fail(&g->e, 400, forced ? "tools" : q->format_param, NULL, "%s", why);
    return 0;
}

/* Each prompt's ids and engine request, checked as the engine will. */
static int prepare_prompts(struct gen *g)
{
    struct srv *s = g->s;
    struct oai_request *q = &g->q;
    struct job_prompts *p = &g->p;
    p->n = g->chat ? 1 : q->n_prompts;
    p->ids = xcalloc(p->n, sizeof(int32_t *));
    p->n_ids = xcalloc(p->n, sizeof(int));
    p->er = xcalloc(p->n, sizeof(*p->er));
    for (int i = 0; i < p->n; i++) {
        char why[512] = "the prompt cannot be tokenized";
        int n = g->chat ? chat_prompt(&s->chat, q, s->model.tok, &p->ids[i], NULL, why, sizeof(why))
                        : tokenize_prompt(s->model.tok, &q->prompts[i], tok_add_bos(s->model.tok), &p->ids[i]);
        if (n < 0) return oai_fail(&g->e, 400, g->chat ? "messages" : "prompt", NULL, "%s", why);
        p->n_ids[i] = n;
        p->total += n;
        p->er[i] = (struct engine_request){.prompt = p->ids[i], .n_prompt = n, .sampling = q->sp,
                                           .max_tokens = q->max_tokens > 0 ? q->max_tokens : 0,
                                           .ignore_eos = q->ignore_eos, .logprobs = q->logprobs,
                                           .bias_ids = q->bias_ids, .bias = q->bias, .n_bias = q->n_bias,
                                           .grammar = g->grammar};
        struct engine_verdict v;
        if (engine_check(s->model.eng, &p->er[i], &v)) return refusal(g, &v);
    }
    return 0;
}

/* Validation, tokens, the engine's checks: 0, or -1 with g->e filled. */
static int prepare(struct gen *g, const char *body, size_t len)
{
    struct srv *s = g->s;
    struct oai_request *q = &g->q;
    if (oai_parse(q, g->chat, body, len, s->vocab, &g->e)) return -1;
    if (q->model && strcmp(q->model, s->model_name))
        return oai_fail(&g->e, 404, "model", "model_not_found", "The model `%s` does not exist.", q->model);
    return output_grammar(g) || prepare_prompts(g) ? -1 : 0;
}

/* On a worker thread: a Responses body becomes a chat body first. */
static void gen_work(void *arg, const char *body, size_t len)
{
    struct gen *g = arg;
    char *chat = NULL;
    g->failed = g->responses && responses_translate(&g->s->responses, body, len, &g->resp, &chat, &g->e);
    if (!g->failed) g->failed = chat ? prepare(g, chat, strlen(chat)) : prepare(g, body, len);
    if (g->failed && g->responses) responses_fix_param(&g->e);
    free(chat);
}

static void gen_free(struct gen *g)
{
    for (int i = 0; g->p.ids && i < g->p.n; i++) free(g->p.ids[i]);
    free(g->p.ids);
    free(g->p.n_ids);
    free(g->p.er);
    oai_request_free(&g->q);
    resp_job_free(g->resp);
    engine_grammar_release(g->s->model.eng, g->grammar); /* the engine's sequences hold their own */
    free(g);
}

/* Back on the loop: a job, or the error. */
static void gen_done(struct srv *s, struct http_request *r, void *arg)
{
    struct gen *g = arg;
    int n_choices = g->failed ? 0 : g->p.n * g->q.n;
    if (r && n_choices && s->jobs.live_choices + n_choices > s->o.ec.max_num_seqs + s->o.max_queue)
        g->failed = oai_fail(&g->e, 503, NULL, NULL, "the server is overloaded: %d requests are in progress; retry later",
                             s->jobs.live_choices);
    if (r && g->failed) reply_error(s, r, &g->e);
    else if (r) {
        job_start(s, r, &g->q, &g->p, g->resp);
        g->resp = NULL;
    }
    gen_free(g);
}

void completions_route(struct srv *s, struct http_request *r, enum gen_api api)
{
    struct gen *g = xcalloc(1, sizeof(*g));
    g->s = s;
    g->chat = api != GEN_COMPLETIONS;
    g->responses = api == GEN_RESPONSES;
    offload(s, r, gen_work, gen_done, g);
}
