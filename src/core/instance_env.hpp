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
// (top layer) first. `label` is what errors call the file (e.g. its path).
// Errors are Error(BadConfig, "<label>:LINE: reason"), or "<label>: reason"
// for the size limit and a missing key.
//
// Syntax, one assignment per line:
//   - '\n' ends a line; a '\r' anywhere is refused (no CRLF files), as is a
//     NUL byte and more than 64 KiB (exactly 64 KiB is accepted);
//   - blank lines and lines whose first non-blank character is '#' are
//     comments; '#' after a value is not a comment;
//   - [blanks] ["export" blanks] KEY=VALUE [blanks], KEY a shell identifier,
//     no blanks around '=';
//   - VALUE is unquoted, or wholly in '...' or "..." (no escapes, no
//     expansion, closed on the same line, nothing but blanks after the
//     closing quote); a quote character inside an unquoted value is refused.
// Every line must be well-formed; other keys' values are not looked at
// beyond that. For `key` only, characters a shell (or systemd) would read
// differently are refused rather than read literally: blanks \ $ ` ; & | < >
// ( ) unquoted, \ $ ` inside double quotes (single quotes take anything).
// `key` must appear exactly once, non-empty; its value is split on ':' (so a
// ':' cannot be part of a lowerdir). Each lowerdir must be a normalized
// absolute path (is_normalized_absolute_path) without ','; empty elements
// ("a::b", leading or trailing ':') are refused; 1 to 500 of them.
std::vector<std::string> parse_lowerdirs(std::string_view content, std::string_view key,
                                         std::string_view label);

} // namespace overlay
