#pragma once

#include <string_view>

namespace overlay {

// Removes the first line from `text` and returns it without its '\n'; the
// last line may lack one. The parsers count lines as they take them, so
// that every error can name its line.
inline std::string_view take_line(std::string_view& text) noexcept {
    const auto newline = text.find('\n');
    const auto line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    return line;
}

} // namespace overlay
