/* utf8.h: UTF-8 validation and repair for text that leaves the process
 * (JSON bodies, error messages, logs). Valid means RFC 3629: shortest form,
 * no surrogates, nothing above U+10FFFF, as jansson requires. */
#ifndef TESSERA_UTF8_H
#define TESSERA_UTF8_H

#include <stddef.h>

/* Bytes of the valid character at s[0..n) (n >= 1), or 0 when there is none. */
size_t utf8_char_len(const char *s, size_t n);
/* Length of the longest prefix of s[0..n) that is valid UTF-8. */
size_t utf8_valid_prefix(const char *s, size_t n);
/* s[0..n) into out[cap] as valid UTF-8, NUL-terminated: each invalid byte
 * becomes U+FFFD, and a text too long is cut before a whole character.
 * Returns the bytes written (< cap; 0 when cap is 0). */
size_t utf8_sanitize(char *out, size_t cap, const char *s, size_t n);

#endif
