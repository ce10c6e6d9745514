#pragma once

#include <string>
#include <string_view>

namespace overlay {

inline constexpr std::size_t kMaxUpperDepth = 256;

// Walks the upperdir (from its descriptor; no symlink followed, no other
// mount entered) and throws UpperdirTainted at the first entry that carries
// a user.fuseoverlayfs.* xattr or whose name starts with ".wh.": fuse-
// overlayfs' own whiteouts and opaque markers, which a kernel overlay would
// show as plain files, bringing deleted files back. upper_path and instance
// only label the error. A tree deeper than kMaxUpperDepth is UnsafePath, and
// so is a directory inside it that is on another mount: the overlay would
// use what that mount hides, so it is neither entered nor passed over.
void check_upper_untainted(int upper_fd, std::string_view upper_path, std::string_view instance);

} // namespace overlay
