// Which live overlay uses which upper and work directory. overlayfs itself
// only warns (in the kernel log) when a second overlay is mounted on an
// upper or work directory another one uses, and the owner of an instance
// can move those directories around (rename an instance directory, move
// upper/ into another instance) while its overlay is live. So each Mount
// records, in the root-only LockDir, the directories' identities (device
// and inode) with the unique id of the overlay that uses them, and refuses
// a directory whose recorded overlay is still mounted. A record whose
// overlay is gone (unmounted, detached by a removal elsewhere, lost at a
// reboot with /run) is stale and replaced. Check and record are made under
// one lock shared by every Mount (held for the mount itself, about a
// millisecond), so two instances cannot both take the same directory.
#pragma once

#include "config.hpp"
#include "mount_table.hpp"
#include "unique_fd.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>

namespace overlay {

class OverlayClaims {
  public:
    // Takes the claims lock (LockDir/.claims.lock; root's, mode 0600).
    OverlayClaims(const Config& config, MountTableKind kind);

    // Throws Busy ("instance NAME: upper PATH is in use by the live overlay
    // of instance OTHER at WHERE ...") when a live overlay has the
    // directory `st` as upper or work.
    void require_free(const struct stat& st, std::string_view role, std::string_view path,
                      std::string_view instance) const;

    // Records that `overlay` (just mounted for `instance`) uses `st`.
    void claim(const struct stat& st, std::string_view instance, const MountFacts& overlay) const;

  private:
    MountTableKind kind_;
    std::string dir_path_;
    UniqueFd dir_;
    UniqueFd lock_;
};

// The overlay the service made for an instance, kept beside its lock
// (LockDir/NAME.mounts: its unique mount id and superblock) so that status
// finds it by id wherever it was moved without listing the mount table.
// Written by Mount under the instance lock, removed by Unmount.
void record_instance_overlay(const Config& config, MountTableKind kind, std::string_view name,
                             const MountFacts& overlay);
void forget_instance_overlay(const Config& config, std::string_view name);
// That overlay if it is still mounted (anywhere in the namespace).
std::optional<MountFacts> recorded_instance_overlay(const Config& config, MountTableKind kind,
                                                    std::string_view name);

} // namespace overlay
