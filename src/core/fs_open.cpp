#include "fs_open.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace overlay {

int open_beneath(int dirfd, std::string_view relpath, int flags) {
    std::string path(relpath);
    open_how how{};
    // O_NOFOLLOW is dropped: RESOLVE_NO_SYMLINKS already refuses a trailing
    // symlink, and with ELOOP, whereas O_NOFOLLOW|O_DIRECTORY says ENOTDIR.
    how.flags = static_cast<std::uint64_t>((flags & ~O_NOFOLLOW) | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    for (;;) {
        long fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
        if (fd >= 0) {
            return static_cast<int>(fd);
        }
        // EAGAIN: the kernel saw a concurrent rename and could not prove the
        // walk stayed beneath dirfd; trying again is what openat2(2) advises.
        if (errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
    }
}

std::string describe_open_failure(int err) {
    switch (err) {
    case ELOOP:
        return "is or passes through a symlink";
    case ENOTDIR:
        return "is not a directory";
    case EXDEV:
        return "escapes its root";
    case ENOENT:
        return "does not exist";
    default:
        return std::strerror(err);
    }
}

} // namespace overlay
