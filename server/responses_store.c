/* responses_store.c: the bounded LRU store of responses_store.h: a chained
 * hash table by id beside a doubly linked list from newest to oldest, all
 * under one mutex. */
#include "responses_store.h"

#include <stdlib.h>
#include <string.h>

#include "../base/err.h"

struct resp_entry {
    char *id, *response, *conversation;
    size_t bytes;                      /* what it counts against the budget */
    struct resp_entry *newer, *older;  /* LRU list */
    struct resp_entry *next;           /* bucket chain */
};

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

int resp_store_init(struct resp_store *st, size_t max_n, size_t max_bytes)
{
    memset(st, 0, sizeof(*st));
    if (uv_mutex_init(&st->lock)) return -1;
    st->max_n = max_n;
    st->max_bytes = max_bytes;
    st->n_buckets = 64;
    while (st->n_buckets < max_n && st->n_buckets < ((size_t)1 << 20)) st->n_buckets *= 2;
    st->buckets = xcalloc(st->n_buckets, sizeof(*st->buckets));
    return 0;
}

static void entry_free(struct resp_entry *e)
{
    free(e->id);
    free(e->response);
    free(e->conversation);
    free(e);
}

void resp_store_deinit(struct resp_store *st)
{
    if (!st->buckets) return;
    for (struct resp_entry *e = st->newest, *older; e; e = older) {
        older = e->older;
        entry_free(e);
    }
    free(st->buckets);
    uv_mutex_destroy(&st->lock);
    memset(st, 0, sizeof(*st));
}

/* The slot that points at id's entry (or at the chain's NULL end). */
static struct resp_entry **find(struct resp_store *st, const char *id)
{
    struct resp_entry **p = &st->buckets[hash(id) & (st->n_buckets - 1)];
    while (*p && strcmp((*p)->id, id)) p = &(*p)->next;
    return p;
}

static void unlink_lru(struct resp_store *st, struct resp_entry *e)
{
    if (e->newer) e->newer->older = e->older;
    else st->newest = e->older;
    if (e->older) e->older->newer = e->newer;
    else st->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest(struct resp_store *st, struct resp_entry *e)
{
    e->older = st->newest;
    e->newer = NULL;
    if (st->newest) st->newest->newer = e;
    st->newest = e;
    if (!st->oldest) st->oldest = e;
}

/* Unlinks and frees the entry *slot points at. */
static void remove_at(struct resp_store *st, struct resp_entry **slot)
{
    struct resp_entry *e = *slot;
    *slot = e->next;
    unlink_lru(st, e);
    st->n--;
    st->bytes -= e->bytes;
    entry_free(e);
}

bool resp_store_put(struct resp_store *st, const char *id, const char *response, const char *conversation)
{
    size_t bytes = strlen(id) + strlen(response) + strlen(conversation) + 3 + RESP_STORE_ENTRY_OVERHEAD;
    if (!st->max_n || bytes > st->max_bytes) return false;
    struct resp_entry *e = xcalloc(1, sizeof(*e));
    e->id = xstrdup(id);
    e->response = xstrdup(response);
    e->conversation = xstrdup(conversation);
    e->bytes = bytes;
    uv_mutex_lock(&st->lock);
    struct resp_entry **slot = find(st, id);
    if (*slot) remove_at(st, slot);
    while (st->n && (st->n + 1 > st->max_n || st->bytes + bytes > st->max_bytes)) {
        remove_at(st, find(st, st->oldest->id));
        st->evicted++;
    }
    e->next = st->buckets[hash(id) & (st->n_buckets - 1)];
    st->buckets[hash(id) & (st->n_buckets - 1)] = e;
    push_newest(st, e);
    st->n++;
    st->bytes += bytes;
    uv_mutex_unlock(&st->lock);
    return true;
}

char *resp_store_get(struct resp_store *st, const char *id, int what)
{
    if (!st->buckets) return NULL;
    uv_mutex_lock(&st->lock);
    struct resp_entry *e = *find(st, id);
    char *out = NULL;
    if (e) {
        unlink_lru(st, e);
        push_newest(st, e);
        out = xstrdup(what ? e->conversation : e->response);
    }
    uv_mutex_unlock(&st->lock);
    return out;
}

bool resp_store_delete(struct resp_store *st, const char *id)
{
    if (!st->buckets) return false;
    uv_mutex_lock(&st->lock);
    struct resp_entry **slot = find(st, id);
    bool found = *slot != NULL;
    if (found) remove_at(st, slot);
    uv_mutex_unlock(&st->lock);
    return found;
}

void resp_store_usage(struct resp_store *st, size_t *n, size_t *bytes)
{
    uv_mutex_lock(&st->lock);
    *n = st->n;
    *bytes = st->bytes;
    uv_mutex_unlock(&st->lock);
}
