/* sse.h: server-sent events framing. */
#ifndef TESSERA_SSE_H
#define TESSERA_SSE_H

#include <stddef.h>

/* "data: <payload>\n\n" (malloc'd; length in *len). A payload with line
 * breaks becomes one "data: " line per line, as the SSE format requires, so
 * a client joins them back with "\n". */
char *sse_data(const char *payload, size_t n, size_t *len);

#endif
