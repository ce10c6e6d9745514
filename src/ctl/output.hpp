// What status and list print: aligned text for people, or one JSON line.
#pragma once

#include <string>
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
std::string format_status_json(const InstanceStatus& status);
std::string format_list_text(const InstanceList& list);
std::string format_list_json(const InstanceList& list);

// text with control characters shown as \xNN: paths come from files that
// unprivileged users write, and must not drive the terminal.
std::string printable(const std::string& text);

} // namespace overlay::ctl
