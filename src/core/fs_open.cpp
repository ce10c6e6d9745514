#include "fs_open.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace overlay {

namespace {

std::atomic<PathResolver> g_resolver{PathResolver::Auto};
std::atomic<bool> g_openat2_unavailable{false};

// After O_NOFOLLOW refused a trailing symlink with ENOTDIR (O_DIRECTORY is
// checked first), or O_PATH opened the link itself: report it as openat2's
// RESOLVE_NO_SYMLINKS would, ELOOP.
bool is_symlink_at(int dirfd, const std::string& name) {
    struct stat st {};
    return ::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

int walk_beneath(int dirfd, std::string_view relpath, int flags) {
    std::vector<std::string> parts;
    for (std::size_t start = 0; start <= relpath.size();) {
        auto end = relpath.find('/', start);
        if (end == std::string_view::npos) {
            end = relpath.size();
        }
        auto part = relpath.substr(start, end - start);
        if (part == "..") {
            return -EXDEV;
        }
        if (!part.empty() && part != ".") {
            parts.emplace_back(part);
        }
        start = end + 1;
    }
    if (parts.empty()) {
        int fd = ::openat(dirfd, ".", flags | O_CLOEXEC);
        return fd >= 0 ? fd : -errno;
    }
    UniqueFd current;
    int at = dirfd;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const bool last = i + 1 == parts.size();
        const int step_flags = last ? (flags | O_NOFOLLOW) : (O_PATH | O_DIRECTORY | O_NOFOLLOW);
        int fd = ::openat(at, parts[i].c_str(), step_flags | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            return err == ENOTDIR && is_symlink_at(at, parts[i]) ? -ELOOP : -err;
        }
        UniqueFd next(fd);
        if (last && (flags & O_PATH)) {
            struct stat st {};
            if (::fstat(next.get(), &st) != 0) {
                return -errno;
            }
            if (S_ISLNK(st.st_mode)) {
                return -ELOOP;
            }
        }
        current = std::move(next);
        at = current.get();
    }
    return current.release();
}

} // namespace

void set_path_resolver(PathResolver resolver) noexcept {
    g_resolver = resolver;
}

namespace {

// The fd, or -errno.
int open_beneath_raw(int dirfd, std::string_view relpath, int flags) {
    const PathResolver resolver = g_resolver.load();
    if (resolver == PathResolver::NofollowWalk ||
        (resolver == PathResolver::Auto && g_openat2_unavailable.load())) {
        return walk_beneath(dirfd, relpath, flags & ~O_NOFOLLOW);
    }
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
        if (errno == ENOSYS && resolver == PathResolver::Auto) {
            g_openat2_unavailable = true;
            return walk_beneath(dirfd, relpath, flags & ~O_NOFOLLOW);
        }
        // EAGAIN: the kernel saw a concurrent rename and could not prove the
        // walk stayed beneath dirfd; trying again is what openat2(2) advises.
        if (errno != EAGAIN && errno != EINTR) {
            return -errno;
        }
    }
}

} // namespace

OpenResult open_beneath(int dirfd, std::string_view relpath, int flags) {
    const int r = open_beneath_raw(dirfd, relpath, flags);
    return r >= 0 ? OpenResult::opened(r) : OpenResult::failed(-r);
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

std::string proc_fd_path(int fd) {
    return "/proc/self/fd/" + std::to_string(fd);
}

} // namespace overlay
