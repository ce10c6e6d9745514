// What an admin should hear about when the service starts: settings that
// work but weaken the defence. The daemon logs these; the drop-in stays
// quiet (its callers parse its stderr as the old helper's).
#pragma once

#include "config.hpp"

#include <string>
#include <vector>

namespace overlay {

// One line per concern, empty when there is none:
// - HostPid is not 1 (a pid that can be recycled);
// - the filesystem holding InstancesDir is mounted without nosuid or
//   without nodev: copy-up writes setuid files and device nodes of the
//   lower layers into upper/ there, where the overlay's own nosuid,nodev
//   (which cover only merged/) do not reach.
// The mount is found in the mount table of the current namespace by the
// mount id of the opened InstancesDir, so call it in the host namespace,
// as the core's operations are. Never throws for a missing or unreadable
// InstancesDir: that becomes a warning too.
std::vector<std::string> startup_warnings(const Config& config);

} // namespace overlay
