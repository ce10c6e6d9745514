#include "result_record.hpp"

#include <charconv>

namespace overlay::protocol {

namespace {

std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        auto nl = text.find('\n');
        if (nl == std::string_view::npos) {
            lines.push_back(text); // unterminated: caller rejects
            break;
        }
        lines.push_back(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    return lines;
}

std::optional<bool> parse_flag(std::string_view s) {
    if (s == "0") {
        return false;
    }
    if (s == "1") {
        return true;
    }
    return std::nullopt;
}

// Core messages are already printable() where they quote hostile bytes;
// escaping them again would turn "\x0a" into "\x5cx0a". What must still go
// is anything that could end the record's line or break D-Bus' UTF-8 rule.
std::string one_line(std::string_view message) {
    std::string out;
    out.reserve(message.size());
    for (unsigned char c : message) {
        if (c >= 0x20 && c < 0x7f) {
            out.push_back(static_cast<char>(c));
        } else {
            out += printable(std::string_view(reinterpret_cast<const char*>(&c), 1));
        }
    }
    return out;
}

} // namespace

std::string format_ok() {
    return "ok\n";
}

std::string format_error(const Error& error) {
    return "error " + std::string(error_name(error.code())) + " " + one_line(error.what()) + "\n";
}

std::string format_status(bool mounted, std::string_view merged,
                          const std::vector<std::string>& lowerdirs) {
    std::string out = format_ok();
    out += mounted ? "mounted 1\n" : "mounted 0\n";
    out += "merged " + printable(merged) + "\n";
    for (const auto& lower : lowerdirs) {
        out += "lower " + printable(lower) + "\n";
    }
    return out;
}

std::string format_list(const std::vector<std::pair<std::string, bool>>& instances) {
    std::string out = format_ok();
    for (const auto& [name, mounted] : instances) {
        out += "instance " + printable(name) + (mounted ? " 1\n" : " 0\n");
    }
    return out;
}

std::string format_report(const std::vector<std::string>& lines) {
    std::string out = format_ok();
    for (const auto& line : lines) {
        out += "report " + one_line(line) + "\n";
    }
    return out;
}

std::optional<ResultRecord> parse_result_record(std::string_view text) {
    if (text.empty() || text.back() != '\n') {
        return std::nullopt;
    }
    auto lines = split_lines(text);
    ExecutorResult result;
    const auto first = lines.front();
    if (first.starts_with("error ")) {
        if (lines.size() != 1) {
            return std::nullopt;
        }
        auto rest = first.substr(6);
        auto sp = rest.find(' ');
        if (sp == std::string_view::npos) {
            return std::nullopt;
        }
        auto code = error_code_from_name(rest.substr(0, sp));
        if (!code) {
            return std::nullopt;
        }
        return ExecutorFailure{*code, std::string(rest.substr(sp + 1))};
    }
    if (first != "ok") {
        return std::nullopt;
    }
    for (std::size_t i = 1; i < lines.size(); ++i) {
        auto line = lines[i];
        if (line.starts_with("mounted ")) {
            auto flag = parse_flag(line.substr(8));
            if (!flag) {
                return std::nullopt;
            }
            result.mounted = *flag;
        } else if (line.starts_with("merged ")) {
            result.merged = std::string(line.substr(7));
        } else if (line.starts_with("lower ")) {
            result.lowerdirs.emplace_back(line.substr(6));
        } else if (line.starts_with("report ")) {
            result.report.emplace_back(line.substr(7));
        } else if (line.starts_with("instance ")) {
            auto rest = line.substr(9);
            auto sp = rest.rfind(' ');
            if (sp == std::string_view::npos) {
                return std::nullopt;
            }
            auto flag = parse_flag(rest.substr(sp + 1));
            if (!flag) {
                return std::nullopt;
            }
            result.instances.emplace_back(std::string(rest.substr(0, sp)), *flag);
        } else {
            return std::nullopt;
        }
    }
    return result;
}

} // namespace overlay::protocol
