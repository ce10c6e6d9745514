// "Is this descriptor on the same mount as that one?": what keeps a layer,
// an upper or an instance dir from coming off a filesystem a user mounted
// (FUSE) or moved (a live overlay) into the layout.
#pragma once

#include <cstdint>
#include <string_view>

namespace overlay {

// A mount's identity as statx reports it for an open descriptor. `unique`
// says which kind of id it is: STATX_MNT_ID_UNIQUE (Linux 6.8, never
// reused) or STATX_MNT_ID (reusable once the mount is gone; the descriptors
// compared are held open, which keeps their mounts alive, so it is still
// exact). Two identities compare equal only if they are of the same kind.
struct MountIdentity {
    std::uint64_t id = 0;
    bool unique = false;
    bool operator==(const MountIdentity&) const = default;
};

// Throws Error(Failed) naming `what` if statx fails.
MountIdentity mount_identity(int fd, std::string_view what);

// Throws Error(UnsafePath, "instance NAME: PATH is on another mount than
// ANCHOR_PATH ...") unless fd lies on the mount anchor_fd lies on.
void require_same_mount(int anchor_fd, std::string_view anchor_path, int fd, std::string_view path,
                        std::string_view instance);

} // namespace overlay
