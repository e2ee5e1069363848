/* strbuf.c: the growable buffer of strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static void reserve(struct strbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap) return;
    b->cap = 2 * (b->len + extra + 1);
    b->s = xrealloc(b->s, b->cap);
}

void strbuf_append(struct strbuf *b, const void *data, size_t n)
{
    reserve(b, n);
    if (n) memcpy(b->s + b->len, data, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    CHECK(n >= 0);
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void strbuf_consume(struct strbuf *b, size_t n)
{
    if (n >= b->len) {
        strbuf_reset(b);
        return;
    }
    memmove(b->s, b->s + n, b->len - n);
    b->len -= n;
    b->s[b->len] = '\0';
}

void strbuf_reset(struct strbuf *b)
{
    b->len = 0;
    if (b->s) b->s[0] = '\0';
}

void strbuf_free(struct strbuf *b)
{
    free(b->s);
    *b = (struct strbuf){0};
}

char *strbuf_take(struct strbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    *b = (struct strbuf){0};
    return s;
}

int strbuf_read_file(struct strbuf *b, const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t start = b->len;
    char chunk[1 << 16];
    for (size_t got; b->len - start <= max && (got = fread(chunk, 1, sizeof(chunk), f)) > 0;)
        strbuf_append(b, chunk, got);
    bool bad = ferror(f);
    fclose(f);
    return bad ? -1 : b->len - start > max ? -2 : 0;
}
