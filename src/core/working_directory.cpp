#include "working_directory.hpp"

#include "error.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace overlay {

WorkingDirectory::WorkingDirectory() : saved_(::open(".", O_PATH | O_DIRECTORY | O_CLOEXEC)) {
    if (!saved_) {
        throw_errno(ErrorCode::Failed, "cannot save the working directory", errno);
    }
}

WorkingDirectory::~WorkingDirectory() {
    if (!restored_) {
        [[maybe_unused]] int rc = ::fchdir(saved_.get());
    }
}

void WorkingDirectory::restore() {
    restored_ = true;
    if (::fchdir(saved_.get()) != 0) {
        throw_errno(ErrorCode::Failed, "cannot restore the working directory", errno);
    }
}

} // namespace overlay
