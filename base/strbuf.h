/* strbuf.h: one growable byte buffer, NUL-terminated after every call, for
 * texts built piece by piece (replies, metrics, held-back stream text).
 * Zero-initialised is empty; growth is geometric, so appending n bytes in
 * any number of pieces costs O(n). Allocation failure aborts (xrealloc). */
#ifndef TESSERA_STRBUF_H
#define TESSERA_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *s;      /* NULL until the first append */
    size_t len, cap;
};

void strbuf_append(struct strbuf *b, const void *data, size_t n);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void strbuf_consume(struct strbuf *b, size_t n);
void strbuf_reset(struct strbuf *b);
void strbuf_free(struct strbuf *b);
/* The text (malloc'd, never NULL); b is left empty. */
char *strbuf_take(struct strbuf *b);
/* Appends the whole file at path (a pipe too: no size is needed up front).
 * Returns 0; -1 when it cannot be opened or read; -2 when it has more
 * than max bytes (b then holds the first max + 1 or so). */
int strbuf_read_file(struct strbuf *b, const char *path, size_t max);

#endif
