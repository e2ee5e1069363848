/* oai_render.c: the OpenAI response bodies of oai_render.h. */
#include "oai_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "../base/err.h"
#include "sse.h"

void oai_head_init(struct oai_head *h, bool chat, bool include_usage, const char *model)
{
    h->chat = chat;
    h->include_usage = include_usage;
    h->model = model;
    h->created = (long)time(NULL);
    snprintf(h->id, sizeof(h->id), "%s-%llx%06x", chat ? "chatcmpl" : "cmpl", (unsigned long long)uv_hrtime(),
             (unsigned)rand() & 0xffffff);
}

json_t *oai_text(const char *s, size_t n)
{
    if (utf8_valid_prefix(s, n) == n) return json_stringn(s, n);
    char *buf = xmalloc(3 * n + 1);
    size_t k = utf8_sanitize(buf, 3 * n + 1, s, n);
    json_t *j = json_stringn(buf, k);
    free(buf);
    return j;
}

/* The text a token stands for: SentencePiece's "▁" as a space; a byte
 * fallback piece as its byte (ASCII) or "bytes:\xNN", as OpenAI shows bytes
 * that are not text. */
json_t *oai_token(const tokenizer *tok, int32_t id, float lp, bool with_bytes)
{
    char out[64];
    const char *piece = tok_id_to_piece(tok, id);
    if (!piece) piece = "";
    size_t k = 0;
    unsigned int byte;
    bool is_byte = sscanf(piece, "<0x%2X>", &byte) == 1 && strlen(piece) == 6;
    if (is_byte) {
        if (byte < 0x80) out[k++] = (char)byte;
        else k = (size_t)snprintf(out, sizeof(out), "bytes:\\x%02x", byte);
    } else {
        for (const char *p = piece; *p && k + 4 < sizeof(out);) {
            if (!strncmp(p, "\xE2\x96\x81", 3)) { /* U+2581, SentencePiece's space */
                out[k++] = ' ';
                p += 3;
            } else
                out[k++] = *p++;
        }
    }
    out[k] = '\0';
    json_t *e = json_object();
    json_object_set_new(e, "token", oai_text(out, k));
    json_object_set_new(e, "logprob", json_real(isfinite(lp) ? lp : -9999.0));
    if (with_bytes) {
        json_t *b = json_array();
        if (is_byte) json_array_append_new(b, json_integer(byte));
        else
            for (size_t i = 0; i < k; i++) json_array_append_new(b, json_integer((unsigned char)out[i]));
        json_object_set_new(e, "bytes", b);
    }
    return e;
}

json_t *oai_logprobs(bool chat, json_t *entries)
{
    if (chat) return json_pack("{s:O}", "content", entries);
    json_t *o = json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs", "top_logprobs", "text_offset");
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e) {
        json_array_append(json_object_get(o, "tokens"), json_object_get(e, "token"));
        json_array_append(json_object_get(o, "token_logprobs"), json_object_get(e, "logprob"));
        json_array_append(json_object_get(o, "text_offset"), json_object_get(e, "text_offset"));
        json_t *top = json_object(), *t;
        size_t k;
        json_array_foreach(json_object_get(e, "top_logprobs"), k, t)
            json_object_set(top, json_string_value(json_object_get(t, "token")), json_object_get(t, "logprob"));
        json_array_append_new(json_object_get(o, "top_logprobs"), top);
    }
    return o;
}

json_t *oai_usage(int prompt_tokens, int completion_tokens, int cached_tokens)
{
    json_t *u = json_pack("{s:i, s:i, s:i}", "prompt_tokens", prompt_tokens, "completion_tokens", completion_tokens,
                          "total_tokens", prompt_tokens + completion_tokens);
    if (cached_tokens)
        json_object_set_new(u, "prompt_tokens_details", json_pack("{s:i}", "cached_tokens", cached_tokens));
    return u;
}

json_t *oai_chunk(const struct oai_head *h, json_t *choices, json_t *usage)
{
    json_t *c = json_pack("{s:s, s:s, s:I, s:s}", "id", h->id, "object",
                          h->chat ? "chat.completion.chunk" : "text_completion", "created", (json_int_t)h->created,
                          "model", h->model);
    if (usage || h->include_usage) json_object_set_new(c, "usage", usage ? usage : json_null());
    json_object_set_new(c, "choices", choices);
    return c;
}

json_t *oai_chunk_delta(int index, json_t *delta, json_t *logprobs, const char *finish)
{
    return json_pack("{s:i, s:o, s:o, s:o}", "index", index, "delta", delta ? delta : json_object(), "logprobs",
                     logprobs ? logprobs : json_null(), "finish_reason", finish ? json_string(finish) : json_null());
}

json_t *oai_chunk_choice(const struct oai_head *h, int index, const char *text, size_t n, json_t *logprobs,
                         const char *finish)
{
    if (h->chat)
        return oai_chunk_delta(index, n || !finish ? json_pack("{s:o}", "content", oai_text(text, n)) : NULL, logprobs,
                               finish);
    return json_pack("{s:i, s:o, s:o, s:o}", "index", index, "text", oai_text(text, n), "logprobs",
                     logprobs ? logprobs : json_null(), "finish_reason", finish ? json_string(finish) : json_null());
}

json_t *oai_chunk_role(int index)
{
    return json_pack("{s:i, s:{s:s, s:s}, s:n, s:n}", "index", index, "delta", "role", "assistant", "content", "",
                     "logprobs", "finish_reason");
}

json_t *oai_reply_choice(const struct oai_head *h, int index, const char *text, size_t n, json_t *logprobs,
                         const char *finish)
{
    if (h->chat)
        return oai_reply_message(index, json_pack("{s:s, s:o}", "role", "assistant", "content", oai_text(text, n)),
                                 logprobs, finish);
    return json_pack("{s:i, s:o, s:o, s:s}", "index", index, "text", oai_text(text, n), "logprobs",
                     logprobs ? logprobs : json_null(), "finish_reason", finish);
}

json_t *oai_reply_message(int index, json_t *message, json_t *logprobs, const char *finish)
{
    return json_pack("{s:i, s:o, s:o, s:s}", "index", index, "message", message, "logprobs",
                     logprobs ? logprobs : json_null(), "finish_reason", finish);
}

json_t *oai_reply(const struct oai_head *h, json_t *choices, json_t *usage)
{
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:o}", "id", h->id, "object",
                     h->chat ? "chat.completion" : "text_completion", "created", (json_int_t)h->created, "model",
                     h->model, "choices", choices, "usage", usage);
}

char *oai_error_json(const struct oai_error *e)
{
    json_t *root = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", e->message, "type", e->type, "param",
                             e->param[0] ? json_string(e->param) : json_null(), "code",
                             e->code ? json_string(e->code) : json_null());
    char *s = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    /* only a bug of ours gets here (every field is valid UTF-8): still an error body */
    return s ? s : xstrdup("{\"error\":{\"message\":\"internal error\",\"type\":\"server_error\",\"param\":null,"
                           "\"code\":null}}");
}

char *oai_sse(json_t *event, size_t *len)
{
    char *t = event ? json_dumps(event, JSON_COMPACT) : NULL;
    json_decref(event);
    if (!t) { /* a bug of ours: say so in the stream rather than send nothing */
        struct oai_error e;
        oai_fail(&e, 500, NULL, NULL, "a chunk could not be encoded");
        t = oai_error_json(&e);
    }
    char *ev = sse_data(t, strlen(t), len);
    free(t);
    return ev;
}
