#include "startup_warnings.hpp"

#include "error.hpp"
#include "host_layout.hpp"
#include "mount_point.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>

namespace overlay {

namespace {

bool has_option(std::string_view options, std::string_view name) {
    while (!options.empty()) {
        const auto comma = options.find(',');
        if (options.substr(0, comma) == name) {
            return true;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        options.remove_prefix(comma + 1);
    }
    return false;
}

std::string instances_mount_warning(const Config& config) {
    const std::string dir = "InstancesDir " + printable(config.instances_dir);
    const HostLayout layout(config);
    const auto entry = find_mount_by_id(mountinfo_id(layout.instances_fd(), config.instances_dir));
    if (!entry) {
        return dir + ": its mount is not in this namespace's mount table; cannot tell whether "
                     "it is nosuid,nodev";
    }
    std::string missing;
    for (const char* option : {"nosuid", "nodev"}) {
        if (!has_option(entry->mount_options, option)) {
            missing += missing.empty() ? option : std::string(",") + option;
        }
    }
    if (missing.empty()) {
        return {};
    }
    return dir + " is on the mount at " + printable(entry->mount_point) + " (" +
           printable(entry->fs_type) + "), mounted without " + missing +
           ": copy-up writes the lower layers' setuid files and device nodes into upper/ "
           "there, which the overlay's own options do not cover; mount it " +
           "nosuid,nodev (see the README)";
}

} // namespace

std::vector<std::string> startup_warnings(const Config& config) {
    std::vector<std::string> warnings;
    if (config.host_pid != 1) {
        warnings.push_back(
            "HostPid is " + std::to_string(config.host_pid) +
            ", not 1: mounts go to the mount namespace of whatever process has that pid when "
            "an executor starts (or the sudo drop-in runs); once it exits, the pid can be reused by a process of another "
            "namespace (one owned by another user namespace is refused, another root service's "
            "is not); use a pid that lives as long as the host");
    }
    try {
        if (auto warning = instances_mount_warning(config); !warning.empty()) {
            warnings.push_back(std::move(warning));
        }
    } catch (const Error& e) {
        warnings.push_back("cannot check the mount of InstancesDir: " + std::string(e.what()));
    }
    return warnings;
}

} // namespace overlay
