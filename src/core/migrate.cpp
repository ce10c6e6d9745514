#include "migrate.hpp"

#include "dir_stream.hpp"

#include "error.hpp"
#include "fs_open.hpp"
#include "host_layout.hpp"
#include "instance_dir.hpp"
#include "instance_env.hpp"
#include "instance_lock.hpp"
#include "instance_name.hpp"
#include "lower_layers.hpp"
#include "mount_point.hpp"
#include "overlay_mount.hpp"
#include "same_mount.hpp"
#include "taint_scan.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <map>
#include <memory>
#include <optional>
#include <pwd.h>
#include <set>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace overlay {

namespace {

std::size_t g_stop_after = 0;

constexpr std::string_view kWhPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
// fuse-overlayfs (1.10) also leaves this beside kOpaqueMarker in a directory
// it made opaque: a char 0/0 node (an empty file where it cannot mknod).
constexpr std::string_view kOpaqueWhiteout = ".wh..opq";
constexpr const char* kTrustedOpaque = "trusted.overlay.opaque";
// The order in which fuse-overlayfs reads a directory's opacity: the first
// present decides (opaque when its value starts with 'y'); with none, the
// presence of .wh..wh..opq.
constexpr std::array<const char*, 3> kOpaqueXattrs = {
    "trusted.overlay.opaque", "user.overlay.opaque", "user.fuseoverlayfs.opaque"};
constexpr std::array<const char*, 3> kOverrideStatXattrs = {"security.fuseoverlayfs.override_stat",
                                                            "user.containers.override_stat",
                                                            "user.fuseoverlayfs.override_stat"};

using DirPtr = DirStream;

std::string join(const std::string& base, std::string_view name) {
    return base.empty() ? std::string(name) : base + "/" + std::string(name);
}

std::string proc_path(int fd) {
    return "/proc/self/fd/" + std::to_string(fd);
}

bool is_whiteout_dev(const struct stat& st) {
    return S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// A file's xattr, read through its descriptor: directories are held open
// O_RDONLY; anything else O_PATH, reached through /proc/self/fd (the
// descriptor's own file: no name is looked up again).
std::optional<std::string> get_xattr(int fd, bool is_dir, const char* name) {
    std::vector<char> buf(256);
    for (;;) {
        ssize_t n = is_dir ? ::fgetxattr(fd, name, buf.data(), buf.size())
                           : ::getxattr(proc_path(fd).c_str(), name, buf.data(), buf.size());
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

// Most files carry no xattr or a few: a small buffer first (the kernel
// allocates what it is given), the largest list only on ERANGE.
std::vector<std::string> list_xattrs(int fd, bool is_dir) {
    std::vector<char> buf(1024);
    ssize_t n = -1;
    for (;;) {
        n = is_dir ? ::flistxattr(fd, buf.data(), buf.size())
                   : ::listxattr(proc_path(fd).c_str(), buf.data(), buf.size());
        if (n >= 0) {
            break;
        }
        if (errno == ENOTSUP) {
            return {};
        }
        if (errno == ERANGE && buf.size() < XATTR_LIST_MAX) {
            buf.resize(XATTR_LIST_MAX);
            continue;
        }
        throw_errno(ErrorCode::Failed, "listxattr", errno);
    }
    std::vector<std::string> out;
    std::string_view all(buf.data(), static_cast<std::size_t>(n));
    while (!all.empty()) {
        auto end = all.find('\0');
        out.emplace_back(all.substr(0, end));
        if (end == std::string_view::npos) {
            break;
        }
        all.remove_prefix(end + 1);
    }
    return out;
}

bool has_name(const std::vector<std::string>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

// fuse-overlayfs' opacity of a directory held open O_RDONLY.
bool fuse_opaque(int dirfd) {
    for (const char* name : kOpaqueXattrs) {
        if (auto v = get_xattr(dirfd, true, name)) {
            return !v->empty() && (*v)[0] == 'y';
        }
    }
    struct stat st {};
    return ::fstatat(dirfd, std::string(kOpaqueMarker).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

UniqueFd open_dir_at(int parent, const std::string& name) {
    return UniqueFd(
        ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

// Name -> type of every entry but . and .., read from a description of
// its own (the caller's offset stays where it was).
std::map<std::string, unsigned char> list_dir(int dirfd) {
    int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno(ErrorCode::Failed, "open directory", errno);
    }
    DirPtr dir(::fdopendir(fd));
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

// ---------------------------------------------------------------------------
// Views: what a mount shows, as path -> attributes.

struct Attr {
    mode_t mode = 0; // type and permission bits
    uid_t uid = 0;
    gid_t gid = 0;
    off_t size = 0;
    dev_t rdev = 0;
    std::int64_t mtime_sec = 0;
    long mtime_nsec = 0;
    std::string link;
    std::size_t layer = 0; // which layer shows it (0: the top)
};
using View = std::map<std::string, Attr>;

struct LayerDir {
    std::size_t layer;
    UniqueFd fd;
};

// "uid:gid:octal-mode", fuse-overlayfs' override_stat.
struct OverrideStat {
    uid_t uid;
    gid_t gid;
    mode_t mode;
};

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

class Refuser {
  public:
    Refuser(std::string_view instance, std::string upper_path)
        : instance_(instance), upper_path_(std::move(upper_path)) {}

    std::string where(const std::string& rel) const {
        return rel.empty() ? printable(upper_path_) : printable(upper_path_ + "/" + rel);
    }
    std::string prefix() const { return instance_context(instance_) + "migrate: "; }

    [[noreturn]] void fail(ErrorCode code, const std::string& rel, const std::string& what) const {
        throw Error(code, prefix() + where(rel) + " " + what);
    }
    [[noreturn]] void fail_errno(const char* op, const std::string& rel, int err) const {
        throw_errno(ErrorCode::Failed, prefix() + op + " " + where(rel), err);
    }

    std::string_view instance_;
    std::string upper_path_;
};

// Who owns the upper, and the groups it could give a file: those the host's
// user database gives it (getpwuid_r, then getgrouplist, through NSS, read
// once per run in the host's mount namespace the executor has entered), the
// groups chgrp would let it use after a login. The user's own files cannot
// choose them: they come from /etc (or the directory service NSS names),
// never from the instance root. A uid without an entry has no groups.
struct UpperOwner {
    uid_t uid = 0;
    std::vector<gid_t> groups;

    static UpperOwner of(const struct stat& upper_st) {
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
    bool in_group(gid_t gid) const {
        return std::find(groups.begin(), groups.end(), gid) != groups.end();
    }
};

// What to do with one inode's override_stat.
struct OverrideDecision {
    std::optional<OverrideStat> apply; // the owner and mode to give it
    const char* which = nullptr;       // the xattr it came from
    // Non-empty: the override is not applied, and this says why.
    std::string left_alone;
    // The inode is not the upper owner's: nothing of it is changed, its
    // fuse-overlayfs xattrs included.
    bool foreign = false;
};

std::string ids(uid_t uid, gid_t gid) {
    return std::to_string(uid) + ":" + std::to_string(gid);
}

// The override_stat fuse-overlayfs would apply to this inode, and whether
// it is applied. Only root can write security.*, so that one is applied as
// it is. A user.* one can be written by whoever may write the inode, the
// upper's owner above all, so it is held to what that owner could do
// itself: it changes only an inode the owner owns (and, for a regular file,
// one with a single link: another name outside the upper may share it);
// such an inode is reported and left alone. It may name only the owner and
// the owner's groups (never root), and never add set-uid or set-gid bits
// to a file or a directory; one asking for more is refused, before
// anything changes: an admin decides, sets owner and mode by hand, removes
// the xattr and runs again.
OverrideDecision read_override(int fd, bool is_dir, const Refuser& r, const std::string& rel,
                               const std::vector<std::string>& names, const UpperOwner& owner) {
    OverrideDecision d;
    for (const char* name : kOverrideStatXattrs) {
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
        if (std::string_view(name).starts_with("security.")) {
            d.apply = o;
            return d;
        }
        const std::string asked = std::string(name) + " '" + printable(*v) + "'";
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
        d.apply = o;
        return d;
    }
    return d;
}

// A regular file `name` in `dirfd` opened for reading, or an invalid
// descriptor if it is anything else: opened O_PATH first and reopened only
// once it is known to be a file, so no device or FIFO is ever opened.
UniqueFd open_regular_at(int dirfd, const std::string& name) {
    if (dirfd < 0) {
        return UniqueFd();
    }
    UniqueFd path(::openat(dirfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!path || ::fstat(path.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return UniqueFd();
    }
    // The descriptor's own file (a magic link: no name is looked up again).
    return UniqueFd(::open(proc_path(path.get()).c_str(), O_RDONLY | O_CLOEXEC));
}

// Where the next data (SEEK_DATA) or hole (SEEK_HOLE) at or after `pos`
// begins, at most `size`; -1 on an error. ENXIO: no data after pos.
off_t seek_extent(int fd, off_t pos, int whence, off_t size) {
    const off_t at = ::lseek(fd, pos, whence);
    if (at < 0) {
        return errno == ENXIO ? size : -1;
    }
    return std::min(at, size);
}

bool pread_all(int fd, char* buf, std::size_t n, off_t off) {
    while (n > 0) {
        const ssize_t got = ::pread(fd, buf, n, off);
        if (got <= 0) {
            return false;
        }
        buf += got;
        n -= static_cast<std::size_t>(got);
        off += got;
    }
    return true;
}

// The first `size` bytes of two files compared range by range: a range that
// is a hole in both reads as zeros in both and is not read, so a sparse
// file costs its data, not its size. A range that is data in one and a
// hole in the other is read from both (a hole reads as zeros). Filesystems
// without SEEK_DATA report one data range, the whole file.
bool same_data(int a, int b, off_t size) {
    // Most files of an upper are small: buffers of their size, not 64 KiB
    // each (zeroed per file, that was a tenth of a 100,000-entry run).
    const auto buffer = static_cast<std::size_t>(std::min<off_t>(size, off_t{1} << 16));
    std::vector<char> ba(buffer), bb(buffer);
    off_t pos = 0;
    while (pos < size) {
        const off_t da = seek_extent(a, pos, SEEK_DATA, size);
        const off_t db = seek_extent(b, pos, SEEK_DATA, size);
        if (da < 0 || db < 0) {
            return false;
        }
        const off_t start = std::min(da, db);
        if (start >= size) {
            return true; // holes to the end in both
        }
        // How far each file stays as it is at `start`: data up to its next
        // hole, or a hole up to its next data.
        auto stays = [&](int fd, off_t data_at) {
            return data_at > start ? data_at : seek_extent(fd, start, SEEK_HOLE, size);
        };
        const off_t ea = stays(a, da);
        const off_t eb = stays(b, db);
        if (ea < 0 || eb < 0) {
            return false;
        }
        const off_t end = std::min(ea, eb);
        if (end <= start) {
            return false; // the file changed under the walk
        }
        for (off_t off = start; off < end;) {
            const auto n =
                static_cast<std::size_t>(std::min<off_t>(end - off, static_cast<off_t>(ba.size())));
            if (!pread_all(a, ba.data(), n, off) || !pread_all(b, bb.data(), n, off) ||
                std::memcmp(ba.data(), bb.data(), n) != 0) {
                return false;
            }
            off += static_cast<off_t>(n);
        }
        pos = end;
    }
    return true;
}

// Builds the view of a stack of directories (top first) by fuse-overlayfs'
// rules (Rules::Fuse) or as one plain tree (Rules::Plain, for the kernel
// overlay's own mount, which has already applied the kernel's rules).
class ViewBuilder {
  public:
    enum class Rules { Fuse, Plain };

    // Rules::Fuse needs `owner`: it decides which user.* overrides apply.
    ViewBuilder(Rules rules, View& out, const Refuser& r, MountIdentity top_mount,
                const UpperOwner* owner = nullptr)
        : rules_(rules), out_(out), r_(r), top_mount_(top_mount), owner_(owner) {}

    // Rules::Plain over the kernel's mount: while walking it, compare the
    // data of every regular file `expected` shows from the upper (layer 0)
    // with the upper's file of the same path, reached through the upper's
    // own directory descriptors, opened one component at a time beside this
    // walk: no path is resolved whole, so no length limits it. The paths
    // whose data differ go to `differs`.
    void check_contents(const View& expected, int upper_root, std::set<std::string>& differs) {
        expected_ = &expected;
        twin_root_ = upper_root;
        differs_ = &differs;
    }

    void build(std::vector<LayerDir> dirs) {
        struct stat st {};
        if (::fstat(dirs.front().fd.get(), &st) != 0) {
            r_.fail_errno("stat", "", errno);
        }
        Attr root = attr_of(st, dirs.front().fd.get(), "", 0, true, "");
        out_[""] = root;
        if (rules_ == Rules::Fuse && fuse_opaque(dirs.front().fd.get())) {
            dirs.resize(1);
        }
        UniqueFd twin;
        if (expected_ != nullptr) {
            twin.reset(::openat(twin_root_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        }
        walk(dirs, "", 0, twin.get());
    }

  private:
    struct Listed {
        std::map<std::string, unsigned char> names; // real entries
        std::set<std::string> whiteouts;            // names this layer hides (itself included)
    };

    Listed list(int fd) const {
        Listed l;
        for (auto& [name, type] : list_dir(fd)) {
            if (rules_ == Rules::Fuse) {
                if (name.starts_with(kWhPrefix)) {
                    l.whiteouts.insert(name.substr(kWhPrefix.size()));
                    continue;
                }
                if (type == DT_CHR) {
                    struct stat st {};
                    if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                        is_whiteout_dev(st)) {
                        l.whiteouts.insert(name);
                        continue;
                    }
                }
            }
            l.names.emplace(name, type);
        }
        return l;
    }

    Attr attr_of(const struct stat& st, int fd_or_parent, const std::string& name,
                 std::size_t layer, bool is_open_dir, const std::string& rel) const {
        Attr a;
        a.mode = st.st_mode;
        a.uid = st.st_uid;
        a.gid = st.st_gid;
        a.size = st.st_size;
        a.rdev = st.st_rdev;
        a.mtime_sec = st.st_mtim.tv_sec;
        a.mtime_nsec = st.st_mtim.tv_nsec;
        a.layer = layer;
        if (S_ISLNK(st.st_mode)) {
            std::array<char, 4097> buf{};
            ssize_t n = ::readlinkat(fd_or_parent, name.c_str(), buf.data(), buf.size() - 1);
            a.link = n >= 0 ? std::string(buf.data(), static_cast<std::size_t>(n)) : "?";
        }
        // override_stat is honoured on the upper (fuse-overlayfs' own
        // writes); lowers are shown as they are.
        if (rules_ == Rules::Fuse && layer == 0 && (S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
            // The override as the conversion will apply it: one left alone
            // is not applied there, so the kernel will show the inode as it is.
            std::optional<OverrideStat> o;
            if (is_open_dir) {
                o = read_override(fd_or_parent, true, r_, rel, list_xattrs(fd_or_parent, true),
                                  *owner_)
                        .apply;
            } else {
                UniqueFd f(::openat(fd_or_parent, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
                struct stat fst {};
                if (f && ::fstat(f.get(), &fst) == 0 &&
                    (fst.st_mode & S_IFMT) == (st.st_mode & S_IFMT)) {
                    const bool dir = S_ISDIR(st.st_mode);
                    o = read_override(f.get(), dir, r_, rel, list_xattrs(f.get(), dir), *owner_)
                            .apply;
                }
            }
            if (o) {
                a.uid = o->uid;
                a.gid = o->gid;
                a.mode = (st.st_mode & S_IFMT) | o->mode;
            }
        }
        return a;
    }

    // Sizes first (compare_views), then the data, only of files that can
    // differ: those the upper gave fuse-overlayfs' view, of the same size.
    void check_file(int parent, int twin, const std::string& name, const std::string& rel,
                    const struct stat& st) {
        if (expected_ == nullptr || !S_ISREG(st.st_mode)) {
            return;
        }
        auto e = expected_->find(rel);
        if (e == expected_->end() || e->second.layer != 0 || !S_ISREG(e->second.mode) ||
            e->second.size != st.st_size) {
            return;
        }
        UniqueFd a = open_regular_at(twin, name);
        UniqueFd b = open_regular_at(parent, name);
        if (!a || !b || !same_data(a.get(), b.get(), st.st_size)) {
            differs_->insert(rel);
        }
    }

    // `twin`: with check_contents, the upper's directory of this path (-1
    // where the upper has none).
    void walk(const std::vector<LayerDir>& dirs, const std::string& rel, std::size_t depth,
              int twin) {
        if (depth >= kMaxUpperDepth) {
            r_.fail(ErrorCode::UnsafePath, rel,
                    "is deeper than " + std::to_string(kMaxUpperDepth) + " levels");
        }
        std::vector<Listed> listed;
        listed.reserve(dirs.size());
        for (const auto& d : dirs) {
            listed.push_back(list(d.fd.get()));
        }
        std::set<std::string> hidden;
        std::map<std::string, std::size_t> chosen; // name -> index into dirs
        for (std::size_t k = 0; k < dirs.size(); ++k) {
            for (const auto& [name, type] : listed[k].names) {
                if (!chosen.contains(name) && !hidden.contains(name) &&
                    !listed[k].whiteouts.contains(name)) {
                    chosen.emplace(name, k);
                }
            }
            hidden.insert(listed[k].whiteouts.begin(), listed[k].whiteouts.end());
        }
        for (const auto& [name, k] : chosen) {
            const std::string child_rel = join(rel, name);
            const int parent = dirs[k].fd.get();
            struct stat st {};
            if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                r_.fail_errno("stat", child_rel, errno);
            }
            if (!S_ISDIR(st.st_mode)) {
                out_[child_rel] = attr_of(st, parent, name, dirs[k].layer, false, child_rel);
                check_file(parent, twin, name, child_rel, st);
                continue;
            }
            UniqueFd fd = open_dir_at(parent, name);
            if (!fd) {
                r_.fail_errno("open", child_rel, errno);
            }
            if (dirs[k].layer == 0 && mount_identity(fd.get(), child_rel) != top_mount_) {
                r_.fail(ErrorCode::UnsafePath, child_rel,
                        "is on another mount (a mount point inside upper); not entered");
            }
            out_[child_rel] = attr_of(st, fd.get(), "", dirs[k].layer, true, child_rel);
            std::vector<LayerDir> child;
            const bool opaque = rules_ == Rules::Fuse && fuse_opaque(fd.get());
            child.push_back({dirs[k].layer, std::move(fd)});
            if (rules_ == Rules::Fuse && !opaque) {
                for (std::size_t j = k + 1; j < dirs.size(); ++j) {
                    if (listed[j].whiteouts.contains(name)) {
                        break;
                    }
                    auto it = listed[j].names.find(name);
                    if (it == listed[j].names.end()) {
                        continue;
                    }
                    if (it->second != DT_DIR) {
                        break;
                    }
                    UniqueFd lower = open_dir_at(dirs[j].fd.get(), name);
                    if (!lower) {
                        break;
                    }
                    const bool lower_opaque = fuse_opaque(lower.get());
                    child.push_back({dirs[j].layer, std::move(lower)});
                    if (lower_opaque) {
                        break;
                    }
                }
            }
            UniqueFd child_twin;
            if (expected_ != nullptr && twin >= 0) {
                child_twin = open_dir_at(twin, name);
            }
            walk(child, child_rel, depth + 1, child_twin ? child_twin.get() : -1);
        }
    }

    Rules rules_;
    View& out_;
    const Refuser& r_;
    MountIdentity top_mount_;
    const UpperOwner* owner_;
    const View* expected_ = nullptr;
    int twin_root_ = -1;
    std::set<std::string>* differs_ = nullptr;
};

// ---------------------------------------------------------------------------
// The conversion.

class Converter {
  public:
    Converter(bool dry_run, MigrationReport& report, const Refuser& r, const InstanceDir& instance,
              MountIdentity upper_mount, const UpperOwner& owner, const MigrationLineSink& sink)
        : dry_(dry_run), report_(report), r_(r), instance_(instance), upper_mount_(upper_mount),
          owner_(owner), sink_(sink) {
        char stamp[32];
        std::time_t now = std::time(nullptr);
        struct tm tm {};
        ::gmtime_r(&now, &tm);
        std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
        run_name_ = stamp;
    }

    // `lowers`: the directories of this path in the lower layers that
    // fuse-overlayfs merged beneath it (before this directory's own opacity).
    void convert_dir(int dfd, const std::string& rel, std::vector<LayerDir> lowers,
                     std::size_t depth) {
        if (depth >= kMaxUpperDepth) {
            r_.fail(ErrorCode::UnsafePath, rel,
                    "is deeper than " + std::to_string(kMaxUpperDepth) + " levels");
        }
        auto entries = list_dir(dfd);
        report_.totals.entries += entries.size();

        // Opacity: the kernel's form first, then the fuse forms go.
        const bool opaque = fuse_opaque(dfd);
        if (opaque) {
            lowers.clear();
            auto trusted = get_xattr(dfd, true, kTrustedOpaque);
            if (!trusted || *trusted != "y") {
                change(report_.totals.opaque_set,
                       "set-opaque " + shown(rel) + " (trusted.overlay.opaque=y)", [&] {
                           if (::fsetxattr(dfd, kTrustedOpaque, "y", 1, 0) != 0) {
                               r_.fail_errno("set trusted.overlay.opaque on", rel, errno);
                           }
                       });
            }
        }
        if (auto it = entries.find(std::string(kOpaqueMarker)); it != entries.end()) {
            remove_fuse_entry(dfd, rel, it->first, it->second, report_.totals.markers_removed,
                              "remove-marker");
            entries.erase(it);
        }
        if (auto it = entries.find(std::string(kOpaqueWhiteout)); it != entries.end()) {
            struct stat st {};
            const bool marker = ::fstatat(dfd, it->first.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                (is_whiteout_dev(st) || (S_ISREG(st.st_mode) && st.st_size == 0));
            if (marker) {
                const std::string child_rel = join(rel, it->first);
                change(report_.totals.markers_removed, "remove-marker " + shown(child_rel), [&] {
                    if (::unlinkat(dfd, it->first.c_str(), 0) != 0 && errno != ENOENT) {
                        r_.fail_errno("remove", child_rel, errno);
                    }
                });
            } else {
                remove_fuse_entry(dfd, rel, it->first, it->second, report_.totals.markers_removed,
                                  "remove-marker");
            }
            entries.erase(it);
        }
        fix_attrs(dfd, true, rel);

        // Whiteouts, and what sits beside them.
        std::vector<std::string> wh;
        for (const auto& [name, type] : entries) {
            if (name.starts_with(kWhPrefix)) {
                wh.push_back(name);
            }
        }
        for (const auto& name : wh) {
            const unsigned char wh_type = entries.at(name);
            entries.erase(name);
            const std::string x = name.substr(kWhPrefix.size());
            if (x.empty() || x.starts_with(kWhPrefix)) {
                // Names fuse-overlayfs never shows: nothing to whiteout.
                remove_fuse_entry(dfd, rel, name, wh_type, report_.totals.whiteouts_removed,
                                  "remove-whiteout");
                continue;
            }
            bool kernel_whiteout_there = false;
            if (auto it = entries.find(x); it != entries.end()) {
                struct stat st {};
                if (::fstatat(dfd, x.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                    is_whiteout_dev(st)) {
                    kernel_whiteout_there = true;
                } else {
                    quarantine(dfd, rel, x, name);
                }
                entries.erase(it);
            }
            if (kernel_whiteout_there) {
                remove_fuse_entry(dfd, rel, name, wh_type, report_.totals.whiteouts_removed,
                                  "remove-whiteout",
                                  " (" + shown(join(rel, x)) + " already is a kernel whiteout)");
            } else if (visible_below(x, lowers)) {
                change(report_.totals.whiteouts_converted,
                       "convert-whiteout " + shown(join(rel, name)) + " -> " + shown(join(rel, x)) +
                           " (char 0/0)",
                       [&] {
                           if (::mknodat(dfd, x.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0 &&
                               errno != EEXIST) {
                               r_.fail_errno("make whiteout", join(rel, x), errno);
                           }
                       });
                remove_fuse_entry(dfd, rel, name, wh_type, uncounted_, "", "", true);
            } else {
                remove_fuse_entry(dfd, rel, name, wh_type, report_.totals.whiteouts_removed,
                                  "remove-whiteout", " (nothing below to hide)");
            }
        }

        // Everything else: attributes, and the directories beneath.
        for (const auto& [name, type] : entries) {
            const std::string child_rel = join(rel, name);
            if (type == DT_DIR) {
                UniqueFd child = open_dir_at(dfd, name);
                if (!child) {
                    r_.fail_errno("open", child_rel, errno);
                }
                if (mount_identity(child.get(), child_rel) != upper_mount_) {
                    r_.fail(ErrorCode::UnsafePath, child_rel,
                            "is on another mount (a mount point inside upper); not entered");
                }
                convert_dir(child.get(), child_rel, lowers_of(name, lowers), depth + 1);
            } else if (type == DT_REG) {
                UniqueFd f(::openat(dfd, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
                struct stat st {};
                if (!f || ::fstat(f.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
                    continue; // replaced meanwhile: not a file we change
                }
                if (st.st_nlink > 1 && !seen_links_.emplace(st.st_dev, st.st_ino).second) {
                    continue; // another name of a file already converted
                }
                fix_attrs(f.get(), false, child_rel);
            }
            // Symlinks, FIFOs, sockets, devices (kernel whiteouts included)
            // carry no user.* xattrs and are left as they are.
        }
    }

  private:
    std::string shown(const std::string& rel) const { return r_.where(rel); }

    template <typename Do> void change(std::size_t& counter, const std::string& line, Do&& act) {
        if (!line.empty()) {
            report_.changes.push_back(line);
            if (sink_) {
                sink_(line);
            }
        }
        ++counter;
        if (dry_) {
            return;
        }
        act();
        if (g_stop_after != 0 && ++done_ >= g_stop_after) {
            throw Error(ErrorCode::Failed, r_.prefix() + "stopped after " + std::to_string(done_) +
                                               " changes (test hook)");
        }
    }

    // Is `x` visible in the lower directories by fuse-overlayfs' rules?
    static bool visible_below(const std::string& x, const std::vector<LayerDir>& lowers) {
        const std::string wh = std::string(kWhPrefix) + x;
        for (const auto& l : lowers) {
            struct stat st {};
            if (::fstatat(l.fd.get(), wh.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
                return false;
            }
            if (::fstatat(l.fd.get(), x.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                continue;
            }
            return !is_whiteout_dev(st);
        }
        return false;
    }

    // The lower directories fuse-overlayfs merged beneath `name`.
    static std::vector<LayerDir> lowers_of(const std::string& name,
                                           const std::vector<LayerDir>& lowers) {
        std::vector<LayerDir> out;
        const std::string wh = std::string(kWhPrefix) + name;
        for (const auto& l : lowers) {
            struct stat st {};
            if (::fstatat(l.fd.get(), wh.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
                break;
            }
            if (::fstatat(l.fd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                continue;
            }
            if (!S_ISDIR(st.st_mode)) {
                break;
            }
            UniqueFd fd = open_dir_at(l.fd.get(), name);
            if (!fd) {
                break;
            }
            const bool opaque = fuse_opaque(fd.get());
            out.push_back({l.layer, std::move(fd)});
            if (opaque) {
                break;
            }
        }
        return out;
    }

    // Removes a fuse-only entry: an empty file (what fuse-overlayfs makes)
    // is unlinked; anything else, which fuse-overlayfs never made under such
    // a name, goes to quarantine: nothing with data in it is deleted.
    void remove_fuse_entry(int dfd, const std::string& rel, const std::string& name,
                           unsigned char type, std::size_t& counter, const std::string& verb,
                           const std::string& why = "", bool silent = false) {
        const std::string child_rel = join(rel, name);
        struct stat st {};
        const bool empty_file = type != DT_DIR &&
                                ::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                S_ISREG(st.st_mode) && st.st_size == 0;
        if (!empty_file) {
            quarantine(dfd, rel, name, "");
            return;
        }
        change(counter, silent ? "" : verb + " " + shown(child_rel) + why, [&] {
            if (::unlinkat(dfd, name.c_str(), 0) != 0 && errno != ENOENT) {
                r_.fail_errno("remove", child_rel, errno);
            }
        });
    }

    void quarantine(int dfd, const std::string& rel, const std::string& name,
                    const std::string& hidden_by) {
        const std::string child_rel = join(rel, name);
        const std::string dest = std::string(kQuarantineDir) + "/" + run_name_ + "/" + child_rel;
        report_.quarantine = instance_.path_of(std::string(kQuarantineDir) + "/" + run_name_);
        std::string why = hidden_by.empty() ? " (not an empty file, under a fuse-only name)"
                                            : " (hidden by " + shown(join(rel, hidden_by)) + ")";
        change(report_.totals.quarantined,
               "quarantine " + shown(child_rel) + " -> " + printable(instance_.path_of(dest)) + why,
               [&] {
                   UniqueFd to = quarantine_dir_for(rel);
                   if (::renameat2(dfd, name.c_str(), to.get(), name.c_str(), RENAME_NOREPLACE) !=
                       0) {
                       r_.fail_errno("move to quarantine", child_rel, errno);
                   }
               });
    }

    // instance/migrate-quarantine/RUN/REL, made one component at a time
    // beneath the instance dir, no symlink followed, on its mount.
    UniqueFd quarantine_dir_for(const std::string& rel) {
        std::vector<std::string> parts{std::string(kQuarantineDir), run_name_};
        std::string_view rest = rel;
        while (!rest.empty()) {
            auto slash = rest.find('/');
            parts.emplace_back(rest.substr(0, slash));
            rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
        }
        UniqueFd cur(::openat(instance_.fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        std::string path;
        for (const auto& p : parts) {
            path = join(path, p);
            if (::mkdirat(cur.get(), p.c_str(), 0700) != 0 && errno != EEXIST) {
                throw_errno(ErrorCode::Failed,
                            r_.prefix() + "make " + printable(instance_.path_of(path)), errno);
            }
            UniqueFd next = open_dir_at(cur.get(), p);
            if (!next) {
                const int err = errno;
                // O_NOFOLLOW|O_DIRECTORY on a symlink says ENOTDIR: say what it is.
                struct stat st {};
                const bool link = ::fstatat(cur.get(), p.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                  S_ISLNK(st.st_mode);
                throw Error(ErrorCode::UnsafePath,
                            r_.prefix() + printable(instance_.path_of(path)) + " " +
                                (link ? std::string("is a symlink (not followed)")
                                      : describe_open_failure(err)));
            }
            require_same_mount(instance_.fd(), instance_.path(), next.get(),
                               instance_.path_of(path), instance_.name());
            cur = std::move(next);
        }
        return cur;
    }

    // override_stat to real owner and mode (chown first: it clears the
    // set-id bits), then the fuse xattrs go.
    void fix_attrs(int fd, bool is_dir, const std::string& rel) {
        const auto names = list_xattrs(fd, is_dir);
        if (names.empty()) {
            return;
        }
        const OverrideDecision d = read_override(fd, is_dir, r_, rel, names, owner_);
        const char* which = d.which;
        if (!d.left_alone.empty()) {
            ++report_.totals.left_alone;
            report_.changes.push_back("leave-alone " + shown(rel) + ": " + d.left_alone);
            if (sink_) {
                sink_(report_.changes.back());
            }
            if (d.foreign) {
                foreign_.push_back(shown(rel));
                return;
            }
        }
        if (auto o = d.apply) {
            struct stat st {};
            if (::fstat(fd, &st) != 0) {
                r_.fail_errno("stat", rel, errno);
            }
            bool owner_changed = false;
            if (st.st_uid != o->uid || st.st_gid != o->gid) {
                owner_changed = true;
                change(report_.totals.owners_set,
                       "chown " + shown(rel) + " " + std::to_string(o->uid) + ":" +
                           std::to_string(o->gid) + " (from " + which + ")",
                       [&] {
                           if (::fchownat(fd, "", o->uid, o->gid,
                                          AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
                               r_.fail_errno("chown", rel, errno);
                           }
                       });
                if (!dry_ && ::fstat(fd, &st) != 0) {
                    r_.fail_errno("stat", rel, errno);
                }
            }
            // chown clears set-id bits, so after a (real or planned) chown the
            // mode is set again whenever it carries them.
            const bool setid_lost = owner_changed && dry_ && (o->mode & (S_ISUID | S_ISGID));
            if ((st.st_mode & 07777) != o->mode || setid_lost) {
                char mode[8];
                std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(o->mode));
                change(report_.totals.modes_set,
                       "chmod " + shown(rel) + " " + mode + " (from " + which + ")", [&] {
                           int rc = is_dir ? ::fchmod(fd, o->mode)
                                           : ::chmod(proc_path(fd).c_str(), o->mode);
                           if (rc != 0) {
                               r_.fail_errno("chmod", rel, errno);
                           }
                       });
            }
        }
        for (const auto& name : names) {
            const bool fuse = name.starts_with("user.fuseoverlayfs.") ||
                              name.starts_with("user.overlay.") ||
                              std::find(kOverrideStatXattrs.begin(), kOverrideStatXattrs.end(),
                                        name) != kOverrideStatXattrs.end();
            if (!fuse || (rel.empty() && name == kMigrationMarkerXattr)) {
                continue;
            }
            change(report_.totals.xattrs_removed,
                   "remove-xattr " + shown(rel) + " " + printable(name), [&] {
                       int rc = is_dir ? ::fremovexattr(fd, name.c_str())
                                       : ::removexattr(proc_path(fd).c_str(), name.c_str());
                       if (rc != 0 && errno != ENODATA) {
                           r_.fail_errno("remove xattr from", rel, errno);
                       }
                   });
        }
    }

    bool dry_;
    MigrationReport& report_;
    const Refuser& r_;
    const InstanceDir& instance_;
    MountIdentity upper_mount_;
    const UpperOwner& owner_;
    const MigrationLineSink& sink_;
    std::string run_name_;
    std::size_t done_ = 0;
    std::size_t uncounted_ = 0;
    std::set<std::pair<dev_t, ino_t>> seen_links_;
    std::vector<std::string> foreign_;

  public:
    // Inodes left alone because the upper's owner does not own them: they
    // keep their fuse-overlayfs xattrs.
    const std::vector<std::string>& foreign() const { return foreign_; }
};

// ---------------------------------------------------------------------------
// Verification.


// A read-only overlay of `layers` (top first), mounted nowhere: the mount
// exists only as this descriptor (an anonymous mount namespace of its own),
// so no other process can see or use it, and closing it ends it.
UniqueFd mount_detached_view(const std::vector<int>& layers, const Config& config,
                             const Refuser& r) {
    const MountApi api = resolve_mount_api(config.mount_api);
    UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
    auto fail = [&](const std::string& step, int err) {
        std::string msg = r.prefix() + "verification mount (" + mount_api_name(api) + "): " + step +
                          ": " + std::strerror(err);
        if (fs) {
            auto k = fs_context_messages(fs.get());
            if (!k.empty()) {
                msg += " (kernel: " + k + ")";
            }
        }
        throw Error(ErrorCode::Failed, msg);
    };
    if (!fs) {
        fail("fsopen", errno);
    }
    auto set_string = [&](const char* key, const std::string& value) {
        if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
            fail(std::string("fsconfig ") + key, errno);
        }
    };
    set_string("source", "left4me-migrate-verify");
    if (api == MountApi::Legacy) {
        std::string joined;
        for (int fd : layers) {
            joined += (joined.empty() ? "" : ":") + proc_path(fd);
        }
        set_string("lowerdir", joined);
    } else {
        for (int fd : layers) {
            if (api == MountApi::LayerFds) {
                if (::fsconfig(fs.get(), FSCONFIG_SET_FD, "lowerdir+", nullptr, fd) != 0) {
                    fail("fsconfig lowerdir+", errno);
                }
            } else {
                set_string("lowerdir+", proc_path(fd));
            }
        }
    }
    if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
        fail("create", errno);
    }
    UniqueFd mnt(
        ::fsmount(fs.get(), FSMOUNT_CLOEXEC,
                  MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC));
    if (!mnt) {
        fail("fsmount", errno);
    }
    return mnt;
}

std::string describe(const Attr& a) {
    char buf[160];
    const char* type = S_ISDIR(a.mode)    ? "dir"
                       : S_ISREG(a.mode)  ? "file"
                       : S_ISLNK(a.mode)  ? "symlink"
                       : S_ISFIFO(a.mode) ? "fifo"
                       : S_ISCHR(a.mode)  ? "chardev"
                       : S_ISBLK(a.mode)  ? "blockdev"
                                          : "socket";
    std::snprintf(buf, sizeof buf, "%s %04o %u:%u", type, static_cast<unsigned>(a.mode & 07777),
                  static_cast<unsigned>(a.uid), static_cast<unsigned>(a.gid));
    std::string out = buf;
    if (!S_ISDIR(a.mode)) {
        out += " size " + std::to_string(a.size);
    }
    if (S_ISLNK(a.mode)) {
        out += " -> " + printable(a.link);
    }
    return out;
}

// Every difference between the two views, described by the path in the
// merged view and, for what fuse-overlayfs showed, the layer it came from.
// `differs`: the upper's files whose data the kernel's walk found different.
std::vector<std::string> compare_views(const View& fuse, const View& kernel,
                                       const std::set<std::string>& differs,
                                       const std::vector<std::string>& layers) {
    std::vector<std::string> diffs;
    auto at = [](const std::string& rel) { return "merged /" + printable(rel) + ": "; };
    auto fuse_showed = [&](const Attr& a) {
        return "fuse-overlayfs showed " + describe(a) + " (from " +
               (a.layer < layers.size() ? printable(layers[a.layer]) : std::string("?")) + ")";
    };
    auto fi = fuse.begin();
    auto ki = kernel.begin();
    while (fi != fuse.end() || ki != kernel.end()) {
        if (ki == kernel.end() || (fi != fuse.end() && fi->first < ki->first)) {
            diffs.push_back(at(fi->first) + fuse_showed(fi->second) + ", the kernel shows nothing");
            ++fi;
            continue;
        }
        if (fi == fuse.end() || ki->first < fi->first) {
            diffs.push_back(at(ki->first) + "the kernel shows " + describe(ki->second) +
                            ", fuse-overlayfs showed nothing");
            ++ki;
            continue;
        }
        const Attr& f = fi->second;
        const Attr& k = ki->second;
        bool same = f.mode == k.mode && f.uid == k.uid && f.gid == k.gid && f.link == k.link;
        if (same && !S_ISDIR(f.mode)) {
            same = f.size == k.size;
        }
        if (same && (S_ISCHR(f.mode) || S_ISBLK(f.mode))) {
            same = f.rdev == k.rdev;
        }
        if (same && S_ISREG(f.mode)) {
            same = f.mtime_sec == k.mtime_sec && f.mtime_nsec == k.mtime_nsec;
            // Files of the upper are compared by their data (during the
            // kernel view's walk); files of the lowers (shared, possibly
            // many gigabytes) by size and mtime.
            if (same && f.layer == 0 && differs.contains(fi->first)) {
                diffs.push_back(at(fi->first) + "contents differ");
                ++fi;
                ++ki;
                continue;
            }
        }
        if (!same) {
            diffs.push_back(at(fi->first) + fuse_showed(f) + ", the kernel shows " + describe(k));
        }
        ++fi;
        ++ki;
    }
    return diffs;
}

void set_marker(int upper_fd, std::string_view value, const Refuser& r) {
    const std::string name(kMigrationMarkerXattr);
    if (::fsetxattr(upper_fd, name.c_str(), value.data(), value.size(), 0) != 0) {
        r.fail_errno("mark", "", errno);
    }
}

std::string count(std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
}

} // namespace

void set_migration_stop_after_for_tests(std::size_t changes) noexcept {
    g_stop_after = changes;
}

std::vector<std::string> MigrationReport::lines() const {
    std::vector<std::string> out = changes;
    for (auto& l : summary_lines()) {
        out.push_back(std::move(l));
    }
    return out;
}

std::vector<std::string> MigrationReport::summary_lines() const {
    std::vector<std::string> out;
    const auto& t = totals;
    out.push_back(
        std::string(dry_run ? "would make " : "made ") + count(t.changes(), "change", "changes") +
        " in " + count(t.entries, "entry", "entries") + ": " +
        std::to_string(t.whiteouts_converted) + " whiteouts converted, " +
        std::to_string(t.whiteouts_removed) + " whiteouts removed, " +
        std::to_string(t.opaque_set) + " opaque dirs set, " + std::to_string(t.markers_removed) +
        " opaque markers removed, " + std::to_string(t.owners_set) + " owners set, " +
        std::to_string(t.modes_set) + " modes set, " + std::to_string(t.xattrs_removed) +
        " xattrs removed, " + std::to_string(t.quarantined) + " quarantined" +
        (t.left_alone == 0 ? std::string()
                           : "; " + count(t.left_alone, "entry", "entries") + " left alone"));
    if (dry_run) {
        out.push_back("dry run: nothing was changed");
    } else {
        out.push_back("verified: the kernel overlay shows the same " +
                      count(verified_entries, "entry", "entries") +
                      " as fuse-overlayfs did; the upper is in the kernel's format");
        if (!quarantine.empty()) {
            out.push_back("quarantined entries are in " + printable(quarantine));
        }
    }
    return out;
}

namespace {

// The walks hold a descriptor per layer per level (up to kMaxUpperDepth
// levels of up to 500 layers): the soft limit on open files is raised to
// the hard one for the run, and put back after.
class OpenFilesLimit {
  public:
    OpenFilesLimit() {
        if (::getrlimit(RLIMIT_NOFILE, &saved_) == 0 && saved_.rlim_cur < saved_.rlim_max) {
            rlimit raised = saved_;
            raised.rlim_cur = saved_.rlim_max;
            restore_ = ::setrlimit(RLIMIT_NOFILE, &raised) == 0;
        }
    }
    ~OpenFilesLimit() {
        if (restore_) {
            ::setrlimit(RLIMIT_NOFILE, &saved_);
        }
    }
    OpenFilesLimit(const OpenFilesLimit&) = delete;
    OpenFilesLimit& operator=(const OpenFilesLimit&) = delete;

  private:
    rlimit saved_{};
    bool restore_ = false;
};

} // namespace

MigrationReport migrate_instance(const Config& config, std::string_view name, bool dry_run,
                                 const MigrationLineSink& on_change) {
    validate_instance_name(name);
    const OpenFilesLimit open_files;
    const HostLayout layout(config);
    const InstanceDir instance(layout, name);
    const InstanceLock lock(config, name);

    const auto lowerdirs = parse_lowerdirs(instance.read_env(), config.lowerdirs_key,
                                           instance.path_of("instance.env"));
    const auto lowers = open_lower_layers(layout, lowerdirs, name);
    const UniqueFd upper = instance.open_subdir("upper", O_RDONLY);
    const std::string upper_path = instance.path_of("upper");
    require_same_mount(instance.fd(), instance.path(), upper.get(), upper_path, name);
    {
        const UniqueFd merged = instance.open_subdir("merged", O_PATH);
        if (auto id = mount_root_id(merged.get())) {
            throw Error(ErrorCode::AlreadyMounted,
                        instance_context(instance.name()) + printable(instance.path_of("merged")) +
                            " is a mount point: unmount the instance before migrating it");
        }
    }
    const Refuser r(name, upper_path);
    const MountIdentity upper_mount = mount_identity(upper.get(), upper_path);
    struct stat upper_st {};
    if (::fstat(upper.get(), &upper_st) != 0) {
        r.fail_errno("stat", "", errno);
    }
    const UpperOwner owner = UpperOwner::of(upper_st);

    auto marker = get_xattr(upper.get(), true, std::string(kMigrationMarkerXattr).c_str());
    if (marker && *marker == kMarkerVerifyFailed) {
        throw Error(ErrorCode::UpperdirTainted,
                    instance_context(instance.name()) + "an earlier migration of " +
                        printable(upper_path) +
                        " failed verification and the instance stays refused; inspect the upper, "
                        "then remove the xattr " +
                        std::string(kMigrationMarkerXattr) + " from it to run migrate again");
    }

    auto layer_dirs = [&] {
        std::vector<LayerDir> out;
        for (std::size_t i = 0; i < lowers.size(); ++i) {
            UniqueFd fd(::openat(lowers[i].get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!fd) {
                throw_errno(ErrorCode::Failed,
                            instance_context(instance.name()) + "open lowerdir " +
                                printable(lowerdirs[i]),
                            errno);
            }
            out.push_back({i + 1, std::move(fd)});
        }
        return out;
    };
    auto upper_dir = [&] {
        UniqueFd fd(::openat(upper.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (!fd) {
            r.fail_errno("open", "", errno);
        }
        return fd;
    };

    MigrationReport report;
    report.dry_run = dry_run;

    // What fuse-overlayfs showed, taken before anything changes.
    View expected;
    if (!dry_run) {
        std::vector<LayerDir> stack;
        stack.push_back({0, upper_dir()});
        for (auto& l : layer_dirs()) {
            stack.push_back(std::move(l));
        }
        ViewBuilder(ViewBuilder::Rules::Fuse, expected, r, upper_mount, &owner)
            .build(std::move(stack));
        // From the first change until verification passed, the taint scan
        // refuses the instance.
        set_marker(upper.get(), kMarkerInProgress, r);
    }

    Converter converter(dry_run, report, r, instance, upper_mount, owner, on_change);
    converter.convert_dir(upper.get(), "", layer_dirs(), 0);
    if (dry_run) {
        return report;
    }

    View actual;
    {
        std::vector<int> fds{upper.get()};
        for (const auto& l : lowers) {
            fds.push_back(l.get());
        }
        const UniqueFd mnt = mount_detached_view(fds, config, r);
        std::vector<LayerDir> one;
        one.push_back({0, UniqueFd(::openat(mnt.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC))});
        std::set<std::string> differs;
        ViewBuilder kernel_view(ViewBuilder::Rules::Plain, actual, r,
                                mount_identity(mnt.get(), "view"));
        kernel_view.check_contents(expected, upper.get(), differs);
        kernel_view.build(std::move(one));
        std::vector<std::string> layer_names{upper_path};
        layer_names.insert(layer_names.end(), lowerdirs.begin(), lowerdirs.end());
        auto diffs = compare_views(expected, actual, differs, layer_names);
        if (!diffs.empty()) {
            set_marker(upper.get(), kMarkerVerifyFailed, r);
            // One line: the first few differences, and how many in all.
            constexpr std::size_t kShown = 5;
            std::string shown;
            for (std::size_t i = 0; i < diffs.size() && i < kShown; ++i) {
                shown += (i == 0 ? "" : "; ") + diffs[i];
            }
            if (diffs.size() > kShown) {
                shown += "; and " + std::to_string(diffs.size() - kShown) + " more";
            }
            throw Error(ErrorCode::UpperdirTainted,
                        instance_context(instance.name()) + "migrate: verification failed, " +
                            count(diffs.size(), "difference", "differences") +
                            " between what fuse-overlayfs showed and what the kernel shows: " +
                            shown + "; the instance stays refused");
        }
    }
    report.verified_entries = expected.size();
    if (::fremovexattr(upper.get(), std::string(kMigrationMarkerXattr).c_str()) != 0 &&
        errno != ENODATA) {
        r.fail_errno("unmark", "", errno);
    }
    if (!converter.foreign().empty()) {
        constexpr std::size_t kShown = 5;
        std::string shown;
        for (std::size_t i = 0; i < converter.foreign().size() && i < kShown; ++i) {
            shown += (i == 0 ? "" : ", ") + converter.foreign()[i];
        }
        if (converter.foreign().size() > kShown) {
            shown += " and " + std::to_string(converter.foreign().size() - kShown) + " more";
        }
        throw Error(ErrorCode::UpperdirTainted,
                    r.prefix() + "converted and verified, but " +
                        count(converter.foreign().size(), "entry", "entries") +
                        " not owned by the upper's owner " +
                        (converter.foreign().size() == 1 ? "was" : "were") +
                        " left alone with its fuse-overlayfs xattrs, so the instance stays "
                        "refused: " +
                        shown +
                        "; inspect them (a hard link to a file elsewhere?), remove them or "
                        "their user.fuseoverlayfs.* xattrs, and run migrate again");
    }
    // The proof the mount path will ask for.
    check_upper_untainted(upper.get(), upper_path, name);
    return report;
}

} // namespace overlay
