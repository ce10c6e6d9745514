#include "operations.hpp"

#include "dir_stream.hpp"
#include "working_directory.hpp"

#include "error.hpp"
#include "host_layout.hpp"
#include "instance_dir.hpp"
#include "instance_env.hpp"
#include "instance_lock.hpp"
#include "instance_name.hpp"
#include "lower_layers.hpp"
#include "mount_point.hpp"
#include "mounted_instances.hpp"
#include "mountinfo.hpp"
#include "overlay_mount.hpp"
#include "same_mount.hpp"
#include "taint_scan.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay {

namespace {

std::string describe_mount(const std::optional<MountEntry>& entry) {
    if (!entry) {
        return "a mount";
    }
    return "a mount (type " + printable(entry->fs_type) + ", source " + printable(entry->source) +
           ")";
}

bool is_overlay_at(const std::vector<MountEntry>& mounts, const std::string& path) {
    const MountEntry* entry = find_mount_at(mounts, path);
    return entry != nullptr && entry->fs_type == "overlay";
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

    if (auto id = mount_root_id(merged.get())) {
        throw Error(ErrorCode::AlreadyMounted, instance_context(instance.name()) + printable(merged_path) + " already holds " +
                                                   describe_mount(find_mount_by_id(*id)));
    }
    check_upper_untainted(upper.get(), instance.path_of("upper"), name);
    mount_overlay(OverlayLayers{lowers, upper.get(), work.get(), merged.get()},
                  "left4me:" + instance.name(), config, name, merged_path);
}

void unmount_instance(const Config& config, std::string_view name) {
    validate_instance_name(name);
    const HostLayout layout(config);
    const InstanceDir instance(layout, name);
    // Only once the instance is found, so that a name with no instance
    // leaves no lock file in /run. Everything else is opened under the
    // lock, from the instance dir's descriptor, which no rename redirects.
    const InstanceLock lock(config, name);
    const std::string merged_path = instance.path_of("merged");
    {
        // Closed before umount2: an open descriptor on the mount's root
        // would itself make the mount busy.
        const UniqueFd merged = instance.open_subdir("merged", O_PATH);
        auto id = mount_root_id(merged.get());
        if (!id) {
            throw Error(ErrorCode::NotMounted, instance_context(instance.name()) +
                                                   "nothing is mounted on " +
                                                   printable(merged_path));
        }
        auto entry = find_mount_by_id(*id);
        if (!entry || entry->fs_type != "overlay") {
            throw Error(ErrorCode::NotMounted,
                        instance_context(instance.name()) + printable(merged_path) + " holds " +
                            describe_mount(entry) + ", not an overlay; left alone");
        }
    }
    // A mount point cannot be renamed or removed, so "merged" relative to the
    // verified instance directory is still the overlay checked above.
    WorkingDirectory saved_cwd;
    if (::fchdir(instance.fd()) != 0) {
        throw_errno(ErrorCode::Failed,
                    instance_context(instance.name()) + "cannot enter " + printable(instance.path()),
                    errno);
    }
    int rc = ::umount2("merged", UMOUNT_NOFOLLOW);
    int err = errno;
    saved_cwd.restore();
    if (rc == 0) {
        return;
    }
    const std::string what = instance_context(instance.name()) + "unmount " + printable(merged_path);
    if (err == EBUSY) {
        throw Error(ErrorCode::Busy, what + ": the overlay is in use (still mounted)");
    }
    if (err == EINVAL) {
        throw Error(ErrorCode::NotMounted, what + ": not a mount point any more");
    }
    throw_errno(ErrorCode::Failed, what, err);
}

InstanceStatus instance_status(const Config& config, std::string_view name) {
    validate_instance_name(name);
    const HostLayout layout(config);
    const InstanceDir instance(layout, name);
    InstanceStatus status;
    status.merged = instance.path_of("merged");
    status.lowerdirs = parse_lowerdirs(instance.read_env(), config.lowerdirs_key,
                                       instance.path_of("instance.env"));
    status.mounted = is_overlay_at(read_mountinfo(::getpid()), status.merged);
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
    const auto mounted = mounted_instances(config, read_mountinfo(::getpid()));
    std::vector<std::pair<std::string, bool>> out;
    while (dirent* entry = ::readdir(dir.get())) {
        std::string_view name = entry->d_name;
        if (!is_valid_instance_name(name)) {
            continue;
        }
        struct stat st {};
        if (::fstatat(::dirfd(dir.get()), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISDIR(st.st_mode)) {
            continue;
        }
        out.emplace_back(std::string(name), mounted.contains(std::string(name)));
    }
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace overlay
