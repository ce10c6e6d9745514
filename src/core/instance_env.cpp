#include "instance_env.hpp"

#include "error.hpp"
#include "path_syntax.hpp"
#include "text_lines.hpp"

#include <cstddef>
#include <optional>

namespace overlay {

namespace {

constexpr std::string_view kBlank = " \t";

[[noreturn]] void fail(std::string_view label, std::size_t line, const std::string& reason) {
    throw Error(ErrorCode::BadConfig,
                printable(label) + ":" + std::to_string(line) + ": " + reason);
}

std::string_view trim_left(std::string_view s) {
    const auto start = s.find_first_not_of(kBlank);
    return start == std::string_view::npos ? std::string_view{} : s.substr(start);
}

std::string_view trim_right(std::string_view s) {
    const auto end = s.find_last_not_of(kBlank);
    return end == std::string_view::npos ? std::string_view{} : s.substr(0, end + 1);
}

bool is_identifier_char(char c, bool first) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

struct Assignment {
    std::string_view key;
    std::string_view value;
    char quote = 0; // 0, '\'' or '"'
};

// One line, without its '\n'. nullopt for blank and comment lines.
std::optional<Assignment> parse_line(std::string_view line, std::string_view label,
                                     std::size_t number) {
    if (line.find('\r') != std::string_view::npos) {
        fail(label, number, "carriage return (CRLF line endings are not accepted)");
    }
    auto s = trim_left(line);
    if (s.empty() || s.front() == '#') {
        return std::nullopt;
    }
    if (s.starts_with("export") && s.size() > 6 && kBlank.find(s[6]) != std::string_view::npos) {
        s = trim_left(s.substr(6));
    }
    std::size_t key_length = 0;
    while (key_length < s.size() && is_identifier_char(s[key_length], key_length == 0)) {
        ++key_length;
    }
    if (key_length == 0 || key_length == s.size() || s[key_length] != '=') {
        fail(label, number, "not a KEY=VALUE line");
    }
    Assignment a;
    a.key = s.substr(0, key_length);
    const auto rest = s.substr(key_length + 1);
    if (!rest.empty() && (rest.front() == '\'' || rest.front() == '"')) {
        a.quote = rest.front();
        const auto close = rest.find(a.quote, 1);
        if (close == std::string_view::npos) {
            fail(label, number,
                 a.quote == '\'' ? "unbalanced single quote" : "unbalanced double quote");
        }
        a.value = rest.substr(1, close - 1);
        if (!trim_left(rest.substr(close + 1)).empty()) {
            fail(label, number, "text after the closing quote");
        }
        return a;
    }
    a.value = trim_right(rest);
    if (a.value.find_first_of("'\"") != std::string_view::npos) {
        fail(label, number, "quote character inside an unquoted value");
    }
    return a;
}

// We never expand anything; a shell or systemd reading the same file would.
// Refuse the characters where the two readings differ rather than guess.
void check_shell_agrees(const Assignment& a, std::string_view label, std::size_t number) {
    std::string_view special;
    const char* how = nullptr;
    if (a.quote == 0) {
        special = " \t\\$`;&|<>()";
        how = "unquoted";
    } else if (a.quote == '"') {
        special = "\\$`";
        how = "inside double quotes";
    } else {
        return;
    }
    const auto at = a.value.find_first_of(special);
    if (at != std::string_view::npos) {
        fail(label, number,
             std::string(a.key) + ": '" + printable(a.value.substr(at, 1)) + "' " + how +
                 " would mean something else to a shell; put the value in single quotes");
    }
}

std::vector<std::string> split_lowerdirs(std::string_view value, std::string_view key,
                                         std::string_view label, std::size_t number) {
    const auto prefix = std::string(key) + ": ";
    if (value.empty()) {
        fail(label, number, prefix + "empty value");
    }
    std::size_t count = 1;
    for (char c : value) {
        count += c == ':' ? 1 : 0;
    }
    if (count > kMaxLowerdirs) {
        fail(label, number,
             prefix + std::to_string(count) + " lowerdirs, at most " +
                 std::to_string(kMaxLowerdirs) + " (overlayfs' stack limit)");
    }
    std::vector<std::string> lowerdirs;
    lowerdirs.reserve(count);
    while (true) {
        const auto colon = value.find(':');
        const auto dir = value.substr(0, colon);
        const auto which = prefix + "lowerdir " + std::to_string(lowerdirs.size() + 1);
        if (dir.empty()) {
            fail(label, number, which + " is empty (a ':' at the start, at the end or doubled)");
        }
        if (const char* problem = absolute_path_problem(dir)) {
            fail(label, number, which + " '" + printable(dir) + "' " + problem);
        }
        // ',' separates overlayfs mount options (':' and newline cannot get here).
        if (dir.find(',') != std::string_view::npos) {
            fail(label, number, which + " '" + printable(dir) + "' contains ','");
        }
        lowerdirs.emplace_back(dir);
        if (colon == std::string_view::npos) {
            return lowerdirs;
        }
        value.remove_prefix(colon + 1);
    }
}

} // namespace

std::vector<std::string> parse_lowerdirs(std::string_view content, std::string_view key,
                                         std::string_view label) {
    if (content.size() > kMaxInstanceEnvBytes) {
        throw Error(ErrorCode::BadConfig, printable(label) + ": larger than " +
                                              std::to_string(kMaxInstanceEnvBytes) + " bytes");
    }
    std::optional<Assignment> found;
    std::size_t found_line = 0;
    std::size_t number = 0;
    while (!content.empty()) {
        ++number;
        const auto line = take_line(content);
        if (line.find('\0') != std::string_view::npos) {
            fail(label, number, "NUL byte");
        }
        const auto assignment = parse_line(line, label, number);
        if (!assignment || assignment->key != key) {
            continue;
        }
        if (found) {
            fail(label, number,
                 std::string(key) + " given again (first on line " + std::to_string(found_line) +
                     ")");
        }
        check_shell_agrees(*assignment, label, number);
        found = assignment;
        found_line = number;
    }
    if (!found) {
        throw Error(ErrorCode::BadConfig, printable(label) + ": " + printable(key) + " is not set");
    }
    return split_lowerdirs(found->value, key, label, found_line);
}

} // namespace overlay
