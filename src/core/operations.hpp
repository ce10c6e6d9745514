// Mount, unmount and status of one instance, and the list of all: what the
// drop-in and the executors run for every request but Migrate
// (migrate.hpp). Each call opens every path afresh by descriptor beneath
// the configured roots; nothing is cached between calls. The caller must already be in the host
// mount namespace (host_namespace.hpp) and single-threaded while it mounts.
#pragma once

#include "config.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace overlay {

struct InstanceStatus {
    bool mounted = false;
    std::string merged;                 // absolute path of the mount point
    std::vector<std::string> lowerdirs; // from instance.env, top first
};

// An instance's overlays are the overlay mounts of the current namespace
// whose source is "left4me:NAME", wherever they are now (mount_table.hpp).

// Throws Error on every refusal; on success the overlay is mounted on
// InstancesDir/NAME/merged with source "left4me:NAME". Refuses
// (AlreadyMounted) while any overlay of the instance exists anywhere, and
// (Busy) an upper or work a live overlay uses (overlay_claims.hpp).
void mount_instance(const Config& config, std::string_view name);

// Unmounts every overlay of the instance, each by its mount id, never
// lazily; Busy, before unmounting anything, when one overlay is mounted at
// several places (bind mounts). Works for an instance whose directory is
// gone while an overlay of it exists.
void unmount_instance(const Config& config, std::string_view name);

// Mounted while any overlay of the instance exists; merged is then where
// it is (the one on InstancesDir/NAME/merged when there is one there).
InstanceStatus instance_status(const Config& config, std::string_view name);

// (name, mounted) for each directory under InstancesDir with a valid name,
// and each instance with an overlay but no directory any more, sorted.
std::vector<std::pair<std::string, bool>> list_instances(const Config& config);

} // namespace overlay
