/* chat_prompt.c: a chat request through the model's Jinja template (see
 * chat_prompt.h). */
#include "chat_prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/err.h"

/* text compiled into *out; a failure is a warning, and the style stays. */
static void compile(jinja_template **out, const char *text, const char *source)
{
    char why[512];
    *out = jinja_compile(text, strlen(text), why, sizeof(why));
    if (!*out)
        fprintf(stderr, "tessera: warning: %s: the chat template cannot be rendered here (%s); using the built-in "
                        "format its markers name\n", source, why);
}

int chat_format_load(struct chat_format *f, const char *file, const tokenizer *tok)
{
    *f = (struct chat_format){.style = CHAT_DEFAULT};
    struct strbuf b = {0};
    const char *text = tok_chat_template(tok, false), *tools = tok_chat_template(tok, true);
    snprintf(f->source, sizeof(f->source), "%s", "the model's chat template");
    if (file) {
        int rc = strbuf_read_file(&b, file, 1 << 20);
        if (rc || (b.len && memchr(b.s, '\0', b.len))) {
            strbuf_free(&b);
            if (rc == -1) return err_set(ERR_IO, "%s: cannot be read", file);
            return err_set(ERR_IO, "%s: not a text file of at most %d bytes", file, 1 << 20);
        }
        text = tools = b.s ? b.s : "";
        snprintf(f->source, sizeof(f->source), "%s", file);
    }
    if (text) {
        f->style = chat_style_detect(text);
        f->tools = tool_format_detect(tools ? tools : text);
        compile(&f->tmpl, text, f->source);
        if (f->tmpl && tools && tools != text) compile(&f->tool_tmpl, tools, f->source);
    }
    strbuf_free(&b);
    return 0;
}

void chat_format_free(struct chat_format *f)
{
    jinja_free(f->tmpl);
    jinja_free(f->tool_tmpl);
    f->tmpl = f->tool_tmpl = NULL;
}

const char *chat_format_name(const struct chat_format *f, char *buf, size_t cap)
{
    if (f->tmpl) snprintf(buf, cap, "jinja (%s)", f->source);
    else snprintf(buf, cap, "%s", chat_style_name(f->style));
    return buf;
}

static void put_token(json_t *ctx, const char *name, const tokenizer *tok, int id)
{
    const char *piece = id >= 0 ? tok_id_to_piece(tok, id) : NULL;
    if (piece) json_object_set_new(ctx, name, json_string(piece));
}

/* An assistant's tool_calls as templates expect them (vLLM and transformers
 * agree): arguments as an object when the string holds one, else the string. */
static json_t *template_calls(json_t *calls)
{
    json_t *out = json_deep_copy(calls), *c;
    size_t i;
    json_array_foreach(out, i, c) {
        json_t *f = json_object_get(c, "function");
        json_t *args = json_loads(json_string_value(json_object_get(f, "arguments")), JSON_DECODE_ANY, NULL);
        if (json_is_object(args)) json_object_set_new(f, "arguments", args);
        else json_decref(args);
    }
    return out;
}

/* The template's variables: messages (content as text, parts joined as
 * oai_parse joins them; tool_calls, tool_call_id and name as sent), tools,
 * add_generation_prompt (default true), bos_token, eos_token and
 * chat_template_kwargs (which cannot replace the others). NULL with *err
 * when a field has the wrong type. */
static json_t *context(const struct oai_request *q, const tokenizer *tok, char *err, size_t cap)
{
    json_t *kw = json_object_get(q->root, "chat_template_kwargs");
    json_t *agp = json_object_get(q->root, "add_generation_prompt");
    if ((kw && !json_is_object(kw) && !json_is_null(kw)) || (agp && !json_is_boolean(agp) && !json_is_null(agp))) {
        snprintf(err, cap, "'chat_template_kwargs' must be an object, 'add_generation_prompt' true or false");
        return NULL;
    }
    json_t *ctx = json_object(), *msgs = json_array(), *sent = json_object_get(q->root, "messages");
    for (int i = 0; i < q->n_msgs; i++) {
        json_t *m = json_object(), *orig = json_array_get(sent, (size_t)i), *v;
        json_object_set_new(m, "role", json_string(q->msgs[i].role));
        json_object_set_new(m, "content", json_string(q->msgs[i].content));
        if (json_is_array(v = json_object_get(orig, "tool_calls"))) json_object_set_new(m, "tool_calls", template_calls(v));
        if (json_is_string(v = json_object_get(orig, "tool_call_id"))) json_object_set(m, "tool_call_id", v);
        if (json_is_string(v = json_object_get(orig, "name"))) json_object_set(m, "name", v);
        json_array_append_new(msgs, m);
    }
    json_object_set_new(ctx, "messages", msgs);
    if (q->tools) json_object_set(ctx, "tools", q->tools);
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(!json_is_false(agp)));
    put_token(ctx, "bos_token", tok, tok_bos_id(tok));
    put_token(ctx, "eos_token", tok, tok_eos_id(tok));
    if (json_is_object(kw)) json_object_update_missing(ctx, kw);
    return ctx;
}

int chat_prompt(const struct chat_format *f, const struct oai_request *q, const tokenizer *tok, int32_t **ids,
                struct strbuf *text, char *err, size_t cap)
{
    if (!f->tmpl) return chat_render(f->style, q->msgs, q->n_msgs, tok, ids);
    json_t *ctx = context(q, tok, err, cap);
    if (!ctx) return -1;
    const jinja_template *t = f->tool_tmpl && q->tools ? f->tool_tmpl : f->tmpl;
    struct strbuf own = {0}, *out = text ? text : &own;
    int rc = jinja_render(t, ctx, time(NULL), out, err, cap);
    json_decref(ctx);
    int n = rc ? -1 : tok_encode_all(tok, out->s ? out->s : "", out->len, false, ids);
    if (!rc && n < 0) snprintf(err, cap, "the rendered prompt cannot be tokenized");
    strbuf_free(&own);
    return n;
}
