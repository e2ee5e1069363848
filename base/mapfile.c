/* mapfile.c: see mapfile.h. */
#include "mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"

int map_file_readonly(const char *path, bool populate, const void **base, size_t *size)
{
    *base = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return err_set(ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return err_set(ERR_IO, "%s: not a regular file", path);
    }
    void *p = sb.st_size ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | (populate ? MAP_POPULATE : 0), fd, 0)
                         : NULL;
    close(fd);
    if (p == MAP_FAILED) return err_set(ERR_IO, "%s: mmap failed: %s", path, strerror(errno));
    *base = p;
    *size = (size_t)sb.st_size;
    return 0;
}
