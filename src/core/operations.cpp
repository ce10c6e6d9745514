#include "operations.hpp"

#include "dir_stream.hpp"
#include "error.hpp"
#include "fs_open.hpp"
#include "host_layout.hpp"
#include "instance_dir.hpp"
#include "instance_env.hpp"
#include "instance_lock.hpp"
#include "instance_name.hpp"
#include "lower_layers.hpp"
#include "mount_table.hpp"
#include "overlay_claims.hpp"
#include "overlay_mount.hpp"
#include "same_mount.hpp"
#include "taint_scan.hpp"
#include "watched_overlays.hpp"
#include "working_directory.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <map>
#include <memory>
#include <optional>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay {

namespace {

std::string where(const std::vector<MountFacts>& overlays) {
    std::string out;
    for (const auto& m : overlays) {
        out += (out.empty() ? "" : ", ") + printable(m.mount_point);
    }
    return out;
}

// The instance directory, or nullopt when there is none but overlays of
// the instance still exist (its directory was renamed or removed while
// mounted): Unmount and status must still reach those.
std::optional<InstanceDir> open_instance(const HostLayout& layout, std::string_view name,
                                         MountTableKind kind) {
    try {
        return std::optional<InstanceDir>(std::in_place, layout, name);
    } catch (const Error& e) {
        if (e.code() != ErrorCode::NoSuchInstance ||
            known_overlays(layout.config(), kind, name).empty()) {
            throw;
        }
        return std::nullopt;
    }
}

// The mount to name for an instance: the one on its own merged when there
// is one there, else the first made.
const MountFacts& primary(const std::vector<MountFacts>& overlays, const std::string& merged) {
    for (const auto& m : overlays) {
        if (m.mount_point == merged) {
            return m;
        }
    }
    return overlays.front();
}

// Unmounts exactly the mount `target` (never lazily). The path is the one
// the kernel gives for the id now; the mount found there is checked to be
// that id before umount2, relative to its parent directory held open.
void unmount_one(MountTableKind kind, const MountFacts& target, std::string_view name) {
    const std::string who = instance_context(name);
    const auto now = mount_by_id(kind, target.id);
    if (!now || now->device != target.device) {
        return; // gone meanwhile: what Unmount wanted
    }
    const std::string& path = now->mount_point;
    const auto slash = path.rfind('/');
    if (path.empty() || path[0] != '/' || slash == std::string::npos || path == "/") {
        throw Error(ErrorCode::Failed, who + "its overlay is at " + printable(path) +
                                           ", which this namespace cannot reach; left alone");
    }
    const std::string parent_path = slash == 0 ? "/" : path.substr(0, slash);
    const std::string base = path.substr(slash + 1);
    const UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
        throw_errno(ErrorCode::Failed, who + "cannot open /", errno);
    }
    auto opened = open_beneath(root.get(), parent_path == "/" ? "." : parent_path.substr(1),
                               O_PATH | O_DIRECTORY);
    if (!opened.ok()) {
        throw Error(ErrorCode::Failed, who + "cannot reach its overlay at " + printable(path) +
                                           ": " + printable(parent_path) + " " +
                                           describe_open_failure(opened.error()));
    }
    const UniqueFd parent = opened.take();
    {
        // Closed before umount2: a descriptor on the mount would make it busy.
        const UniqueFd at(
            ::openat(parent.get(), base.c_str(), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
        if (!at || mount_root_id_of(kind, at.get(), path) != target.id) {
            throw Error(ErrorCode::Failed, who + "its overlay moved away from " + printable(path) +
                                               " while being unmounted; nothing unmounted, "
                                               "try again");
        }
    }
    WorkingDirectory saved_cwd;
    if (::fchdir(parent.get()) != 0) {
        throw_errno(ErrorCode::Failed, who + "cannot enter " + printable(parent_path), errno);
    }
    const int rc = ::umount2(base.c_str(), UMOUNT_NOFOLLOW);
    const int err = errno;
    saved_cwd.restore();
    const std::string what = who + "unmount " + printable(path);
    if (rc != 0) {
        if (err == EBUSY) {
            throw Error(ErrorCode::Busy, what + ": the overlay is in use (still mounted)");
        }
        if (err == EINVAL && !mount_by_id(kind, target.id)) {
            return; // detached meanwhile
        }
        throw_errno(ErrorCode::Failed, what, err);
    }
    if (auto still = mount_by_id(kind, target.id); still && still->device == target.device) {
        // Between the check and umount2 another mount was moved to that
        // name (only the owner's renames can do that): say so, loudly.
        throw Error(ErrorCode::Failed, what +
                                           ": a mount moved there in the meantime was "
                                           "unmounted instead; the overlay is still at " +
                                           printable(still->mount_point));
    }
}

} // namespace

void mount_instance(const Config& config, std::string_view name) {
    validate_instance_name(name);
    const HostLayout layout(config);
    const InstanceDir instance(layout, name);
    // Only once the instance is found, so that a name with no instance
    // leaves no lock file in /run. Everything else is opened under the
    // lock, from the instance dir's descriptor, which no rename redirects.
    const InstanceLock lock(config, name);
    const MountTableKind kind = mount_table_kind(config);

    const std::string env_path = instance.path_of("instance.env");
    const auto lowerdirs = parse_lowerdirs(instance.read_env(), config.lowerdirs_key, env_path);
    const auto lowers = open_lower_layers(layout, lowerdirs, name);
    const UniqueFd upper = instance.open_subdir("upper", O_RDONLY);
    const UniqueFd work = instance.open_subdir("work", O_RDONLY);
    const UniqueFd merged = instance.open_subdir("merged", O_PATH);
    const std::string merged_path = instance.path_of("merged");
    // Copy-up writes into upper with our credentials, and the kernel
    // trusts what work holds: both must be the instance's own directories,
    // not a filesystem someone mounted there.
    require_same_mount(instance.fd(), instance.path(), upper.get(), instance.path_of("upper"),
                       name);
    require_same_mount(instance.fd(), instance.path(), work.get(), instance.path_of("work"), name);

    if (auto id = mount_root_id_of(kind, merged.get(), merged_path)) {
        const auto on_merged = mount_by_id(kind, *id);
        throw Error(ErrorCode::AlreadyMounted,
                    instance_context(instance.name()) + printable(merged_path) + " already holds " +
                        (on_merged ? describe_mount(*on_merged) : std::string("a mount")));
    }
    // Its overlay may live elsewhere: the owner can rename merged (and the
    // overlay with it) from a mount namespace of its own, where it is no
    // mount point, and make a new merged.
    if (auto overlays = known_overlays(config, kind, name); !overlays.empty()) {
        throw Error(ErrorCode::AlreadyMounted, instance_context(instance.name()) +
                                                   "already mounted: its overlay is at " +
                                                   where(overlays));
    }
    check_upper_untainted(upper.get(), instance.path_of("upper"), name);

    struct stat upper_st {};
    struct stat work_st {};
    if (::fstat(upper.get(), &upper_st) != 0 || ::fstat(work.get(), &work_st) != 0) {
        throw_errno(ErrorCode::Failed, instance_context(name) + "stat upper/work", errno);
    }
    const OverlayClaims claims(config, kind);
    claims.require_free(upper_st, "upper", instance.path_of("upper"), name);
    claims.require_free(work_st, "work", instance.path_of("work"), name);
    mount_overlay(OverlayLayers{lowers, upper.get(), work.get(), merged.get()},
                  std::string(kSourcePrefix) + instance.name(), config, name, merged_path);
    // Exactly one exists now: none did before, and the instance lock keeps
    // every other Mount of it out. It is on merged unless the owner moved
    // it already; then the table is asked.
    std::optional<MountFacts> made;
    {
        const UniqueFd now = instance.open_subdir("merged", O_PATH);
        if (auto id = mount_root_id_of(kind, now.get(), merged_path)) {
            made = mount_by_id(kind, *id);
        }
    }
    if (!made || !instance_of(*made) || *instance_of(*made) != name) {
        made.reset();
        if (auto all = known_overlays(config, kind, name); !all.empty()) {
            made = all.front();
        }
    }
    if (made) {
        claims.claim(upper_st, name, *made);
        claims.claim(work_st, name, *made);
        record_instance_overlay(config, kind, name, *made);
    }
}

void unmount_instance(const Config& config, std::string_view name) {
    validate_instance_name(name);
    const HostLayout layout(config);
    const MountTableKind kind = mount_table_kind(config);
    const auto instance = open_instance(layout, name, kind);
    // Only once the instance (or an overlay of it) is found, so that a name
    // with neither leaves no lock file in /run.
    const InstanceLock lock(config, name);
    const std::string merged_path =
        instance ? instance->path_of("merged")
                 : config.instances_dir + "/" + std::string(name) + "/merged";
    auto overlays = known_overlays(config, kind, name);
    if (instance) {
        // What is on merged, in case nothing recorded it (an overlay
        // mounted by an older version, or by hand, while no watcher ran).
        const UniqueFd merged = instance->open_subdir("merged", O_PATH);
        if (auto id = mount_root_id_of(kind, merged.get(), merged_path)) {
            auto on = mount_by_id(kind, *id);
            const bool known = std::any_of(overlays.begin(), overlays.end(),
                                           [&](const MountFacts& m) { return m.id == *id; });
            if (on && !known && instance_of(*on) && *instance_of(*on) == name) {
                overlays.push_back(std::move(*on));
                std::sort(overlays.begin(), overlays.end(),
                          [](const MountFacts& a, const MountFacts& b) { return a.id < b.id; });
            }
        }
    }
    if (overlays.empty()) {
        if (instance) {
            const UniqueFd merged = instance->open_subdir("merged", O_PATH);
            if (auto id = mount_root_id_of(kind, merged.get(), merged_path)) {
                const auto entry = mount_by_id(kind, *id);
                throw Error(ErrorCode::NotMounted,
                            instance_context(name) + printable(merged_path) + " holds " +
                                (entry ? describe_mount(*entry) : std::string("a mount")) +
                                ", not an overlay of this instance; left alone");
            }
        }
        throw Error(ErrorCode::NotMounted,
                    instance_context(name) + "nothing is mounted on " + printable(merged_path));
    }
    // One superblock seen at several places is one overlay with bind mounts
    // (or copies propagated to another shared mount): those are someone
    // else's doing, and unmounting ours under them would leave the overlay
    // alive. Busy, naming them, before anything is unmounted.
    std::map<std::uint64_t, std::vector<MountFacts>> by_superblock;
    for (const auto& m : overlays) {
        by_superblock[m.device].push_back(m);
    }
    for (const auto& [device, mounts] : by_superblock) {
        if (mounts.size() > 1) {
            throw Error(ErrorCode::Busy,
                        instance_context(name) + "its overlay is mounted at " + where(mounts) +
                            " (bind mounts of one overlay); unmount all but one of them first");
        }
    }
    // The latest first: a mount stacked on another at the same place is
    // the one a path reaches.
    for (auto it = overlays.rbegin(); it != overlays.rend(); ++it) {
        unmount_one(kind, *it, name);
    }
    forget_instance_overlay(config, name);
}

InstanceStatus instance_status(const Config& config, std::string_view name) {
    validate_instance_name(name);
    const HostLayout layout(config);
    const MountTableKind kind = mount_table_kind(config);
    const auto instance = open_instance(layout, name, kind);
    InstanceStatus status;
    status.merged = instance ? instance->path_of("merged")
                             : config.instances_dir + "/" + std::string(name) + "/merged";
    if (instance) {
        status.lowerdirs = parse_lowerdirs(instance->read_env(), config.lowerdirs_key,
                                           instance->path_of("instance.env"));
    }
    // By id (what Mount recorded, what the watcher knows) where a watcher
    // shares what it knows; else the table is listed (watched_overlays.hpp).
    auto overlays = known_overlays(config, kind, name);
    if (overlays.empty() && instance) {
        // Mounted by an older version or by hand, not yet recorded.
        const UniqueFd merged = instance->open_subdir("merged", O_PATH);
        if (auto id = mount_root_id_of(kind, merged.get(), status.merged)) {
            if (auto on = mount_by_id(kind, *id);
                on && instance_of(*on) && *instance_of(*on) == name) {
                overlays.push_back(std::move(*on));
            }
        }
    }
    status.mounted = !overlays.empty();
    if (status.mounted) {
        status.merged = primary(overlays, status.merged).mount_point;
    }
    return status;
}

std::vector<std::pair<std::string, bool>> list_instances(const Config& config) {
    const HostLayout layout(config);
    int fd = ::openat(layout.instances_fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        throw_errno(ErrorCode::Failed, "cannot list " + printable(config.instances_dir), errno);
    }
    DirStream dir(::fdopendir(fd));
    if (!dir) {
        ::close(fd);
        throw_errno(ErrorCode::Failed, "cannot list " + printable(config.instances_dir), errno);
    }
    auto mounted = mounted_instance_names(config, mount_table_kind(config));
    std::vector<std::pair<std::string, bool>> out;
    while (dirent* entry = ::readdir(dir.get())) {
        std::string_view name = entry->d_name;
        if (!is_valid_instance_name(name)) {
            continue;
        }
        // The entry's type from readdir where the filesystem gives it: a
        // thousand instances are then listed without a thousand stats.
        if (entry->d_type != DT_DIR) {
            struct stat st {};
            if (entry->d_type != DT_UNKNOWN ||
                ::fstatat(::dirfd(dir.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
                !S_ISDIR(st.st_mode)) {
                continue;
            }
        }
        const auto it = mounted.find(std::string(name));
        out.emplace_back(std::string(name), it != mounted.end());
        if (it != mounted.end()) {
            mounted.erase(it);
        }
    }
    // Overlays whose directory is gone (renamed or removed while mounted)
    // are listed too: they can still be unmounted by name.
    for (const auto& name : mounted) {
        out.emplace_back(name, true);
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace overlay
