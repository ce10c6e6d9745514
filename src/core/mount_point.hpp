#pragma once

#include "mountinfo.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace overlay {

// The id of the mount whose root `fd` is, or nullopt when fd is not the
// root of a mount (statx STATX_ATTR_MOUNT_ROOT).
std::optional<std::uint64_t> mount_root_id(int fd);

// The id mountinfo shows for the mount fd lies on (STATX_MNT_ID, not the
// unique one). Throws Error(Failed) naming `what`.
std::uint64_t mountinfo_id(int fd, std::string_view what);

// The entry with that id in the current namespace's mount table.
std::optional<MountEntry> find_mount_by_id(std::uint64_t mount_id);

} // namespace overlay
