/* metrics.h: the server's Prometheus metrics: request counts by status,
 * token counters, latency histograms, and the engine's gauges, rendered in
 * the text exposition format (version 0.0.4) from one table. */
#ifndef TESSERA_METRICS_H
#define TESSERA_METRICS_H

#include <stdint.h>

#include "../engine/engine.h"
#include "../base/strbuf.h"

#define METRICS_BUCKETS 15

struct hist {
    uint64_t counts[METRICS_BUCKETS]; /* cumulative: observations <= each bound */
    uint64_t n;
    double sum;
};

struct metrics {
    int statuses[16];
    uint64_t status_counts[16];
    int n_statuses;
    uint64_t prompt_tokens, generation_tokens;
    uint64_t responses_stored, responses_stored_bytes; /* the responses store, as of this render */
    struct hist ttft, itl, e2e;
};

void metrics_count_status(struct metrics *m, int status);
void metrics_observe(struct hist *h, double seconds);
/* Appends the exposition text; st NULL while the model loads (no engine
 * gauges then). */
void metrics_render(const struct metrics *m, const struct engine_stats *st, struct strbuf *out);

#endif
