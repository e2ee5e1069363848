/* membw.c: read bandwidth of main memory with N threads (default 2): each
 * thread sums its share of a 1 GiB float buffer (AVX2 with four independent
 * accumulators where the compiler targets it, a plain loop otherwise); best
 * of 5 passes, printed in GB/s (1e9 bytes per second).
 * Build: gcc -O3 -march=native -pthread benchmarks/membw.c -o build/membw
 * Run:   build/membw [THREADS] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#define BYTES (1ull << 30)
#define MAX_THREADS 64

struct job {
    const float *p;
    size_t n;
    float sum;
};

static void *reader(void *arg)
{
    struct job *j = arg;
    const float *p = j->p;
    size_t i = 0;
    float s = 0;
#ifdef __AVX2__
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 32 <= j->n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
    }
    float t[8];
    _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (int k = 0; k < 8; k++) s += t[k];
#else
    float a[16] = {0};
    for (; i + 16 <= j->n; i += 16)
        for (int k = 0; k < 16; k++) a[k] += p[i + k];
    for (int k = 0; k < 16; k++) s += a[k];
#endif
    for (; i < j->n; i++) s += p[i];
    j->sum = s;
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    if (nt < 1 || nt > MAX_THREADS) nt = 2;
    size_t n = BYTES / sizeof(float);
    float *buf = aligned_alloc(64, BYTES);
    if (!buf) {
        fprintf(stderr, "membw: cannot allocate 1 GiB\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7); /* fault every page in before timing */
    double best = 0;
    float total = 0;
    for (int pass = 0; pass < 5; pass++) {
        pthread_t th[MAX_THREADS];
        struct job jobs[MAX_THREADS];
        size_t share = n / nt / 32 * 32; /* multiple of 32 floats keeps every share 128-byte aligned */
        double t0 = now();
        for (int i = 0; i < nt; i++) {
            jobs[i] = (struct job){buf + share * i, i == nt - 1 ? n - share * i : share, 0};
            pthread_create(&th[i], NULL, reader, &jobs[i]);
        }
        for (int i = 0; i < nt; i++) {
            pthread_join(th[i], NULL);
            total += jobs[i].sum;
        }
        double gbs = BYTES / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    if (total == -1.0f) fprintf(stderr, "(unreachable)\n"); /* keeps the sums, hence the reads, alive */
    printf("%.2f\n", best);
    free(buf);
    return 0;
}
