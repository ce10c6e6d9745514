#include "migrate_convert.hpp"

#include "fs_open.hpp"
#include "fuse_format.hpp"
#include "taint_scan.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <utility>

namespace overlay::migration {

namespace {

class Converter {
  public:
    Converter(bool dry_run, std::size_t stop_after, MigrationReport& report, const Refuser& r,
              const InstanceDir& instance, MountIdentity upper_mount, const UpperOwner& owner,
              SetIdBits setid, const MigrationLineSink& sink)
        : dry_(dry_run), stop_after_(stop_after), report_(report), r_(r), instance_(instance),
          upper_mount_(upper_mount), owner_(owner), setid_(setid), sink_(sink) {
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
            auto trusted = get_xattr(dfd, true, fuse_format::kTrustedOpaque);
            if (!trusted || *trusted != "y") {
                change(report_.totals.opaque_set,
                       "set-opaque " + shown(rel) + " (trusted.overlay.opaque=y)", [&] {
                           if (::fsetxattr(dfd, fuse_format::kTrustedOpaque, "y", 1, 0) != 0) {
                               r_.fail_errno("set trusted.overlay.opaque on", rel, errno);
                           }
                       });
            }
        }
        if (auto it = entries.find(std::string(fuse_format::kOpaqueMarker)); it != entries.end()) {
            remove_fuse_entry(dfd, rel, it->first, it->second, report_.totals.markers_removed,
                              "remove-marker");
            entries.erase(it);
        }
        if (auto it = entries.find(std::string(fuse_format::kOpaqueWhiteout));
            it != entries.end()) {
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
            if (name.starts_with(fuse_format::kWhiteoutPrefix)) {
                wh.push_back(name);
            }
        }
        for (const auto& name : wh) {
            const unsigned char wh_type = entries.at(name);
            entries.erase(name);
            const std::string x = name.substr(fuse_format::kWhiteoutPrefix.size());
            if (x.empty() || x.starts_with(fuse_format::kWhiteoutPrefix)) {
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
        if (stop_after_ != 0 && ++done_ >= stop_after_) {
            throw Error(ErrorCode::Failed, r_.prefix() + "stopped after " + std::to_string(done_) +
                                               " changes (test hook)");
        }
    }

    // Is `x` visible in the lower directories by fuse-overlayfs' rules?
    static bool visible_below(const std::string& x, const std::vector<LayerDir>& lowers) {
        const std::string wh = std::string(fuse_format::kWhiteoutPrefix) + x;
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
        const std::string wh = std::string(fuse_format::kWhiteoutPrefix) + name;
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
        const OverrideDecision d = read_override(fd, is_dir, r_, rel, names, owner_, setid_);
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
                                           : ::chmod(proc_fd_path(fd).c_str(), o->mode);
                           if (rc != 0) {
                               r_.fail_errno("chmod", rel, errno);
                           }
                       });
            }
        }
        for (const auto& name : names) {
            const bool fuse = name.starts_with(fuse_format::kXattrPrefix) ||
                              name.starts_with(fuse_format::kUserOverlayXattrPrefix) ||
                              std::find(fuse_format::kOverrideStatXattrs.begin(),
                                        fuse_format::kOverrideStatXattrs.end(),
                                        name) != fuse_format::kOverrideStatXattrs.end();
            if (!fuse || (rel.empty() && name == kMigrationMarkerXattr)) {
                continue;
            }
            change(report_.totals.xattrs_removed,
                   "remove-xattr " + shown(rel) + " " + printable(name), [&] {
                       int rc = is_dir ? ::fremovexattr(fd, name.c_str())
                                       : ::removexattr(proc_fd_path(fd).c_str(), name.c_str());
                       if (rc != 0 && errno != ENODATA) {
                           r_.fail_errno("remove xattr from", rel, errno);
                       }
                   });
        }
    }

    bool dry_;
    std::size_t stop_after_;
    MigrationReport& report_;
    const Refuser& r_;
    const InstanceDir& instance_;
    MountIdentity upper_mount_;
    const UpperOwner& owner_;
    SetIdBits setid_;
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

} // namespace

std::vector<std::string> convert_upper(int upper_fd, std::vector<LayerDir> lowers, bool dry_run,
                                       std::size_t stop_after, MigrationReport& report,
                                       const Refuser& r, const InstanceDir& instance,
                                       MountIdentity upper_mount, const UpperOwner& owner,
                                       SetIdBits setid, const MigrationLineSink& on_change) {
    Converter converter(dry_run, stop_after, report, r, instance, upper_mount, owner, setid,
                        on_change);
    converter.convert_dir(upper_fd, "", std::move(lowers), 0);
    return converter.foreign();
}

} // namespace overlay::migration
