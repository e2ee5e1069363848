/* chat_template.c: the chat formats of chat_template.h. */
#include "chat_template.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../base/err.h"
#include "../base/strbuf.h"

enum chat_style chat_style_detect(const char *j)
{
    if (!j) return CHAT_DEFAULT;
    if (strstr(j, "<|start_header_id|>")) return CHAT_LLAMA3;
    if (strstr(j, "<|im_start|>")) return CHAT_CHATML;
    if (strstr(j, "<|user|>")) return CHAT_ZEPHYR;
    if (strstr(j, "[INST]")) return strstr(j, "<<SYS>>") ? CHAT_LLAMA2 : CHAT_MISTRAL;
    return CHAT_DEFAULT;
}

const char *chat_style_name(enum chat_style s)
{
    static const char *names[] = {"default", "llama-2", "mistral", "zephyr", "chatml", "llama-3"};
    return names[s];
}

/* Text accumulates until a BOS/EOS id or the end, then is encoded as one
 * segment: the way transformers splits a rendered template at special tokens. */
struct out {
    const tokenizer *tok;
    int32_t *ids;
    int n, cap;
    struct strbuf text;
};

static void push_id(struct out *o, int32_t id)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 256;
        o->ids = xrealloc(o->ids, o->cap * sizeof(int32_t));
    }
    o->ids[o->n++] = id;
}

static void flush_text(struct out *o)
{
    if (!o->text.len) return;
    int32_t *tmp;
    int k = tok_encode_all(o->tok, o->text.s, o->text.len, false, &tmp);
    CHECK(k >= 0);
    for (int i = 0; i < k; i++) push_id(o, tmp[i]);
    free(tmp);
    strbuf_reset(&o->text);
}

static void put_id(struct out *o, int32_t id)
{
    if (id < 0) return;
    flush_text(o);
    push_id(o, id);
}

static void put_text(struct out *o, const char *a, const char *b, const char *c)
{
    const char *parts[] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (parts[i]) strbuf_append(&o->text, parts[i], strlen(parts[i]));
}

/* content.strip(), as the Llama-2 and Llama-3 templates do (into buf) */
static const char *strip(const char *s, char **buf)
{
    while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\t' || s[n - 1] == '\r')) n--;
    free(*buf);
    *buf = xmalloc(n + 1);
    memcpy(*buf, s, n);
    (*buf)[n] = '\0';
    return *buf;
}

/* One message in style s; system: the system text the Llama-2 and Mistral
 * formats fold into the first user turn (NULL when none or used). */
static void render_message(struct out *o, enum chat_style s, const struct chat_msg *msg, const char **system,
                           char **tmp)
{
    const char *role = msg->role, *c = msg->content;
    bool user = !strcmp(role, "user"), asst = !strcmp(role, "assistant");
    int bos = tok_bos_id(o->tok), eos = tok_eos_id(o->tok);
    char *merged = NULL;
    if (user && *system && (s == CHAT_LLAMA2 || s == CHAT_MISTRAL)) {
        size_t len = strlen(*system) + strlen(c) + 32;
        merged = xmalloc(len);
        snprintf(merged, len, s == CHAT_LLAMA2 ? "<<SYS>>\n%s\n<</SYS>>\n\n%s" : "%s\n\n%s", *system, c);
        c = merged;
    }
    if (user) *system = NULL; /* folded into the first user turn only */
    switch (s) {
    case CHAT_LLAMA2:
        if (user) {
            put_id(o, bos);
            put_text(o, "[INST] ", strip(c, tmp), " [/INST]");
        } else if (asst) {
            put_text(o, " ", strip(c, tmp), " ");
            put_id(o, eos);
        }
        break;
    case CHAT_MISTRAL:
        if (user) put_text(o, "[INST] ", c, " [/INST]");
        else if (asst) {
            put_text(o, c, NULL, NULL);
            put_id(o, eos);
        }
        break;
    case CHAT_ZEPHYR:
        put_text(o, "<|", role, "|>\n");
        put_text(o, c, NULL, NULL);
        put_id(o, eos);
        put_text(o, "\n", NULL, NULL);
        break;
    case CHAT_CHATML:
        put_text(o, "<|im_start|>", role, "\n");
        put_text(o, c, "<|im_end|>\n", NULL);
        break;
    case CHAT_LLAMA3:
        put_text(o, "<|start_header_id|>", role, "<|end_header_id|>\n\n");
        put_text(o, strip(c, tmp), "<|eot_id|>", NULL);
        break;
    case CHAT_DEFAULT:
        put_text(o, user ? "User: " : asst ? "Assistant: " : "", c, user || asst ? "\n" : "\n\n");
        break;
    }
    free(merged);
}

int chat_render(enum chat_style s, const struct chat_msg *m, int n, const tokenizer *tok, int32_t **ids)
{
    struct out o = {.tok = tok};
    const char *system = NULL;
    int first = 0;
    if (n && !strcmp(m[0].role, "system") && (s == CHAT_LLAMA2 || s == CHAT_MISTRAL)) {
        system = m[0].content; /* folded into the first user turn */
        first = 1;
    }
    char *tmp = NULL;
    if (s == CHAT_MISTRAL || s == CHAT_DEFAULT) put_id(&o, tok_bos_id(tok));
    if (s == CHAT_LLAMA3) put_text(&o, "<|begin_of_text|>", NULL, NULL);
    for (int i = first; i < n; i++) render_message(&o, s, &m[i], &system, &tmp);
    switch (s) {
    case CHAT_ZEPHYR: put_text(&o, "<|assistant|>\n", NULL, NULL); break;
    case CHAT_CHATML: put_text(&o, "<|im_start|>assistant\n", NULL, NULL); break;
    case CHAT_LLAMA3: put_text(&o, "<|start_header_id|>assistant<|end_header_id|>\n\n", NULL, NULL); break;
    case CHAT_DEFAULT: put_text(&o, "Assistant:", NULL, NULL); break;
    default: break;
    }
    flush_text(&o);
    strbuf_free(&o.text);
    free(tmp);
    *ids = o.ids ? o.ids : xmalloc(sizeof(int32_t));
    return o.n;
}
