#include "lower_layers.hpp"

#include "error.hpp"
#include "fs_open.hpp"
#include "path_syntax.hpp"
#include "same_mount.hpp"
#include "user_mount.hpp"

#include <cerrno>
#include <fcntl.h>
#include <map>

namespace overlay {

std::vector<UniqueFd> open_lower_layers(const HostLayout& layout,
                                        const std::vector<std::string>& lowerdirs,
                                        std::string_view instance) {
    const auto& roots = layout.config().allowed_lower_roots;
    std::map<std::size_t, UniqueFd> root_fds; // opened on first use: a root may not exist yet
    std::vector<UniqueFd> layers;
    layers.reserve(lowerdirs.size());
    const std::string who = instance_context(instance) + "lowerdir ";
    for (const auto& lower : lowerdirs) {
        std::size_t match = roots.size();
        for (std::size_t i = 0; i < roots.size(); ++i) {
            if (is_path_beneath(lower, roots[i])) {
                match = i;
                break;
            }
        }
        if (match == roots.size()) {
            throw Error(ErrorCode::LowerdirNotAllowed,
                        who + printable(lower) + " is not beneath any of AllowedLowerRoots");
        }
        auto& root_fd = root_fds[match];
        if (!root_fd) {
            root_fd = layout.open_configured_dir(roots[match], O_PATH | O_DIRECTORY);
            // An admin's disk may be mounted there; a user's FUSE mount
            // there would pass the same-mount check below.
            require_not_user_mount(layout.config(), root_fd.get(),
                                   instance_context(instance) + "allowed root " +
                                       printable(roots[match]));
        }
        auto below = path_below(lower, roots[match]);
        // Not O_PATH: layer fds for fsconfig need a real open file before 6.15.
        auto opened = open_beneath(root_fd.get(), below.empty() ? "." : below,
                                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (!opened.ok()) {
            throw Error(opened.error() == ENOENT ? ErrorCode::BadConfig : ErrorCode::UnsafePath,
                        who + printable(lower) + " " + describe_open_failure(opened.error()));
        }
        UniqueFd layer = opened.take();
        // Beneath the root is not enough: a user's FUSE mount or a live
        // overlay moved under the root would be beneath it too, and copy-up
        // would write what those show (setuid files, device nodes) into an
        // upper with root's credentials. The root itself may be a mount of
        // its own (a separate disk): the layer must be on that one.
        require_same_mount(root_fd.get(), roots[match], layer.get(), lower, instance);
        layers.push_back(std::move(layer));
    }
    return layers;
}

} // namespace overlay
