// What status and list print: aligned text for people, or JSON; and the
// one escaping every name, path or service message goes through before
// this program writes it to a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace overlay::ctl {

struct InstanceStatus {
    std::string instance;
    bool mounted = false;
    std::string merged;
    std::vector<std::string> lowerdirs; // top layer first
};

using InstanceList = std::vector<std::pair<std::string, bool>>; // (name, mounted)

std::string format_status_text(const InstanceStatus& status);
std::string format_list_text(const InstanceList& list, bool legend = true);
// pretty: indented over several lines, else one line.
std::string format_status_json(const InstanceStatus& status, bool pretty = false);
std::string format_list_json(const InstanceList& list, bool pretty = false);

// text with every byte that could drive a terminal shown as \xNN: C0
// controls, DEL, the backslash itself, C1 controls (U+0080..U+009F, which
// some terminals obey: 0x9b is CSI) and bytes that are not valid UTF-8.
// Printable UTF-8 stays as it is. Paths come from files that unprivileged
// users write, and names from the command line.
std::string printable(std::string_view text);

// printable() of at most the first max_bytes bytes of text, with "..." and
// the full length when cut: for words from the command line, which can be
// megabytes.
constexpr std::size_t kMaxShownBytes = 80;
std::string printable_bounded(std::string_view text, std::size_t max_bytes = kMaxShownBytes);

} // namespace overlay::ctl
