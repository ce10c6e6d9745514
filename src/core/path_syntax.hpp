// Purely lexical checks on path strings; nothing here touches the filesystem.
#pragma once

#include <string_view>

namespace overlay {

// Absolute, no "." or ".." component, no "//", no trailing '/' (except "/"
// itself), no NUL, every component at most NAME_MAX bytes, whole at most
// PATH_MAX - 1 bytes.
bool is_normalized_absolute_path(std::string_view path) noexcept;

// Relative ("a/b"), non-empty, same rules otherwise.
bool is_normalized_relative_path(std::string_view path) noexcept;

// True when path equals root or lies beneath it ("/a/b" is beneath "/a",
// "/ab" is not). Both must be normalized absolute paths.
bool is_path_beneath(std::string_view path, std::string_view root) noexcept;

// The part of path below root ("" when equal); precondition is_path_beneath.
std::string_view path_below(std::string_view path, std::string_view root) noexcept;

} // namespace overlay
