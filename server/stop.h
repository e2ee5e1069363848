/* stop.h: stop strings matched on the generated text, across token
 * boundaries, without ever letting any part of a stop string out.
 *
 * Text goes in as the detokenizer produces it; what comes out is safe to
 * show: text that can no longer be the start of a stop string is released,
 * a possible beginning of one is held back until the next piece decides
 * (vLLM's fix for stop strings leaking into streams). When a stop string
 * appears, the text before it is released and the match is reported; the
 * stop string itself and everything after it are dropped (OpenAI's
 * behaviour). Of several stop strings, the one that starts first wins.
 *
 * Cost: each stop string is a Knuth-Morris-Pratt automaton whose state (the
 * longest prefix of it that the text ends with) carries over from piece to
 * piece, so a byte costs O(number of stop strings), whatever their lengths
 * or the text (a naive rescan of the held tail costs length squared). */
#ifndef TESSERA_STOP_H
#define TESSERA_STOP_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/strbuf.h"

struct stop_string {
    char *s;
    size_t len;
    size_t *border;  /* [len]: KMP failure function */
    size_t state;    /* bytes of s the text ends with */
};

struct stop_matcher {
    struct stop_string *stops;
    int n_stops;
    struct strbuf held;     /* text that may still start a stop string */
    struct strbuf out;      /* what the last call released */
    bool matched;
};

/* Copies the n stop strings (empty ones are ignored). */
void stop_init(struct stop_matcher *m, const char *const *stops, int n);
void stop_deinit(struct stop_matcher *m);
/* Feeds text; returns the text to release now (borrowed until the next
 * call) and its length in *n. After a match, m->matched is set and further
 * input is ignored. */
const char *stop_push(struct stop_matcher *m, const char *text, size_t len, size_t *n);
/* End of generation: releases what is held. */
const char *stop_flush(struct stop_matcher *m, size_t *n);

#endif
