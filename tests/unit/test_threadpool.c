/* test_threadpool.c: every task of every job runs exactly once, on a thread
 * id in range that no other task holds at the same time, and has finished
 * when threadpool_run returns: over many jobs of varying task counts, with
 * tasks that sleep, and with more threads than cores (workers descheduled
 * while the caller needs them). Most run with the workers kept in every
 * job (threadpool_set_adaptive false), which the contention of the tests
 * themselves would otherwise switch off; the last checks that under
 * contention the pool does switch them off. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "../../engine/threadpool.h"

#define MAX_TASKS 512
#define MAX_THREADS 64

struct job {
    atomic_int runs[MAX_TASKS];
    atomic_int in_use[MAX_THREADS]; /* a thread id runs one task at a time */
    atomic_long by_workers;         /* tasks run by threads other than the caller */
    atomic_int bad_thread;
    int n_threads;
    int sleepy;                     /* the task that sleeps, or -1 */
    long sleep_ns;
};

static void task(void *ctx, int i, int thread)
{
    struct job *j = ctx;
    if (thread < 0 || thread >= j->n_threads || atomic_exchange(&j->in_use[thread], 1)) {
        atomic_store(&j->bad_thread, 1);
        return;
    }
    if (i == j->sleepy) {
        struct timespec t = {0, j->sleep_ns};
        nanosleep(&t, NULL);
    }
    atomic_fetch_add(&j->runs[i], 1);
    if (thread) atomic_fetch_add(&j->by_workers, 1);
    atomic_store(&j->in_use[thread], 0);
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* n_jobs jobs of 0..max_tasks tasks on n_threads, workers kept in every job;
 * every sleep_every-th job (0: none) has one task that sleeps sleep_ns.
 * Returns the tasks that workers ran. */
static long run_jobs(int n_threads, int n_jobs, int max_tasks, int sleep_every, long sleep_ns)
{
    threadpool *p = threadpool_create(n_threads);
    cr_assert_eq(threadpool_size(p), n_threads);
    threadpool_set_adaptive(p, false);
    struct job *j = calloc(1, sizeof(*j));
    j->n_threads = n_threads;
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)n_threads;
    for (int k = 0; k < n_jobs; k++) {
        int n = k < 4 ? k : (int)(xorshift(&rng) % (uint64_t)(max_tasks + 1)); /* 0, 1, 2, 3, then any */
        for (int i = 0; i < n; i++) atomic_store(&j->runs[i], 0);
        j->sleepy = sleep_every && k % sleep_every == 0 && n > 0 ? (int)(xorshift(&rng) % (uint64_t)n) : -1;
        j->sleep_ns = sleep_ns;
        threadpool_run(p, task, j, n);
        /* right after the return: every task has finished, once */
        for (int i = 0; i < n; i++)
            cr_assert_eq(atomic_load(&j->runs[i]), 1, "%d threads, job %d of %d tasks: task %d ran %d times",
                         n_threads, k, n, i, atomic_load(&j->runs[i]));
        cr_assert_eq(atomic_load(&j->bad_thread), 0, "%d threads, job %d: a thread id out of range or shared",
                     n_threads, k);
    }
    threadpool_destroy(p);
    long by_workers = atomic_load(&j->by_workers);
    free(j);
    return by_workers;
}

Test(threadpool, every_task_once, .timeout = 60)
{
    cr_assert_eq(run_jobs(1, 1000, 300, 0, 0), 0);
    int threads[] = {2, 3, 4, 8};
    for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        long by_workers = run_jobs(threads[t], 3000, 300, 0, 0);
        cr_log_info("threadpool every_task_once: %d threads: workers ran %ld tasks", threads[t], by_workers);
    }
}

/* a worker (or the caller) inside a long task: the others wait for it, and
 * the next job neither starts early nor loses tasks */
Test(threadpool, sleeping_task, .timeout = 60)
{
    cr_assert_gt(run_jobs(2, 300, 16, 1, 1000000), 0, "the worker ran no task");
    run_jobs(4, 300, 64, 3, 2000000);
    run_jobs(3, 2000, 40, 50, 5000000);
}

/* Pinned to one core, all but one of the threads are descheduled at any
 * time: jobs still complete, the caller waiting only for tasks a worker
 * claimed, not for every worker to wake up (which made each job take a time
 * slice of every worker: the former pool timed out here). */
Test(threadpool, workers_descheduled, .timeout = 60)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
    long by_workers = run_jobs(8, 5000, 24, 0, 0) + run_jobs(32, 2000, 100, 100, 1000000);
    cr_log_info("threadpool workers_descheduled: workers ran %ld tasks", by_workers);
}

struct count {
    atomic_long by_workers;
};

static void count_task(void *ctx, int i, int thread)
{
    (void)i;
    struct count *c = ctx;
    volatile double x = 1;
    for (int k = 0; k < 300; k++) x = x * 1.0000001 + 1e-9; /* ~1 us */
    if (thread) atomic_fetch_add(&c->by_workers, 1);
}

/* With four threads on one core the caller is preempted by its own workers:
 * the pool soon runs the jobs alone (tasks on thread 0), and the last
 * 20,000 jobs leave the workers few tasks. */
Test(threadpool, contention_runs_jobs_alone, .timeout = 60)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
    threadpool *p = threadpool_create(4);
    struct count first = {0}, last = {0};
    for (int k = 0; k < 20000; k++) threadpool_run(p, count_task, &first, 8);
    for (int k = 0; k < 20000; k++) threadpool_run(p, count_task, &last, 8);
    threadpool_destroy(p);
    cr_log_info("threadpool contention_runs_jobs_alone: workers ran %ld then %ld of 160000 tasks",
                atomic_load(&first.by_workers), atomic_load(&last.by_workers));
    cr_assert_lt(atomic_load(&last.by_workers), 160000 / 10);
}
