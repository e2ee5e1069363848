/* comm.h: the tensor-parallel world, over MPI.
 *
 * A process started by a launcher (mpirun or mpiexec: OpenMPI's, MPICH's or
 * a PMI one) joins the MPI job in comm_init(); world size = tensor-parallel
 * size and each rank holds a slice of every layer. Started alone, it is
 * rank 0 of a world of 1 and MPI is never initialised.
 *
 * Rank 0 runs the server, the scheduler and the sampler and broadcasts each
 * step plan; the other ranks run model_serve_worker(). Every collective is
 * called by all ranks in the same order. Host buffers only: the CUDA backend
 * stages device buffers through the host for now. */
#ifndef TESSERA_COMM_H
#define TESSERA_COMM_H

#include <stddef.h>
#include <stdint.h>

/* Joins the MPI job when a launcher started this process. 0, or a negative
 * ERR_* with err_msg() set (MPI failed to start, or lacks thread support). */
int comm_init(int *argc, char ***argv);
void comm_finalize(void);
/* Ends every rank of the job now with this exit code (after a message). */
void comm_abort(int code);

int comm_rank(void);
int comm_world(void);
/* This rank's index among the ranks on its node (picks the GPU). */
int comm_local_rank(void);

/* buf (bytes long) on every rank becomes rank 0's. */
void comm_bcast(void *buf, size_t bytes);
/* As comm_bcast, for a worker waiting for rank 0 between steps: polls with
 * growing sleeps (up to 1 ms) instead of spinning while the server idles. */
void comm_bcast_idle(void *buf, size_t bytes);
/* buf[n] = the sum over ranks of buf[n], added in rank order, so every rank
 * gets the same bits whatever the world size. */
void comm_all_reduce_sum(float *buf, int64_t n);

#endif
