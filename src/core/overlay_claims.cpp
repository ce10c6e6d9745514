#include "overlay_claims.hpp"

#include "error.hpp"
#include "lock_dir.hpp"
#include "read_at_most.hpp"

#include <cerrno>
#include <charconv>
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

// The id is of the writer's table kind: the daemon's executors may read
// the table one way (a sandbox whose seccomp filter predates statmount) and
// the sudo drop-in the other, and an id of one kind means nothing to the
// other (a reusable mountinfo id handed to statmount is EINVAL, a unique id
// looked up in mountinfo is never found).
struct Record {
    std::string instance;
    std::uint64_t mount_id = 0;
    std::uint64_t device = 0;
    MountTableKind kind = MountTableKind::Statmount;
};

// "NAME ID DEVICE KIND\n"; nullopt for anything else (treated as stale).
std::optional<Record> parse_record(std::string_view text) {
    if (!text.ends_with('\n')) {
        return std::nullopt;
    }
    text.remove_suffix(1);
    std::string_view field[4];
    for (int i = 0; i < 4; ++i) {
        const auto sp = text.find(' ');
        if ((sp == std::string_view::npos) != (i == 3)) {
            return std::nullopt;
        }
        field[i] = text.substr(0, sp);
        text.remove_prefix(sp == std::string_view::npos ? text.size() : sp + 1);
    }
    auto number = [](std::string_view s, std::uint64_t& out) {
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
    };
    Record r;
    r.instance = std::string(field[0]);
    if (!number(field[1], r.mount_id) || !number(field[2], r.device)) {
        return std::nullopt;
    }
    if (field[3] == mount_table_name(MountTableKind::Statmount)) {
        r.kind = MountTableKind::Statmount;
    } else if (field[3] == mount_table_name(MountTableKind::Mountinfo)) {
        r.kind = MountTableKind::Mountinfo;
    } else {
        return std::nullopt;
    }
    return r;
}

std::string record_text(std::string_view instance, MountTableKind kind, const MountFacts& overlay) {
    return std::string(instance) + " " + std::to_string(overlay.id) + " " +
           std::to_string(overlay.device) + " " + mount_table_name(kind) + "\n";
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

std::optional<Record> read_record(int dir, const std::string& dir_path, const std::string& name) {
    UniqueFd fd(::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throw_errno(ErrorCode::Failed, "cannot open " + printable(dir_path) + "/" + name, errno);
    }
    return parse_record(read_at_most(fd.get(), 256, ErrorCode::Failed, name));
}

// The recorded overlay, if that mount is still the same overlay. A record
// of the other kind is matched by what both kinds agree on, the instance's
// source and the superblock, at the cost of listing the table (only when
// the daemon and the drop-in read the table in different ways).
std::optional<MountFacts> live(MountTableKind kind, const Record& record) {
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
