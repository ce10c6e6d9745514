// JSON string literals, the only escaping --json output needs.
#pragma once

#include <string>
#include <string_view>

namespace overlay::ctl {

// text (UTF-8, as every D-Bus string is) as a JSON string literal with its
// quotes: '"', '\\' and control characters escaped, everything else as is.
std::string json_string(std::string_view text);

} // namespace overlay::ctl
