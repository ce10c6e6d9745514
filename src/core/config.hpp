// /etc/left4me/overlay.conf: the host layout and mount policy (README,
// "Host layout and configuration").
#pragma once

#include "config_path.hpp"
#include "daemon_settings.hpp"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace overlay {

inline constexpr const char* kDefaultLockDir = "/run/left4me-overlay/locks";
// Root's default. InstancesDir and AllowedLowerRoots default to these
// folders of Root, wherever Root is (default_config, parse_config).
inline constexpr std::string_view kDefaultRoot = "/var/lib/left4me";
inline constexpr std::string_view kDefaultInstancesFolder = "instances";
inline constexpr std::array<std::string_view, 4> kDefaultLowerRootFolders = {
    "installation", "overlays", "global_overlay_cache", "workshop_cache"};

// Which kernel interface makes the overlay (overlay_mount.hpp). Auto picks the
// newest the running kernel has; the others force one path, for tests.
enum class MountApi { Auto, LayerFds, LowerdirStrings, Legacy };

// How the host's mount table is read (mount_table.hpp): Auto picks
// statmount/listmount with unique mount ids where the kernel has them
// (Linux 6.8, the mount source 6.13), else /proc/self/mountinfo. The others
// force one, for tests.
enum class MountTableApi { Auto, Statmount, Mountinfo };

// How the watching executor learns of mount changes (mount_watch.hpp): Auto
// picks fanotify mount-namespace events where the kernel has them (Linux
// 6.15), else POLLPRI on /proc/self/mountinfo. The others force one.
enum class MountWatchApi { Auto, Fanotify, Poll };

// The file's keys; the daemon's own (Executors, MaxPendingCalls, ...) are
// those of DaemonSettings, passed on to it by its executor.
struct Config : DaemonSettings {
    // All paths absolute and normalized; relative entries of the file are
    // already joined onto root.
    // Defaults: kDefaultRoot and its folders, filled in by default_config().
    std::string root{kDefaultRoot};
    std::string instances_dir;
    std::vector<std::string> allowed_lower_roots;
    std::string lowerdirs_key = "L4D2_LOWERDIRS";
    pid_t host_pid = 1;
    // MountOptions, as given (for messages) and as MOUNT_ATTR_* / MS_* bits.
    // MOUNT_ATTR_RELATIME is 0, so "relatime" shows only in legacy_mount_flags;
    // set MOUNT_ATTR__ATIME in attr_clr when applying an atime mode.
    std::string mount_options = "nosuid,nodev";
    std::uint64_t mount_attr_flags = 0;   // MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV by default
    unsigned long legacy_mount_flags = 0; // MS_NOSUID | MS_NODEV by default
    MountApi mount_api = MountApi::Auto;
    MountTableApi mount_table = MountTableApi::Auto;
    MountWatchApi mount_watch = MountWatchApi::Auto;
    // Where the per-instance lock files live (instance_lock.hpp). Resolved,
    // like every path, in the host mount namespace, which the drop-in and
    // the daemon's executors both enter first: so they share it.
    std::string lock_dir = kDefaultLockDir;
};

// The built-in defaults (the folders of Root and the flags filled in).
Config default_config();

// Parses the text of a config file. file_name only labels errors, which are
// Error(BadConfig, "FILE:LINE: reason"). Keys: Root, InstancesDir,
// AllowedLowerRoots, LowerdirsKey, HostPid, MountOptions, MountApi, MountTable,
// MountWatch, LockDir, and
// the daemon's Executors, MaxPendingCalls, MaxPendingCallsPerUser,
// MaxConcurrentAuthorizations, MaxConcurrentAuthorizationsPerUser,
// OperationTimeoutSec, MigrateExecutors, MigrateTimeoutSec.
// Lines are KEY=VALUE with blanks around key and value trimmed; '#' starts a
// comment only as the first non-blank character; no quoting; '\r' and NUL
// are refused. Unknown keys (case matters), duplicate keys and bad values
// are errors. Paths: normalized, no ',' or ':'; Root absolute; InstancesDir
// and the space-separated AllowedLowerRoots absolute or relative to Root
// wherever Root stands in the file; neither may be "/". Relative defaults
// follow a changed Root (Root=/srv/x gives InstancesDir /srv/x/instances).
// HostPid: decimal 1..4194304. MountOptions: comma-separated subset of
// nosuid,nodev,noexec,noatime,nodiratime,relatime,strictatime, at most one
// of the atime modes, each at most once; empty means none. MountApi:
// auto|fd|string|legacy. MountTable: auto|statmount|mountinfo. MountWatch:
// auto|fanotify|poll. LockDir: absolute (never relative to Root, whose
// contents a user owns), normalized, not "/".
Config parse_config(std::string_view text, std::string_view file_name);

// Reads and parses a config file (opened O_NOFOLLOW: a symlink is refused;
// at most 64 KiB). A missing file gives the defaults only when path is the
// default path; an explicit path must exist. The file must
// be a regular file owned by root and not writable by group or others: the
// drop-in runs under sudo, and a config chosen by the caller would otherwise
// choose what gets mounted.
Config load_config(const std::string& path);

// The same, for the file `name` in the directory `dirfd` (a persistent
// executor keeps the config's directory open from before it entered the
// host namespace, so the file it re-reads is the one it was started with).
// `path` labels errors and decides whether a missing file means defaults.
Config load_config_at(int dirfd, const std::string& name, const std::string& path);

} // namespace overlay
