#pragma once

#include <sys/types.h>

namespace overlay {

// Moves the calling process into the mount namespace of `host_pid`
// (/proc/PID/ns/mnt), so that every later path lookup and the mount itself
// happen there. Linux refuses this in a multi-threaded process (EINVAL), so
// only the single-threaded helper calls it. Throws Failed.
void enter_host_mount_namespace(pid_t host_pid);

} // namespace overlay
