/* err.c: thread-local last error message and checked allocation. */
#include "err.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

static _Thread_local char last_msg[1024];

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
    va_end(ap);
    err_one_line(last_msg);
    return code;
}

void err_one_line(char *msg)
{
    size_t n = strlen(msg);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_char_len(msg + i, n - i);
        if (k <= 1 && ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f || !k)) msg[i] = '?';
        i += k ? k : 1;
    }
}

const char *err_msg(void) { return last_msg; }

const char *err_str(int code)
{
    switch (code) {
    case ERR_OK: return "ok";
    case ERR_IO: return "i/o error";
    case ERR_FORMAT: return "malformed file";
    case ERR_MODEL: return "unusable model";
    case ERR_UNSUPPORTED: return "unsupported";
    case ERR_NOMEM: return "out of memory";
    case ERR_INVALID: return "invalid argument";
    }
    return "unknown error";
}

static void *oom(size_t n)
{
    fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    return p ? p : oom(n);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    return p ? p : oom(n * size);
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    return q ? q : oom(n);
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
