#include "host_namespace.hpp"

#include "error.hpp"
#include "unique_fd.hpp"

#include <cerrno>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/stat.h>

namespace overlay {

namespace {

bool same_inode(int a, int b) {
    struct stat sa {};
    struct stat sb {};
    if (::fstat(a, &sa) != 0 || ::fstat(b, &sb) != 0) {
        throw_errno(ErrorCode::Failed, "cannot stat a user namespace", errno);
    }
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// The mount namespace must be owned by the user namespace this program runs
// in, the one it is root of: the initial one on a host. Why this test and
// not another:
// - the user namespace of /proc/1 is not "initial" when pid 1 is a
//   container's init (and /proc/1/ns may not even open, in a sandbox);
// - NS_GET_PARENT failing with EPERM marks a namespace at or above the top
//   of what the caller can see, which is ours and all its ancestors alike,
//   so it does not single out one namespace;
// - comparing with our own is exact. Any process may create a user
//   namespace, and with it a mount namespace it owns and arranges (unshare
//   -U -m); only a process privileged in our user namespace can create a
//   mount namespace owned by it. So a recycled HostPid of a user's process
//   fails here, while the host's namespace (and, inside a container, the
//   container's own) passes.
void require_owned_by_our_user_namespace(int ns, const std::string& ns_path, pid_t host_pid) {
    UniqueFd owner(::ioctl(ns, NS_GET_USERNS));
    if (!owner) {
        throw_errno(ErrorCode::Failed,
                    "HostPid " + std::to_string(host_pid) +
                        ": cannot find the user namespace owning " + ns_path,
                    errno);
    }
    UniqueFd ours(::open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC));
    if (!ours) {
        throw_errno(ErrorCode::Failed, "cannot open /proc/self/ns/user", errno);
    }
    if (!same_inode(owner.get(), ours.get())) {
        throw Error(ErrorCode::Failed,
                    "HostPid " + std::to_string(host_pid) + ": the mount namespace " + ns_path +
                        " belongs to another user namespace, not to this host's (a process "
                        "made with unshare -U -m, perhaps on a recycled pid); not entered");
    }
}

} // namespace

void enter_host_mount_namespace(pid_t host_pid) {
    const std::string ns_path = "/proc/" + std::to_string(host_pid) + "/ns/mnt";
    UniqueFd ns(::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
        throw_errno(ErrorCode::Failed, "cannot open host mount namespace " + ns_path, errno);
    }
    // Checked on the very descriptor setns is given: the pid may be
    // recycled between the open and here, the descriptor cannot.
    require_owned_by_our_user_namespace(ns.get(), ns_path, host_pid);
    if (::setns(ns.get(), CLONE_NEWNS) != 0) {
        int err = errno;
        throw_errno(ErrorCode::Failed,
                    "cannot enter host mount namespace " + ns_path +
                        (err == EINVAL ? " (the process must be single-threaded)" : ""),
                    err);
    }
}

} // namespace overlay
