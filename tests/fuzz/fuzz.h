/* fuzz.h: helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * A target is one file defining LLVMFuzzerTestOneInput (and, when it needs
 * set-up such as a tokenizer, LLVMFuzzerInitialize) plus one line in the
 * Makefile's FUZZ_TARGETS; its seeds live in tests/fuzz/corpus/<name>/ and
 * an optional libFuzzer dictionary in tests/fuzz/<name>.dict. See
 * tests/fuzz/README.md. */
#ifndef TESSERA_FUZZ_H
#define TESSERA_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../base/err.h"
#include "../../tokenizer/tokenizer.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: on failure, CHECKF prints it and
 * aborts, so that libFuzzer records the input as a crash. */
#define FUZZ_ASSERT(cond, ...) CHECKF(cond, __VA_ARGS__)

/* An error message that echoes input: one line of valid UTF-8. */
static inline bool one_utf8_line(const char *s)
{
    return !strchr(s, '\n') && utf8_valid_prefix(s, strlen(s)) == strlen(s);
}

/* Carving the fuzzer's bytes into parameters: every read succeeds, past the
 * end with zeros (or nothing), so targets need no length checks. */
struct carve {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t carve_u8(struct carve *c)
{
    if (!c->n) return 0;
    c->n--;
    return *c->p++;
}

static inline uint32_t carve_u32(struct carve *c)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)carve_u8(c) << (8 * i);
    return v;
}

/* Up to max bytes (fewer at the end); *len gets the count. */
static inline const uint8_t *carve_bytes(struct carve *c, size_t max, size_t *len)
{
    size_t k = max < c->n ? max : c->n;
    const uint8_t *p = c->p;
    c->p += k;
    c->n -= k;
    *len = k;
    return p;
}

/* The bytes up to the next 0 byte (consumed) or the end, as a malloc'd C
 * string. */
static inline char *carve_cstr(struct carve *c)
{
    const uint8_t *z = memchr(c->p, 0, c->n);
    size_t k = z ? (size_t)(z - c->p) : c->n;
    char *s = malloc(k + 1);
    if (!s) abort();
    if (k) memcpy(s, c->p, k);
    s[k] = '\0';
    c->p += k + (z ? 1 : 0);
    c->n -= k + (z ? 1 : 0);
    return s;
}

/* Whether s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code
 * points past U+10FFFF). */
static inline bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t k;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) { i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) k = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else
            return false;
        if (i + k >= n) return false; /* truncated */
        if (u[i + 1] < lo || u[i + 1] > hi) return false;
        for (size_t j = 2; j <= k; j++)
            if ((u[i + j] & 0xC0) != 0x80) return false;
        i += k + 1;
    }
    return true;
}

/* The stories260K tokenizer (tests' model): $TESSERA_STORIES260K, else
 * ../shared/models/stories260K from the repository root (make's working
 * directory). Loaded once; exits when missing. */
static inline tokenizer *fuzz_stories_tokenizer(void)
{
    static tokenizer *tok;
    if (tok) return tok;
    const char *dir = getenv("TESSERA_STORIES260K");
    if (!dir || !*dir) dir = "../shared/models/stories260K";
    char err[1024] = "";
    if (tok_load(&tok, dir, err, sizeof(err))) {
        fprintf(stderr, "fuzz: cannot load the stories260K tokenizer (set TESSERA_STORIES260K): %s\n", err);
        exit(1);
    }
    return tok;
}

#endif
