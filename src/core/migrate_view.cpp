#include "migrate_view.hpp"

#include "fs_open.hpp"
#include "fuse_format.hpp"
#include "taint_scan.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay::migration {

namespace {

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
    return UniqueFd(::open(proc_fd_path(path.get()).c_str(), O_RDONLY | O_CLOEXEC));
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
                const UpperOwner* owner = nullptr, SetIdBits setid = SetIdBits::Refuse)
        : rules_(rules), out_(out), r_(r), top_mount_(top_mount), owner_(owner), setid_(setid) {}

    // Rules::Plain over the kernel's mount: see kernel_view().
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
                if (name.starts_with(fuse_format::kWhiteoutPrefix)) {
                    l.whiteouts.insert(name.substr(fuse_format::kWhiteoutPrefix.size()));
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
                                  *owner_, setid_)
                        .apply;
            } else {
                UniqueFd f(::openat(fd_or_parent, name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
                struct stat fst {};
                if (f && ::fstat(f.get(), &fst) == 0 &&
                    (fst.st_mode & S_IFMT) == (st.st_mode & S_IFMT)) {
                    const bool dir = S_ISDIR(st.st_mode);
                    o = read_override(f.get(), dir, r_, rel, list_xattrs(f.get(), dir), *owner_,
                                      setid_)
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
    SetIdBits setid_;
    const View* expected_ = nullptr;
    int twin_root_ = -1;
    std::set<std::string>* differs_ = nullptr;
};

} // namespace

View fuse_view(std::vector<LayerDir> stack, const Refuser& r, MountIdentity upper_mount,
               const UpperOwner& owner, SetIdBits setid) {
    View out;
    ViewBuilder(ViewBuilder::Rules::Fuse, out, r, upper_mount, &owner, setid)
        .build(std::move(stack));
    return out;
}

View kernel_view(UniqueFd root, MountIdentity mount, const Refuser& r, const View& expected,
                 int upper_root, std::set<std::string>& differs) {
    View out;
    std::vector<LayerDir> one;
    one.push_back({0, std::move(root)});
    ViewBuilder builder(ViewBuilder::Rules::Plain, out, r, mount);
    builder.check_contents(expected, upper_root, differs);
    builder.build(std::move(one));
    return out;
}

} // namespace overlay::migration
