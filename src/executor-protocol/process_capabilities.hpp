// Which capabilities each process of the service keeps, decided here and
// nowhere else. The unit's bounding set holds what any of them needs; each
// process narrows its own sets to its role's at start:
//
//   Executor         CAP_SYS_ADMIN CAP_SYS_CHROOT CAP_SYS_PTRACE
//                    CAP_DAC_OVERRIDE (enter PID 1's namespace, mount,
//                    unmount, read the mount table, watch it)
//   MigrateExecutor  those four + CAP_CHOWN CAP_FOWNER (Migrate gives an
//                    upper's inodes the owner and mode their override
//                    names: chown, and chmod of inodes root does not own)
//   Daemon           nothing effective: it talks to the bus and polkit,
//                    logs and starts executors, none of which needs a
//                    capability (uid 0 still owns the bus name). It keeps
//                    the six permitted, because under NoNewPrivileges an
//                    exec gives a child no capability its parent has not
//                    permitted (the kernel intersects), and its executors
//                    need them.
//
// Only the sets are narrowed (effective, permitted, inheritable; ambient
// follows inheritable), never widened: a process that starts with fewer
// (a unit without CAP_CHOWN) keeps fewer. The drop-in run through sudo is
// not limited: it is root on the administrator's say.
#pragma once

#include <cstdint>

namespace overlay::protocol {

enum class ProcessRole { Daemon, Executor, MigrateExecutor };

// A capability mask, bit N for capability N (as CapEff in /proc/PID/status).
struct CapabilityMasks {
    std::uint64_t effective = 0;
    std::uint64_t permitted = 0;
    bool operator==(const CapabilityMasks&) const = default;
};

// What `role` may hold at most (effective, permitted).
CapabilityMasks role_capabilities(ProcessRole role) noexcept;

// Narrows the calling thread's sets to its role's (intersected with what it
// has). Call it before any other thread exists: threads made later copy
// the creator's sets. No system call when nothing is to be dropped.
// Throws overlay::Error(Failed) when capget or capset fail.
void limit_capabilities(ProcessRole role);

} // namespace overlay::protocol
