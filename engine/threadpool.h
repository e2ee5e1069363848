/* threadpool.h: a fixed pool of compute threads for the CPU backend.
 *
 * threadpool_run() hands out tasks 0..n_tasks-1 to the workers and the
 * calling thread, and returns when all are done. Workers spin briefly between
 * jobs (a decode step issues hundreds of small jobs) and then sleep; the
 * caller spins briefly for the workers' last tasks, then sleeps. While other
 * processes keep the cores busy, jobs run on the calling thread alone. */
#ifndef TESSERA_THREADPOOL_H
#define TESSERA_THREADPOOL_H

#include <stdbool.h>

typedef struct threadpool threadpool;

typedef void (*threadpool_fn)(void *ctx, int task, int thread);

/* n_threads counts the caller: n_threads - 1 workers are started. */
threadpool *threadpool_create(int n_threads);
void threadpool_destroy(threadpool *p);
int threadpool_size(const threadpool *p);
void threadpool_run(threadpool *p, threadpool_fn fn, void *ctx, int n_tasks);

/* Whether jobs run on the calling thread alone while the cores are contended
 * (the default: true); false keeps the workers in every job (tests). */
void threadpool_set_adaptive(threadpool *p, bool adaptive);

/* The CPUs this process may run on (its affinity), at least 1. */
int threadpool_default_threads(void);

#endif
