#include "taint_scan.hpp"

#include "error.hpp"
#include "unique_fd.hpp"

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

constexpr std::string_view kFuseXattrPrefix = "user.fuseoverlayfs.";
constexpr std::string_view kWhiteoutPrefix = ".wh.";

struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
};
using DirPtr = std::unique_ptr<DIR, DirCloser>;

class UpperScan {
  public:
    UpperScan(std::string_view upper_path, std::string_view instance)
        : upper_path_(upper_path), instance_(instance), names_(XATTR_LIST_MAX) {}

    void run(int upper_fd) {
        upper_mnt_id_ = mount_id(upper_fd, "");
        check_xattrs(upper_fd, "");
        std::vector<Frame> stack;
        stack.push_back(open_frame(::dup(upper_fd), ""));
        while (!stack.empty()) {
            errno = 0;
            dirent* entry = ::readdir(stack.back().dir.get());
            if (entry == nullptr) {
                if (errno != 0) {
                    fail_errno("read directory", stack.back().rel, errno);
                }
                stack.pop_back();
                continue;
            }
            std::string_view name = entry->d_name;
            if (name == "." || name == "..") {
                continue;
            }
            const std::string rel = join(stack.back().rel, name);
            if (name.starts_with(kWhiteoutPrefix)) {
                taint(rel, "is a '.wh.' entry (a fuse-overlayfs whiteout or opaque marker)");
            }
            const int parent = ::dirfd(stack.back().dir.get());
            unsigned char type = entry->d_type;
            if (type == DT_UNKNOWN) {
                type = type_of(parent, entry->d_name, rel);
            }
            // user.* xattrs exist only on regular files and directories, so
            // nothing else needs opening.
            if (type == DT_DIR) {
                int fd = ::openat(parent, entry->d_name,
                                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0) {
                    skip_vanished(errno, "open", rel);
                    continue;
                }
                UniqueFd dir(fd);
                if (mount_id(dir.get(), rel) != upper_mnt_id_) {
                    continue; // another mount: not part of this upper
                }
                check_xattrs(dir.get(), rel);
                if (stack.size() >= kMaxUpperDepth) {
                    throw Error(ErrorCode::UnsafePath, "instance " + std::string(instance_) +
                                                           ": upperdir " + printable(upper_path_) +
                                                           " is deeper than " +
                                                           std::to_string(kMaxUpperDepth) +
                                                           " levels at " + printable(rel));
                }
                stack.push_back(open_frame(dir.release(), rel));
            } else if (type == DT_REG) {
                // O_NONBLOCK|O_NOCTTY: if the file is swapped for a FIFO or a
                // whiteout device meanwhile, opening it has no effect.
                int fd = ::openat(parent, entry->d_name,
                                  O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd < 0) {
                    skip_vanished(errno, "open", rel);
                    continue;
                }
                UniqueFd file(fd);
                check_xattrs(file.get(), rel);
            }
        }
    }

  private:
    struct Frame {
        DirPtr dir;
        std::string rel;
    };

    Frame open_frame(int fd, const std::string& rel) {
        DIR* d = ::fdopendir(fd);
        if (d == nullptr) {
            int err = errno;
            ::close(fd);
            fail_errno("open directory", rel, err);
        }
        return Frame{DirPtr(d), rel};
    }

    static std::string join(const std::string& base, std::string_view name) {
        return base.empty() ? std::string(name) : base + "/" + std::string(name);
    }

    std::string where(const std::string& rel) const {
        return rel.empty() ? printable(upper_path_) : printable(upper_path_) + "/" + printable(rel);
    }

    [[noreturn]] void taint(const std::string& rel, const std::string& what) const {
        throw Error(ErrorCode::UpperdirTainted, "instance " + std::string(instance_) +
                                                    ": upperdir is tainted: " + where(rel) + " " +
                                                    what);
    }

    [[noreturn]] void fail_errno(const char* op, const std::string& rel, int err) const {
        throw_errno(ErrorCode::Failed,
                    "instance " + std::string(instance_) + ": taint scan: " + op + " " + where(rel),
                    err);
    }

    // An entry the owner removed or replaced by a symlink during the scan
    // cannot carry what we look for; anything else is a real failure.
    void skip_vanished(int err, const char* op, const std::string& rel) const {
        if (err != ENOENT && err != ELOOP && err != ENOTDIR && err != ENXIO && err != ENODEV) {
            fail_errno(op, rel, err);
        }
    }

    unsigned char type_of(int parent, const char* name, const std::string& rel) const {
        struct stat st {};
        if (::fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            skip_vanished(errno, "stat", rel);
            return DT_UNKNOWN;
        }
        if (S_ISDIR(st.st_mode)) {
            return DT_DIR;
        }
        return S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
    }

    std::uint64_t mount_id(int fd, const std::string& rel) const {
        struct statx stx {};
        if (::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &stx) != 0) {
            fail_errno("statx", rel, errno);
        }
        return stx.stx_mnt_id;
    }

    void check_xattrs(int fd, const std::string& rel) {
        ssize_t len = ::flistxattr(fd, names_.data(), names_.size());
        if (len < 0) {
            if (errno == ENOTSUP) {
                return; // a filesystem without xattrs cannot be tainted by them
            }
            fail_errno("list xattrs of", rel, errno);
        }
        std::string_view list(names_.data(), static_cast<std::size_t>(len));
        while (!list.empty()) {
            auto end = list.find('\0');
            auto xattr = list.substr(0, end);
            if (xattr.starts_with(kFuseXattrPrefix)) {
                taint(rel, "carries xattr " + printable(xattr) + " (left by fuse-overlayfs)");
            }
            if (end == std::string_view::npos) {
                break;
            }
            list.remove_prefix(end + 1);
        }
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
