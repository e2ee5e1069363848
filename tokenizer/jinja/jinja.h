/* jinja.h: Jinja2 templates as Hugging Face chat templates use them,
 * rendered as transformers renders them: a sandbox (no attribute of Python
 * objects beyond the data's own), trim_blocks and lstrip_blocks on, loop
 * controls, tojson without ASCII escaping, raise_exception and
 * strftime_now. A pure library: a template text and a JSON context in, a
 * string or one error message out; nothing of HTTP, the engine or the
 * tokenizer.
 *
 * The output is byte for byte what transformers' apply_chat_template
 * (tokenize=False) gives for the same inputs, and the error messages are
 * jinja2's and Python's (raise_exception's text, "'x' is undefined",
 * "'dict object' has no attribute 'y'", TypeErrors...): tests/jinja checks
 * every template of ../shared/chat_templates. Not supported: recursive for
 * loops, macro varargs/kwargs, template inheritance and includes (none of
 * which chat templates use); see tokenizer/jinja/jinja_internal.h for the
 * stages. */
#ifndef TESSERA_JINJA_H
#define TESSERA_JINJA_H

#include <jansson.h>
#include <stddef.h>
#include <time.h>

#include "../../base/strbuf.h"

typedef struct jinja_template jinja_template;

/* Parses text[0..len) (any bytes; \r\n and \r count as newlines, one
 * trailing newline is dropped, as jinja2 does). NULL with *err = one line
 * ("line L: what") when it is not a template we can run. The template is
 * immutable afterwards. */
jinja_template *jinja_compile(const char *text, size_t len, char *err, size_t err_cap);
void jinja_free(jinja_template *t); /* NULL: no-op */

/* Renders t with the top-level variables of ctx (a JSON object: messages,
 * tools, add_generation_prompt, bos_token, eos_token, and any extra
 * keyword arguments), appending the text to out. now is what strftime_now
 * formats (local time). Returns 0, or -1 with *err = the message
 * (raise_exception's own text, or what went wrong) and out unchanged. A
 * compiled template may be rendered by several threads at once; ctx is only
 * read, and must not change during the call. Work and output are bounded:
 * 20 million steps (evaluations, loop iterations, calls; scans of long
 * strings count by their length), 200 nested macro calls and 4000 nested
 * evaluations ("maximum recursion depth exceeded", as Python says), 64 MiB
 * written (captured text included), 512 MiB of memory: a template that
 * exceeds them fails with a message saying which. */
int jinja_render(const jinja_template *t, const json_t *ctx, time_t now, struct strbuf *out, char *err,
                 size_t err_cap);

#endif
