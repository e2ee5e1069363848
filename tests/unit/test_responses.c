/* test_responses.c: the Responses store's bounds and LRU order
 * (server/responses_store.c), and output items made from chat deltas
 * (server/responses_render.c) the same streamed and whole. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/responses.h"

static bool has(struct resp_store *st, const char *id)
{
    char *t = resp_store_get(st, id, 0);
    free(t);
    return t != NULL;
}

Test(responses_store, count_bound_evicts_the_least_recently_used)
{
    struct resp_store st;
    cr_assert_eq(resp_store_init(&st, 3, 1 << 20), 0);
    cr_assert(resp_store_put(&st, "a", "{A}", "[1]"));
    cr_assert(resp_store_put(&st, "b", "{B}", "[2]"));
    cr_assert(resp_store_put(&st, "c", "{C}", "[3]"));
    cr_assert(has(&st, "a")); /* a is now the most recent: b goes first */
    cr_assert(resp_store_put(&st, "d", "{D}", "[4]"));
    cr_assert(!has(&st, "b") && has(&st, "a") && has(&st, "c") && has(&st, "d"));
    char *conv = resp_store_get(&st, "a", 1);
    cr_assert_str_eq(conv, "[1]");
    free(conv);
    cr_assert(resp_store_put(&st, "a", "{A2}", "[5]")); /* the same id replaces */
    char *r = resp_store_get(&st, "a", 0);
    cr_assert_str_eq(r, "{A2}");
    free(r);
    size_t n, bytes;
    resp_store_usage(&st, &n, &bytes);
    cr_assert_eq(n, 3);
    cr_assert(resp_store_delete(&st, "a") && !resp_store_delete(&st, "a") && !has(&st, "a"));
    resp_store_deinit(&st);
}

Test(responses_store, byte_budget_and_many_entries)
{
    struct resp_store st;
    size_t budget = 10 * (RESP_STORE_ENTRY_OVERHEAD + 200);
    cr_assert_eq(resp_store_init(&st, 1000, budget), 0);
    char big[4096], id[32];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_assert(!resp_store_put(&st, "huge", big, "[]")); /* more than the whole budget: not kept */
    big[150] = '\0';
    for (int i = 0; i < 10000; i++) {
        snprintf(id, sizeof(id), "resp_%d", i);
        cr_assert(resp_store_put(&st, id, big, "[]"));
        size_t n, bytes;
        resp_store_usage(&st, &n, &bytes);
        cr_assert(bytes <= budget && n <= 11, "%zu entries, %zu bytes", n, bytes); /* ~292 bytes each */
        cr_assert(i < 11 || n == 11, "%zu entries at %d", n, i);
    }
    cr_assert(has(&st, "resp_9999") && !has(&st, "resp_9000"));
    resp_store_deinit(&st);
    cr_assert_eq(resp_store_init(&st, 0, budget), 0); /* size 0 keeps nothing */
    cr_assert(!resp_store_put(&st, "a", "{}", "[]") && !has(&st, "a"));
    resp_store_deinit(&st);
}

/* The deltas chat_out gives for reasoning, then text, then a call. */
static json_t *deltas(void)
{
    return json_loads("[{\"reasoning_content\": \"hm\"}, {\"reasoning_content\": \"m\"}, {\"content\": \"Hel\"},"
                      "{\"content\": \"lo\"}, {\"tool_calls\": [{\"index\": 0, \"id\": \"call_1\", \"type\": "
                      "\"function\", \"function\": {\"name\": \"f\", \"arguments\": \"\"}}]},"
                      "{\"tool_calls\": [{\"index\": 0, \"function\": {\"arguments\": \"{\\\"x\\\": 1}\"}}]}]",
                      0, NULL);
}

static json_t *run(struct strbuf *ev)
{
    struct resp_job *rj = calloc(1, sizeof(*rj));
    rj->echo = json_object();
    rj->history = json_array();
    resp_begin(rj, "m", ev);
    resp_feed(rj, deltas(), ev);
    json_t *o = resp_end(rj, "stop", 7, 5, 0, ev);
    resp_job_free(rj);
    return o;
}

/* The item fields that do not depend on random ids. */
static char *shape(json_t *o)
{
    json_t *out = json_deep_copy(json_object_get(o, "output")), *item;
    size_t i;
    json_array_foreach(out, i, item) json_object_del(item, "id");
    char *s = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(out);
    return s;
}

Test(responses_render, items_are_the_same_streamed_and_whole)
{
    struct strbuf ev = {0};
    json_t *whole = run(NULL), *streamed = run(&ev);
    char *a = shape(whole), *b = shape(streamed);
    cr_assert_str_eq(a, b);
    cr_assert_str_eq(a, "[{\"content\":[{\"text\":\"hmm\",\"type\":\"reasoning_text\"}],\"status\":\"completed\","
                        "\"summary\":[],\"type\":\"reasoning\"},{\"content\":[{\"annotations\":[],\"text\":\"Hello\","
                        "\"type\":\"output_text\"}],\"role\":\"assistant\",\"status\":\"completed\",\"type\":"
                        "\"message\"},{\"arguments\":\"{\\\"x\\\": 1}\",\"call_id\":\"call_1\",\"name\":\"f\","
                        "\"status\":\"completed\",\"type\":\"function_call\"}]");
    cr_assert_str_eq(json_string_value(json_object_get(streamed, "status")), "completed");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(whole, "usage"), "total_tokens")), 12);
    /* every event: "event: T\ndata: {"type":"T","sequence_number":k,...}\n\n", k = 0, 1, ... */
    int k = 0;
    for (const char *p = ev.s; p && *p; k++) {
        char type[96], want[256];
        cr_assert_eq(sscanf(p, "event: %95s\n", type), 1);
        snprintf(want, sizeof(want), "event: %s\ndata: {\"type\":\"%s\",\"sequence_number\":%d,", type, type, k);
        cr_assert(!strncmp(p, want, strlen(want)), "event %d: %.120s", k, p);
        p = strstr(p, "\n\n") + 2;
    }
    cr_assert(strstr(ev.s, "event: response.completed\n") && !strstr(ev.s, "[DONE]"));
    /* created, in_progress; reasoning: added, part added, 2 deltas, done, part done, item done; the message
     * likewise; the call: added, 1 delta (not the empty one), arguments done, item done; completed */
    cr_assert_eq(k, 2 + 7 + 7 + 4 + 1, "%d events", k);
    strbuf_free(&ev);
    free(a);
    free(b);
    json_decref(whole);
    json_decref(streamed);
}
