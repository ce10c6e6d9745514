// Purely lexical checks on path strings; nothing here touches the filesystem.
// They decide what a string may look like before any descriptor is opened,
// so that messages can say exactly what is wrong with a hostile path.
#pragma once

#include <string_view>

namespace overlay {

// Absolute, no "." or ".." component, no "//", no trailing '/' (except "/"
// itself), no NUL, every component at most NAME_MAX bytes, whole at most
// PATH_MAX - 1 bytes.
bool is_normalized_absolute_path(std::string_view path) noexcept;

// Relative ("a/b"), non-empty, same rules otherwise.
bool is_normalized_relative_path(std::string_view path) noexcept;

// Why path is not a normalized absolute path ("is empty", "is not absolute",
// "has a '..' component", ...), or nullptr when it is one. For messages.
const char* absolute_path_problem(std::string_view path) noexcept;

// The same for a normalized relative path (nullptr when it is one).
const char* relative_path_problem(std::string_view path) noexcept;

// True when path equals root or lies beneath it ("/a/b" is beneath "/a",
// "/ab" is not). Both must be normalized absolute paths; false otherwise.
bool is_path_beneath(std::string_view path, std::string_view root) noexcept;

// The part of path below root ("" when equal, "b/c" for "/a/b/c" below
// "/a"); precondition is_path_beneath.
std::string_view path_below(std::string_view path, std::string_view root) noexcept;

} // namespace overlay
