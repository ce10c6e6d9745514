#pragma once

#include <sys/types.h>

namespace overlay {

// Moves the calling process into the mount namespace of `host_pid`
// (/proc/PID/ns/mnt), so that every later path lookup and the mount itself
// happen there. Linux refuses this in a multi-threaded process (EINVAL), so
// only the single-threaded drop-in and executors call it. The namespace must be owned by
// the user namespace the caller runs in (the host's): one a user made with
// unshare -U -m, whose pid HostPid may name after a recycle, is refused
// before setns. Throws Failed.
void enter_host_mount_namespace(pid_t host_pid);

} // namespace overlay
