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

struct Record {
    std::string instance;
    std::uint64_t mount_id = 0;
    std::uint64_t device = 0;
};

// "NAME ID DEVICE\n"; nullopt for anything else (treated as stale).
std::optional<Record> parse_record(std::string_view text) {
    Record r;
    const auto sp1 = text.find(' ');
    const auto sp2 = text.find(' ', sp1 == std::string_view::npos ? sp1 : sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos || !text.ends_with('\n')) {
        return std::nullopt;
    }
    r.instance = std::string(text.substr(0, sp1));
    auto number = [](std::string_view s, std::uint64_t& out) {
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc{} && p == s.data() + s.size();
    };
    if (!number(text.substr(sp1 + 1, sp2 - sp1 - 1), r.mount_id) ||
        !number(text.substr(sp2 + 1, text.size() - sp2 - 2), r.device)) {
        return std::nullopt;
    }
    return r;
}

} // namespace

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
    const auto name = record_name(st);
    UniqueFd fd(::openat(dir_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT) {
            return;
        }
        throw_errno(ErrorCode::Failed, "cannot open " + printable(dir_path_) + "/" + name, errno);
    }
    const auto record = parse_record(read_at_most(fd.get(), 256, ErrorCode::Failed, name));
    if (!record) {
        return; // unreadable: overwritten by claim()
    }
    const auto live = mount_by_id(kind_, record->mount_id);
    if (!live || live->device != record->device || !instance_of(*live) ||
        *instance_of(*live) != record->instance) {
        return; // that overlay is gone: the record is stale
    }
    throw Error(ErrorCode::Busy,
                instance_context(instance) + std::string(role) + " " + printable(path) +
                    " is in use by the live overlay of instance " + printable(record->instance) +
                    " at " + printable(live->mount_point) +
                    " (moved there with its directory); a second overlay on it is refused");
}

void OverlayClaims::claim(const struct stat& st, std::string_view instance,
                          const MountFacts& overlay) const {
    const auto name = record_name(st);
    const auto tmp = name + ".new";
    UniqueFd fd(::openat(dir_.get(), tmp.c_str(),
                         O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
        throw_errno(ErrorCode::Failed, "cannot write " + printable(dir_path_) + "/" + tmp, errno);
    }
    const std::string text = std::string(instance) + " " + std::to_string(overlay.id) + " " +
                             std::to_string(overlay.device) + "\n";
    if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) ||
        ::renameat(dir_.get(), tmp.c_str(), dir_.get(), name.c_str()) != 0) {
        throw_errno(ErrorCode::Failed, "cannot write " + printable(dir_path_) + "/" + name, errno);
    }
}

} // namespace overlay
