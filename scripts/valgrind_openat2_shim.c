/* Preloaded into the drop-in command for the valgrind run only
 * (scripts/valgrind-dropin.sh). valgrind 3.19 (Debian 12) has no wrapper
 * for openat2(2) (syscall 437) and fails it with ENOSYS without making it,
 * so the drop-in could never get past opening its first directory. When the
 * real call says ENOSYS, this serves it with openat(2) plus O_NOFOLLOW on
 * the last component: the same result for the benign sample layout the run
 * uses (no symlinks, no ".."), which is all a memory-error and leak check
 * needs. Every other syscall, and openat2 where it works, is untouched. The
 * RESOLVE_* guarantees themselves are tested by the root tier, not here. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <sys/syscall.h>

long syscall(long number, ...) {
    static long (*real)(long, ...);
    va_list ap;
    va_start(ap, number);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    if (!real) {
        real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    }
    long result = real(number, a1, a2, a3, a4, a5, a6);
    if (number == SYS_openat2 && result < 0 && errno == ENOSYS) {
        const struct open_how* how = (const struct open_how*)a3;
        return openat((int)a1, (const char*)a2, (int)how->flags | O_NOFOLLOW, (mode_t)how->mode);
    }
    return result;
}
