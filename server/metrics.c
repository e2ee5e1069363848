/* metrics.c: counting and rendering of metrics.h. */
#include "metrics.h"

#include <stddef.h>

static const double BOUNDS[METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                               5, 10, 30, 60};

void metrics_count_status(struct metrics *m, int status)
{
    for (int i = 0; i < m->n_statuses; i++)
        if (m->statuses[i] == status) {
            m->status_counts[i]++;
            return;
        }
    if (m->n_statuses < 16) {
        m->statuses[m->n_statuses] = status;
        m->status_counts[m->n_statuses++] = 1;
    }
}

void metrics_observe(struct hist *h, double v)
{
    for (int i = 0; i < METRICS_BUCKETS; i++)
        if (v <= BOUNDS[i]) h->counts[i]++;
    h->n++;
    h->sum += v;
}

/* One metric: a counter or gauge of the server (m) or of the engine (st, in
 * GAUGES), printed as an integer or, for ratios, with 6 decimals. */
struct metric {
    const char *name, *type, *help;
    double (*value)(const struct metrics *m, const struct engine_stats *st);
    int ratio;
};

static double ratio(double num, double den) { return den ? num / den : 0.0; }
static double prompt_tokens(const struct metrics *m, const struct engine_stats *st) { (void)st; return (double)m->prompt_tokens; }
static double gen_tokens(const struct metrics *m, const struct engine_stats *st) { (void)st; return (double)m->generation_tokens; }
static double stored(const struct metrics *m, const struct engine_stats *st) { (void)st; return (double)m->responses_stored; }
static double stored_bytes(const struct metrics *m, const struct engine_stats *st) { (void)st; return (double)m->responses_stored_bytes; }
static double running(const struct metrics *m, const struct engine_stats *st) { (void)m; return st->running; }
static double waiting(const struct metrics *m, const struct engine_stats *st) { (void)m; return st->waiting; }
static double kv_used(const struct metrics *m, const struct engine_stats *st) { (void)m; return st->kv_blocks_used; }
static double kv_total(const struct metrics *m, const struct engine_stats *st) { (void)m; return st->kv_blocks_total; }
static double kv_usage(const struct metrics *m, const struct engine_stats *st) { (void)m; return ratio(st->kv_blocks_used, st->kv_blocks_total); }
static double px_queries(const struct metrics *m, const struct engine_stats *st) { (void)m; return (double)st->prefix_queries; }
static double px_hits(const struct metrics *m, const struct engine_stats *st) { (void)m; return (double)st->prefix_hits; }
static double px_rate(const struct metrics *m, const struct engine_stats *st) { (void)m; return ratio((double)st->prefix_hits, (double)st->prefix_queries); }
static double preemptions(const struct metrics *m, const struct engine_stats *st) { (void)m; return (double)st->preemptions; }

static const struct metric COUNTERS[] = {
    {"tessera_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.", prompt_tokens, 0},
    {"tessera_generation_tokens_total", "counter", "Tokens generated.", gen_tokens, 0},
    {"tessera_responses_stored", "gauge", "Responses kept for GET /v1/responses/{id}.", stored, 0},
    {"tessera_responses_stored_bytes", "gauge", "Bytes the kept responses count against the budget.", stored_bytes, 0},
};

static const struct metric GAUGES[] = {
    {"tessera_num_requests_running", "gauge", "Sequences in the running batch.", running, 0},
    {"tessera_num_requests_waiting", "gauge", "Sequences waiting to run.", waiting, 0},
    {"tessera_kv_cache_blocks_used", "gauge", "KV cache blocks referenced by sequences.", kv_used, 0},
    {"tessera_kv_cache_blocks_total", "gauge", "KV cache blocks in the pool.", kv_total, 0},
    {"tessera_kv_cache_usage_ratio", "gauge", "Fraction of KV cache blocks in use.", kv_usage, 1},
    {"tessera_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.", px_queries, 0},
    {"tessera_prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", px_hits, 0},
    {"tessera_prefix_cache_hit_rate", "gauge", "Hits over queries since start.", px_rate, 1},
    {"tessera_num_preemptions_total", "counter", "Sequences preempted for KV cache blocks.", preemptions, 0},
};

static const struct {
    const char *name, *help;
    size_t offset;
} HISTS[] = {
    {"tessera_time_to_first_token_seconds", "Time to first token.", offsetof(struct metrics, ttft)},
    {"tessera_inter_token_latency_seconds", "Time between tokens of a stream.", offsetof(struct metrics, itl)},
    {"tessera_e2e_request_latency_seconds", "Request latency, end to end.", offsetof(struct metrics, e2e)},
};

static void put_metrics(const struct metric *t, int n, const struct metrics *m, const struct engine_stats *st,
                        struct strbuf *out)
{
    for (int i = 0; i < n; i++) {
        double v = t[i].value(m, st);
        strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s ", t[i].name, t[i].help, t[i].name, t[i].type, t[i].name);
        if (t[i].ratio) strbuf_printf(out, "%.6f\n", v);
        else strbuf_printf(out, "%lld\n", (long long)v);
    }
}

static void put_hist(struct strbuf *out, const char *name, const char *help, const struct hist *h)
{
    strbuf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (int i = 0; i < METRICS_BUCKETS; i++)
        strbuf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", name, BOUNDS[i], (unsigned long long)h->counts[i]);
    strbuf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name, (unsigned long long)h->n,
                  name, h->sum, name, (unsigned long long)h->n);
}

void metrics_render(const struct metrics *m, const struct engine_stats *st, struct strbuf *out)
{
    strbuf_printf(out, "# HELP tessera_requests_total HTTP requests answered, by status.\n"
                       "# TYPE tessera_requests_total counter\n");
    for (int i = 0; i < m->n_statuses; i++)
        strbuf_printf(out, "tessera_requests_total{status=\"%d\"} %llu\n", m->statuses[i],
                      (unsigned long long)m->status_counts[i]);
    put_metrics(COUNTERS, (int)(sizeof(COUNTERS) / sizeof(COUNTERS[0])), m, st, out);
    for (size_t i = 0; i < sizeof(HISTS) / sizeof(HISTS[0]); i++)
        put_hist(out, HISTS[i].name, HISTS[i].help, (const struct hist *)((const char *)m + HISTS[i].offset));
    if (st) put_metrics(GAUGES, (int)(sizeof(GAUGES) / sizeof(GAUGES[0])), m, st, out);
}
