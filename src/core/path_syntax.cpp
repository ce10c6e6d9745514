#include "path_syntax.hpp"

#include <climits>

namespace overlay {

namespace {

// Checks the components of a path that does not start with '/'. The
// caller has already removed the leading '/' of an absolute path.
const char* components_problem(std::string_view rest) noexcept {
    if (rest.find('\0') != std::string_view::npos) {
        return "contains a NUL byte";
    }
    if (rest.back() == '/') {
        return "ends with '/'";
    }
    while (true) {
        const auto slash = rest.find('/');
        const auto part = rest.substr(0, slash);
        if (part.empty()) {
            return "contains '//'";
        }
        if (part == ".") {
            return "has a '.' component";
        }
        if (part == "..") {
            return "has a '..' component";
        }
        if (part.size() > NAME_MAX) {
            return "has a component longer than NAME_MAX";
        }
        if (slash == std::string_view::npos) {
            return nullptr;
        }
        rest.remove_prefix(slash + 1);
    }
}

} // namespace

const char* absolute_path_problem(std::string_view path) noexcept {
    if (path.empty()) {
        return "is empty";
    }
    if (path.front() != '/') {
        return "is not absolute";
    }
    if (path.size() > PATH_MAX - 1) {
        return "is longer than PATH_MAX";
    }
    if (path.size() == 1) {
        return nullptr;
    }
    return components_problem(path.substr(1));
}

const char* relative_path_problem(std::string_view path) noexcept {
    if (path.empty()) {
        return "is empty";
    }
    if (path.front() == '/') {
        return "is not relative";
    }
    if (path.size() > PATH_MAX - 1) {
        return "is longer than PATH_MAX";
    }
    return components_problem(path);
}

bool is_normalized_absolute_path(std::string_view path) noexcept {
    return absolute_path_problem(path) == nullptr;
}

bool is_normalized_relative_path(std::string_view path) noexcept {
    return relative_path_problem(path) == nullptr;
}

bool is_path_beneath(std::string_view path, std::string_view root) noexcept {
    if (!is_normalized_absolute_path(path) || !is_normalized_absolute_path(root)) {
        return false;
    }
    if (!path.starts_with(root)) {
        return false;
    }
    // "/" is the only normalized path ending in '/', so it needs no separator.
    return path.size() == root.size() || root.size() == 1 || path[root.size()] == '/';
}

std::string_view path_below(std::string_view path, std::string_view root) noexcept {
    if (path.size() <= root.size()) {
        return {};
    }
    return path.substr(root.size() == 1 ? 1 : root.size() + 1);
}

} // namespace overlay
