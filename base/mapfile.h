/* mapfile.h: a whole file mapped read-only, for the weight containers
 * (engine/safetensors.c, base/gguf.c). */
#ifndef TESSERA_MAPFILE_H
#define TESSERA_MAPFILE_H

#include <stdbool.h>
#include <stddef.h>

/* Maps path (a regular file) into *base, its size in *size; an empty file
 * gives base NULL. populate: MAP_POPULATE, reading every page ahead (as
 * llama.cpp does for weights, so the first forward does not pay a page fault
 * per page). 0, or ERR_IO with err_msg() naming the file and the problem.
 * munmap(*base, *size) gives it back. */
int map_file_readonly(const char *path, bool populate, const void **base, size_t *size);

#endif
