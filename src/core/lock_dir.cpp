#include "lock_dir.hpp"

#include "error.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay {

namespace {

// `shown` is the path up to and including this component.
void check_component(int fd, const std::string& shown, bool last) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        throw_errno(ErrorCode::Failed, "LockDir: stat " + printable(shown), errno);
    }
    const std::string what = "LockDir: " + printable(shown);
    if (!S_ISDIR(st.st_mode)) {
        throw Error(ErrorCode::UnsafePath, what + " is not a directory");
    }
    if (st.st_uid != 0) {
        throw Error(ErrorCode::UnsafePath,
                    what + " is owned by uid " + std::to_string(st.st_uid) +
                        ", not by root (whoever owns it could hold the instance locks)");
    }
    const bool others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
    if (others_write && (last || (st.st_mode & S_ISVTX) == 0)) {
        throw Error(ErrorCode::UnsafePath,
                    what + " is writable by group or others (they could replace the locks)");
    }
}

} // namespace

UniqueFd open_lock_dir(const std::string& path) {
    UniqueFd dir(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!dir) {
        throw_errno(ErrorCode::Failed, "LockDir: cannot open /", errno);
    }
    check_component(dir.get(), "/", false);
    std::string shown;
    std::string_view rest(path);
    while (!rest.empty()) {
        const auto start = rest.find_first_not_of('/');
        if (start == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(start);
        const auto slash = rest.find('/');
        const std::string name(rest.substr(0, slash));
        rest.remove_prefix(slash == std::string_view::npos ? rest.size() : slash);
        shown += "/" + name;
        const int flags = O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        int fd = ::openat(dir.get(), name.c_str(), flags);
        if (fd < 0 && errno == ENOENT) {
            // 0700: only root needs to reach the locks. EEXIST: another
            // operation made it first, which is as good.
            if (::mkdirat(dir.get(), name.c_str(), 0700) != 0 && errno != EEXIST) {
                throw_errno(ErrorCode::Failed, "LockDir: cannot create " + printable(shown), errno);
            }
            fd = ::openat(dir.get(), name.c_str(), flags);
        }
        if (fd < 0) {
            const int err = errno;
            if (err == ENOTDIR || err == ELOOP) {
                throw Error(ErrorCode::UnsafePath,
                            "LockDir: " + printable(shown) +
                                " is a symlink or not a directory (not followed)");
            }
            throw_errno(ErrorCode::Failed, "LockDir: cannot open " + printable(shown), err);
        }
        dir.reset(fd);
        check_component(dir.get(), shown, rest.empty());
    }
    return dir;
}

} // namespace overlay
