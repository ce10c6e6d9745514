#include "overlay_claims.hpp"

#include "error.hpp"
#include "lock_dir.hpp"
#include "lock_dir_record.hpp"
#include "read_at_most.hpp"

#include <cerrno>
#include <fcntl.h>
#include <optional>
#include <sys/file.h>
#include <unistd.h>

namespace overlay {

namespace {

// "DEV:INO.use": a ':' never appears in an instance name, so no record can
// be taken for an instance's NAME.lock.
std::string record_name(const struct stat& st) {
    return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ".use";
}

std::string record_text(std::string_view instance, MountTableKind kind, const MountFacts& overlay) {
    return format_lock_dir_record({std::string(instance), overlay.id, overlay.device, kind});
}

// Replaces dir/name with text, atomically (readers see old or new).
void write_record(int dir, const std::string& dir_path, const std::string& name,
                  const std::string& text) {
    const auto tmp = name + ".new";
    UniqueFd fd(
        ::openat(dir, tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
        throw_errno(ErrorCode::Failed, "cannot write " + printable(dir_path) + "/" + tmp, errno);
    }
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::renameat(dir, tmp.c_str(), dir, name.c_str()) != 0) {
        throw_errno(ErrorCode::Failed, "cannot write " + printable(dir_path) + "/" + name, errno);
    }
}

// The whole file is the one line: anything else is no record.
std::optional<LockDirRecord> read_record(int dir, const std::string& dir_path,
                                         const std::string& name) {
    UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throw_errno(ErrorCode::Failed, "cannot open " + printable(dir_path) + "/" + name, errno);
    }
    return parse_lock_dir_record(read_at_most(fd.get(), 256, ErrorCode::Failed, name));
}

// The recorded overlay, if that mount is still the same overlay. A record
// of the other kind (lock_dir_record.hpp) is matched by what both kinds
// agree on, the instance's source and the superblock, at the cost of
// listing the table (only when the daemon and the drop-in read the table
// in different ways).
std::optional<MountFacts> live(MountTableKind kind, const LockDirRecord& record) {
    if (record.kind != kind) {
        for (auto& overlay : overlays_of(kind, record.instance)) {
            if (overlay.device == record.device) {
                return std::move(overlay);
            }
        }
        return std::nullopt;
    }
    auto now = mount_by_id(kind, record.mount_id);
    if (!now || now->device != record.device || !instance_of(*now) ||
        *instance_of(*now) != record.instance) {
        return std::nullopt;
    }
    return now;
}

} // namespace

void record_instance_overlay(const Config& config, MountTableKind kind, std::string_view name,
                             const MountFacts& overlay) {
    const UniqueFd dir = open_lock_dir(config.lock_dir);
    write_record(dir.get(), config.lock_dir, std::string(name) + ".mounts",
                 record_text(name, kind, overlay));
}

void forget_instance_overlay(const Config& config, std::string_view name) {
    const UniqueFd dir = open_lock_dir(config.lock_dir);
    const std::string file = std::string(name) + ".mounts";
    if (::unlinkat(dir.get(), file.c_str(), 0) != 0 && errno != ENOENT) {
        throw_errno(ErrorCode::Failed, "cannot remove " + printable(config.lock_dir) + "/" + file,
                    errno);
    }
}

std::optional<MountFacts> recorded_instance_overlay(const Config& config, MountTableKind kind,
                                                    std::string_view name) {
    const UniqueFd dir = open_lock_dir(config.lock_dir);
    const auto record = read_record(dir.get(), config.lock_dir, std::string(name) + ".mounts");
    if (!record || record->instance != name) {
        return std::nullopt;
    }
    return live(kind, *record);
}

OverlayClaims::OverlayClaims(const Config& config, MountTableKind kind)
    : kind_(kind), dir_path_(config.lock_dir), dir_(open_lock_dir(config.lock_dir)) {
    lock_.reset(::openat(dir_.get(), ".claims.lock",
                         O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600));
    if (!lock_) {
        throw_errno(ErrorCode::Failed, "cannot open " + printable(dir_path_) + "/.claims.lock",
                    errno);
    }
    struct stat st {};
    if (::fstat(lock_.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != 0 ||
        (st.st_mode & 077) != 0) {
        throw Error(ErrorCode::UnsafePath, printable(dir_path_) +
                                               "/.claims.lock is not a regular file owned by "
                                               "root with mode 0600; remove it");
    }
    // Blocking: whoever holds it holds it for one check and one mount.
    while (::flock(lock_.get(), LOCK_EX) != 0) {
        if (errno != EINTR) {
            throw_errno(ErrorCode::Failed, "cannot lock " + printable(dir_path_) + "/.claims.lock",
                        errno);
        }
    }
}

void OverlayClaims::require_free(const struct stat& st, std::string_view role,
                                 std::string_view path, std::string_view instance) const {
    const auto record = read_record(dir_.get(), dir_path_, record_name(st));
    if (!record) {
        return; // none, or unreadable: overwritten by claim()
    }
    const auto now = live(kind_, *record);
    if (!now) {
        return; // that overlay is gone: the record is stale
    }
    throw Error(ErrorCode::Busy,
                instance_context(instance) + std::string(role) + " " + printable(path) +
                    " is in use by the live overlay of instance " + printable(record->instance) +
                    " at " + printable(now->mount_point) +
                    " (moved there with its directory); a second overlay on it is refused");
}

void OverlayClaims::claim(const struct stat& st, std::string_view instance,
                          const MountFacts& overlay) const {
    write_record(dir_.get(), dir_path_, record_name(st), record_text(instance, kind_, overlay));
}

} // namespace overlay
