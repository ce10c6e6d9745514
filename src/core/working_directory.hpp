// Going into a directory for one call and coming back: the core names
// things relative to a directory it holds (the legacy mount's layers under
// /proc/self/fd, "merged" under the verified instance dir, each directory of
// the taint walk). The programs that run the core are single-threaded, so
// the working directory is theirs to borrow.
#pragma once

#include "unique_fd.hpp"

namespace overlay {

class WorkingDirectory {
  public:
    // Saves the current one. Throws Error(Failed) when it cannot.
    WorkingDirectory();
    // Back to the saved one, if restore() was not called; cannot fail for a
    // directory held open, and a destructor has nobody to tell if it did.
    ~WorkingDirectory();
    WorkingDirectory(const WorkingDirectory&) = delete;
    WorkingDirectory& operator=(const WorkingDirectory&) = delete;

    // Back to the saved one now, throwing Error(Failed) if that fails.
    void restore();

  private:
    UniqueFd saved_;
    bool restored_ = false;
};

} // namespace overlay
