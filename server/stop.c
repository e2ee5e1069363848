/* stop.c: hold back possible stop-string prefixes; cut at the first match. */
#include "stop.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../engine/err.h"

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
    free(m->held);
    free(m->out);
    memset(m, 0, sizeof(*m));
}

/* Releases the first k held bytes. */
static const char *release(struct stop_matcher *m, size_t k, size_t *n)
{
    if (k + 1 > m->out_cap) {
        m->out_cap = 2 * (k + 1);
        m->out = xrealloc(m->out, m->out_cap);
    }
    if (k) memcpy(m->out, m->held, k);
    m->out[k] = '\0';
    if (m->held_len > k) memmove(m->held, m->held + k, m->held_len - k);
    m->held_len -= k;
    *n = k;
    return m->out;
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
    size_t start = m->held_len;
    if (m->held_len + len + 1 > m->held_cap) {
        m->held_cap = 2 * (m->held_len + len + 1);
        m->held = xrealloc(m->held, m->held_cap);
    }
    memcpy(m->held + m->held_len, text, len);
    m->held_len += len;
    if (!m->n_stops) return release(m, m->held_len, n);

    /* each string's first match in the new text; the earliest start wins */
    size_t first = SIZE_MAX, keep = 0;
    for (int i = 0; i < m->n_stops; i++) {
        struct stop_string *t = &m->stops[i];
        for (size_t k = start; k < m->held_len; k++)
            if (step(t, m->held[k])) {
                size_t at = k + 1 - t->len;
                if (at < first) first = at;
                break;
            }
        if (t->state > keep) keep = t->state;
    }
    if (first != SIZE_MAX) {
        m->matched = true;
        const char *out = release(m, first, n);
        m->held_len = 0;
        return out;
    }
    /* hold the longest tail that could still grow into a stop string */
    return release(m, m->held_len - keep, n);
}

const char *stop_flush(struct stop_matcher *m, size_t *n)
{
    *n = 0;
    if (m->matched) return "";
    return release(m, m->held_len, n);
}
