// Where the drop-in and the daemon's executors read the config unless told
// otherwise (--config): one name for both, though the daemon never reads
// the file itself (it passes the path on to its executors).
#pragma once

namespace overlay {

inline constexpr const char* kDefaultConfigPath = "/etc/left4me/overlay.conf";

} // namespace overlay
