// The conversion of a fuse-overlayfs-era upper to the kernel's format, in
// place: each step adds the kernel form before it removes the fuse form, so
// an interrupted run is simply run again (migrate.hpp).
#pragma once

#include "instance_dir.hpp"
#include "migrate.hpp"
#include "migrate_upper.hpp"
#include "same_mount.hpp"

#include <cstddef>
#include <string>
#include <vector>

namespace overlay::migration {

// Converts the upper held open O_RDONLY at `upper_fd` (on `upper_mount`,
// no other mount entered), with `lowers` the lower layers' root
// directories fuse-overlayfs merged beneath it. Each change is counted in
// `report` and its line given to `on_change`; a dry run only plans them.
// `stop_after` (tests): throw Failed after this many changes of a real run,
// to leave a half-converted upper behind as a crash would; 0: never.
// Returns the inodes left alone because the upper's owner does not own
// them: they keep their fuse-overlayfs xattrs.
std::vector<std::string> convert_upper(int upper_fd, std::vector<LayerDir> lowers, bool dry_run,
                                       std::size_t stop_after, MigrationReport& report,
                                       const Refuser& r, const InstanceDir& instance,
                                       MountIdentity upper_mount, const UpperOwner& owner,
                                       SetIdBits setid, const MigrationLineSink& on_change);

} // namespace overlay::migration
