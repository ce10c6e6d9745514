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

// For messages: "is a symlink", "is not a directory", ... for an errno of
// open_beneath.
std::string describe_open_failure(int err);

} // namespace overlay
