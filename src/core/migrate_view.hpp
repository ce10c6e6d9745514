// What a mount shows, as path -> attributes: the tree fuse-overlayfs showed
// (its rules over the upper and the lowers) and the tree a kernel overlay
// shows, which migrate's verification compares.
#pragma once

#include "migrate_upper.hpp"
#include "same_mount.hpp"

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <sys/types.h>
#include <vector>

namespace overlay::migration {

struct Attr {
    mode_t mode = 0; // type and permission bits
    uid_t uid = 0;
    gid_t gid = 0;
    off_t size = 0;
    dev_t rdev = 0;
    std::int64_t mtime_sec = 0;
    long mtime_nsec = 0;
    std::string link;
    std::size_t layer = 0; // which layer shows it (0: the top)
};
using View = std::map<std::string, Attr>;

// The view of `stack` (the upper first, then the lowers) by fuse-overlayfs'
// rules: whiteouts, opacity, and the override_stat the conversion will apply
// (`owner` decides which user.* ones; `setid`, whether one needing a set-id
// chmod is refused, see migrate.hpp). `upper_mount`: the upper's mount, no
// other entered.
View fuse_view(std::vector<LayerDir> stack, const Refuser& r, MountIdentity upper_mount,
               const UpperOwner& owner, SetIdBits setid);

// The plain tree of the kernel overlay's own mount (`root`, a directory
// open O_RDONLY, on `mount`), which has already applied the kernel's rules.
// While walking it, the data of every regular file `expected` shows from
// the upper (layer 0) is compared with the upper's file of the same path,
// reached through the upper's own directory descriptors from `upper_root`,
// opened one component at a time beside this walk: no path is resolved
// whole, so no length limits it. The paths whose data differ go to
// `differs`.
View kernel_view(UniqueFd root, MountIdentity mount, const Refuser& r, const View& expected,
                 int upper_root, std::set<std::string>& differs);

} // namespace overlay::migration
