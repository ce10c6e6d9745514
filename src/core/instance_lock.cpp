#include "instance_lock.hpp"

#include "error.hpp"
#include "lock_dir.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <thread>

namespace overlay {

namespace {
constexpr auto kLockPoll = std::chrono::milliseconds(5);
} // namespace

InstanceLock::InstanceLock(const Config& config, std::string_view name,
                           std::chrono::milliseconds wait)
    : path_(config.lock_dir + "/" + std::string(name) + ".lock") {
    const std::string who = instance_context(name);
    const UniqueFd dir = open_lock_dir(config.lock_dir);
    const std::string file = std::string(name) + ".lock";
    fd_.reset(::openat(dir.get(), file.c_str(),
                       O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600));
    if (!fd_) {
        throw_errno(ErrorCode::Failed, who + "cannot open lock file " + printable(path_), errno);
    }
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
        throw_errno(ErrorCode::Failed, who + "stat " + printable(path_), errno);
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 077) != 0) {
        throw Error(ErrorCode::UnsafePath,
                    who + "lock file " + printable(path_) +
                        " is not a regular file owned by root with mode 0600; remove it");
    }
    // Polling with a deadline rather than a blocking flock: an operation
    // stuck in the kernel must not queue every later one behind it forever.
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            throw_errno(ErrorCode::Failed, who + "cannot lock " + printable(path_), errno);
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            throw Error(ErrorCode::Busy,
                        who + "another operation on it holds the lock " + printable(path_));
        }
        std::this_thread::sleep_for(kLockPoll);
    }
}

} // namespace overlay
