// The result record: an executor's (left4me-overlay --serve) answer to each
// request of the daemon (executor_protocol.hpp), in one message over their
// socket. The daemon never makes a mount syscall itself: it reads this.
// Text, one field per line, every field passed through overlay::printable()
// so no line can be forged:
//
//   ok                              first line on success
//   error NAME MESSAGE              instead, on failure (NAME from error.hpp)
//   mounted 0|1                     status
//   merged PATH                     status
//   lower PATH                      status, once per lowerdir, top first
//   instance NAME 0|1               list, once per instance
//   report LINE                     migrate, once per line of its report, in order
#pragma once

#include "error.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace overlay::protocol {

// What an "ok" record carries (the fields its verb fills).
struct ExecutorResult {
    bool mounted = false;
    std::string merged;
    std::vector<std::string> lowerdirs;
    std::vector<std::pair<std::string, bool>> instances;
    std::vector<std::string> report; // migrate
};

// What an "error" record carries.
struct ExecutorFailure {
    ErrorCode error = ErrorCode::Failed;
    std::string message;
};

// A record is one or the other, never both.
using ResultRecord = std::variant<ExecutorResult, ExecutorFailure>;

std::string format_ok();
std::string format_error(const Error& error);
std::string format_status(bool mounted, std::string_view merged,
                          const std::vector<std::string>& lowerdirs);
std::string format_list(const std::vector<std::pair<std::string, bool>>& instances);
// Each line as it came (already printable() where it quotes hostile bytes);
// anything that could break the record's line or UTF-8 is escaped.
std::string format_report(const std::vector<std::string>& lines);

// Parses what the executor wrote; nullopt when it is not a well-formed record
// (the executor crashed or was killed mid-write).
std::optional<ResultRecord> parse_result_record(std::string_view text);

} // namespace overlay::protocol
