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

// Who other than root may change entries of the directory at `path`
// (its owner, its group, everyone), or empty. Missing: nothing to say.
std::string writers_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return {};
    }
    std::string who;
    if (st.st_uid != 0 && (st.st_mode & S_IWUSR)) {
        who = "uid " + std::to_string(st.st_uid) + " (its owner)";
    }
    if (st.st_gid != 0 && (st.st_mode & S_IWGRP)) {
        who += (who.empty() ? "" : ", ") + std::string("group ") + std::to_string(st.st_gid);
    }
    if (st.st_mode & S_IWOTH) {
        who += (who.empty() ? "" : ", ") + std::string("everyone") +
               ((st.st_mode & S_ISVTX) ? " (sticky)" : "");
    }
    return who;
}

void writable_warnings(const Config& config, std::vector<std::string>& warnings) {
    const std::string can =
        ": from a user and mount namespace of its own (unshare -Urm), where no mount of the "
        "host is a mount point, that user can rename or remove anything beneath it, a live "
        "instance overlay included (the overlay moves with its directory; removing its "
        "directory detaches it on the host, busy or not). The service still knows each overlay "
        "by its mount id, refuses a second one, and refuses an allowed root or InstancesDir "
        "that lies on a moved overlay; it notices, and signals, an overlay detached that way";
    if (auto who = writers_of(config.root); !who.empty()) {
        warnings.push_back("Root " + printable(config.root) + " is writable by " + who + can +
                           "; that user also decides what AllowedLowerRoots that do not exist "
                           "yet will hold");
    }
    if (auto who = writers_of(config.instances_dir); !who.empty()) {
        warnings.push_back("InstancesDir " + printable(config.instances_dir) + " is writable by " +
                           who + can);
    }
    for (const auto& root : config.allowed_lower_roots) {
        if (auto who = writers_of(root); !who.empty()) {
            warnings.push_back("allowed lower root " + printable(root) + " is writable by " + who +
                               ": that user chooses what every instance's lower layers "
                               "beneath it hold" +
                               can);
        }
    }
}

} // namespace

std::vector<std::string> startup_warnings(const Config& config) {
    std::vector<std::string> warnings;
    if (config.host_pid != 1) {
        warnings.push_back(
            "HostPid is " + std::to_string(config.host_pid) +
            ", not 1: mounts go to the mount namespace of whatever process has that pid when "
            "an executor starts (or the sudo drop-in runs); once it exits, the pid can be reused "
            "by a process of another "
            "namespace (one owned by another user namespace is refused, another root service's "
            "is not); use a pid that lives as long as the host");
    }
    writable_warnings(config, warnings);
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
