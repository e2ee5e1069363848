/* fuzz_oai_request.c: OpenAI request validation (server/openai.c).
 *
 * The input is a request body, parsed as /v1/chat/completions and as
 * /v1/completions. A request that validates must satisfy every bound
 * openai.h promises; one that does not must give a well-formed error. */
#include <jansson.h>
#include <math.h>

#include "../../server/oai_render.h"
#include "fuzz.h"

#define VOCAB 512

static void check_error(const struct oai_error *e)
{
    FUZZ_ASSERT(e->status >= 400 && e->status < 600, "status %d", e->status);
    FUZZ_ASSERT(e->type != NULL, "no error type");
    FUZZ_ASSERT(memchr(e->message, 0, sizeof(e->message)) && e->message[0], "bad message");
    FUZZ_ASSERT(memchr(e->param, 0, sizeof(e->param)), "param not terminated");
    char *body = oai_error_json(e);
    FUZZ_ASSERT(body != NULL, "oai_error_json failed for \"%s\"", e->message);
    json_error_t je;
    json_t *back = json_loads(body, 0, &je);
    FUZZ_ASSERT(json_is_object(json_object_get(back, "error")), "error body does not parse back: %s", body);
    json_decref(back);
    free(body);
}

static void check_request(const struct oai_request *r, bool chat)
{
    FUZZ_ASSERT(r->chat == chat, "chat flag");
    FUZZ_ASSERT(json_is_object(r->root), "root");
    if (chat) {
        FUZZ_ASSERT(r->n_msgs >= 1 && r->msgs, "%d messages", r->n_msgs);
        for (int i = 0; i < r->n_msgs; i++) {
            const char *role = r->msgs[i].role;
            FUZZ_ASSERT(role && (!strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant") ||
                                 !strcmp(role, "tool")),
                        "message %d role", i);
            FUZZ_ASSERT(r->msgs[i].content != NULL, "message %d content", i);
            (void)strlen(r->msgs[i].content);
        }
    } else {
        FUZZ_ASSERT(r->n_prompts >= 1 && r->n_prompts <= 64 && r->prompts, "%d prompts", r->n_prompts);
        for (int p = 0; p < r->n_prompts; p++) {
            const struct oai_prompt *q = &r->prompts[p];
            FUZZ_ASSERT(!q->text != !q->ids, "prompt %d is both or neither text and ids", p);
            if (q->text) (void)strlen(q->text);
            FUZZ_ASSERT(q->n_ids >= 0, "prompt %d: %d ids", p, q->n_ids);
            for (int i = 0; i < q->n_ids; i++)
                FUZZ_ASSERT(q->ids[i] >= 0 && q->ids[i] < VOCAB, "prompt %d id %d = %d", p, i, (int)q->ids[i]);
        }
    }
    FUZZ_ASSERT(r->max_tokens == -1 || (r->max_tokens >= 1 && r->max_tokens <= 1 << 24), "max_tokens %d",
                r->max_tokens);
    FUZZ_ASSERT(r->n >= 1 && r->n <= OAI_MAX_N, "n %d", r->n);
    FUZZ_ASSERT(r->n_stop >= 0 && r->n_stop <= OAI_MAX_STOP, "n_stop %d", r->n_stop);
    for (int i = 0; i < r->n_stop; i++) FUZZ_ASSERT(r->stop[i] != NULL, "stop %d", i);
    FUZZ_ASSERT(r->n_bias >= 0, "n_bias");
    for (int i = 0; i < r->n_bias; i++) {
        FUZZ_ASSERT(r->bias_ids[i] >= 0 && r->bias_ids[i] < VOCAB, "bias id %d", (int)r->bias_ids[i]);
        FUZZ_ASSERT(r->bias[i] >= -100 && r->bias[i] <= 100, "bias %g", r->bias[i]);
    }
    FUZZ_ASSERT(r->logprobs >= -1 && r->logprobs <= 20, "logprobs %d", r->logprobs);
    FUZZ_ASSERT(!r->include_usage || r->stream, "include_usage without stream");
    const struct sampling_params *sp = &r->sp;
    const char *bad = sampling_params_check(sp);
    FUZZ_ASSERT(!bad, "validated request fails sampling_params_check on %s", bad);
    FUZZ_ASSERT(sp->temperature >= 0 && sp->temperature <= 2, "temperature %g", sp->temperature);
    FUZZ_ASSERT(sp->top_p > 0 && sp->top_p <= 1, "top_p %g", sp->top_p);
    FUZZ_ASSERT(sp->min_p >= 0 && sp->min_p <= 1, "min_p %g", sp->min_p);
    FUZZ_ASSERT(sp->top_k >= 0, "top_k %d", sp->top_k);
    FUZZ_ASSERT(fabsf(sp->presence_penalty) <= 2 && fabsf(sp->frequency_penalty) <= 2, "penalties");
    FUZZ_ASSERT(sp->repetition_penalty > 0 && sp->repetition_penalty <= 100, "repetition_penalty %g",
                sp->repetition_penalty);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (int chat = 0; chat < 2; chat++) {
        struct oai_request r;
        struct oai_error e;
        memset(&e, 0, sizeof(e));
        if (oai_parse(&r, chat, (const char *)data, size, VOCAB, &e) == 0)
            check_request(&r, chat);
        else
            check_error(&e);
        oai_request_free(&r);
    }
    return 0;
}
