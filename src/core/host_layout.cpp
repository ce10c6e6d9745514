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
    require_not_user_mount(config, instances_.get(),
                           "InstancesDir " + printable(config.instances_dir));
}

UniqueFd HostLayout::open_configured_dir(const std::string& path, int flags) const {
    auto opened = [&] {
        if (is_path_beneath(path, config_.root)) {
            auto below = path_below(path, config_.root);
            return open_beneath(root_.get(), below.empty() ? "." : below, flags);
        }
        // An absolute path outside Root: the admin's word, opened as given.
        const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
        return fd >= 0 ? OpenResult::opened(fd) : OpenResult::failed(errno);
    }();
    if (!opened.ok()) {
        throw Error(opened.error() == ENOENT ? ErrorCode::Failed : ErrorCode::UnsafePath,
                    "configured directory " + printable(path) + " " +
                        describe_open_failure(opened.error()));
    }
    return opened.take();
}

} // namespace overlay
