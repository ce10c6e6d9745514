// Opening paths strictly beneath a directory descriptor: the one primitive
// through which the core touches anything an unprivileged user controls.
#pragma once

#include "unique_fd.hpp"

#include <string>
#include <string_view>

namespace overlay {

// openat2(dirfd, relpath, flags | O_CLOEXEC, RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS). Returns the fd, or -errno
// so that each caller maps ENOENT/ELOOP/ENOTDIR/EXDEV to its own error.
// ELOOP: a symlink somewhere; EXDEV: an escape attempt (".." above dirfd).
int open_beneath(int dirfd, std::string_view relpath, int flags);

// How open_beneath resolves. openat2 is used where the kernel and the
// sandbox allow it; systemd's RestrictSUIDSGID= and other seccomp filters
// answer ENOSYS for it (they cannot inspect its flags), and then the
// equivalent walk is used: one component at a time from the parent's
// descriptor, O_NOFOLLOW, ".." refused. Forcible for tests.
enum class PathResolver { Auto, Openat2, NofollowWalk };
void set_path_resolver(PathResolver resolver) noexcept;

// For messages: "is a symlink", "is not a directory", ... for an errno of
// open_beneath.
std::string describe_open_failure(int err);

} // namespace overlay
