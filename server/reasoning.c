/* reasoning.c: the streaming <think>...</think> splitter (see reasoning.h). */
#include "reasoning.h"

#include <string.h>

#include "../base/err.h"

enum { ST_START,     /* blanks so far; a <think> may come */
       ST_REASONING, /* looking for </think> */
       ST_CONTENT };

static const char OPEN[] = "<think>", CLOSE[] = "</think>";
enum { REASONING_MAX_BLANKS = 4096 }; /* held at the start before deciding without a <think> */

static bool is_blank(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

int reasoning_format_from_name(const char *name, enum reasoning_format *out)
{
    static const char *const names[] = {"none", "deepseek_r1", "qwen3"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, names[i])) {
            *out = (enum reasoning_format)i;
            return 0;
        }
    return err_set(ERR_INVALID, "unknown reasoning parser '%s' (deepseek_r1, qwen3 or none)", name);
}

const char *reasoning_format_name(enum reasoning_format f)
{
    return f == REASONING_DEEPSEEK_R1 ? "deepseek_r1" : f == REASONING_QWEN3 ? "qwen3" : "none";
}

void reasoning_init(struct reasoning_parser *p, enum reasoning_format f)
{
    memset(p, 0, sizeof(*p));
    p->format = f;
    p->state = f == REASONING_NONE ? ST_CONTENT : ST_START;
}

void reasoning_deinit(struct reasoning_parser *p)
{
    strbuf_free(&p->held);
    memset(p, 0, sizeof(*p));
}

bool reasoning_in_content(const struct reasoning_parser *p) { return p->state == ST_CONTENT; }

/* Moves the held text to `to`. */
static void release(struct reasoning_parser *p, struct strbuf *to)
{
    strbuf_append(to, p->held.s, p->held.len);
    strbuf_reset(&p->held);
    p->match = 0;
}

/* ST_START: leading blanks and <think> held. Without the tag, deepseek_r1
 * is in the reasoning already, qwen3 has none. Returns false when c was not
 * consumed (it is read again in the new state). */
static bool start_step(struct reasoning_parser *p, char c, struct reasoning_out *out)
{
    if ((c == OPEN[p->match] || (!p->match && is_blank(c))) && p->held.len < REASONING_MAX_BLANKS) {
        strbuf_append(&p->held, &c, 1);
        if (c == OPEN[p->match] && ++p->match == sizeof(OPEN) - 1) {
            strbuf_reset(&p->held); /* the tag and the blanks before it go */
            p->match = 0;
            p->state = ST_REASONING;
        }
        return true;
    }
    bool r1 = p->format == REASONING_DEEPSEEK_R1;
    release(p, r1 ? &out->reasoning : &out->content);
    p->state = r1 ? ST_REASONING : ST_CONTENT;
    return false;
}

/* ST_REASONING over text[0..len): returns the bytes consumed (all, or up
 * to the end of </think>). */
static size_t reasoning_run(struct reasoning_parser *p, const char *text, size_t len, struct reasoning_out *out)
{
    size_t from = 0; /* text[from..i) is reasoning not yet released */
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (p->match && c != CLOSE[p->match]) release(p, &out->reasoning); /* from == i here */
        if (c != CLOSE[p->match]) continue;
        if (!p->match) strbuf_append(&out->reasoning, text + from, i - from);
        strbuf_append(&p->held, &c, 1);
        from = i + 1;
        if (++p->match == sizeof(CLOSE) - 1) {
            strbuf_reset(&p->held);
            p->match = 0;
            p->state = ST_CONTENT;
            return i + 1;
        }
    }
    strbuf_append(&out->reasoning, text + from, len - from);
    return len;
}

void reasoning_feed(struct reasoning_parser *p, const char *text, size_t len, struct reasoning_out *out)
{
    size_t i = 0;
    while (i < len && p->state == ST_START)
        if (start_step(p, text[i], out)) i++;
    if (i < len && p->state == ST_REASONING) i += reasoning_run(p, text + i, len - i, out);
    if (i < len) strbuf_append(&out->content, text + i, len - i);
}

void reasoning_finish(struct reasoning_parser *p, struct reasoning_out *out)
{
    bool reasoning = p->state == ST_REASONING || (p->state == ST_START && p->format == REASONING_DEEPSEEK_R1);
    /* qwen3: "<think" cut short at the start is content; blanks alone too */
    release(p, reasoning ? &out->reasoning : &out->content);
    p->state = ST_CONTENT;
}

void reasoning_split(enum reasoning_format f, const char *text, size_t len, struct reasoning_out *out)
{
    struct reasoning_parser p;
    reasoning_init(&p, f);
    reasoning_feed(&p, text, len, out);
    reasoning_finish(&p, out);
    reasoning_deinit(&p);
}

void reasoning_out_free(struct reasoning_out *out)
{
    strbuf_free(&out->reasoning);
    strbuf_free(&out->content);
}
