#include "mount_point.hpp"

#include "error.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay {

std::optional<std::uint64_t> mount_root_id(int fd) {
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) {
        throw_errno(ErrorCode::Failed, "statx", errno);
    }
    if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) {
        throw Error(ErrorCode::Failed, "the kernel does not report STATX_ATTR_MOUNT_ROOT");
    }
    if (!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
        return std::nullopt;
    }
    return stx.stx_mnt_id;
}

std::uint64_t mountinfo_id(int fd, std::string_view what) {
    struct statx stx {};
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) {
        throw_errno(ErrorCode::Failed, "statx " + printable(what), errno);
    }
    return stx.stx_mnt_id;
}

std::optional<MountEntry> find_mount_by_id(std::uint64_t mount_id) {
    for (auto& entry : read_mountinfo(::getpid())) {
        if (entry.mount_id == mount_id) {
            return entry;
        }
    }
    return std::nullopt;
}

} // namespace overlay
