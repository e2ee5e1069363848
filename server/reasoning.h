/* reasoning.h: a model's reasoning (<think>...</think>) split from its
 * answer as the output streams: vLLM's --reasoning-parser, for
 * reasoning_content in chat replies.
 *
 * Two rules, named as vLLM names them:
 *   deepseek_r1  the chat template opened <think> in the prompt (DeepSeek-R1,
 *                QwQ, Qwen3-2507-Thinking, Qwen3.5): the output starts inside
 *                the reasoning, which runs to the first </think>; a <think>
 *                the model writes itself at the start (after blanks) is
 *                dropped. No </think> at all: everything is reasoning (the
 *                output was cut while thinking), as vLLM does.
 *   qwen3        the model opens <think> itself (Qwen3 with enable_thinking):
 *                only an output that starts with <think> (after blanks) has
 *                reasoning, up to the first </think> or the end; any other
 *                output is all content (enable_thinking=false, whose template
 *                wrote an empty <think></think> into the prompt).
 * The tags themselves are never shown; the text around them is kept as is
 * (vLLM does not strip the blank lines after </think> either). Once the
 * reasoning ended, everything else is content: a later <think> is text.
 *
 * Like stop.c, a possible beginning of a tag is held back until the next
 * piece decides, so the split does not depend on how the text is cut; the
 * one-shot reasoning_split is the same machine fed at once. Each byte is
 * looked at once (the tags are matched by a counter: '<' does not recur in
 * them); what is held is a partial tag, plus the leading blanks (past 4096
 * of them the start counts as having no <think>). */
#ifndef TESSERA_REASONING_H
#define TESSERA_REASONING_H

#include <stdbool.h>
#include <stddef.h>

#include "../base/strbuf.h"

enum reasoning_format {
    REASONING_NONE = 0, /* everything is content */
    REASONING_DEEPSEEK_R1,
    REASONING_QWEN3,
};

/* "deepseek_r1", "qwen3" (and "none"): 0, or ERR_INVALID with err_msg(). */
int reasoning_format_from_name(const char *name, enum reasoning_format *out);
const char *reasoning_format_name(enum reasoning_format f);

struct reasoning_parser {
    enum reasoning_format format;
    int state;
    size_t match;        /* bytes of the tag being matched */
    struct strbuf held;  /* leading blanks and a partial tag */
};

/* What a feed decided: appended to (the caller resets them). Within one
 * feed or finish all the reasoning text comes before all the content text,
 * so a server may send reasoning_content first, then content. */
struct reasoning_out {
    struct strbuf reasoning, content;
};

void reasoning_init(struct reasoning_parser *p, enum reasoning_format f);
void reasoning_deinit(struct reasoning_parser *p);
void reasoning_feed(struct reasoning_parser *p, const char *text, size_t len, struct reasoning_out *out);
/* End of the output: releases what is held (a partial tag is text). */
void reasoning_finish(struct reasoning_parser *p, struct reasoning_out *out);
/* Whether further text goes to content: the reasoning ended, or there is
 * none (REASONING_NONE, or qwen3 without <think>); false while the start
 * is undecided. The content is what a tool-call parser reads. */
bool reasoning_in_content(const struct reasoning_parser *p);

/* One-shot: out gets the whole reasoning and content. */
void reasoning_split(enum reasoning_format f, const char *text, size_t len, struct reasoning_out *out);
void reasoning_out_free(struct reasoning_out *out);

#endif
