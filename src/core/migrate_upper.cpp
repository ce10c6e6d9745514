#include "migrate_upper.hpp"

#include "dir_stream.hpp"
#include "fs_open.hpp"
#include "fuse_format.hpp"
#include "migrate.hpp"
#include "xattr_list.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace overlay::migration {

std::string join(const std::string& base, std::string_view name) {
    return base.empty() ? std::string(name) : base + "/" + std::string(name);
}

bool is_whiteout_dev(const struct stat& st) {
    return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

std::optional<std::string> get_xattr(int fd, bool is_dir, const char* name) {
    std::vector<char> buf(256);
    for (;;) {
        ssize_t n = is_dir ? ::fgetxattr(fd, name, buf.data(), buf.size())
                           : ::getxattr(proc_fd_path(fd).c_str(), name, buf.data(), buf.size());
        if (n >= 0) {
            return std::string(buf.data(), static_cast<std::size_t>(n));
        }
        if (errno == ENODATA || errno == ENOTSUP) {
            return std::nullopt;
        }
        if (errno == ERANGE && buf.size() < XATTR_SIZE_MAX) {
            buf.resize(XATTR_SIZE_MAX); // a long value: read it whole
            continue;
        }
        throw_errno(ErrorCode::Failed, std::string("getxattr ") + name, errno);
    }
}

std::vector<std::string> list_xattrs(int fd, bool is_dir) {
    std::vector<char> buf;
    const ssize_t n = list_xattr_names(buf, [&](char* data, std::size_t size) {
        return is_dir ? ::flistxattr(fd, data, size)
                      : ::listxattr(proc_fd_path(fd).c_str(), data, size);
    });
    if (n < 0) {
        if (errno == ENOTSUP) {
            return {};
        }
        throw_errno(ErrorCode::Failed, "listxattr", errno);
    }
    std::vector<std::string> out;
    for_each_xattr_name(buf, static_cast<std::size_t>(n),
                        [&](std::string_view name) { out.emplace_back(name); });
    return out;
}

bool has_name(const std::vector<std::string>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

bool fuse_opaque(int dirfd) {
    for (const char* name : fuse_format::kOpaqueXattrs) {
        if (auto v = get_xattr(dirfd, true, name)) {
            return !v->empty() && (*v)[0] == 'y';
        }
    }
    struct stat st {};
    return ::fstatat(dirfd, std::string(fuse_format::kOpaqueMarker).c_str(), &st,
                     AT_SYMLINK_NOFOLLOW) == 0;
}

UniqueFd open_dir_at(int parent, const std::string& name) {
    return UniqueFd(
        ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

std::map<std::string, unsigned char> list_dir(int dirfd) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno(ErrorCode::Failed, "open directory", errno);
    }
    DirStream dir(::fdopendir(fd));
    if (!dir) {
        int err = errno;
        ::close(fd);
        throw_errno(ErrorCode::Failed, "open directory", err);
    }
    std::map<std::string, unsigned char> out;
    for (;;) {
        errno = 0;
        dirent* e = ::readdir(dir.get());
        if (e == nullptr) {
            if (errno != 0) {
                throw_errno(ErrorCode::Failed, "read directory", errno);
            }
            break;
        }
        std::string_view n = e->d_name;
        if (n == "." || n == "..") {
            continue;
        }
        unsigned char type = e->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st {};
            if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                type = static_cast<unsigned char>(IFTODT(st.st_mode));
            }
        }
        out.emplace(std::string(n), type);
    }
    return out;
}

std::string count(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string first_few(const std::vector<std::string>& items, std::string_view sep,
                      std::string_view before_more) {
    constexpr std::size_t kShown = 5;
    std::string shown;
    for (std::size_t i = 0; i < items.size() && i < kShown; ++i) {
        if (i != 0) {
            shown += sep;
        }
        shown += items[i];
    }
    if (items.size() > kShown) {
        // The space apart: GCC copies a short literal inline as immediates,
        // " more" as " mor" then "e", which lintian's spelling check reads
        // in the binary as a misspelled word.
        shown += before_more;
        shown += std::to_string(items.size() - kShown);
        shown += ' ';
        shown += "more";
    }
    return shown;
}

UpperOwner UpperOwner::of(const struct stat& upper_st) {
    UpperOwner o;
    o.uid = upper_st.st_uid;
    long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(size > 0 ? static_cast<std::size_t>(size) : 16384);
    struct passwd pw {};
    struct passwd* found = nullptr;
    while (::getpwuid_r(o.uid, &pw, buf.data(), buf.size(), &found) == ERANGE &&
           buf.size() < (1U << 20)) {
        buf.resize(buf.size() * 2);
    }
    if (found == nullptr) {
        return o;
    }
    int n = 64;
    for (int tries = 0; tries < 8; ++tries) {
        o.groups.resize(static_cast<std::size_t>(n));
        int got = n;
        if (::getgrouplist(pw.pw_name, pw.pw_gid, o.groups.data(), &got) >= 0) {
            o.groups.resize(static_cast<std::size_t>(got));
            return o;
        }
        n = std::max(got, n * 2);
    }
    o.groups.assign(1, pw.pw_gid);
    return o;
}

bool UpperOwner::in_group(gid_t gid) const {
    return std::find(groups.begin(), groups.end(), gid) != groups.end();
}

namespace {

std::optional<OverrideStat> parse_override(std::string_view v) {
    auto num = [&](int base) -> std::optional<unsigned long> {
        unsigned long x = 0;
        auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), x, base);
        if (ec != std::errc() || end == v.data()) {
            return std::nullopt;
        }
        v.remove_prefix(static_cast<std::size_t>(end - v.data()));
        return x;
    };
    auto colon = [&] {
        if (v.empty() || v[0] != ':') {
            return false;
        }
        v.remove_prefix(1);
        return true;
    };
    auto uid = num(10);
    if (!uid || !colon()) {
        return std::nullopt;
    }
    auto gid = num(10);
    if (!gid || !colon()) {
        return std::nullopt;
    }
    auto mode = num(8);
    if (!mode || !v.empty() || *mode > 0177777 || *uid > 0xfffffffeUL || *gid > 0xfffffffeUL) {
        return std::nullopt;
    }
    return OverrideStat{static_cast<uid_t>(*uid), static_cast<gid_t>(*gid),
                        static_cast<mode_t>(*mode)};
}

std::string ids(uid_t uid, gid_t gid) {
    return std::to_string(uid) + ":" + std::to_string(gid);
}

} // namespace

OverrideDecision read_override(int fd, bool is_dir, const Refuser& r, const std::string& rel,
                               const std::vector<std::string>& names, const UpperOwner& owner,
                               SetIdBits setid_bits) {
    OverrideDecision d;
    for (const char* name : fuse_format::kOverrideStatXattrs) {
        if (!has_name(names, name)) {
            continue;
        }
        auto v = get_xattr(fd, is_dir, name);
        if (!v) {
            continue;
        }
        auto o = parse_override(*v);
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            r.fail_errno("stat", rel, errno);
        }
        // fuse-overlayfs writes the mode with its type bits (40755 for a
        // directory); they must be this inode's.
        if (o && (o->mode & S_IFMT) != 0 && (o->mode & S_IFMT) != (st.st_mode & S_IFMT)) {
            o.reset();
        }
        if (!o) {
            r.fail(ErrorCode::UpperdirTainted, rel,
                   "carries a malformed " + std::string(name) + " '" + printable(*v) +
                       "' (expected uid:gid:octal-mode of this kind of file); not converted");
        }
        o->mode &= 07777;
        d.which = name;
        const std::string asked = std::string(name) + " '" + printable(*v) + "'";
        // Applying it issues a chmod carrying set-id bits when its mode has
        // them and differs from the inode's, or when the owner changes (a
        // chown clears them, so they are set again; planned alike for
        // directories, whose chown may keep them, as the dry run does).
        // Under the service's RestrictSUIDSGID that chmod fails with EPERM
        // part way, so the service refuses it here, before anything changes.
        auto refuse_setid_chmod = [&] {
            const mode_t want = o->mode & (S_ISUID | S_ISGID);
            if (setid_bits == SetIdBits::Set || want == 0) {
                return;
            }
            const bool owner_changes = st.st_uid != o->uid || st.st_gid != o->gid;
            if ((st.st_mode & 07777) == o->mode && !owner_changes) {
                return;
            }
            char mode[12];
            std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(o->mode));
            const std::string bits = want == (S_ISUID | S_ISGID) ? "set-uid and set-gid"
                                     : (want & S_ISUID) != 0     ? "set-uid"
                                                                 : "set-gid";
            r.fail(ErrorCode::UpperdirTainted, rel,
                   "carries " + asked + ", whose conversion needs a chmod to " + mode + " (" +
                       bits + (owner_changes ? ", after a chown, which clears set-id bits" : "") +
                       "); the service sets no set-uid or set-gid bit (its unit's "
                       "RestrictSUIDSGID=yes refuses such a chmod), so nothing was changed: run "
                       "the conversion as root with the drop-in, sudo left4me-overlay migrate " +
                       std::string(r.instance_) + " (see README, Migrate)");
        };
        if (std::string_view(name).starts_with("security.")) {
            refuse_setid_chmod();
            d.apply = o;
            return d;
        }
        if (st.st_uid != owner.uid) {
            d.foreign = true;
            d.left_alone = "is owned by " + ids(st.st_uid, st.st_gid) +
                           ", not by the upper's owner (uid " + std::to_string(owner.uid) +
                           "): its " + asked + " is not applied and nothing of it is changed";
            return d;
        }
        if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
            d.left_alone = "has " + std::to_string(st.st_nlink) +
                           " links (a name outside the upper may share it): its " + asked +
                           " is not applied";
            return d;
        }
        auto refuse = [&](const std::string& why) {
            r.fail(ErrorCode::UpperdirTainted, rel,
                   "carries " + asked + ", " + why +
                       "; a user can write that xattr, so it is not applied: set owner and mode "
                       "by hand, remove the xattr, and run migrate again");
        };
        if (o->uid != owner.uid) {
            refuse(o->uid == 0 ? std::string("naming root as its owner")
                               : "naming uid " + std::to_string(o->uid) +
                                     " as its owner, not the upper's owner (uid " +
                                     std::to_string(owner.uid) + ")");
        }
        if (o->gid != st.st_gid && (o->gid == 0 || !owner.in_group(o->gid))) {
            refuse(o->gid == 0 ? std::string("naming group root")
                               : "naming group " + std::to_string(o->gid) +
                                     ", which is not one of the upper owner's groups");
        }
        const mode_t setid = o->mode & (S_ISUID | S_ISGID);
        const bool kept =
            (st.st_mode & setid) == setid && o->uid == st.st_uid && o->gid == st.st_gid;
        if (setid != 0 && !kept) {
            refuse(std::string("asking for a ") + ((setid & S_ISUID) != 0 ? "set-uid" : "set-gid") +
                   (is_dir ? " directory" : " file") + " it is not already");
        }
        refuse_setid_chmod();
        d.apply = o;
        return d;
    }
    return d;
}

void set_marker(int upper_fd, std::string_view value, const Refuser& r) {
    const std::string name(kMigrationMarkerXattr);
    if (::fsetxattr(upper_fd, name.c_str(), value.data(), value.size(), 0) != 0) {
        r.fail_errno("mark", "", errno);
    }
}

} // namespace overlay::migration
