/* sse.c: one event per payload, one data line per payload line. */
#include "sse.h"

#include <string.h>

#include "../base/err.h"

char *sse_data(const char *payload, size_t n, size_t *len)
{
    size_t lines = 1;
    for (size_t i = 0; i < n; i++) lines += payload[i] == '\n';
    char *out = xmalloc(n + 7 * lines + 2), *p = out;
    memcpy(p, "data: ", 6);
    p += 6;
    for (size_t i = 0; i < n; i++) {
        if (payload[i] == '\r') continue; /* CR, LF and CRLF all end a line in SSE */
        *p++ = payload[i];
        if (payload[i] == '\n') {
            memcpy(p, "data: ", 6);
            p += 6;
        }
    }
    *p++ = '\n';
    *p++ = '\n';
    *len = (size_t)(p - out);
    return out;
}
