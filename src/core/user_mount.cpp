#include "user_mount.hpp"

#include "error.hpp"
#include "mount_table.hpp"

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

void require_not_user_mount(const Config& config, int fd, const std::string& what) {
    // The mount fd lies on, not only one rooted at fd: a root beneath a
    // user's FUSE mount, or beneath one of our overlays moved into the
    // layout, is that filesystem's too.
    const auto kind = mount_table_kind(config);
    const auto id = mount_id_of(kind, fd, what);
    const auto entry = mount_by_id(kind, id);
    if (!entry) {
        throw Error(ErrorCode::UnsafePath,
                    what + " lies on a mount missing from the mount table; not used");
    }
    if (auto name = instance_of(*entry)) {
        throw Error(ErrorCode::UnsafePath,
                    what + " lies on the live overlay of instance " + std::string(*name) +
                        " (now at " + printable(entry->mount_point) +
                        "), moved into the layout with its directory; not used");
    }
    MountEntry as_entry;
    as_entry.fs_type = entry->fs_type;
    as_entry.super_options = entry->super_options;
    if (auto owner = user_mount_owner(as_entry)) {
        throw Error(ErrorCode::UnsafePath, what + " is on " + *owner + " (type " +
                                               printable(entry->fs_type) +
                                               "); a user's filesystem is not used");
    }
}

} // namespace overlay
