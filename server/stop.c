/* stop.c: hold back possible stop-string prefixes; cut at the first match. */
#include "stop.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"

void stop_init(struct stop_matcher *m, const char *const *stops, int n)
{
    memset(m, 0, sizeof(*m));
    m->stops = xcalloc(n > 0 ? n : 1, sizeof(*m->stops));
    for (int i = 0; i < n; i++) {
        size_t len = strlen(stops[i]);
        if (!len) continue;
        struct stop_string *t = &m->stops[m->n_stops++];
        t->s = xstrdup(stops[i]);
        t->len = len;
        /* border[i]: the longest proper prefix of s[0..i] that is also its suffix */
        t->border = xcalloc(len, sizeof(size_t));
        for (size_t k = 1, b = 0; k < len; k++) {
            while (b && t->s[k] != t->s[b]) b = t->border[b - 1];
            if (t->s[k] == t->s[b]) b++;
            t->border[k] = b;
        }
    }
}

void stop_deinit(struct stop_matcher *m)
{
    for (int i = 0; i < m->n_stops; i++) {
        free(m->stops[i].s);
        free(m->stops[i].border);
    }
    free(m->stops);
    strbuf_free(&m->held);
    strbuf_free(&m->out);
    memset(m, 0, sizeof(*m));
}

/* Releases the first k held bytes. */
static const char *release(struct stop_matcher *m, size_t k, size_t *n)
{
    strbuf_reset(&m->out);
    strbuf_append(&m->out, m->held.s, k);
    strbuf_consume(&m->held, k);
    *n = k;
    return m->out.s;
}

/* Advances t's automaton by byte c; true when the whole string matched. */
static bool step(struct stop_string *t, char c)
{
    if (t->state == t->len) t->state = t->border[t->len - 1];
    while (t->state && t->s[t->state] != c) t->state = t->border[t->state - 1];
    if (t->s[t->state] == c) t->state++;
    return t->state == t->len;
}

const char *stop_push(struct stop_matcher *m, const char *text, size_t len, size_t *n)
{
    *n = 0;
    if (m->matched) return "";
    size_t start = m->held.len;
    strbuf_append(&m->held, text, len);
    if (!m->n_stops) return release(m, m->held.len, n);

    /* each string's first match in the new text; the earliest start wins */
    size_t first = SIZE_MAX, keep = 0;
    for (int i = 0; i < m->n_stops; i++) {
        struct stop_string *t = &m->stops[i];
        for (size_t k = start; k < m->held.len; k++)
            if (step(t, m->held.s[k])) {
                size_t at = k + 1 - t->len;
                if (at < first) first = at;
                break;
            }
        if (t->state > keep) keep = t->state;
    }
    if (first != SIZE_MAX) {
        m->matched = true;
        const char *out = release(m, first, n);
        strbuf_reset(&m->held);
        return out;
    }
    /* hold the longest tail that could still grow into a stop string */
    return release(m, m->held.len - keep, n);
}

const char *stop_flush(struct stop_matcher *m, size_t *n)
{
    *n = 0;
    if (m->matched) return "";
    return release(m, m->held.len, n);
}
