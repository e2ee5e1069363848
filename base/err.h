/* err.h: error codes and the last error message of the calling thread.
 *
 * Functions that can fail on bad input return 0 or a negative ERR_* code and
 * leave a one-line message (naming the file and the problem) that err_msg()
 * returns until the next err_set() on the same thread. */
#ifndef TESSERA_ERR_H
#define TESSERA_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum {
    ERR_OK = 0,
    ERR_IO = -1,       /* missing or unreadable file */
    ERR_FORMAT = -2,   /* malformed content: JSON, safetensors header */
    ERR_MODEL = -3,    /* well-formed but unusable: missing tensor, shape */
    ERR_UNSUPPORTED = -4,
    ERR_NOMEM = -5,
    ERR_INVALID = -6,  /* bad argument from a caller or user */
};

/* Sets the thread's message (printf-style, made one line by err_one_line)
 * and returns code. */
int err_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Control bytes and bytes that are not valid UTF-8 in msg become '?' (in
 * place): a message that echoes a name read from a file or request stays
 * one line of valid UTF-8, even when cut inside a character. */
void err_one_line(char *msg);
const char *err_msg(void);
const char *err_str(int code);

/* Invariant checks that stay on in release builds. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define CHECKF(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,  \
                    #cond);                                                    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* malloc family that aborts on failure: for sizes fixed at start-up. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Seconds on the monotonic clock. */
double mono_seconds(void);

#endif
