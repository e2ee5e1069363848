/* utf8.c: UTF-8 validation and repair for text that leaves the process
 * (JSON bodies, error messages, logs). Valid means RFC 3629: shortest form,
 * no surrogates, nothing above U+10FFFF, as jansson requires. */
#include "utf8.h"

#include <string.h>

size_t utf8_char_len(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0; /* overlong */
    if (c == 0xED && s[1] > 0x9F) return 0; /* surrogate */
    if (c == 0xF0 && s[1] < 0x90) return 0; /* overlong */
    if (c == 0xF4 && s[1] > 0x8F) return 0; /* above U+10FFFF */
    return len;
}

size_t utf8_valid_prefix(const char *s, size_t n)
{
    size_t i = 0, k;
    while (i < n && (k = utf8_char_len(s + i, n - i))) i += k;
    return i;
}

size_t utf8_sanitize(char *out, size_t cap, const char *s, size_t n)
{
    static const char REPLACEMENT[] = "\xEF\xBF\xBD";
    size_t i = 0, o = 0;
    if (!cap) return 0;
    while (i < n) {
        size_t k = utf8_char_len(s + i, n - i);
        const char *piece = k ? s + i : REPLACEMENT;
        size_t len = k ? k : 3;
        if (o + len >= cap) break; /* whole characters only */
        memcpy(out + o, piece, len);
        o += len;
        i += k ? k : 1;
    }
    out[o] = '\0';
    return o;
}
