#include "watched_overlays.hpp"

#include "dir_stream.hpp"
#include "error.hpp"
#include "instance_name.hpp"
#include "lock_dir.hpp"
#include "lock_dir_record.hpp"
#include "read_at_most.hpp"

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <optional>
#include <unistd.h>

namespace overlay {

namespace {

constexpr std::string_view kSeen = ".seen";
constexpr std::string_view kMounts = ".mounts";
constexpr const char* kMarker = ".watcher";

// The file's records of NAME's overlays in ids of `kind`, as (id, device);
// lines of another name, of ids of another kind (lock_dir_record.hpp) or
// malformed are skipped.
std::vector<std::pair<std::uint64_t, std::uint64_t>>
read_ids(int dir, const std::string& file, std::string_view name, MountTableKind kind) {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
    UniqueFd fd(::openat(dir, file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        return out;
    }
    const std::string data = read_at_most(fd.get(), 1024 * 1024, ErrorCode::Failed, file);
    std::string_view text = data;
    // Each line with its '\n' (a last line without one is not a record).
    for (auto nl = text.find('\n'); nl != std::string_view::npos; nl = text.find('\n')) {
        const auto record = parse_lock_dir_record(text.substr(0, nl + 1));
        text.remove_prefix(nl + 1);
        if (record && record->instance == name && record->kind == kind) {
            out.emplace_back(record->mount_id, record->device);
        }
    }
    return out;
}

std::optional<std::string> start_time_of(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return std::nullopt;
    }
    const std::string stat = read_at_most(fd.get(), 4096, ErrorCode::Failed, path);
    // Field 22; the name (field 2) may hold spaces and ')', so count from
    // the last ')'.
    auto rest = std::string_view(stat);
    const auto paren = rest.rfind(')');
    if (paren == std::string_view::npos) {
        return std::nullopt;
    }
    rest.remove_prefix(paren + 2);
    for (int field = 3; field < 22; ++field) {
        const auto sp = rest.find(' ');
        if (sp == std::string_view::npos) {
            return std::nullopt;
        }
        rest.remove_prefix(sp + 1);
    }
    return std::string(rest.substr(0, rest.find(' ')));
}

} // namespace

WatchedOverlays::WatchedOverlays(const Config& config)
    : dir_path_(config.lock_dir), dir_(open_lock_dir(config.lock_dir)) {
    ::unlinkat(dir_.get(), kMarker, 0);
    const int fd = ::openat(dir_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno(ErrorCode::Failed, "cannot list " + printable(dir_path_), errno);
    }
    DirStream dir(::fdopendir(fd));
    if (!dir) {
        ::close(fd);
        throw_errno(ErrorCode::Failed, "cannot list " + printable(dir_path_), errno);
    }
    while (dirent* entry = ::readdir(dir.get())) {
        if (std::string_view(entry->d_name).ends_with(kSeen)) {
            ::unlinkat(dir_.get(), entry->d_name, 0);
        }
    }
}

void WatchedOverlays::publish(std::string_view name, const std::vector<MountFacts>& mounts) const {
    const std::string file = std::string(name) + std::string(kSeen);
    if (mounts.empty()) {
        if (::unlinkat(dir_.get(), file.c_str(), 0) != 0 && errno != ENOENT) {
            throw_errno(ErrorCode::Failed, "cannot remove " + printable(dir_path_) + "/" + file,
                        errno);
        }
        return;
    }
    std::string text;
    for (const auto& m : mounts) {
        text +=
            format_lock_dir_record({std::string(name), m.id, m.device, MountTableKind::Statmount});
    }
    const std::string tmp = file + ".new";
    UniqueFd fd(::openat(dir_.get(), tmp.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::renameat(dir_.get(), tmp.c_str(), dir_.get(), file.c_str()) != 0) {
        throw_errno(ErrorCode::Failed, "cannot write " + printable(dir_path_) + "/" + file, errno);
    }
}

void WatchedOverlays::announce() const {
    const auto started = start_time_of(::getpid());
    const std::string text = std::to_string(::getpid()) + " " + started.value_or("?") + "\n";
    const std::string tmp = std::string(kMarker) + ".new";
    UniqueFd fd(::openat(dir_.get(), tmp.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::renameat(dir_.get(), tmp.c_str(), dir_.get(), kMarker) != 0) {
        throw_errno(ErrorCode::Failed, "cannot write " + printable(dir_path_) + "/" + kMarker,
                    errno);
    }
}

bool watcher_publishes(const Config& config) {
    const UniqueFd dir = open_lock_dir(config.lock_dir);
    UniqueFd fd(::openat(dir.get(), kMarker, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        return false;
    }
    const std::string text = read_at_most(fd.get(), 128, ErrorCode::Failed, kMarker);
    const auto sp = text.find(' ');
    const auto pid = parse_decimal(std::string_view(text).substr(0, sp));
    if (sp == std::string::npos || text.back() != '\n' || !pid || *pid == 0 || *pid > 4194304) {
        return false;
    }
    const auto started = start_time_of(static_cast<pid_t>(*pid));
    return started && *started == text.substr(sp + 1, text.size() - sp - 2);
}

std::vector<MountFacts> known_overlays(const Config& config, MountTableKind kind,
                                       std::string_view name, bool* listed) {
    if (kind != MountTableKind::Statmount || !watcher_publishes(config)) {
        if (listed) {
            *listed = true;
        }
        return overlays_of(kind, name);
    }
    if (listed) {
        *listed = false;
    }
    const UniqueFd dir = open_lock_dir(config.lock_dir);
    std::map<std::uint64_t, std::uint64_t> ids;
    for (const auto* suffix : {&kSeen, &kMounts}) {
        for (const auto& [id, device] :
             read_ids(dir.get(), std::string(name) + std::string(*suffix), name, kind)) {
            ids.emplace(id, device);
        }
    }
    std::vector<MountFacts> out;
    for (const auto& [id, device] : ids) {
        auto now = mount_by_id(kind, id);
        if (now && now->device == device && instance_of(*now) && *instance_of(*now) == name) {
            out.push_back(std::move(*now));
        }
    }
    return out;
}

std::set<std::string> mounted_instance_names(const Config& config, MountTableKind kind) {
    std::set<std::string> out;
    if (kind != MountTableKind::Statmount || !watcher_publishes(config)) {
        for (auto& [name, mounts] : all_instance_overlays(kind)) {
            out.insert(name);
        }
        return out;
    }
    const UniqueFd lock_dir = open_lock_dir(config.lock_dir);
    const int fd = ::openat(lock_dir.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno(ErrorCode::Failed, "cannot list " + printable(config.lock_dir), errno);
    }
    DirStream dir(::fdopendir(fd));
    if (!dir) {
        ::close(fd);
        throw_errno(ErrorCode::Failed, "cannot list " + printable(config.lock_dir), errno);
    }
    std::set<std::string> candidates;
    while (dirent* entry = ::readdir(dir.get())) {
        std::string_view file = entry->d_name;
        for (const auto suffix : {kSeen, kMounts}) {
            if (file.ends_with(suffix)) {
                const auto name = file.substr(0, file.size() - suffix.size());
                if (is_valid_instance_name(name)) {
                    candidates.emplace(name);
                }
            }
        }
    }
    for (const auto& name : candidates) {
        if (!known_overlays(config, kind, name).empty()) {
            out.insert(name);
        }
    }
    return out;
}

} // namespace overlay
