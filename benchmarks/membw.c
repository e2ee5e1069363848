/* membw.c: read bandwidth of main memory with N threads (default 2): each
 * thread sums its share of a 1 GiB float buffer; best of 5 passes, in GB/s.
 * Build: gcc -O3 -march=native -pthread benchmarks/membw.c -o build/membw */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BYTES (1ull << 30)

struct job {
    const float *p;
    size_t n;
    float sum;
};

static void *reader(void *arg)
{
    struct job *j = arg;
    float s[16] = {0};
    for (size_t i = 0; i + 16 <= j->n; i += 16)
        for (int k = 0; k < 16; k++) s[k] += j->p[i + k];
    for (int k = 0; k < 16; k++) j->sum += s[k];
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
    if (nt < 1 || nt > 64) nt = 2;
    size_t n = BYTES / sizeof(float);
    float *buf = aligned_alloc(64, BYTES);
    if (!buf) return 1;
    memset(buf, 0, BYTES); /* fault every page in before timing */
    double best = 0;
    float total = 0;
    for (int pass = 0; pass < 5; pass++) {
        pthread_t th[64];
        struct job jobs[64];
        double t0 = now();
        for (int i = 0; i < nt; i++) {
            jobs[i] = (struct job){buf + n / nt * i, n / nt, 0};
            pthread_create(&th[i], NULL, reader, &jobs[i]);
        }
        for (int i = 0; i < nt; i++) {
            pthread_join(th[i], NULL);
            total += jobs[i].sum;
        }
        double gbs = BYTES / (now() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    printf("%.2f\n", best + total * 0); /* total keeps the reads alive */
    free(buf);
    return 0;
}
