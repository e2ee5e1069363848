/* selftest.h: launchers of tests/emu/selftest.cu (emulator self-tests). */
#ifndef TESSERA_EMU_SELFTEST_H
#define TESSERA_EMU_SELFTEST_H

#ifdef __cplusplus
extern "C" {
#endif

void emu_test_shuffle(int *out, int threads);             /* out: [threads * 6] */
void emu_test_block_sum(float *out, const float *in, int blocks, int threads);
void emu_test_neighbour(float *out, int threads, int sync);
void emu_test_divergent_barrier(float *out);              /* aborts */
void emu_test_early_exit(float *out);                     /* aborts */
void emu_test_divergent_shuffle(float *out);              /* aborts */
void emu_test_unwritten_shared(float *out);               /* out: [64] */
void emu_test_geometry(int *count, int *ids);             /* ids: [6 * 32] */

#ifdef __cplusplus
}
#endif

#endif
