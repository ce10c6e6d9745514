#include "executor_protocol.hpp"

#include "error.hpp"

#include <array>
#include <charconv>

namespace overlay::protocol {

namespace {

// Splits "a\nb\n" into lines; nullopt unless the text ends with '\n'.
std::optional<std::vector<std::string_view>> lines_of(std::string_view text) {
    if (text.empty() || text.back() != '\n') {
        return std::nullopt;
    }
    std::vector<std::string_view> lines;
    while (!text.empty()) {
        const auto nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    return lines;
}

std::optional<unsigned> parse_unsigned(std::string_view s) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

struct SettingKey {
    std::string_view key;
    unsigned DaemonSettings::*field;
};

// In the order the hello lists them.
constexpr std::array<SettingKey, 8> kSettingKeys{{
    {"executors", &DaemonSettings::executors},
    {"max-pending-calls", &DaemonSettings::max_pending_calls},
    {"max-pending-calls-per-user", &DaemonSettings::max_pending_calls_per_user},
    {"max-concurrent-authorizations", &DaemonSettings::max_concurrent_authorizations},
    {"max-concurrent-authorizations-per-user",
     &DaemonSettings::max_concurrent_authorizations_per_user},
    {"migrate-executors", &DaemonSettings::migrate_executors},
    {"operation-timeout-s", &DaemonSettings::operation_timeout_sec},
    {"migrate-timeout-s", &DaemonSettings::migrate_timeout_sec},
}};

} // namespace

std::string_view request_word(const Request& request) noexcept {
    if (!request.verb) {
        return kSyncWord;
    }
    const auto& v = vocabulary::verb_info(*request.verb);
    return request.dry_run && !v.dry_run_word.empty() ? v.dry_run_word : v.executor_word;
}

std::string format_request(const Request& request) {
    std::string out(request_word(request));
    if (!request.instance.empty()) {
        out += " " + printable(request.instance);
    }
    return out + "\n";
}

std::optional<Request> parse_request(std::string_view text) {
    auto lines = lines_of(text);
    if (!lines || lines->size() != 1) {
        return std::nullopt;
    }
    const std::string_view line = lines->front();
    const auto sp = line.find(' ');
    const std::string_view word = line.substr(0, sp);
    const bool named = sp != std::string_view::npos;
    if (word == kSyncWord) {
        return named ? std::nullopt : std::optional<Request>(Request{});
    }
    for (const auto& v : vocabulary::kVerbs) {
        const bool dry_run = !v.dry_run_word.empty() && word == v.dry_run_word;
        if (word != v.executor_word && !dry_run) {
            continue;
        }
        if (v.takes_instance != named) {
            return std::nullopt;
        }
        Request r{v.verb, {}, dry_run};
        if (v.takes_instance) {
            r.instance = std::string(line.substr(sp + 1));
            if (r.instance.empty() || r.instance.find(' ') != std::string::npos) {
                return std::nullopt;
            }
        }
        return r;
    }
    return std::nullopt;
}

std::string format_hello(const ExecutorHello& hello) {
    std::string out = "hello\n";
    for (const auto& k : kSettingKeys) {
        out += std::string(k.key) + " " + std::to_string(hello.settings.*k.field) + "\n";
    }
    for (const auto& w : hello.warnings) {
        out += "warning " + printable(w) + "\n";
    }
    if (!hello.config_error.empty()) {
        out += "config-error " + printable(hello.config_error) + "\n";
    }
    return out;
}

std::optional<ExecutorHello> parse_hello(std::string_view text) {
    auto lines = lines_of(text);
    if (!lines || lines->front() != "hello") {
        return std::nullopt;
    }
    ExecutorHello hello;
    for (std::size_t i = 1; i < lines->size(); ++i) {
        const std::string_view line = (*lines)[i];
        const auto sp = line.find(' ');
        if (sp == std::string_view::npos) {
            return std::nullopt;
        }
        const std::string_view key = line.substr(0, sp);
        const std::string_view value = line.substr(sp + 1);
        if (key == "warning") {
            hello.warnings.emplace_back(value);
            continue;
        }
        if (key == "config-error") {
            hello.config_error = std::string(value);
            continue;
        }
        auto number = parse_unsigned(value);
        if (!number) {
            return std::nullopt;
        }
        bool known = false;
        for (const auto& k : kSettingKeys) {
            if (k.key == key) {
                hello.settings.*k.field = *number;
                known = true;
            }
        }
        if (!known) {
            return std::nullopt;
        }
    }
    return hello;
}

std::string format_mount_report(const MountReport& report) {
    std::string out =
        report.complete
            ? "mounts-all" + (report.how.empty() ? "" : " " + printable(report.how)) + "\n"
            : "mounts" + (report.note.empty() ? "" : " " + printable(report.note)) + "\n";
    for (const auto& [name, mounted] : report.instances) {
        out += printable(name);
        if (!report.complete) {
            out += mounted ? " 1" : " 0";
        }
        out += "\n";
    }
    return out;
}

std::optional<MountReport> parse_mount_report(std::string_view text) {
    auto lines = lines_of(text);
    if (!lines) {
        return std::nullopt;
    }
    MountReport report;
    if (lines->front() == "mounts-all") {
        report.complete = true;
    } else if (lines->front().starts_with("mounts-all ")) {
        report.complete = true;
        report.how = std::string(lines->front().substr(11));
    } else if (lines->front().starts_with("mounts ")) {
        report.note = std::string(lines->front().substr(7));
    } else if (lines->front() != "mounts") {
        return std::nullopt;
    }
    for (std::size_t i = 1; i < lines->size(); ++i) {
        const std::string_view line = (*lines)[i];
        if (report.complete) {
            if (line.empty() || line.find(' ') != std::string_view::npos) {
                return std::nullopt;
            }
            report.instances.emplace_back(std::string(line), true);
            continue;
        }
        const auto sp = line.find(' ');
        if (sp == std::string_view::npos || sp == 0) {
            return std::nullopt;
        }
        const std::string_view flag = line.substr(sp + 1);
        if (flag != "0" && flag != "1") {
            return std::nullopt;
        }
        report.instances.emplace_back(std::string(line.substr(0, sp)), flag == "1");
    }
    return report;
}

} // namespace overlay::protocol
