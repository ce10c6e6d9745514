// Whether a mount was made by a user rather than by the admin. On a host
// the one way a user mounts is FUSE through setuid fusermount, on any
// directory they may write to: an allowed root they own included. The
// same-mount check cannot catch that one (the layer is then on the root's
// own mount), so an allowed root or InstancesDir that is a mount point is
// asked this too.
#pragma once

#include "config.hpp"
#include "mountinfo.hpp"

#include <optional>
#include <string>

namespace overlay {

// For a FUSE mount (type fuse, fuseblk or fuse.*) whose super options do not
// say user_id=0: "a FUSE mount of uid N" (or "of an unknown user"). nullopt
// for every other mount.
std::optional<std::string> user_mount_owner(const MountEntry& entry);

// Throws UnsafePath ("WHAT is on a FUSE mount of uid N ...") when fd (an
// allowed root or InstancesDir, opened) lies on a mount that
// user_mount_owner() names, on an overlay of an instance (one moved there
// by its owner's rename), or on a mount missing from the current
// namespace's table.
void require_not_user_mount(const Config& config, int fd, const std::string& what);

} // namespace overlay
