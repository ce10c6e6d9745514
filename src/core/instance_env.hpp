// instance.env: KEY=VALUE lines written by the unprivileged host manager.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace overlay {

inline constexpr std::size_t kMaxInstanceEnvBytes = 64 * 1024;
inline constexpr std::size_t kMaxLowerdirs = 500; // overlayfs' OVL_MAX_STACK

// Parses the file's bytes and returns the lowerdirs of `key`, leftmost
// (top layer) first. Syntax: KEY=VALUE lines, '#' comment lines, blank
// lines, optional "export " prefix, value optionally in single or double
// quotes (no escapes inside, no expansion). Other keys are ignored.
// Refused, as Error(BadConfig, "<label>:LINE: reason"): more than 64 KiB, a
// NUL byte, a malformed line, unbalanced quotes, `key` missing, empty or
// given twice. Each lowerdir must be a normalized absolute path without
// ',', ':' or newline (they would split overlayfs' option strings): 1 to 500
// of them. `label` is what errors call the file (e.g. its path).
std::vector<std::string> parse_lowerdirs(std::string_view content, std::string_view key,
                                         std::string_view label);

} // namespace overlay
