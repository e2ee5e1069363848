/* comm.c: the tensor-parallel world over MPI (comm.h). */
#include "comm.h"

#include <limits.h>
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../base/err.h"

static int g_rank, g_world = 1, g_local;
static bool g_mpi;
static float *g_gather; /* [world * n] for comm_all_reduce_sum */
static size_t g_gather_cap;

/* Variables that OpenMPI's, MPICH's (Hydra) and PMI/PMIx launchers set. */
static const char *env_of(const char *const *names)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) return v;
    }
    return NULL;
}

static const char *const SIZE_VARS[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", NULL};
static const char *const LOCAL_VARS[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMI_LOCAL_RANK",
                                         "SLURM_LOCALID", NULL};

int comm_init(int *argc, char ***argv)
{
    if (!env_of(SIZE_VARS)) return 0; /* not launched by mpirun: one rank, no MPI */
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        return err_set(ERR_UNSUPPORTED, "MPI_Init_thread failed");
    g_mpi = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_world);
    /* the engine thread makes the calls, one at a time */
    if (provided < MPI_THREAD_SERIALIZED)
        return err_set(ERR_UNSUPPORTED, "the MPI library gives thread level %d; tensor parallelism needs "
                       "MPI_THREAD_SERIALIZED", provided);
    const char *local = env_of(LOCAL_VARS);
    if (local) {
        g_local = atoi(local);
    } else { /* the rank among the processes sharing this node's memory */
        MPI_Comm node;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_rank, MPI_INFO_NULL, &node);
        MPI_Comm_rank(node, &g_local);
        MPI_Comm_free(&node);
    }
    return 0;
}

void comm_finalize(void)
{
    free(g_gather);
    g_gather = NULL;
    g_gather_cap = 0;
    if (g_mpi) MPI_Finalize();
    g_mpi = false;
}

void comm_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
    if (g_mpi) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int comm_rank(void) { return g_rank; }
int comm_world(void) { return g_world; }
int comm_local_rank(void) { return g_local; }

static int count_of(size_t n)
{
    CHECKF(n <= INT_MAX, "MPI message of %zu elements", n);
    return (int)n;
}

void comm_bcast(void *buf, size_t bytes)
{
    if (g_world > 1) MPI_Bcast(buf, count_of(bytes), MPI_BYTE, 0, MPI_COMM_WORLD);
}

void comm_bcast_idle(void *buf, size_t bytes)
{
    if (g_world == 1) return;
    MPI_Request req;
    MPI_Ibcast(buf, count_of(bytes), MPI_BYTE, 0, MPI_COMM_WORLD, &req);
    if (g_rank == 0) {
        MPI_Wait(&req, MPI_STATUS_IGNORE);
        return;
    }
    long ns = 1000;
    for (;;) {
        int done = 0;
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        struct timespec ts = {0, ns};
        nanosleep(&ts, NULL);
        if (ns < 1000000) ns *= 2;
    }
}

void comm_all_reduce_sum(float *buf, int64_t n)
{
    if (g_world == 1 || n <= 0) return;
    size_t need = (size_t)g_world * (size_t)n;
    if (need > g_gather_cap) {
        free(g_gather);
        g_gather = xmalloc(need * sizeof(float));
        g_gather_cap = need;
    }
    MPI_Allgather(buf, count_of((size_t)n), MPI_FLOAT, g_gather, count_of((size_t)n), MPI_FLOAT, MPI_COMM_WORLD);
    for (int64_t i = 0; i < n; i++) {
        float s = g_gather[i];
        for (int r = 1; r < g_world; r++) s += g_gather[(size_t)r * n + i];
        buf[i] = s;
    }
}
