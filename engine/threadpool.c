/* threadpool.c: workers claim tasks from one atomic word; everyone spins
 * briefly, then blocks; while the cores are contended, jobs run on the
 * caller alone.
 *
 * Jobs. p->job holds the current job as (n_tasks << 32 | next), next being
 * the first unclaimed task; between jobs next == n_tasks.
 * - The caller writes fn, ctx and done = 0, publishes (n, 0) (a seq_cst
 *   store, so a release), wakes sleeping workers and claims tasks itself.
 * - A task is claimed by a CAS of (n, i) -> (n, i + 1), only while i < n.
 *   While a task is unclaimed its job is unfinished, so the caller is still
 *   inside threadpool_run and fn and ctx (read after the CAS, which acquires
 *   the publishing store) are that job's: a worker that comes late claims
 *   an untouched task of the current job or nothing.
 * - Whoever finishes a task adds one to p->done; if that makes it n and the
 *   caller sleeps, it wakes the caller.
 * - Out of tasks to claim, the caller waits for done == n, that is only for
 *   tasks that workers claimed and have not finished, never for a worker to
 *   show up: it spins CALLER_SPIN_NS, then sleeps on done_cv.
 * - Idle workers spin WORKER_SPIN_NS for a job (a decode step issues
 *   hundreds of small jobs, most a few microseconds apart), then sleep on
 *   work_cv.
 * Lost wake-ups are ruled out Dekker-style: the sleeper announces itself
 * (sleeping, caller_sleeps), then checks its condition, under the mutex;
 * the waker changes the condition, then checks the announcement (all
 * seq_cst) and signals under the mutex.
 *
 * Contention. While another process keeps a core busy, the OS gives the
 * caller and the workers the remaining core(s) to share: a worker takes the
 * caller's time slices instead of adding a core (the caller got 55-62% of
 * a core, against 99% with one thread), or the OS stops it in the middle of
 * a task and the job waits milliseconds for it. So every CHECK_NS the
 * caller counts how often the OS preempted it (getrusage, ~0.5 us); if more
 * than twice, or if it waited long for a worker's task (STALL_NS and more
 * than twice its own part of the job), jobs run on the caller alone for
 * solo_ns (SOLO_MIN_NS, doubling while the contention lasts, up to
 * SOLO_MAX_NS), and the workers fall asleep. */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../base/err.h"

#define WORKER_SPIN_NS 100000
#define CALLER_SPIN_NS 50000
#define CHECK_NS 2000000
#define STALL_NS 500000
#define SOLO_MIN_NS 10000000
#define SOLO_MAX_NS 500000000

struct threadpool {
    int n_threads;
    pthread_t *threads;
    _Atomic uint64_t job;      /* n_tasks << 32 | next unclaimed task */
    atomic_int done;           /* tasks of the current job finished */
    atomic_int sleeping;       /* workers asleep on work_cv */
    atomic_bool caller_sleeps; /* the caller is asleep on done_cv */
    atomic_bool stop;
    threadpool_fn fn;
    void *ctx;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    /* the caller's contention check */
    bool adaptive;
    pthread_t checker;         /* the caller at the last check */
    long preempted;            /* its involuntary context switches then, or -1 */
    uint64_t check_at;         /* the next check */
    uint64_t solo_until;       /* jobs run on the caller alone until then */
    uint64_t solo_ns;          /* the next solo period */
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

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* One pause of a spin that ends at `until`; false once it is over (the clock
 * is read every 16 pauses: a pause takes 10-150 cycles depending on the CPU) */
static bool spin(int *k, uint64_t until)
{
    cpu_relax();
    return ++*k % 16 != 0 || now_ns() < until;
}

/* Claims and runs tasks of the current job until none is left unclaimed. */
static void run_tasks(threadpool *p, int thread)
{
    uint64_t w = atomic_load(&p->job);
    while ((uint32_t)w < (uint32_t)(w >> 32)) {
        if (!atomic_compare_exchange_weak(&p->job, &w, w + 1)) continue; /* w reloaded */
        p->fn(p->ctx, (int)(uint32_t)w, thread);
        if (atomic_fetch_add(&p->done, 1) + 1 == (int)(w >> 32) && atomic_load(&p->caller_sleeps)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
        w = atomic_load(&p->job);
    }
}

static bool worker_wanted(threadpool *p)
{
    uint64_t w = atomic_load(&p->job);
    return (uint32_t)w < (uint32_t)(w >> 32) || atomic_load(&p->stop);
}

static void *worker(void *arg)
{
    threadpool *p = ((struct worker_arg *)arg)->p;
    int id = ((struct worker_arg *)arg)->id;
    free(arg);
    for (;;) {
        uint64_t until = now_ns() + WORKER_SPIN_NS;
        int k = 0;
        while (!worker_wanted(p) && spin(&k, until)) {}
        if (!worker_wanted(p)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleeping, 1);
            while (!worker_wanted(p)) pthread_cond_wait(&p->work_cv, &p->mu);
            atomic_fetch_sub(&p->sleeping, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        run_tasks(p, id);
    }
}

threadpool *threadpool_create(int n_threads)
{
    threadpool *p = xcalloc(1, sizeof(*p));
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    p->adaptive = true;
    p->preempted = -1;
    p->solo_ns = SOLO_MIN_NS;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
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
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n_threads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p->threads);
    free(p);
}

int threadpool_size(const threadpool *p) { return p->n_threads; }

void threadpool_set_adaptive(threadpool *p, bool adaptive)
{
    p->adaptive = adaptive;
    p->solo_until = 0;
}

/* Jobs run on the caller alone from t for the next solo period. */
static void go_solo(threadpool *p, uint64_t t)
{
    p->solo_until = t + p->solo_ns;
    p->solo_ns = p->solo_ns * 2 < SOLO_MAX_NS ? p->solo_ns * 2 : SOLO_MAX_NS;
    p->preempted = -1; /* after it, a new count starts */
    p->check_at = 0;
}

/* Whether the caller runs a job starting at t alone (see Contention). */
static bool solo(threadpool *p, uint64_t t)
{
    if (!p->adaptive) return false;
    if (t < p->solo_until) return true;
    if (t < p->check_at) return false;
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    /* judged over CHECK_NS to 2 x CHECK_NS of the same caller's jobs */
    if (p->preempted >= 0 && t < p->check_at + CHECK_NS && pthread_equal(p->checker, pthread_self())) {
        if (ru.ru_nivcsw - p->preempted > 2) {
            go_solo(p, t);
            return true;
        }
        p->solo_ns = SOLO_MIN_NS;
    }
    p->checker = pthread_self();
    p->preempted = ru.ru_nivcsw;
    p->check_at = t + CHECK_NS;
    return false;
}

void threadpool_run(threadpool *p, threadpool_fn fn, void *ctx, int n_tasks)
{
    uint64_t t0 = p->n_threads > 1 && n_tasks > 1 ? now_ns() : 0;
    if (!t0 || solo(p, t0)) {
        for (int i = 0; i < n_tasks; i++) fn(ctx, i, 0);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->done, 0);
    atomic_store(&p->job, (uint64_t)n_tasks << 32);
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    run_tasks(p, 0);
    uint64_t t1 = now_ns();
    int k = 0;
    while (atomic_load(&p->done) < n_tasks && spin(&k, t1 + CALLER_SPIN_NS)) {}
    if (atomic_load(&p->done) < n_tasks) {
        pthread_mutex_lock(&p->mu);
        atomic_store(&p->caller_sleeps, true);
        while (atomic_load(&p->done) < n_tasks) pthread_cond_wait(&p->done_cv, &p->mu);
        atomic_store(&p->caller_sleeps, false);
        pthread_mutex_unlock(&p->mu);
        uint64_t t2 = now_ns();
        if (p->adaptive && t2 - t1 > STALL_NS && t2 - t1 > 2 * (t1 - t0)) go_solo(p, t2);
    }
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
