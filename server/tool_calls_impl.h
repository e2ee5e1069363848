/* tool_calls_impl.h: what tool_calls.c and tool_calls_json.c share (not an
 * API: the server includes tool_calls.h). */
#ifndef TESSERA_TOOL_CALLS_IMPL_H
#define TESSERA_TOOL_CALLS_IMPL_H

#include "tool_calls.h"

/* Appends text to ev (merged into the last event when it continues it). */
void tool__emit_text(struct tool_events *ev, enum tool_event_kind kind, int index, const char *s, size_t n);
/* Points the events' text and name at buf (after the appends of a call). */
void tool__fix(struct tool_events *ev);
/* Checks js[0..n) as one call object {"name", "arguments"|"parameters"}
 * and emits it; false (nothing emitted) when it is not one. */
bool tool__emit_object(struct tool_parser *p, struct tool_events *ev, const char *js, size_t n);
/* The same for a JSON array of call objects: all of them or nothing. */
bool tool__emit_array(struct tool_parser *p, struct tool_events *ev, const char *js, size_t n);
/* A named call (mistral v11+): name[0..name_len) and its arguments object. */
bool tool__emit_named(struct tool_parser *p, struct tool_events *ev, const char *name, size_t name_len,
                      const char *js, size_t n);
/* The default id maker (ctx: a uint64_t state) and its seed. */
void tool__random_id(void *ctx, int index, char *out);
uint64_t tool__seed(uint64_t salt);

#endif
