/* ranks.c: loading a model on every rank of a tensor-parallel job: rank 0
 * decides the limits and broadcasts them, each rank loads its slice and
 * checks that it read rank 0's model; ranks other than 0 then follow rank
 * 0's steps (engine_worker_run). */
#include <string.h>

#include "comm.h"
#include "engine_impl.h"
#include "../base/err.h"

int engine__load_on_every_rank(model **m, const char *dir, struct backend *b, struct model_params *mp)
{
    comm_bcast(mp, sizeof(*mp));
    mp->rank = comm_rank();
    int rc = model_load(m, dir, b, mp);
    if (rc || mp->world == 1) return rc;
    const struct model_config *c = model_get_config(*m);
    int32_t mine[8] = {c->n_layers, c->hidden_size, c->intermediate_size, c->n_heads, c->n_kv_heads, c->head_dim,
                       c->vocab_size, c->max_pos}, first[8];
    memcpy(first, mine, sizeof(mine));
    comm_bcast(first, sizeof(first)); /* rank 0's shape */
    if (memcmp(mine, first, sizeof(mine))) {
        model_destroy(*m);
        *m = NULL;
        return err_set(ERR_MODEL, "rank %d: %s/config.json differs from rank 0's (layers, sizes, heads or vocab)",
                       mp->rank, dir);
    }
    return 0;
}

int engine_worker_run(const char *dir, struct backend *b)
{
    struct model_params mp = {0};
    model *m;
    int rc = engine__load_on_every_rank(&m, dir, b, &mp);
    if (rc) return rc;
    rc = model_serve_worker(m);
    model_destroy(m);
    return rc;
}

