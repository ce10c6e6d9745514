#pragma once

#include "host_layout.hpp"
#include "unique_fd.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace overlay {

// Opens each lowerdir beneath the allowlisted root its string lies in. The
// string check and the descriptor check must both hold: the
// string picks the root, and the walk from that root's descriptor cannot
// leave it; and the layer must lie on the mount of that root, not on one
// mounted or moved beneath it. Throws LowerdirNotAllowed, UnsafePath (also
// "on another mount"), or BadConfig (missing).
std::vector<UniqueFd> open_lower_layers(const HostLayout& layout,
                                        const std::vector<std::string>& lowerdirs,
                                        std::string_view instance);

} // namespace overlay
