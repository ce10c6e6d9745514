// The directory of the per-instance lock files (LockDir): root's alone, so
// that no one else can open, and so flock, a lock file in it.
#pragma once

#include "unique_fd.hpp"

#include <string>

namespace overlay {

// Opens the absolute, normalized `path` one component at a time from "/"
// (O_NOFOLLOW: a symlink anywhere is refused), creating missing components
// with mode 0700. Every component must be a directory owned by root; every
// one above the last must not be writable by group or others unless sticky
// (as /tmp: others cannot rename or remove root's entries there), and the
// last must not be writable by group or others at all. Modes of existing
// directories are never changed: they may be the admin's. Throws
// UnsafePath for a directory that breaks these rules, Failed for a system
// call that fails. Returns an O_PATH descriptor of the directory.
UniqueFd open_lock_dir(const std::string& path);

} // namespace overlay
