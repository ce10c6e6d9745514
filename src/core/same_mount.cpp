#include "same_mount.hpp"

#include "error.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>

// Debian 12's headers predate Linux 6.8.
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

namespace overlay {

MountIdentity mount_identity(int fd, std::string_view what) {
    struct statx stx {};
    // Asking for both: a kernel that knows STATX_MNT_ID_UNIQUE answers with
    // it, an older one ignores the bit and answers STATX_MNT_ID.
    if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID | STATX_MNT_ID_UNIQUE,
                &stx) != 0) {
        throw_errno(ErrorCode::Failed, "statx " + printable(what), errno);
    }
    if (stx.stx_mask & STATX_MNT_ID_UNIQUE) {
        return {stx.stx_mnt_id, true};
    }
    if (stx.stx_mask & STATX_MNT_ID) {
        return {stx.stx_mnt_id, false};
    }
    throw Error(ErrorCode::Failed, "statx " + printable(what) +
                                       ": the kernel reports no mount id (Linux 5.8+ needed)");
}

void require_same_mount(int anchor_fd, std::string_view anchor_path, int fd, std::string_view path,
                        std::string_view instance) {
    if (mount_identity(fd, path) == mount_identity(anchor_fd, anchor_path)) {
        return;
    }
    throw Error(ErrorCode::UnsafePath,
                instance_context(instance) + printable(path) + " is on another mount than " +
                    printable(anchor_path) +
                    " (a filesystem mounted or moved there is not part of the layout)");
}

} // namespace overlay
