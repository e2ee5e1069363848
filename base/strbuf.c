/* strbuf.c: the growable buffer of strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
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
