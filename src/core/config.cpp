#include "config.hpp"

// <linux/mount.h> alone, not <sys/mount.h>: with glibc 2.36 the two clash,
// and this one has both the MOUNT_ATTR_* and the MS_* bits.
#include "error.hpp"
#include "path_syntax.hpp"
#include "read_at_most.hpp"
#include "text_lines.hpp"
#include "unique_fd.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <fcntl.h>
#include <linux/mount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay {

namespace {

constexpr std::string_view kBlank = " \t";
constexpr std::size_t kMaxConfigBytes = 64 * 1024;
constexpr unsigned long long kMaxPid = 4194304; // PID_MAX_LIMIT on 64-bit

std::string_view trim(std::string_view s) {
    const auto start = s.find_first_not_of(kBlank);
    if (start == std::string_view::npos) {
        return {};
    }
    return s.substr(start, s.find_last_not_of(kBlank) - start + 1);
}

// Error(BadConfig, "FILE:LINE: reason").
class Reporter {
  public:
    explicit Reporter(std::string_view file) : file_(printable(file)) {}
    [[noreturn]] void fail(std::size_t line, const std::string& reason) const {
        throw Error(ErrorCode::BadConfig, file_ + ":" + std::to_string(line) + ": " + reason);
    }

  private:
    std::string file_;
};

struct MountOption {
    std::string_view name;
    std::uint64_t attr;
    unsigned long legacy;
    bool atime_mode; // at most one of these: they set the same field
};

constexpr std::array<MountOption, 7> kMountOptions{{
    {"nosuid", MOUNT_ATTR_NOSUID, MS_NOSUID, false},
    {"nodev", MOUNT_ATTR_NODEV, MS_NODEV, false},
    {"noexec", MOUNT_ATTR_NOEXEC, MS_NOEXEC, false},
    {"noatime", MOUNT_ATTR_NOATIME, MS_NOATIME, true},
    {"nodiratime", MOUNT_ATTR_NODIRATIME, MS_NODIRATIME, false},
    // MOUNT_ATTR_RELATIME is 0: the new API's default, so it sets no bit.
    {"relatime", MOUNT_ATTR_RELATIME, MS_RELATIME, true},
    {"strictatime", MOUNT_ATTR_STRICTATIME, MS_STRICTATIME, true},
}};

// An empty value means no options at all.
void apply_mount_options(Config& config, std::string_view value, const Reporter& report,
                         std::size_t line) {
    config.mount_options = std::string(value);
    config.mount_attr_flags = 0;
    config.legacy_mount_flags = 0;
    if (value.empty()) {
        return;
    }
    std::array<bool, kMountOptions.size()> seen{};
    std::string_view atime_mode;
    while (true) {
        const auto comma = value.find(',');
        const auto name = trim(value.substr(0, comma));
        if (name.empty()) {
            report.fail(line, "MountOptions: empty option between ','");
        }
        std::size_t i = 0;
        while (i < kMountOptions.size() && kMountOptions[i].name != name) {
            ++i;
        }
        if (i == kMountOptions.size()) {
            report.fail(line, "MountOptions: unknown option '" + printable(name) +
                                  "' (allowed: nosuid, nodev, noexec, noatime, nodiratime, "
                                  "relatime, strictatime)");
        }
        const auto& option = kMountOptions[i];
        if (seen[i]) {
            report.fail(line, "MountOptions: '" + std::string(name) + "' given twice");
        }
        seen[i] = true;
        if (option.atime_mode) {
            if (!atime_mode.empty()) {
                report.fail(line, "MountOptions: '" + std::string(atime_mode) + "' and '" +
                                      std::string(name) +
                                      "' both set the atime mode; give at most one");
            }
            atime_mode = option.name;
        }
        config.mount_attr_flags |= option.attr;
        config.legacy_mount_flags |= option.legacy;
        if (comma == std::string_view::npos) {
            return;
        }
        value.remove_prefix(comma + 1);
    }
}

// A path of the file: absolute, or (when root is given) relative to root.
// Returned absolute and normalized.
std::string config_path(std::string_view key, std::string_view value, const std::string* root,
                        const Reporter& report, std::size_t line) {
    const auto shown = std::string(key) + " '" + printable(value) + "'";
    // They would split the overlayfs option strings the paths end up in.
    for (char c : {',', ':'}) {
        if (value.find(c) != std::string_view::npos) {
            report.fail(line, shown + " contains '" + std::string(1, c) + "'");
        }
    }
    std::string path;
    if (!value.empty() && value.front() == '/') {
        if (const char* problem = absolute_path_problem(value)) {
            report.fail(line, shown + " " + problem);
        }
        path = std::string(value);
    } else {
        if (root == nullptr) {
            report.fail(line, shown + " is not absolute");
        }
        if (const char* problem = relative_path_problem(value)) {
            report.fail(line, shown + " " + problem);
        }
        path = (*root == "/" ? "" : *root) + "/" + std::string(value);
        if (const char* problem = absolute_path_problem(path)) {
            report.fail(line, shown + " joined onto Root " + problem);
        }
    }
    return path;
}

bool is_shell_identifier(std::string_view s) {
    if (s.empty() || (s.front() >= '0' && s.front() <= '9')) {
        return false;
    }
    for (char c : s) {
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return false;
        }
    }
    return true;
}

// The keys, in the order they are applied (Root first).
namespace key {
enum Index {
    Root,
    InstancesDir,
    AllowedLowerRoots,
    LowerdirsKey,
    HostPid,
    MountOptions,
    MountApi,
    MountTable,
    MountWatch,
    Executors,
    MaxPendingCalls,
    MaxPendingCallsPerUser,
    MaxConcurrentAuthorizations,
    MaxConcurrentAuthorizationsPerUser,
    OperationTimeoutSec,
    LockDir,
    MigrateExecutors,
    MigrateTimeoutSec,
    Count
};
} // namespace key

constexpr std::array<std::string_view, key::Count> kKeyNames{"Root",
                                                             "InstancesDir",
                                                             "AllowedLowerRoots",
                                                             "LowerdirsKey",
                                                             "HostPid",
                                                             "MountOptions",
                                                             "MountApi",
                                                             "MountTable",
                                                             "MountWatch",
                                                             "Executors",
                                                             "MaxPendingCalls",
                                                             "MaxPendingCallsPerUser",
                                                             "MaxConcurrentAuthorizations",
                                                             "MaxConcurrentAuthorizationsPerUser",
                                                             "OperationTimeoutSec",
                                                             "LockDir",
                                                             "MigrateExecutors",
                                                             "MigrateTimeoutSec"};

// The daemon's own limits: whole numbers in a range that keeps the daemon
// useful (a cap of 0 would refuse everything).
struct NumberKey {
    unsigned Config::*field;
    unsigned min;
    unsigned max;
};

constexpr NumberKey number_key(std::size_t index) {
    switch (index) {
    case key::Executors:
        return {&Config::executors, 1, 16};
    case key::MaxPendingCalls:
        return {&Config::max_pending_calls, 1, 65536};
    case key::MaxPendingCallsPerUser:
        return {&Config::max_pending_calls_per_user, 1, 65536};
    case key::MaxConcurrentAuthorizations:
        return {&Config::max_concurrent_authorizations, 1, 1024};
    case key::MaxConcurrentAuthorizationsPerUser:
        return {&Config::max_concurrent_authorizations_per_user, 1, 1024};
    case key::MigrateExecutors:
        return {&Config::migrate_executors, 1, 16};
    case key::MigrateTimeoutSec:
        return {&Config::migrate_timeout_sec, 60, 86400};
    default:
        return {&Config::operation_timeout_sec, 1, 3600};
    }
}

struct RawValue {
    std::string_view value;
    std::size_t line = 0; // 0: not in the file
};

void apply(Config& config, key::Index index, const RawValue& raw, const Reporter& report) {
    const auto value = raw.value;
    const auto line = raw.line;
    const auto name = std::string(kKeyNames[index]);
    switch (index) {
    case key::Root:
        config.root = config_path(name, value, nullptr, report, line);
        break;
    case key::InstancesDir:
        config.instances_dir = config_path(name, value, &config.root, report, line);
        if (config.instances_dir == "/") {
            report.fail(line, "InstancesDir must not be '/'");
        }
        break;
    case key::AllowedLowerRoots: {
        config.allowed_lower_roots.clear();
        auto rest = value;
        while (true) {
            const auto start = rest.find_first_not_of(kBlank);
            if (start == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(start);
            const auto end = rest.find_first_of(kBlank);
            const auto entry = rest.substr(0, end);
            auto path = config_path(name, entry, &config.root, report, line);
            // "/" would allow every directory on the host as a lower layer.
            if (path == "/") {
                report.fail(line, "AllowedLowerRoots must not contain '/'");
            }
            config.allowed_lower_roots.push_back(std::move(path));
            rest.remove_prefix(entry.size());
        }
        if (config.allowed_lower_roots.empty()) {
            report.fail(line, "AllowedLowerRoots needs at least one root");
        }
        break;
    }
    case key::LowerdirsKey:
        if (!is_shell_identifier(value)) {
            report.fail(line, "LowerdirsKey '" + printable(value) +
                                  "' is not a shell variable name ([A-Za-z_][A-Za-z0-9_]*)");
        }
        config.lowerdirs_key = std::string(value);
        break;
    case key::HostPid: {
        unsigned long long pid = 0;
        const auto* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(value.data(), end, pid);
        if (value.empty() || ec != std::errc{} || ptr != end || pid < 1 || pid > kMaxPid) {
            report.fail(line, "HostPid '" + printable(value) + "' is not a number from 1 to " +
                                  std::to_string(kMaxPid));
        }
        config.host_pid = static_cast<pid_t>(pid);
        break;
    }
    case key::MountOptions:
        apply_mount_options(config, value, report, line);
        break;
    case key::MountApi:
        if (value == "auto") {
            config.mount_api = MountApi::Auto;
        } else if (value == "fd") {
            config.mount_api = MountApi::LayerFds;
        } else if (value == "string") {
            config.mount_api = MountApi::LowerdirStrings;
        } else if (value == "legacy") {
            config.mount_api = MountApi::Legacy;
        } else {
            report.fail(line, "MountApi '" + printable(value) +
                                  "' is not one of auto, fd, string, legacy");
        }
        break;
    case key::MountTable:
        if (value == "auto") {
            config.mount_table = MountTableApi::Auto;
        } else if (value == "statmount") {
            config.mount_table = MountTableApi::Statmount;
        } else if (value == "mountinfo") {
            config.mount_table = MountTableApi::Mountinfo;
        } else {
            report.fail(line, "MountTable '" + printable(value) +
                                  "' is not one of auto, statmount, mountinfo");
        }
        break;
    case key::MountWatch:
        if (value == "auto") {
            config.mount_watch = MountWatchApi::Auto;
        } else if (value == "fanotify") {
            config.mount_watch = MountWatchApi::Fanotify;
        } else if (value == "poll") {
            config.mount_watch = MountWatchApi::Poll;
        } else {
            report.fail(line,
                        "MountWatch '" + printable(value) + "' is not one of auto, fanotify, poll");
        }
        break;
    case key::LockDir:
        config.lock_dir = config_path(name, value, nullptr, report, line);
        if (config.lock_dir == "/") {
            report.fail(line, "LockDir must not be '/'");
        }
        break;
    case key::Executors:
    case key::MaxPendingCalls:
    case key::MaxPendingCallsPerUser:
    case key::MaxConcurrentAuthorizations:
    case key::MaxConcurrentAuthorizationsPerUser:
    case key::OperationTimeoutSec:
    case key::MigrateExecutors:
    case key::MigrateTimeoutSec: {
        const NumberKey k = number_key(index);
        unsigned n = 0;
        const auto* end = value.data() + value.size();
        const auto [ptr, ec] = std::from_chars(value.data(), end, n);
        if (value.empty() || ec != std::errc{} || ptr != end || n < k.min || n > k.max) {
            report.fail(line, name + " '" + printable(value) + "' is not a number from " +
                                  std::to_string(k.min) + " to " + std::to_string(k.max));
        }
        config.*k.field = n;
        break;
    }
    case key::Count:
        break;
    }
}

// InstancesDir and AllowedLowerRoots at their defaults: folders of Root.
void place_default_folders(Config& config) {
    // Root=/ must give "/instances", not "//instances" (found by fuzz_config).
    const std::string base = config.root == "/" ? "" : config.root;
    config.instances_dir = base + "/" + std::string(kDefaultInstancesFolder);
    config.allowed_lower_roots.clear();
    for (const auto folder : kDefaultLowerRootFolders) {
        config.allowed_lower_roots.push_back(base + "/" + std::string(folder));
    }
}

} // namespace

Config default_config() {
    Config config;
    place_default_folders(config);
    apply_mount_options(config, config.mount_options, Reporter("(defaults)"), 0);
    return config;
}

Config parse_config(std::string_view text, std::string_view file_name) {
    const Reporter report(file_name);
    std::array<RawValue, key::Count> raw{};
    std::size_t number = 0;
    while (!text.empty()) {
        ++number;
        const auto line = take_line(text);
        if (line.find('\0') != std::string_view::npos) {
            report.fail(number, "NUL byte");
        }
        if (line.find('\r') != std::string_view::npos) {
            report.fail(number, "carriage return (CRLF line endings are not accepted)");
        }
        const auto content = trim(line);
        if (content.empty() || content.front() == '#') {
            continue;
        }
        const auto eq = content.find('=');
        const auto key = eq == std::string_view::npos ? content : trim(content.substr(0, eq));
        if (eq == std::string_view::npos || key.empty()) {
            report.fail(number, "not a KEY=VALUE line");
        }
        std::size_t index = 0;
        while (index < key::Count && kKeyNames[index] != key) {
            ++index;
        }
        if (index == key::Count) {
            report.fail(number, "unknown key '" + printable(key) + "'");
        }
        if (raw[index].line != 0) {
            report.fail(number, "duplicate key '" + std::string(key) + "' (first on line " +
                                    std::to_string(raw[index].line) + ")");
        }
        raw[index] = {trim(content.substr(eq + 1)), number};
    }

    // Root first: relative entries are joined onto it wherever it stands in
    // the file. Relative entries left at their defaults follow a changed Root.
    Config config = default_config();
    if (raw[key::Root].line != 0) {
        apply(config, key::Root, raw[key::Root], report);
        place_default_folders(config);
    }
    for (std::size_t index = key::Root + 1; index < key::Count; ++index) {
        if (raw[index].line != 0) {
            apply(config, static_cast<key::Index>(index), raw[index], report);
        }
    }
    // An allowed root overlapping InstancesDir would let one instance's
    // upper, work or (mounted) merged serve as another's lowerdir.
    for (const auto& lower_root : config.allowed_lower_roots) {
        if (is_path_beneath(lower_root, config.instances_dir) ||
            is_path_beneath(config.instances_dir, lower_root)) {
            const auto& at = raw[key::AllowedLowerRoots].line != 0 ? raw[key::AllowedLowerRoots]
                                                                   : raw[key::InstancesDir];
            report.fail(at.line, "AllowedLowerRoots entry " + printable(lower_root) +
                                     " overlaps InstancesDir " + printable(config.instances_dir));
        }
    }
    return config;
}

Config load_config(const std::string& path) {
    return load_config_at(AT_FDCWD, path, path);
}

Config load_config_at(int dirfd, const std::string& name, const std::string& path) {
    const auto shown = printable(path);
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        const int err = errno;
        if (err == ENOENT && path == kDefaultConfigPath) {
            return default_config();
        }
        if (err == ELOOP) {
            throw Error(ErrorCode::BadConfig,
                        shown + ": cannot open: is a symbolic link (not followed)");
        }
        throw_errno(ErrorCode::BadConfig, shown + ": cannot open", err);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw_errno(ErrorCode::BadConfig, shown + ": cannot stat", errno);
    }
    const std::string why =
        " (the drop-in command runs under sudo, and the config decides what gets mounted)";
    if (!S_ISREG(st.st_mode)) {
        throw Error(ErrorCode::BadConfig, shown + ": not a regular file");
    }
    if (st.st_uid != 0) {
        throw Error(ErrorCode::BadConfig,
                    shown + ": owned by uid " + std::to_string(st.st_uid) + ", not by root" + why);
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        throw Error(ErrorCode::BadConfig, shown + ": writable by group or others" + why);
    }
    if (st.st_size > static_cast<off_t>(kMaxConfigBytes)) {
        throw Error(ErrorCode::BadConfig,
                    shown + ": larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
    const std::string text = read_at_most(fd.get(), kMaxConfigBytes, ErrorCode::BadConfig, shown);
    if (text.size() > kMaxConfigBytes) { // it grew after fstat
        throw Error(ErrorCode::BadConfig,
                    shown + ": larger than " + std::to_string(kMaxConfigBytes) + " bytes");
    }
    return parse_config(text, path);
}

} // namespace overlay
