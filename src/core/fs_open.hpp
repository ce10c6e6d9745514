// Opening paths strictly beneath a directory descriptor: the one primitive
// through which the core touches anything an unprivileged user controls.
#pragma once

#include "unique_fd.hpp"

#include <string>
#include <string_view>

namespace overlay {

// What open_beneath gives: the descriptor, or the errno that says why not,
// which each caller turns into its own error (ENOENT is NoSuchInstance for
// an instance dir, BadConfig for a lowerdir, ...). Not an exception: the
// same errno means different things to different callers.
class OpenResult {
  public:
    static OpenResult opened(int fd) noexcept { return OpenResult(UniqueFd(fd), 0); }
    static OpenResult failed(int err) noexcept { return OpenResult(UniqueFd(), err); }

    bool ok() const noexcept { return static_cast<bool>(fd_); }
    // When !ok(): ELOOP a symlink somewhere, EXDEV an escape attempt (".."
    // above the root), ENOENT, ENOTDIR, ...
    int error() const noexcept { return err_; }
    UniqueFd take() noexcept { return std::move(fd_); }

  private:
    OpenResult(UniqueFd fd, int err) noexcept : fd_(std::move(fd)), err_(err) {}
    UniqueFd fd_;
    int err_;
};

// openat2(dirfd, relpath, flags | O_CLOEXEC, RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), or the equivalent walk.
OpenResult open_beneath(int dirfd, std::string_view relpath, int flags);

// How open_beneath resolves. openat2 is used where the kernel and the
// sandbox allow it; systemd's RestrictSUIDSGID= and other seccomp filters
// answer ENOSYS for it (they cannot inspect its flags), and then the
// equivalent walk is used: one component at a time from the parent's
// descriptor, O_NOFOLLOW, ".." refused. Forcible for tests.
enum class PathResolver { Auto, Openat2, NofollowWalk };
void set_path_resolver(PathResolver resolver) noexcept;

// "/proc/self/fd/N": the descriptor's own file, a magic link through which
// path-only calls (getxattr, chmod, a mount option) reach it with no name
// looked up again.
std::string proc_fd_path(int fd);

// For messages: "is a symlink", "is not a directory", ... for an errno of
// open_beneath.
std::string describe_open_failure(int err);

} // namespace overlay
