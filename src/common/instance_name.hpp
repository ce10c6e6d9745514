#pragma once

#include <string_view>

namespace overlay {

// 1-64 characters of [A-Za-z0-9_-], not starting with '-'. Throws
// Error(InvalidName) naming the offending input (printable()).
void validate_instance_name(std::string_view name);

bool is_valid_instance_name(std::string_view name) noexcept;

} // namespace overlay
