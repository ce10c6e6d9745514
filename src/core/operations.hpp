// The four things the core does for one instance. Each call opens every
// path afresh by descriptor beneath the configured roots; nothing is cached
// between calls. The caller must already be in the host mount namespace
// (host_namespace.hpp) and single-threaded while it mounts.
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

// Throws Error on every refusal; on success the overlay is mounted on
// InstancesDir/NAME/merged with source "left4me:NAME".
void mount_instance(const Config& config, std::string_view name);

// Unmounts the overlay on that instance's merged; never lazily.
void unmount_instance(const Config& config, std::string_view name);

// Mounted state comes from the mount table of the current namespace.
InstanceStatus instance_status(const Config& config, std::string_view name);

// (name, mounted) for each directory under InstancesDir with a valid name, sorted.
std::vector<std::pair<std::string, bool>> list_instances(const Config& config);

} // namespace overlay
