#include "host_layout.hpp"

#include "error.hpp"
#include "fs_open.hpp"
#include "path_syntax.hpp"
#include "user_mount.hpp"

#include <cerrno>
#include <fcntl.h>

namespace overlay {

HostLayout::HostLayout(const Config& config) : config_(config) {
    // Root itself is the admin's trust anchor (its parents belong to root),
    // so symlinks in it are the admin's choice.
    root_.reset(::open(config.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root_) {
        throw_errno(ErrorCode::Failed, "Root " + printable(config.root), errno);
    }
    instances_ = open_configured_dir(config.instances_dir, O_RDONLY | O_DIRECTORY);
    // It may be a mount of its own (a nosuid,nodev bind mount, a disk), but
    // not a user's FUSE mount: that user would then answer every lookup
    // and could stall every operation.
    require_not_user_mount(instances_.get(), "InstancesDir " + printable(config.instances_dir));
}

UniqueFd HostLayout::open_configured_dir(const std::string& path, int flags) const {
    int fd;
    if (is_path_beneath(path, config_.root)) {
        auto below = path_below(path, config_.root);
        fd = open_beneath(root_.get(), below.empty() ? "." : below, flags);
    } else {
        fd = ::open(path.c_str(), flags | O_CLOEXEC);
        if (fd < 0) {
            fd = -errno;
        }
    }
    if (fd < 0) {
        throw Error(fd == -ENOENT ? ErrorCode::Failed : ErrorCode::UnsafePath,
                    "configured directory " + printable(path) + " " + describe_open_failure(-fd));
    }
    return UniqueFd(fd);
}

} // namespace overlay
