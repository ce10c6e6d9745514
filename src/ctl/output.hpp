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

// Text the service sent (names, paths, messages), made safe for a
// terminal: every byte that could drive one shown as \xNN: C0 controls,
// DEL, C1 controls (U+0080..U+009F, which some terminals obey: 0x9b is
// CSI) and bytes that are not valid UTF-8. Printable UTF-8 stays, and so do
// backslashes: the service has already escaped hostile bytes with
// overlay::printable(), whose "\x0a" must not become "\x5cx0a". Words the
// user typed are raw bytes: they go through overlay::printable_bounded().
std::string terminal_safe(std::string_view text);

} // namespace overlay::ctl
