// migrate's reading of a fuse-overlayfs-era upper: its xattrs and
// directories (by descriptor, no symlink followed), fuse-overlayfs'
// opacity and override_stat, who owns the upper, and how its errors read.
#pragma once

#include "error.hpp"
#include "migrate.hpp"
#include "unique_fd.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <vector>

namespace overlay::migration {

std::string join(const std::string& base, std::string_view name);
// "3 entries", "1 entry".
std::string count(std::size_t n, const char* one, const char* many);
// The first five of `items` joined by `sep`, then, if there are more,
// `before_more` and "N more": one line however many there are.
std::string first_few(const std::vector<std::string>& items, std::string_view sep,
                      std::string_view before_more);

bool is_whiteout_dev(const struct stat& st);

// A file's xattr, read through its descriptor: directories are held open
// O_RDONLY; anything else O_PATH, reached through /proc/self/fd (the
// descriptor's own file: no name is looked up again).
std::optional<std::string> get_xattr(int fd, bool is_dir, const char* name);
// The names of its xattrs, likewise.
std::vector<std::string> list_xattrs(int fd, bool is_dir);
bool has_name(const std::vector<std::string>& names, std::string_view name);

// fuse-overlayfs' opacity of a directory held open O_RDONLY.
bool fuse_opaque(int dirfd);

UniqueFd open_dir_at(int parent, const std::string& name);

// Name -> type of every entry but . and .., read from a description of
// its own (the caller's offset stays where it was).
std::map<std::string, unsigned char> list_dir(int dirfd);

// One layer's directory of a path: 0 the upper, 1.. the lowers.
struct LayerDir {
    std::size_t layer;
    UniqueFd fd;
};

// migrate's errors, each naming the instance and the upper's path.
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

    static UpperOwner of(const struct stat& upper_st);
    bool in_group(gid_t gid) const;
};

// "uid:gid:octal-mode", fuse-overlayfs' override_stat.
struct OverrideStat {
    uid_t uid;
    gid_t gid;
    mode_t mode;
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
// the xattr and runs again. With SetIdBits::Refuse (the service), an
// applied override (security.* or user.*) whose conversion needs a chmod
// carrying S_ISUID or S_ISGID is refused too: the unit's RestrictSUIDSGID
// would fail that chmod part way; the root drop-in converts it.
OverrideDecision read_override(int fd, bool is_dir, const Refuser& r, const std::string& rel,
                               const std::vector<std::string>& names, const UpperOwner& owner,
                               SetIdBits setid);

// Sets kMigrationMarkerXattr on the upper's root.
void set_marker(int upper_fd, std::string_view value, const Refuser& r);

} // namespace overlay::migration
