/* emu.c: block scheduler, barriers and shared memory of the CUDA emulator
 * (see emu.h for the model and its limits). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "emu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

enum { READY, AT_WARP, AT_BLOCK, DONE };

#define STACK_BYTES (64 * 1024)
#define MAX_THREADS 1024
#define SMEM_BYTES (228 * 1024) /* the largest a block gets on sm_90 */

struct emu_fiber *emu_self;
struct emu_dim emu_block_idx, emu_block_dim, emu_grid_dim;

static pthread_mutex_t launch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct emu_fiber fibers[MAX_THREADS];
static char *stacks[MAX_THREADS];
static int n_threads;
static void (*cur_fn)(void *);
static void *cur_arg;

static uint64_t seed = 0, rng;
static unsigned long block_serial;
static _Alignas(64) unsigned char smem_static[SMEM_BYTES];
static size_t smem_used;
static unsigned char *smem_dyn;
static size_t smem_dyn_bytes;

void emu_set_seed(uint64_t s) { seed = s ? s : 1; }

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void yield_as(int state);

/* A fiber runs the kernel once and parks as done; it is never resumed. */
static void fiber_main(void)
{
    cur_fn(cur_arg);
    yield_as(DONE);
}

#if defined(__x86_64__)
/* A context switch is a stack switch: push the callee-saved registers, swap
 * stack pointers, pop. ucontext's swapcontext costs a system call (the signal
 * mask) per switch, 50 times slower, and kernels switch at every barrier. */
void emu_switch(void **save_sp, void *next_sp);
__asm__(".text\n"
        ".globl emu_switch\n"
        ".type emu_switch, @function\n"
        "emu_switch:\n"
        "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
        "  ret\n"
        ".size emu_switch, .-emu_switch\n");

static void *sched_sp, *fiber_sp[MAX_THREADS];

/* A fresh stack whose first switch "returns" into fiber_main, with the
 * alignment a call would leave (rsp + 8 a multiple of 16). */
static void fiber_prepare(int t)
{
    uintptr_t top = ((uintptr_t)stacks[t] + STACK_BYTES) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = NULL;               /* fiber_main's return address: never used */
    *--sp = (void *)fiber_main; /* popped by ret */
    for (int i = 0; i < 6; i++) *--sp = NULL; /* rbp rbx r12-r15 */
    fiber_sp[t] = sp;
}
static void run_fiber(int t) { emu_switch(&sched_sp, fiber_sp[t]); }
static void to_scheduler(void) { emu_switch(&fiber_sp[emu_self->tid], sched_sp); }
#else
static ucontext_t contexts[MAX_THREADS], sched_ctx;
static void fiber_prepare(int t)
{
    ucontext_t *c = &contexts[t];
    getcontext(c);
    c->uc_stack.ss_sp = stacks[t];
    c->uc_stack.ss_size = STACK_BYTES;
    c->uc_link = NULL;
    makecontext(c, fiber_main, 0);
}
static void run_fiber(int t) { swapcontext(&sched_ctx, &contexts[t]); }
static void to_scheduler(void) { swapcontext(&contexts[emu_self->tid], &sched_ctx); }
#endif

static void yield_as(int state)
{
    emu_self->state = state;
    to_scheduler();
}

void emu_syncthreads(const void *site)
{
    emu_self->site = site;
    yield_as(AT_BLOCK);
}
void emu_syncwarp(void) { yield_as(AT_WARP); }

const uint64_t *emu_lane_slot(int lane)
{
    int t = emu_self->warp * 32 + lane;
    return t < n_threads ? fibers[t].slot : NULL;
}

unsigned emu_live_mask(void)
{
    unsigned m = 0;
    int w0 = emu_self->warp * 32;
    for (int l = 0; l < 32 && w0 + l < n_threads; l++)
        if (fibers[w0 + l].state != DONE) m |= 1u << l;
    return m;
}

void *emu_shared_static(void **ptr, unsigned long *gen, size_t n, size_t align)
{
    if (*gen != block_serial) {
        size_t off = (smem_used + align - 1) / align * align;
        if (off + n > SMEM_BYTES) {
            fprintf(stderr, "emu: static shared memory over %d bytes\n", SMEM_BYTES);
            abort();
        }
        *ptr = smem_static + off;
        memset(*ptr, 0xff, n);
        smem_used = off + n;
        *gen = block_serial;
    }
    return *ptr;
}

void *emu_shared_dynamic(void) { return smem_dyn; }

/* Opens the barriers that can open; 0 when none can (a stuck block). */
static int release(void)
{
    int opened = 0;
    for (int w0 = 0; w0 < n_threads; w0 += 32) {
        int waiting = 0, lanes = 0;
        for (int t = w0; t < w0 + 32 && t < n_threads; t++, lanes++) waiting += fibers[t].state == AT_WARP;
        if (waiting == lanes) {
            for (int t = w0; t < w0 + 32 && t < n_threads; t++) fibers[t].state = READY;
            opened = 1;
        }
    }
    if (opened) return 1;
    for (int t = 0; t < n_threads; t++)
        if (fibers[t].state != AT_BLOCK || fibers[t].site != fibers[0].site) return 0;
    for (int t = 0; t < n_threads; t++) fibers[t].state = READY;
    return 1;
}

static void stuck(const char *name)
{
    int at_block = 0, at_warp = 0, done = 0;
    for (int t = 0; t < n_threads; t++) {
        at_block += fibers[t].state == AT_BLOCK;
        at_warp += fibers[t].state == AT_WARP;
        done += fibers[t].state == DONE;
    }
    int sites = 0;
    for (int t = 0; t < n_threads; t++)
        if (fibers[t].state == AT_BLOCK && fibers[t].site != fibers[0].site) sites = 1;
    fprintf(stderr, "emu: kernel %s block (%u,%u,%u) is stuck: %d threads at __syncthreads%s, %d at a warp "
            "collective, %d exited (a divergent barrier or collective)\n", name, emu_block_idx.x,
            emu_block_idx.y, emu_block_idx.z, at_block, sites ? " (not all the same one)" : "", at_warp, done);
    abort();
}

static void run_block(const char *name)
{
    block_serial++;
    smem_used = 0;
    if (smem_dyn_bytes) memset(smem_dyn, 0xff, smem_dyn_bytes);
    for (int t = 0; t < n_threads; t++) {
        fiber_prepare(t);
        fibers[t].state = READY;
    }
    int order[MAX_THREADS];
    for (;;) {
        int n = 0;
        for (int t = 0; t < n_threads; t++)
            if (fibers[t].state == READY) order[n++] = t;
        if (!n) {
            if (!release()) {
                for (int t = 0; t < n_threads; t++)
                    if (fibers[t].state != DONE) stuck(name);
                return;
            }
            continue;
        }
        for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
            int j = (int)(next_rand() % (uint64_t)(i + 1)), tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        for (int i = 0; i < n; i++) {
            emu_self = &fibers[order[i]];
            run_fiber(order[i]);
        }
    }
}

void emu_launch(const char *name, struct emu_dim grid, struct emu_dim block, size_t dyn_smem,
                void (*fn)(void *), void *arg)
{
    unsigned long long nt = (unsigned long long)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || !nt || nt > MAX_THREADS || grid.y > 65535 || grid.z > 65535 ||
        dyn_smem > SMEM_BYTES) {
        fprintf(stderr, "emu: kernel %s: invalid launch grid (%u,%u,%u) block (%u,%u,%u) smem %zu\n", name,
                grid.x, grid.y, grid.z, block.x, block.y, block.z, dyn_smem);
        abort();
    }
    pthread_mutex_lock(&launch_mu);
    if (!seed) {
        const char *s = getenv("EMU_SEED");
        emu_set_seed(s ? strtoull(s, NULL, 10) : 1);
    }
    rng = seed * 0x9e3779b97f4a7c15ull | 1;
    n_threads = (int)nt;
    for (int t = 0; t < n_threads; t++) {
        if (!stacks[t] && !(stacks[t] = malloc(STACK_BYTES))) {
            fprintf(stderr, "emu: out of memory for fiber stacks\n");
            abort();
        }
        struct emu_fiber *f = &fibers[t];
        f->idx = (struct emu_dim){t % block.x, t / block.x % block.y, t / (block.x * block.y)};
        f->tid = t;
        f->lane = t % 32;
        f->warp = t / 32;
    }
    unsigned char *dyn = dyn_smem ? aligned_alloc(64, (dyn_smem + 63) / 64 * 64) : NULL;
    smem_dyn = dyn;
    smem_dyn_bytes = dyn_smem;
    cur_fn = fn;
    cur_arg = arg;
    emu_grid_dim = grid;
    emu_block_dim = block;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                emu_block_idx = (struct emu_dim){x, y, z};
                run_block(name);
            }
    emu_self = NULL;
    free(dyn);
    smem_dyn = NULL;
    smem_dyn_bytes = 0;
    pthread_mutex_unlock(&launch_mu);
}
