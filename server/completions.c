/* completions.c: POST /v1/chat/completions and /v1/completions. On a worker
 * thread the body is validated (openai.c), rendered with the chat template
 * and tokenized, and every prompt checked as the engine would check it, so
 * that what the engine would refuse is a 400 and nothing is submitted; back
 * on the loop the prompts become a job (jobs.c). Without max_tokens a choice
 * may run to the end of the context or of the KV pool. */
#include <stdlib.h>
#include <string.h>

#include "../engine/err.h"
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

/* The context-length error for a prompt of n ids, as OpenAI words it. */
static int context_error(struct gen *g, int n)
{
    const char *what = g->chat ? "messages" : "prompt";
    int max_len = g->s->max_len, max_tokens = g->q.max_tokens;
    if (n == 0) return oai_fail(&g->e, 400, what, NULL, "the prompt is empty");
    if (max_tokens > 0)
        return oai_fail(&g->e, 400, what, "context_length_exceeded",
                        "This model's maximum context length is %d tokens. However, you requested %d tokens (%d in "
                        "the %s, %d in the completion). Please reduce the length of the %s or completion.",
                        max_len, n + max_tokens, n, what, max_tokens, what);
    return oai_fail(&g->e, 400, what, "context_length_exceeded",
                    "This model's maximum context length is %d tokens. However, your %s resulted in %d tokens, "
                    "leaving no room for the completion.", max_len, what, n);
}

/* Each prompt's ids. */
static int tokenize_prompts(struct gen *g)
{
    struct srv *s = g->s;
    struct oai_request *q = &g->q;
    struct job_prompts *p = &g->p;
    p->n = g->chat ? 1 : q->n_prompts;
    p->ids = xcalloc(p->n, sizeof(int32_t *));
    p->n_ids = xcalloc(p->n, sizeof(int));
    p->er = xcalloc(p->n, sizeof(*p->er));
    for (int i = 0; i < p->n; i++) {
        int n = g->chat ? chat_render(s->style, q->msgs, q->n_msgs, s->model.tok, &p->ids[i])
                        : tokenize_prompt(s->model.tok, &q->prompts[i], tok_add_bos(s->model.tok), &p->ids[i]);
        if (n < 0) return oai_fail(&g->e, 400, g->chat ? "messages" : "prompt", NULL, "the prompt cannot be tokenized");
        p->n_ids[i] = n;
        p->total += n;
        if (n == 0 || n + (q->max_tokens > 0 ? q->max_tokens : 1) > s->max_len) return context_error(g, n);
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
    if (tokenize_prompts(g)) return;
    int64_t pool = engine_pool_tokens(s->model.eng), room = pool < s->max_len ? pool : s->max_len;
    for (int i = 0; i < g->p.n; i++) {
        struct engine_request *er = &g->p.er[i];
        *er = (struct engine_request){.prompt = g->p.ids[i], .n_prompt = g->p.n_ids[i], .sampling = q->sp,
                                      .max_tokens = q->max_tokens > 0 ? q->max_tokens : (int)(room - g->p.n_ids[i]),
                                      .stop_ids = &s->eos, .n_stop_ids = s->eos >= 0 && !q->ignore_eos,
                                      .ignore_eos = q->ignore_eos, .logprobs = q->logprobs, .bias_ids = q->bias_ids,
                                      .bias = q->bias, .n_bias = q->n_bias};
        if (er->max_tokens < 1) {
            oai_fail(&g->e, 400, g->chat ? "messages" : "prompt", "context_length_exceeded",
                     "the prompt has %d tokens; the KV cache holds %lld in all", g->p.n_ids[i], (long long)room);
            return;
        }
        if (engine_check(s->model.eng, er)) {
            oai_fail(&g->e, 400, NULL, NULL, "%s", err_msg());
            return;
        }
    }
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
