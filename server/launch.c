/* launch.c: loading of launch.h. */
#include "launch.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../engine/backend.h"
#include "../engine/comm.h"
#include "../base/err.h"
#include "../base/gguf.h"

/* The backend of the options: NULL with err_msg() set when the device
 * cannot be used. */
static struct backend *backend_of(const struct cli_backend *o)
{
    if (!o->cuda && o->kv_fp8) {
        err_set(ERR_INVALID, "--kv-cache-dtype fp8 needs --device cuda (the CPU backend keeps its cache in float32)");
        return NULL;
    }
    if (!o->cuda) return backend_cpu_create((int)o->threads);
#ifdef TESSERA_CUDA
    /* a GPU per rank of the node */
    return backend_cuda_create(comm_local_rank(), o->dtype, o->kv_fp8 ? DTYPE_F8_E4M3 : o->dtype, o->gpu_mem_util,
                               o->enforce_eager);
#else
    err_set(ERR_UNSUPPORTED, "this build has no CUDA backend: build with make CUDA=1 (or make emu for the "
            "emulated one)");
    return NULL;
#endif
}

/* Whether a GGUF file carries a tokenizer (tokenizer.ggml.model); a file
 * that does not parse counts as one, so that its loader names the problem. */
static bool gguf_has_tokenizer(const char *path)
{
    gguf *g;
    if (gguf_open(&g, path, false)) return true;
    bool has = gguf_find_key(g, "tokenizer.ggml.model") >= 0;
    gguf_close(g);
    return has;
}

/* The tokenizer of a model path: a folder's tokenizer.json or
 * tokenizer.model, else its one .gguf file's (tok_load); for a bare
 * FILE.gguf, the file's own tokenizer.ggml.* vocabulary, or when it has
 * none (files written with weights only), the tokenizer files beside it. */
static int load_tokenizer(tokenizer **tok, const char *path, char *err, size_t cap)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || gguf_has_tokenizer(path))
        return tok_load(tok, path, err, cap);
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof(dir), ".");
    else snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    return tok_load(tok, dir, err, cap);
}

int launch(struct launched *l, const char *dir, const struct cli_backend *bk, const struct engine_config *ec,
           bool with_tokenizer, char *err, size_t cap)
{
    *l = (struct launched){0};
    if (with_tokenizer && load_tokenizer(&l->tok, dir, err, cap)) return -1;
    struct engine_config c = *ec;
    c.eos_id = l->tok ? tok_eos_id(l->tok) : -1; /* the engine stops on it as on the model's */
    if (!(l->b = backend_of(bk)) || engine_create(&l->eng, dir, l->b, &c)) {
        snprintf(err, cap, "%s", err_msg());
        launch_free(l);
        return -1;
    }
    int vocab = engine_vocab_size(l->eng);
    if (l->tok && tok_vocab_size(l->tok) > vocab) {
        snprintf(err, cap, "%s/tokenizer.model: %d pieces but the model has vocab_size %d", dir,
                 tok_vocab_size(l->tok), vocab);
        launch_free(l);
        return -1;
    }
    return 0;
}

void launch_free(struct launched *l)
{
    engine_destroy(l->eng);
    if (l->b) l->b->ops->destroy(l->b);
    if (l->tok) tok_free(l->tok);
    *l = (struct launched){0};
}

int launch_worker(const char *dir, const struct cli_backend *bk)
{
    signal(SIGINT, SIG_IGN); /* mpirun passes signals to every rank: rank 0 decides when the job ends */
    signal(SIGTERM, SIG_IGN);
    struct backend *b = backend_of(bk);
    int rc = b ? engine_worker_run(dir, b) : -1;
    if (rc) fprintf(stderr, "tessera: rank %d: %s\n", comm_rank(), err_msg());
    if (b) b->ops->destroy(b);
    return rc ? EXIT_USAGE : 0;
}
