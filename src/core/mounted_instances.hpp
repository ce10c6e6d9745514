// Which instances the mount table shows mounted: those whose
// InstancesDir/NAME/merged has an overlay as its topmost mount. One pass
// over the table, so a listing of thousands of instances stays linear.
#pragma once

#include "config.hpp"
#include "mountinfo.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace overlay {

// Name -> mount id of its overlay: a new id at the same name is a new mount.
std::map<std::string, std::uint64_t> mounted_instances(const Config& config,
                                                       const std::vector<MountEntry>& mounts);

} // namespace overlay
