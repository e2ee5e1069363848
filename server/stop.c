/* stop.c: hold back possible stop-string prefixes; cut at the first match. */
#include "stop.h"

#include <stdlib.h>
#include <string.h>

#include "../engine/err.h"

void stop_init(struct stop_matcher *m, const char *const *stops, int n)
{
    memset(m, 0, sizeof(*m));
    m->stops = xcalloc(n > 0 ? n : 1, sizeof(char *));
    for (int i = 0; i < n; i++) {
        size_t len = strlen(stops[i]);
        if (!len) continue;
        m->stops[m->n_stops++] = xstrdup(stops[i]);
        if (len > m->max_len) m->max_len = len;
    }
}

void stop_deinit(struct stop_matcher *m)
{
    for (int i = 0; i < m->n_stops; i++) free(m->stops[i]);
    free(m->stops);
    free(m->held);
    free(m->out);
    memset(m, 0, sizeof(*m));
}

static const char *emit(struct stop_matcher *m, size_t k, size_t *n)
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

const char *stop_push(struct stop_matcher *m, const char *text, size_t len, size_t *n)
{
    *n = 0;
    if (m->matched) return "";
    if (m->held_len + len + 1 > m->held_cap) {
        m->held_cap = 2 * (m->held_len + len + 1);
        m->held = xrealloc(m->held, m->held_cap);
    }
    memcpy(m->held + m->held_len, text, len);
    m->held_len += len;
    if (!m->n_stops) return emit(m, m->held_len, n);

    /* the earliest complete stop string wins */
    const char *first = NULL;
    for (int i = 0; i < m->n_stops; i++) {
        const char *at = memmem(m->held, m->held_len, m->stops[i], strlen(m->stops[i]));
        if (at && (!first || at < first)) first = at;
    }
    if (first) {
        m->matched = true;
        const char *out = emit(m, (size_t)(first - m->held), n);
        m->held_len = 0;
        return out;
    }
    /* hold the longest tail that could still grow into a stop string */
    size_t keep_from = m->held_len;
    size_t lo = m->held_len >= m->max_len ? m->held_len - m->max_len + 1 : 0;
    for (size_t i = lo; i < m->held_len && keep_from == m->held_len; i++)
        for (int s = 0; s < m->n_stops; s++) {
            size_t tail = m->held_len - i;
            if (tail < strlen(m->stops[s]) && !memcmp(m->held + i, m->stops[s], tail)) {
                keep_from = i;
                break;
            }
        }
    return emit(m, keep_from, n);
}

const char *stop_flush(struct stop_matcher *m, size_t *n)
{
    *n = 0;
    if (m->matched) return "";
    return emit(m, m->held_len, n);
}
