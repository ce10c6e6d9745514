#pragma once

#include "error.hpp"

#include <cstddef>
#include <string>

namespace overlay {

// Reads fd to its end, but never more than limit + 1 bytes: a result longer
// than `limit` means the file is too large, and the caller refuses it rather
// than use a cut copy (files can grow between fstat and read). A failed read
// throws Error(code, context + ": cannot read: REASON").
std::string read_at_most(int fd, std::size_t limit, ErrorCode code, const std::string& context);

} // namespace overlay
