#include "taint_scan.hpp"

#include "dir_stream.hpp"
#include "error.hpp"
#include "fuse_format.hpp"
#include "migrate.hpp"
#include "mount_point.hpp"
#include "unique_fd.hpp"
#include "working_directory.hpp"
#include "xattr_list.hpp"

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <vector>

namespace overlay {

namespace {

using fuse_format::kWhiteoutPrefix;

class UpperScan {
  public:
    UpperScan(std::string_view upper_path, std::string_view instance)
        : upper_path_(upper_path), instance_(instance), names_(XATTR_LIST_MAX) {}

    void run(int upper_fd) {
        upper_mnt_id_ = mount_id(upper_fd, "");
        check_xattrs(upper_fd, "");
        // The walk lists each file's xattrs by its one-component name
        // relative to the working directory, which is always the directory
        // being read (pinned by descriptor, never a path): one syscall per
        // file instead of openat+flistxattr+close, the bulk of the scan's
        // cost. The caller is single-threaded (operations.hpp), and the old
        // working directory is restored on every way out.
        // Back where it was, also when the scan throws.
        const WorkingDirectory restore;
        std::vector<Frame> stack;
        // A new open file description, not dup(): its own offset, so that a
        // descriptor already read by the caller still gets a full scan.
        stack.push_back(
            open_frame(::openat(upper_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), ""));
        int cwd = -1;
        while (!stack.empty()) {
            const Frame& top = stack.back();
            const int parent = ::dirfd(top.dir.get());
            if (cwd != parent) {
                if (::fchdir(parent) != 0) {
                    fail_errno("enter directory", top.rel, errno);
                }
                cwd = parent;
            }
            errno = 0;
            dirent* entry = ::readdir(top.dir.get());
            if (entry == nullptr) {
                if (errno != 0) {
                    fail_errno("read directory", top.rel, errno);
                }
                stack.pop_back();
                cwd = -1; // its number may be reused by the next open
                continue;
            }
            std::string_view name = entry->d_name;
            if (name == "." || name == "..") {
                continue;
            }
            // Built only when needed: most entries are files that pass.
            auto rel = [&] { return join(top.rel, name); };
            if (name.starts_with(kWhiteoutPrefix)) {
                taint(rel(), "is a '.wh.' entry (a fuse-overlayfs whiteout or opaque marker)");
            }
            unsigned char type = entry->d_type;
            if (type == DT_UNKNOWN) {
                type = type_of(parent, entry->d_name, rel);
            }
            // user.* xattrs exist only on regular files and directories, so
            // nothing else needs opening.
            if (type == DT_DIR) {
                const std::string dir_rel = rel();
                int fd = ::openat(parent, entry->d_name,
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                    skip_vanished(errno, "open", dir_rel);
                    continue;
                }
                UniqueFd dir(fd);
                // Never entered, and not skipped either: overlayfs ignores
                // mounts inside its upper and uses what lies beneath, which
                // such a mount hides from this scan.
                if (mount_id(dir.get(), dir_rel) != upper_mnt_id_) {
                    throw Error(ErrorCode::UnsafePath,
                                instance_context(instance_) + "upperdir entry " + where(dir_rel) +
                                    " is on another mount (a mount point inside upper hides "
                                    "from the taint scan what the overlay would use)");
                }
                check_xattrs(dir.get(), dir_rel);
                if (stack.size() >= kMaxUpperDepth) {
                    throw Error(ErrorCode::UnsafePath,
                                instance_context(instance_) + "upperdir " + printable(upper_path_) +
                                    " is deeper than " + std::to_string(kMaxUpperDepth) +
                                    " levels at " + printable(dir_rel));
                }
                stack.push_back(open_frame(dir.release(), dir_rel));
            } else if (type == DT_REG) {
                // llistxattr: the name (no '/') is looked up in the working
                // directory, i.e. `parent`, and a symlink swapped in
                // meanwhile is not followed. Nothing is opened, so a FIFO or
                // device swapped in has no effect either.
                check_file_xattrs(entry->d_name, rel);
            }
        }
    }

  private:
    struct Frame {
        DirStream dir;
        std::string rel;
    };

    Frame open_frame(int fd, const std::string& rel) {
        DIR* d = ::fdopendir(fd);
        if (d == nullptr) {
            int err = errno;
            ::close(fd);
            fail_errno("open directory", rel, err);
        }
        return Frame{DirStream(d), rel};
    }

    static std::string join(const std::string& base, std::string_view name) {
        return base.empty() ? std::string(name) : base + "/" + std::string(name);
    }

    std::string where(const std::string& rel) const {
        return rel.empty() ? printable(upper_path_) : printable(upper_path_) + "/" + printable(rel);
    }

    [[noreturn]] void taint(const std::string& rel, const std::string& what) const {
        throw Error(ErrorCode::UpperdirTainted, instance_context(instance_) +
                                                    "upperdir is tainted: " + where(rel) + " " +
                                                    what);
    }

    [[noreturn]] void fail_errno(const char* op, const std::string& rel, int err) const {
        throw_errno(ErrorCode::Failed,
                    instance_context(instance_) + "taint scan: " + op + " " + where(rel), err);
    }

    // An entry the owner removed or replaced by a symlink during the scan
    // cannot carry what we look for; anything else is a real failure.
    void skip_vanished(int err, const char* op, const std::string& rel) const {
        if (err != ENOENT && err != ELOOP && err != ENOTDIR && err != ENXIO && err != ENODEV) {
            fail_errno(op, rel, err);
        }
    }

    template <typename Rel>
    unsigned char type_of(int parent, const char* name, const Rel& rel) const {
        struct stat st {};
        if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            skip_vanished(errno, "stat", rel());
            return DT_UNKNOWN;
        }
        if (S_ISDIR(st.st_mode)) {
            return DT_DIR;
        }
        return S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }

    std::uint64_t mount_id(int fd, const std::string& rel) const {
        return mountinfo_id(fd, std::string(upper_path_) + "/" + rel);
    }

    // One buffer for the whole walk (list_xattr_names: small first).
    template <typename List> ssize_t list_names(List list) {
        return list_xattr_names(names_, list);
    }

    void check_xattrs(int fd, const std::string& rel) {
        ssize_t len =
            list_names([fd](char* buf, std::size_t size) { return ::flistxattr(fd, buf, size); });
        if (len < 0) {
            if (errno == ENOTSUP) {
                return; // a filesystem without xattrs cannot be tainted by them
            }
            fail_errno("list xattrs of", rel, errno);
        }
        check_names(static_cast<std::size_t>(len), [&] { return rel; });
    }

    // A file, by its name in the working directory.
    template <typename Rel> void check_file_xattrs(const char* name, const Rel& rel) {
        ssize_t len = list_names(
            [name](char* buf, std::size_t size) { return ::llistxattr(name, buf, size); });
        if (len < 0) {
            if (errno == ENOTSUP) {
                return;
            }
            skip_vanished(errno, "list xattrs of", rel());
            return;
        }
        check_names(static_cast<std::size_t>(len), rel);
    }

    template <typename Rel> void check_names(std::size_t len, const Rel& rel) {
        for_each_xattr_name(names_, len, [&](std::string_view xattr) {
            if (xattr == kMigrationMarkerXattr) {
                taint(rel(), "carries xattr " + std::string(xattr) +
                                 ": a migration (left4me-overlay migrate) is unfinished or "
                                 "failed verification; run it again, or read its error");
            }
            if (xattr.starts_with(fuse_format::kXattrPrefix)) {
                taint(rel(), "carries xattr " + printable(xattr) + " (left by fuse-overlayfs)");
            }
        });
    }

    std::string_view upper_path_;
    std::string_view instance_;
    std::vector<char> names_;
    std::uint64_t upper_mnt_id_ = 0;
};

} // namespace

void check_upper_untainted(int upper_fd, std::string_view upper_path, std::string_view instance) {
    UpperScan(upper_path, instance).run(upper_fd);
}

} // namespace overlay
