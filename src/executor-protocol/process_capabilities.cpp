#include "process_capabilities.hpp"

#include "error.hpp"

#include <cerrno>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace overlay::protocol {

namespace {

constexpr std::uint64_t bit(int cap) {
    return std::uint64_t{1} << cap;
}

// Enter PID 1's mount namespace (setns needs CAP_SYS_ADMIN and
// CAP_SYS_CHROOT; opening /proc/1/ns/mnt from the unit's sandbox
// CAP_SYS_PTRACE), mount and unmount (CAP_SYS_ADMIN; overlayfs' work/work
// is mode 000: CAP_DAC_OVERRIDE), watch the mount table (fanotify mount
// events: CAP_SYS_ADMIN).
constexpr std::uint64_t kOperations =
    bit(CAP_SYS_ADMIN) | bit(CAP_SYS_CHROOT) | bit(CAP_SYS_PTRACE) | bit(CAP_DAC_OVERRIDE);
// Migrate's chown (CAP_CHOWN) and chmod of inodes root does not own
// (CAP_FOWNER). No CAP_FSETID: it would only keep a set-gid bit on chmod
// to a group not root's, and the unit's RestrictSUIDSGID=yes refuses any
// chmod that sets a set-id bit anyway.
constexpr std::uint64_t kOwnership = bit(CAP_CHOWN) | bit(CAP_FOWNER);

struct Sets {
    std::uint64_t effective = 0, permitted = 0, inheritable = 0;
};

Sets get_sets() {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    if (::syscall(SYS_capget, &header, data) != 0) {
        throw_errno(ErrorCode::Failed, "cannot read this process's capabilities: capget", errno);
    }
    auto join = [](std::uint32_t low, std::uint32_t high) {
        return std::uint64_t{low} | (std::uint64_t{high} << 32);
    };
    return {join(data[0].effective, data[1].effective), join(data[0].permitted, data[1].permitted),
            join(data[0].inheritable, data[1].inheritable)};
}

void set_sets(const Sets& s) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    data[0] = {static_cast<std::uint32_t>(s.effective), static_cast<std::uint32_t>(s.permitted),
               static_cast<std::uint32_t>(s.inheritable)};
    data[1] = {static_cast<std::uint32_t>(s.effective >> 32),
               static_cast<std::uint32_t>(s.permitted >> 32),
               static_cast<std::uint32_t>(s.inheritable >> 32)};
    if (::syscall(SYS_capset, &header, data) != 0) {
        throw_errno(ErrorCode::Failed,
                    "cannot drop capabilities (capset; the unit's SystemCallFilter must allow it)",
                    errno);
    }
}

} // namespace

CapabilityMasks role_capabilities(ProcessRole role) noexcept {
    switch (role) {
    case ProcessRole::Daemon:
        return {0, kOperations | kOwnership};
    case ProcessRole::Executor:
        return {kOperations, kOperations};
    case ProcessRole::MigrateExecutor:
        return {kOperations | kOwnership, kOperations | kOwnership};
    }
    return {};
}

void limit_capabilities(ProcessRole role) {
    const CapabilityMasks keep = role_capabilities(role);
    const Sets now = get_sets();
    const Sets want{now.effective & keep.effective, now.permitted & keep.permitted, 0};
    if (want.effective == now.effective && want.permitted == now.permitted &&
        now.inheritable == 0) {
        return; // nothing to drop (a unit without these, or a second call)
    }
    set_sets(want);
}

} // namespace overlay::protocol
