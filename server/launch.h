/* launch.h: the one way every command loads a model: the tokenizer (checked
 * against the model's vocabulary), the backend the options name, and the
 * engine; and what ranks other than 0 of a tensor-parallel job run instead.
 * Used by generate, bench and serve (on serve's loading thread). */
#ifndef TESSERA_LAUNCH_H
#define TESSERA_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>

#include "../engine/engine.h"
#include "../tokenizer/tokenizer.h"
#include "cli.h"

struct launched {
    tokenizer *tok;      /* NULL unless asked for */
    struct backend *b;
    engine *eng;
};

/* Loads dir with the given options; with_tokenizer: also its tokenizer. 0,
 * or -1 with one line in err naming the file and the problem (everything
 * already loaded is freed). */
int launch(struct launched *l, const char *dir, const struct cli_backend *bk, const struct engine_config *ec,
           bool with_tokenizer, char *err, size_t cap);
/* Frees what launch loaded (the engine first: it stops its thread). */
void launch_free(struct launched *l);

/* Ranks other than 0 run this instead of their command (after parsing the
 * same options): load the model's slice on the backend, follow rank 0's
 * steps. An exit code. */
int launch_worker(const char *dir, const struct cli_backend *bk);

#endif
