#include "host_namespace.hpp"

#include "error.hpp"
#include "unique_fd.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sched.h>
#include <string>

namespace overlay {

void enter_host_mount_namespace(pid_t host_pid) {
    const std::string ns_path = "/proc/" + std::to_string(host_pid) + "/ns/mnt";
    UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
        throw_errno(ErrorCode::Failed, "cannot open host mount namespace " + ns_path, errno);
    }
    if (::setns(ns.get(), CLONE_NEWNS) != 0) {
        int err = errno;
        throw_errno(ErrorCode::Failed,
                    "cannot enter host mount namespace " + ns_path +
                        (err == EINVAL ? " (the process must be single-threaded)" : ""),
                    err);
    }
}

} // namespace overlay
