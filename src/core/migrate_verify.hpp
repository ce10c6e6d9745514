// Proof of a conversion: the tree fuse-overlayfs showed (computed by its
// rules over the old upper and the lowers, before anything changed) must
// equal the tree a read-only kernel overlay of the converted upper and the
// lowers shows (a detached mount, visible to no one else).
#pragma once

#include "config.hpp"
#include "migrate_view.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace overlay::migration {

// `layers`: the converted upper's root, then the lowers' (top first), all
// held open O_RDONLY; `layer_names` their paths, for messages. On any
// difference the upper is marked kMarkerVerifyFailed and UpperdirTainted is
// thrown naming the first few; a failed mount is Failed.
void verify_conversion(const View& expected, const std::vector<int>& layers,
                       const std::vector<std::string>& layer_names, const Config& config,
                       const Refuser& r, std::string_view instance);

} // namespace overlay::migration
