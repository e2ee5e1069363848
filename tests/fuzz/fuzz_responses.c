/* fuzz_responses.c: the Responses API's request translation
 * (server/responses.c: responses_translate), then the chat validation its
 * output goes through (oai_parse).
 *
 * The input is a /v1/responses body. A body the translation accepts must
 * give a chat body that is JSON and that oai_parse validates or refuses
 * with a well-formed error; a refused body must give a well-formed error.
 * The store holds one response ("resp_fuzz") so that previous_response_id
 * finds a conversation to continue. */
#include <jansson.h>

#include "../../server/oai_render.h"
#include "../../server/responses.h"
#include "../../server/responses_store.h"
#include "fuzz.h"

static struct resp_store store;

static void check_error(const struct oai_error *e)
{
    FUZZ_ASSERT(e->status >= 400 && e->status < 600, "status %d", e->status);
    FUZZ_ASSERT(memchr(e->message, 0, sizeof(e->message)) && e->message[0], "bad message");
    FUZZ_ASSERT(memchr(e->param, 0, sizeof(e->param)), "param not terminated");
    char *body = oai_error_json(e);
    json_t *back = body ? json_loads(body, 0, NULL) : NULL;
    FUZZ_ASSERT(json_is_object(json_object_get(back, "error")), "error body: %s", body ? body : "(none)");
    json_decref(back);
    free(body);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (resp_store_init(&store, 4, 1 << 20)) abort();
    resp_store_put(&store, "resp_fuzz", "{}",
                   "[{\"type\":\"message\",\"role\":\"user\",\"content\":\"hi\"},{\"type\":\"function_call\","
                   "\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"}]");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct resp_job *rj = NULL;
    char *chat = NULL;
    struct oai_error e;
    if (responses_translate(&store, (const char *)data, size, &rj, &chat, &e)) {
        responses_fix_param(&e);
        check_error(&e);
    } else {
        FUZZ_ASSERT(chat && rj, "accepted without a chat body");
        struct oai_request q;
        if (oai_parse(&q, true, chat, strlen(chat), 512, &e)) {
            responses_fix_param(&e);
            check_error(&e);
        }
        oai_request_free(&q);
    }
    free(chat);
    resp_job_free(rj);
    return 0;
}
