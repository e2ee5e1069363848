/* threadpool.c: spin-then-sleep workers fed through a generation counter. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "err.h"

#define SPIN_ITERS (1 << 17)

struct threadpool {
    int n_threads;
    pthread_t *threads;
    atomic_ulong generation;   /* bumped once per job */
    atomic_int next_task;
    atomic_int busy;           /* workers still inside the current job */
    atomic_int sleeping;
    atomic_bool stop;
    int n_tasks;
    threadpool_fn fn;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

struct worker_arg {
    threadpool *p;
    int id;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_tasks(threadpool *p, int thread)
{
    int i;
    while ((i = atomic_fetch_add(&p->next_task, 1)) < p->n_tasks) p->fn(p->ctx, i, thread);
}

static void *worker(void *arg)
{
    threadpool *p = ((struct worker_arg *)arg)->p;
    int id = ((struct worker_arg *)arg)->id;
    free(arg);
    unsigned long seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop) && spins < SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
        if (atomic_load(&p->generation) == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleeping, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = atomic_load(&p->generation);
        run_tasks(p, id);
        atomic_fetch_sub(&p->busy, 1);
    }
}

threadpool *threadpool_create(int n_threads)
{
    threadpool *p = xcalloc(1, sizeof(*p));
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->threads = xcalloc(p->n_threads, sizeof(pthread_t));
    for (int i = 1; i < p->n_threads; i++) {
        struct worker_arg *a = xmalloc(sizeof(*a));
        a->p = p;
        a->id = i;
        CHECK(pthread_create(&p->threads[i], NULL, worker, a) == 0);
    }
    return p;
}

void threadpool_destroy(threadpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int threadpool_size(const threadpool *p) { return p->n_threads; }

void threadpool_run(threadpool *p, threadpool_fn fn, void *ctx, int n_tasks)
{
    if (p->n_threads == 1 || n_tasks <= 1) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store(&p->next_task, 0);
    atomic_store(&p->busy, p->n_threads - 1);
    atomic_fetch_add(&p->generation, 1);
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, 0);
    while (atomic_load(&p->busy) > 0) cpu_relax();
}

/* The cores this process may run on: mpirun binds each rank to its own,
 * taskset and containers narrow them too. */
int threadpool_default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}
