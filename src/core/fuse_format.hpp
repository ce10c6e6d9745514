// The names fuse-overlayfs writes into an upper it made, in one place: the
// taint scan refuses an upper that carries them and migrate converts them
// to the kernel's format.
#pragma once

#include <array>
#include <string_view>

namespace overlay::fuse_format {

// ".wh.X" hides X (even in its own layer).
inline constexpr std::string_view kWhiteoutPrefix = ".wh.";
// A file that makes its directory opaque.
inline constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
// fuse-overlayfs (1.10) also leaves this beside kOpaqueMarker in a directory
// it made opaque: a char 0/0 node (an empty file where it cannot mknod).
inline constexpr std::string_view kOpaqueWhiteout = ".wh..opq";

// Its own xattrs (origin, opaque, override_stat, ...).
inline constexpr std::string_view kXattrPrefix = "user.fuseoverlayfs.";
// The unprivileged overlay xattrs it also reads and writes.
inline constexpr std::string_view kUserOverlayXattrPrefix = "user.overlay.";
// The kernel overlay's opacity, what migrate writes.
inline constexpr const char* kTrustedOpaque = "trusted.overlay.opaque";
// The order in which fuse-overlayfs reads a directory's opacity: the first
// present decides (opaque when its value starts with 'y'); with none, the
// presence of kOpaqueMarker.
inline constexpr std::array<const char*, 3> kOpaqueXattrs = {
    "trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque"};
// "uid:gid:octal-mode" owner and mode it shows instead of the inode's, in
// the order it reads them.
inline constexpr std::array<const char*, 3> kOverrideStatXattrs = {
    "security.fuseoverlayfs.override_stat", "user.containers.override_stat",
    "user.fuseoverlayfs.override_stat"};

} // namespace overlay::fuse_format
