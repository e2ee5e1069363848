/* completions.c: POST /v1/chat/completions and /v1/completions. On a worker
 * thread the body is validated (openai.c), rendered with the chat template
 * and tokenized, and every prompt checked as the engine would check it, so
 * that what the engine would refuse is a 400 and nothing is submitted; back
 * on the loop the prompts become a job (jobs.c). Without max_tokens a choice
 * may run to the end of the context or of the KV pool. */
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "serve.h"

struct gen {
    struct srv *s;
    bool chat, failed;        /* e says why */
    struct oai_error e;
    struct oai_request q;
    struct job_prompts p;
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
                                           .bias_ids = q->bias_ids, .bias = q->bias, .n_bias = q->n_bias};
        struct engine_verdict v;
        if (engine_check(s->model.eng, &p->er[i], &v)) return refusal(g, &v);
    }
    return 0;
}

/* On a worker thread: validation, tokens, the engine's checks. */
static void gen_work(void *arg, const char *body, size_t len)
{
    struct gen *g = arg;
    struct srv *s = g->s;
    struct oai_request *q = &g->q;
    g->failed = true;
    if (oai_parse(q, g->chat, body, len, s->vocab, &g->e)) return;
    if (q->model && strcmp(q->model, s->model_name)) {
        oai_fail(&g->e, 404, "model", "model_not_found", "The model `%s` does not exist.", q->model);
        return;
    }
    if (prepare_prompts(g)) return;
    g->failed = false;
}

static void gen_free(struct gen *g)
{
    for (int i = 0; g->p.ids && i < g->p.n; i++) free(g->p.ids[i]);
    free(g->p.ids);
    free(g->p.n_ids);
    free(g->p.er);
    oai_request_free(&g->q);
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
    else if (r) job_start(s, r, &g->q, &g->p);
    gen_free(g);
}

void completions_route(struct srv *s, struct http_request *r, bool chat)
{
    struct gen *g = xcalloc(1, sizeof(*g));
    g->s = s;
    g->chat = chat;
    offload(s, r, gen_work, gen_done, g);
}
