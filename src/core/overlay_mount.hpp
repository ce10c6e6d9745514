// Making the overlay from already-opened descriptors, by the newest of the
// three kernel interfaces the kernel has (README, "The three mount paths").
#pragma once

#include "config.hpp"
#include "unique_fd.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace overlay {

// Everything the kernel logged into an fs context ("e overlay: ..."), its
// level prefixes dropped, printable(), "; "-joined: for error messages.
std::string fs_context_messages(int fsfd);

struct OverlayLayers {
    const std::vector<UniqueFd>& lowers; // top layer first
    int upper;
    int work;
    int merged; // the mount point
};

// Auto resolved against the running kernel: layer fds from 6.13,
// "lowerdir+" strings from 6.8, legacy mount(2) before.
MountApi resolve_mount_api(MountApi requested);
const char* mount_api_name(MountApi api);

// The legacy mount(2) data string: the layers named relative to
// /proc/self/fd (so "lowerdir=5:6:7,..."), which keeps 500 layers well
// inside the one page mount(2) copies. Throws Failed when it would not fit.
std::string legacy_mount_data(const std::vector<int>& lowers, int upper, int work,
                              std::string_view instance);

// Mounts on layers.merged with source `source`. Throws Failed with errno
// text and, where the kernel gave one, its fs-context message.
void mount_overlay(const OverlayLayers& layers, const std::string& source, const Config& config,
                   std::string_view instance, std::string_view merged_path);

// A read-only overlay of `layers` (top first), mounted nowhere: the mount
// exists only as the descriptor returned (an anonymous mount namespace of
// its own), so no other process can see or use it, and closing it ends it.
// Errors as mount_overlay's, "WHAT (mount api): step: ..." with `what`.
UniqueFd mount_read_only_view(const std::vector<int>& layers, const std::string& source,
                              const Config& config, const std::string& what);

} // namespace overlay
