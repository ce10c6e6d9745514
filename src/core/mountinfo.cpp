#include "mountinfo.hpp"

#include "error.hpp"
#include "read_at_most.hpp"
#include "text_lines.hpp"
#include "unique_fd.hpp"

#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <string>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace overlay {

namespace {

// A mount table can be long, but not without bound: a namespace full of
// mounts made to exhaust the daemon's memory is refused instead.
constexpr std::size_t kMaxMountinfoBytes = 64 * 1024 * 1024;

[[noreturn]] void fail(std::size_t line, const std::string& reason) {
    throw Error(ErrorCode::Failed, "mountinfo:" + std::to_string(line) + ": " + reason);
}

bool is_octal(char c) {
    return c >= '0' && c <= '7';
}

// The kernel writes ' ', '\t', '\n' and '\\' in these fields as \ooo.
std::string unescape(std::string_view field, std::string_view what, std::size_t line) {
    std::string out;
    out.reserve(field.size());
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (field[i] != '\\') {
            out.push_back(field[i]);
            continue;
        }
        if (field.size() - i < 4 || !is_octal(field[i + 1]) || !is_octal(field[i + 2]) ||
            !is_octal(field[i + 3]) || field[i + 1] > '3') {
            fail(line, "bad escape in " + std::string(what));
        }
        out.push_back(static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                                        (field[i + 3] - '0')));
        i += 3;
    }
    return out;
}

std::uint64_t parse_id(std::string_view field, std::string_view what, std::size_t line) {
    std::uint64_t value = 0;
    const auto* end = field.data() + field.size();
    const auto [ptr, ec] = std::from_chars(field.data(), end, value);
    if (field.empty() || ec != std::errc{} || ptr != end) {
        fail(line, std::string(what) + " '" + printable(field.substr(0, 32)) +
                       "' is not a decimal number");
    }
    return value;
}

bool is_device_number(std::string_view field) {
    const auto colon = field.find(':');
    if (colon == 0 || colon == std::string_view::npos || colon + 1 == field.size()) {
        return false;
    }
    for (std::size_t i = 0; i < field.size(); ++i) {
        if (i != colon && (field[i] < '0' || field[i] > '9')) {
            return false;
        }
    }
    return true;
}

MountEntry parse_line(std::string_view line, std::size_t number) {
    std::vector<std::string_view> fields;
    while (true) {
        const auto space = line.find(' ');
        fields.push_back(line.substr(0, space));
        if (space == std::string_view::npos) {
            break;
        }
        line.remove_prefix(space + 1);
    }
    // 6 fixed fields, optional fields ("shared:N", ...), "-", then exactly 3
    // more: the kernel escapes spaces inside fields, so counting is exact.
    std::size_t separator = 6;
    while (separator < fields.size() && fields[separator] != "-") {
        ++separator;
    }
    if (separator >= fields.size()) {
        fail(number, "no ' - ' separator after six fields");
    }
    if (fields.size() - separator != 4) {
        fail(number, "not three fields after ' - '");
    }
    MountEntry entry;
    entry.mount_id = parse_id(fields[0], "mount id", number);
    entry.parent_id = parse_id(fields[1], "parent id", number);
    if (!is_device_number(fields[2])) {
        fail(number, "bad device number '" + printable(fields[2].substr(0, 32)) + "'");
    }
    {
        const auto colon = fields[2].find(':');
        // The kernel prints 32-bit numbers here; bigger ones are malformed.
        const auto major = parse_id(fields[2].substr(0, colon), "major", number);
        const auto minor = parse_id(fields[2].substr(colon + 1), "minor", number);
        if (major > 0xffffffffU || minor > 0xffffffffU) {
            fail(number, "device number out of range");
        }
        entry.device = ::makedev(static_cast<unsigned>(major), static_cast<unsigned>(minor));
    }
    entry.root = unescape(fields[3], "root", number);
    entry.mount_point = unescape(fields[4], "mount point", number);
    entry.mount_options = std::string(fields[5]);
    entry.fs_type = std::string(fields[separator + 1]);
    entry.source = unescape(fields[separator + 2], "source", number);
    entry.super_options = std::string(fields[separator + 3]);
    if (entry.mount_point.empty() || entry.fs_type.empty()) {
        fail(number, "empty mount point or file system type");
    }
    return entry;
}

} // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
    std::vector<MountEntry> mounts;
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        const auto line = take_line(text);
        if (!line.empty()) {
            mounts.push_back(parse_line(line, number));
        }
    }
    return mounts;
}

std::vector<MountEntry> read_mountinfo(pid_t pid) {
    const auto path = "/proc/" + std::to_string(pid) + "/mountinfo";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        throw_errno(ErrorCode::Failed, path + ": cannot open", errno);
    }
    const std::string text = read_at_most(fd.get(), kMaxMountinfoBytes, ErrorCode::Failed, path);
    if (text.size() > kMaxMountinfoBytes) {
        throw Error(ErrorCode::Failed,
                    path + ": larger than " + std::to_string(kMaxMountinfoBytes) + " bytes");
    }
    try {
        return parse_mountinfo(text);
    } catch (const Error& e) {
        throw Error(e.code(), path + ": " + e.what());
    }
}

const MountEntry* find_mount_at(const std::vector<MountEntry>& mounts, std::string_view path) {
    for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
        if (it->mount_point == path) {
            return &*it;
        }
    }
    return nullptr;
}

} // namespace overlay
