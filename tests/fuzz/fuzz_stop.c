/* fuzz_stop.c: the stop-string matcher (server/stop.c) against a reference.
 *
 * Input: a byte n (n % 5 stop strings), then each stop string as a length
 * byte (% 9) and its bytes (cut at a 0 byte, as C strings are), then the
 * pieces pushed, each a length byte (% 17) and its bytes, to the end.
 *
 * The reference sees the whole text T pushed so far. While no stop string
 * occurs in T, the text released is T minus the longest tail that is a
 * proper prefix of some stop string (never less: text is not held for
 * nothing), so released + held = T. At the first push after which a stop
 * string occurs in T, the match is reported and the text released in all
 * is T up to the earliest occurrence; nothing comes out after that. The
 * text released never contains a stop string. */
#include "../../server/stop.h"
#include "fuzz.h"

#define MAX_STOPS 4

struct ref {
    char *stops[MAX_STOPS];
    int n;
};

/* Earliest start of a complete stop string in t[0..n), or -1. */
static long ref_first(const struct ref *r, const char *t, size_t n)
{
    long best = -1;
    for (int i = 0; i < r->n; i++) {
        size_t k = strlen(r->stops[i]);
        if (!k) continue;
        const char *at = memmem(t, n, r->stops[i], k);
        if (at && (best < 0 || at - t < best)) best = at - t;
    }
    return best;
}

/* Where the held tail of t[0..n) starts: the first i whose t[i..n) is a
 * proper prefix of a stop string. */
static size_t ref_hold_from(const struct ref *r, const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int s = 0; s < r->n; s++) {
            size_t k = strlen(r->stops[s]);
            if (n - i < k && !memcmp(t + i, r->stops[s], n - i)) return i;
        }
    return n;
}

static bool contains_stop(const struct ref *r, const char *t, size_t n) { return ref_first(r, t, n) >= 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct carve c = {data, size};
    struct ref r = {.n = carve_u8(&c) % (MAX_STOPS + 1)};
    for (int i = 0; i < r.n; i++) {
        size_t len;
        const uint8_t *p = carve_bytes(&c, carve_u8(&c) % 9, &len);
        r.stops[i] = calloc(len + 1, 1);
        if (!r.stops[i]) abort();
        memcpy(r.stops[i], p, len);
    }
    struct stop_matcher m;
    stop_init(&m, (const char *const *)r.stops, r.n);

    char *text = malloc(size + 1), *out = malloc(size + 1); /* all pushed, all released */
    if (!text || !out) abort();
    size_t tn = 0, on = 0;
    bool matched = false;
    while (c.n) {
        size_t len;
        const char *piece = (const char *)carve_bytes(&c, carve_u8(&c) % 17, &len);
        size_t n = 99;
        const char *got = stop_push(&m, piece, len, &n);
        FUZZ_ASSERT(got != NULL, "stop_push returned NULL");
        if (matched) {
            FUZZ_ASSERT(n == 0 && m.matched, "%zu bytes released after the match", n);
            continue;
        }
        memcpy(text + tn, piece, len);
        tn += len;
        memcpy(out + on, got, n);
        on += n;
        FUZZ_ASSERT(on <= tn && !memcmp(out, text, on), "released text is not a prefix of the text pushed");
        FUZZ_ASSERT(!contains_stop(&r, out, on), "released text holds a stop string");
        long first = ref_first(&r, text, tn);
        if (first >= 0) {
            FUZZ_ASSERT(m.matched, "stop string at %ld not reported", first);
            FUZZ_ASSERT(on == (size_t)first, "released %zu bytes, the first stop string starts at %ld", on, first);
            matched = true;
        } else {
            FUZZ_ASSERT(!m.matched, "match reported without a stop string");
            size_t hold = ref_hold_from(&r, text, tn);
            FUZZ_ASSERT(on == hold, "released %zu of %zu bytes, the reference %zu", on, tn, hold);
            FUZZ_ASSERT(m.held.len == tn - on && (!m.held.len || !memcmp(m.held.s, text + on, m.held.len)),
                        "released + held is not the text");
        }
    }
    size_t n = 99;
    const char *got = stop_flush(&m, &n);
    FUZZ_ASSERT(got != NULL, "stop_flush returned NULL");
    if (matched) {
        FUZZ_ASSERT(n == 0, "flush after the match released %zu bytes", n);
    } else {
        memcpy(out + on, got, n);
        on += n;
        FUZZ_ASSERT(on == tn && !memcmp(out, text, tn), "after flush, released %zu of %zu bytes", on, tn);
    }
    stop_deinit(&m);
    for (int i = 0; i < r.n; i++) free(r.stops[i]);
    free(text);
    free(out);
    return 0;
}
