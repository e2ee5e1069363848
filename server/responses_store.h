/* responses_store.h: the finished responses of POST /v1/responses kept for
 * GET / DELETE /v1/responses/{id} and for previous_response_id.
 *
 * An LRU map id -> entry, bounded by a count (--responses-store-size) and a
 * byte budget: an entry costs its two texts (the response object as GET
 * returns it, and the conversation as Responses input items: the history,
 * this request's input and its output) plus a fixed overhead; adding past
 * either bound evicts the least recently used. Lookups make an entry the
 * most recently used. Entries live as long as the server, or until evicted
 * or deleted: nothing is written to disk.
 *
 * Locking: the loop thread adds, gets and deletes; a request's preparation
 * (libuv's worker threads) reads the conversation of previous_response_id.
 * Every call takes the store's mutex and copies out what it returns, so no
 * caller holds a pointer into the store. */
#ifndef TESSERA_RESPONSES_STORE_H
#define TESSERA_RESPONSES_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define RESP_STORE_DEFAULT_SIZE 1000
#define RESP_STORE_DEFAULT_BYTES ((size_t)256 << 20)
#define RESP_STORE_ENTRY_OVERHEAD 128 /* the entry struct and its bucket slot, roughly */

struct resp_entry;

struct resp_store {
    uv_mutex_t lock;
    struct resp_entry **buckets; /* chained by id hash */
    size_t n_buckets;
    struct resp_entry *newest, *oldest; /* the LRU list */
    size_t n, bytes;
    size_t max_n, max_bytes;
    unsigned long long evicted;
};

/* max_n 0 keeps nothing. 0, or -1 when the mutex cannot be made. */
int resp_store_init(struct resp_store *st, size_t max_n, size_t max_bytes);
void resp_store_deinit(struct resp_store *st);
/* Keeps a copy of the two texts under id (a newer one under the same id
 * replaces it), evicting the least recently used beyond the bounds. An
 * entry larger than the whole byte budget is not kept: false. */
bool resp_store_put(struct resp_store *st, const char *id, const char *response, const char *conversation);
/* A malloc'd copy of id's response (what == 0) or conversation (what == 1)
 * text, or NULL when id is not stored. */
char *resp_store_get(struct resp_store *st, const char *id, int what);
/* Removes id: whether it was there. */
bool resp_store_delete(struct resp_store *st, const char *id);
/* The count and bytes now held. */
void resp_store_usage(struct resp_store *st, size_t *n, size_t *bytes);

#endif
