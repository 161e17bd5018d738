/* An LD_PRELOAD stand-in for troubled storage (tests/test_native_read_faults.py), driven by the environment variable
 * PREAD_SHIM: "eintr" fails the next pread with EINTR, "partial" makes the next one return half of what it was
 * asked for (each then clears the variable), "slow" makes every pread take 100 ms. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

ssize_t pread64(int fd, void *buf, size_t n, off_t at) {
    static ssize_t (*real)(int, void *, size_t, off_t);
    if (!real) real = (ssize_t (*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread64");
    const char *mode = getenv("PREAD_SHIM");
    if (mode && strcmp(mode, "eintr") == 0) {
        unsetenv("PREAD_SHIM");
        errno = EINTR;
        return -1;
    }
    if (mode && strcmp(mode, "partial") == 0 && n > 1) {
        unsetenv("PREAD_SHIM");
        return real(fd, buf, n / 2, at);
    }
    if (mode && strcmp(mode, "slow") == 0) {
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
    }
    return real(fd, buf, n, at);
}

ssize_t pread(int fd, void *buf, size_t n, off_t at) { return pread64(fd, buf, n, at); }
