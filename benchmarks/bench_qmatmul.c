/* bench_qmatmul.c: the quantized matmul (matmul_q with qact_quantize) next
 * to the F16 matmul on TinyLlama-1.1B's shapes, 2 threads (rows split in
 * two halves, the second half on a spinning worker thread; activations
 * quantized in the timed region, tokens split the same way). Every type
 * with qpack_available also runs packed (matmul_qp on qpack's layout, the
 * halves split at a group boundary), as column "<type> p".
 *
 *   T = 1:        GB/s of weight bytes, against a STREAM-like read of the
 *                 same arenas by the same two threads (the roofline);
 *   T = 16, 128:  rows * K * T per second (G/s).
 *
 * The weights of every call are the next copy in its type's 512 MiB arena
 * (2.5 GiB cycled in all, plus a packed arena per packed type and K), so
 * they come from DRAM, not the L3; a repetition runs every cell once,
 * interleaved; medians of the repetitions. Packed T = 1 GB/s count the
 * packed bytes read.
 * Build and run: make bench-qmatmul. `bench_qmatmul REPS 1` runs both
 * halves on one thread: when other work shares the machine, two threads
 * that must meet at every call wait out the scheduler's slices. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

#include "../kernels/cpu/kernels.h"
#include "../kernels/quant.h"

#define ARENA (512ull << 20) /* per type: 2.5 GiB in all, cycled */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// ---------------------------------------------------------------------------
// two threads: part 0 on the caller, part 1 on a worker spinning for work

typedef void part_fn(int part, void *arg);
static struct {
    _Atomic unsigned gen, done;
    part_fn *fn;
    void *arg;
} pool;

static void *worker(void *unused)
{
    (void)unused;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        while ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) == seen) _mm_pause();
        seen = g;
        if (!pool.fn) return NULL;
        pool.fn(1, pool.arg);
        atomic_store_explicit(&pool.done, g, memory_order_release);
    }
}

static int n_threads = 2;

static void run2(part_fn *fn, void *arg)
{
    if (n_threads == 1) {
        fn(0, arg);
        fn(1, arg);
        return;
    }
    pool.fn = fn;
    pool.arg = arg;
    unsigned g = atomic_fetch_add_explicit(&pool.gen, 1, memory_order_acq_rel) + 1;
    fn(0, arg);
    while (atomic_load_explicit(&pool.done, memory_order_acquire) != g) _mm_pause();
}

// ---------------------------------------------------------------------------
// the arena: random bytes, scale fields made sane for the type benchmarked

static void fill_random(unsigned char *p, size_t n)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        memcpy(p + i, &s, 8);
    }
}

/* Every block's scale fields (or every F16 value) finite and normal. */
static void sanitize(unsigned char *p, size_t n, enum dtype wt)
{
    if (wt == DTYPE_F16) {
        for (size_t i = 0; i + 2 <= n; i += 2) {
            uint16_t h;
            memcpy(&h, p + i, 2);
            h = (uint16_t)((h & 0x83ff) | 0x3800);
            memcpy(p + i, &h, 2);
        }
        return;
    }
    size_t bb = dtype_block_bytes(wt);
    uint16_t d = f32_to_f16(0.01f);
    for (size_t b = 0; (b + 1) * bb <= n; b++) {
        unsigned char *blk = p + b * bb;
        if (wt == DTYPE_Q6_K) memcpy(blk + 208, &d, 2);
        else memcpy(blk, &d, 2);
        if (wt == DTYPE_Q4_K) memcpy(blk + 2, &d, 2);
    }
}

/* Read bandwidth of the arena by both threads (each its half), GB/s. */
struct rd {
    const unsigned char *p;
    size_t n;
    float sink[2];
};

__attribute__((target("avx512f"))) static void read_part(int part, void *arg)
{
    struct rd *r = arg;
    const float *p = (const float *)(r->p + part * (r->n / 2));
    size_t n = r->n / 2 / sizeof(float);
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_load_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_load_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_load_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_load_ps(p + i + 48));
    }
    r->sink[part] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

static double read_bw(const unsigned char *arena, int reps)
{
    double v[64];
    struct rd r = {arena, ARENA, {0, 0}};
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        run2(read_part, &r);
        v[i] = ARENA / (now() - t0) / 1e9;
    }
    return median(v, reps);
}

// ---------------------------------------------------------------------------
// one matmul call, split over the two threads

static const int SHAPES[][2] = {{2048, 2048}, {256, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
enum { N_SHAPES = 5, N_TYPES = 5, MAX_VARS = 2 * N_TYPES, N_KS = 2 };
static const enum dtype TYPES[N_TYPES] = {DTYPE_F16, DTYPE_Q8_0, DTYPE_Q4_0, DTYPE_Q4_K, DTYPE_Q6_K};
static const int KS[N_KS] = {2048, 5632}; /* the shapes' K, one packed arena each */

/* A column of the tables: a type, unpacked or packed. */
struct variant {
    enum dtype wt;
    bool packed;
    const unsigned char *arena;         /* unpacked: the type's arena */
    const unsigned char *parena[N_KS];  /* packed: the type's arena packed as [rows, K] */
    size_t pbytes[N_KS];
};
static struct variant VARS[MAX_VARS];
static int n_vars;

struct mm {
    const void *w;
    enum dtype wt;
    bool packed;
    int N, K, T, split;
    const float *x; /* [T, K] */
    void *xq;       /* T quantized rows */
    float *y;       /* [T, N] */
};

static void quant_part(int part, void *arg)
{
    struct mm *m = arg;
    int mid = m->T / 2;
    qact_quantize(m->xq, m->x, m->K, m->wt, m->K, part ? mid : 0, part ? m->T : mid);
}

static void mm_part(int part, void *arg)
{
    struct mm *m = arg;
    int n0 = part ? m->split : 0, n1 = part ? m->N : m->split;
    if (m->wt == DTYPE_F16) matmul(m->y, m->N, m->x, m->K, m->w, m->wt, m->T, m->K, n0, n1, false);
    else if (m->packed) matmul_qp(m->y, m->N, m->xq, m->w, m->wt, m->T, m->K, n0, n1, false);
    else matmul_q(m->y, m->N, m->xq, m->w, m->wt, m->T, m->K, n0, n1, false);
}

static int k_index(int K) { return K == KS[0] ? 0 : 1; }

/* Bytes of one copy of an N x K weight in variant v. */
static size_t weight_bytes(const struct variant *v, int N, int K)
{
    if (!v->packed) return dtype_row_bytes(v->wt, K) * (size_t)N;
    return (size_t)((N + QPACK_ROWS - 1) / QPACK_ROWS) * qpack_group_bytes(v->wt, K);
}

/* Seconds of one call (quantizing included) on the next copy of the weights
 * in the variant's arena. */
static double time_call(const struct variant *v, int N, int K, int T)
{
    static size_t next;
    enum dtype wt = v->wt;
    size_t wbytes = weight_bytes(v, N, K);
    const unsigned char *arena = v->packed ? v->parena[k_index(K)] : v->arena;
    size_t copies = (v->packed ? v->pbytes[k_index(K)] : ARENA) / wbytes;
    float *x = malloc(sizeof(float) * T * K), *y = malloc(sizeof(float) * T * N);
    void *xq = aligned_alloc(64, qact_row_bytes(DTYPE_Q8_0, K) * T);
    for (int i = 0; i < T * K; i++) x[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
    int align = wt == DTYPE_F16 ? matmul_row_align() : v->packed ? QPACK_ROWS : matmul_q_row_align();
    struct mm m = {arena + (next++ % copies) * wbytes, wt, v->packed, N, K, T, N / 2 / align * align, x, xq, y};
    double t0 = now();
    if (wt != DTYPE_F16) run2(quant_part, &m);
    run2(mm_part, &m);
    double dt = now() - t0;
    free(x), free(y), free(xq);
    return dt;
}

/* The unpacked arena of a quantized type as one [rows, K] weight, packed
 * (copies of a shape then start at group boundaries). */
static void make_packed(struct variant *v)
{
    for (int k = 0; k < N_KS; k++) {
        int K = KS[k];
        int rows = (int)(ARENA / dtype_row_bytes(v->wt, K)) / QPACK_ROWS * QPACK_ROWS;
        v->pbytes[k] = (size_t)(rows / QPACK_ROWS) * qpack_group_bytes(v->wt, K);
        unsigned char *p = aligned_alloc(64, v->pbytes[k]);
        qpack(p, v->arena, v->wt, rows, K, 0, rows / QPACK_ROWS);
        v->parena[k] = p;
    }
}

static void variant_name(const struct variant *v, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s", dtype_name(v->wt), v->packed ? " p" : "");
}

static void print_header(void)
{
    char name[32];
    printf("| rows x K |");
    for (int i = 0; i < n_vars; i++) {
        variant_name(&VARS[i], name, sizeof(name));
        printf(" %s |", name);
    }
    printf("\n|---|");
    for (int i = 0; i < n_vars; i++) printf("---|");
    printf("\n");
}

static void print_tables(double gbs[MAX_VARS][N_SHAPES], double ops[2][MAX_VARS][N_SHAPES], double bw)
{
    static const int Ts[2] = {16, 128};
    printf("\nT = 1: GB/s of weight bytes (%% of the %.1f GB/s read roofline), %d thread(s)\n", bw, n_threads);
    print_header();
    for (int s = 0; s < N_SHAPES; s++) {
        printf("| %d x %d |", SHAPES[s][0], SHAPES[s][1]);
        for (int t = 0; t < n_vars; t++) printf(" %.1f (%.0f%%) |", gbs[t][s], 100 * gbs[t][s] / bw);
        printf("\n");
    }
    for (int i = 0; i < 2; i++) {
        printf("\nT = %d: G rows*K*T per second (x F16), %d thread(s)\n", Ts[i], n_threads);
        print_header();
        for (int s = 0; s < N_SHAPES; s++) {
            printf("| %d x %d | %.1f |", SHAPES[s][0], SHAPES[s][1], ops[i][0][s]);
            for (int t = 1; t < n_vars; t++) printf(" %.1f (%.2fx) |", ops[i][t][s], ops[i][t][s] / ops[i][0][s]);
            printf("\n");
        }
    }
}

/* Each repetition times every shape, T and variant once, interleaved, so
 * that the machine's swings hit all of them alike; medians per cell. */
static void run_all(unsigned char *arena[N_TYPES], int reps, double gbs[MAX_VARS][N_SHAPES],
                    double ops[2][MAX_VARS][N_SHAPES], double *bw)
{
    double (*v)[3][MAX_VARS][N_SHAPES] = calloc((size_t)reps, sizeof(*v));
    double *bws = calloc((size_t)reps, sizeof(double));
    for (int r = 0; r < reps; r++) {
        bws[r] = read_bw(arena[r % N_TYPES], 1);
        for (int s = 0; s < N_SHAPES; s++)
            for (int i = 0; i < 3; i++)
                for (int t = 0; t < n_vars; t++) {
                    int N = SHAPES[s][0], K = SHAPES[s][1], T = i == 0 ? 1 : i == 1 ? 16 : 128;
                    double dt = time_call(&VARS[t], N, K, T);
                    v[r][i][t][s] = i == 0 ? weight_bytes(&VARS[t], N, K) / dt / 1e9 : (double)N * K * T / dt / 1e9;
                }
        fprintf(stderr, "repetition %d of %d: %.1f GB/s\n", r + 1, reps, bws[r]);
    }
    double *col = calloc((size_t)reps, sizeof(double));
    for (int i = 0; i < 3; i++)
        for (int t = 0; t < n_vars; t++)
            for (int s = 0; s < N_SHAPES; s++) {
                for (int r = 0; r < reps; r++) col[r] = v[r][i][t][s];
                double m = median(col, reps);
                if (i == 0) gbs[t][s] = m;
                else ops[i - 1][t][s] = m;
            }
    *bw = median(bws, reps);
    free(v), free(bws), free(col);
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 9;
    if (reps < 1 || reps > 99) reps = 9;
    if (argc > 2 && atoi(argv[2]) == 1) n_threads = 1;
    unsigned char *arena[N_TYPES];
    for (int t = 0; t < N_TYPES; t++) {
        arena[t] = aligned_alloc(64, ARENA);
        fill_random(arena[t], ARENA);
        sanitize(arena[t], ARENA, TYPES[t]);
        VARS[n_vars++] = (struct variant){TYPES[t], false, arena[t], {NULL, NULL}, {0, 0}};
        if (TYPES[t] != DTYPE_F16 && qpack_available(TYPES[t])) {
            VARS[n_vars] = (struct variant){TYPES[t], true, arena[t], {NULL, NULL}, {0, 0}};
            make_packed(&VARS[n_vars++]);
        }
    }
    pthread_t th;
    if (n_threads == 2) pthread_create(&th, NULL, worker, NULL);
    double gbs[MAX_VARS][N_SHAPES], ops[2][MAX_VARS][N_SHAPES], bw;
    run_all(arena, reps, gbs, ops, &bw);
    printf("read bandwidth, %d thread(s), 512 MiB: median %.1f GB/s of %d samples\n", n_threads, bw, reps);
    print_tables(gbs, ops, bw);
    if (n_threads == 2) {
        pool.fn = NULL;
        atomic_fetch_add(&pool.gen, 1);
        pthread_join(th, NULL);
    }
    for (int t = 0; t < N_TYPES; t++) free(arena[t]);
    for (int i = 0; i < n_vars; i++)
        for (int k = 0; k < N_KS; k++) free((void *)VARS[i].parena[k]);
    return 0;
}
