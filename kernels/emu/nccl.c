/* nccl.c: the NCCL calls the CUDA backend makes, for the emulator. Device
 * memory is host memory here, so the all-reduce is the host one the engine
 * registers (emu_nccl_set_all_reduce: comm's MPI all-reduce, the same sum in
 * rank order on every rank); the unique id only has to say that rank 0 sent
 * it. Kernels know nothing of the engine: the sum comes as a callback. */
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "emu.h"

#define EMU_ID "tessera-emu-nccl"

struct ncclComm {
    int rank, nranks;
};

static void (*all_reduce_sum)(float *buf, int64_t n);

void emu_nccl_set_all_reduce(void (*sum)(float *buf, int64_t n)) { all_reduce_sum = sum; }

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    memset(id, 0, sizeof(*id));
    strcpy(id->internal, EMU_ID);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    if (nranks < 1 || rank < 0 || rank >= nranks || strcmp(id.internal, EMU_ID) || !all_reduce_sum)
        return ncclInvalidArgument;
    *comm = calloc(1, sizeof(**comm));
    if (!*comm) return ncclSystemError;
    (*comm)->rank = rank;
    (*comm)->nranks = nranks;
    return ncclSuccess;
}

struct all_reduce {
    const void *send;
    void *recv;
    size_t count;
};

static void run_all_reduce(void *arg)
{
    const struct all_reduce *a = arg;
    if (a->send != a->recv) memcpy(a->recv, a->send, a->count * sizeof(float));
    all_reduce_sum(a->recv, (int64_t)a->count);
}

/* Stream work (emu.h): at once, or recorded while the stream captures. */
ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream)
{
    if (!comm || datatype != ncclFloat32 || op != ncclSum) return ncclInvalidArgument;
    struct all_reduce a = {sendbuff, recvbuff, count};
    emu_stream_work(stream, run_all_reduce, &a, sizeof(a), NULL, NULL);
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm)
{
    free(comm);
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result)
{
    return result == ncclSuccess ? "no error (emulated NCCL)" : "invalid argument (emulated NCCL)";
}
