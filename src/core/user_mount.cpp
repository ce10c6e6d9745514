#include "user_mount.hpp"

#include "error.hpp"
#include "mount_point.hpp"

#include <string_view>

namespace overlay {

std::optional<std::string> user_mount_owner(const MountEntry& entry) {
    const std::string_view type = entry.fs_type;
    if (type != "fuse" && type != "fuseblk" && !type.starts_with("fuse.")) {
        return std::nullopt;
    }
    std::string_view options = entry.super_options;
    while (!options.empty()) {
        const auto comma = options.find(',');
        const auto option = options.substr(0, comma);
        if (option.starts_with("user_id=")) {
            const auto uid = option.substr(8);
            if (uid == "0") {
                return std::nullopt; // mounted by root: the admin's
            }
            return "a FUSE mount of uid " + printable(uid);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        options.remove_prefix(comma + 1);
    }
    return "a FUSE mount of an unknown user";
}

void require_not_user_mount(int fd, const std::string& what) {
    const auto id = mount_root_id(fd);
    if (!id) {
        return;
    }
    const auto entry = find_mount_by_id(*id);
    if (!entry) {
        throw Error(ErrorCode::UnsafePath,
                    what + " is a mount point missing from the mount table; not used");
    }
    if (auto owner = user_mount_owner(*entry)) {
        throw Error(ErrorCode::UnsafePath, what + " is " + *owner + " (type " +
                                               printable(entry->fs_type) +
                                               "); a user's filesystem is not used");
    }
}

} // namespace overlay
