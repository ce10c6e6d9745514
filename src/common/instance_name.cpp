#include "instance_name.hpp"

#include "error.hpp"

#include <cstddef>
#include <string>

namespace overlay {

namespace {

constexpr std::size_t kMaxNameLength = 64;
// A name can arrive as megabytes over D-Bus; the message shows only a prefix.
constexpr std::size_t kMaxShown = 80;

bool is_name_char(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

// nullptr when name is valid; sets `at` to the offending position when
// one character is to blame.
const char* name_problem(std::string_view name, std::size_t& at) noexcept {
    if (name.empty()) {
        return "is empty";
    }
    if (name.size() > kMaxNameLength) {
        return "is longer than 64 characters";
    }
    if (name.front() == '-') {
        return "starts with '-'";
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        if (!is_name_char(name[i])) {
            at = i;
            return "has a character outside [A-Za-z0-9_-]";
        }
    }
    return nullptr;
}

} // namespace

bool is_valid_instance_name(std::string_view name) noexcept {
    std::size_t at = 0;
    return name_problem(name, at) == nullptr;
}

void validate_instance_name(std::string_view name) {
    std::size_t at = std::string_view::npos;
    const char* problem = name_problem(name, at);
    if (problem == nullptr) {
        return;
    }
    std::string shown = printable(name.substr(0, kMaxShown));
    if (name.size() > kMaxShown) {
        shown += "...";
    }
    std::string message = "invalid instance name '" + shown + "': " + problem;
    if (at != std::string_view::npos) {
        message += " at position " + std::to_string(at + 1);
    }
    throw Error(ErrorCode::InvalidName, message);
}

} // namespace overlay
