#include "mounted_instances.hpp"

#include "instance_name.hpp"

#include <map>
#include <string_view>

namespace overlay {

std::map<std::string, std::uint64_t> mounted_instances(const Config& config,
                                                       const std::vector<MountEntry>& mounts) {
    const std::string prefix = config.instances_dir + "/";
    constexpr std::string_view kSuffix = "/merged";
    // Later entries stack on earlier ones: the last at a path is visible.
    std::map<std::string_view, const MountEntry*> top;
    for (const auto& m : mounts) {
        const std::string_view point = m.mount_point;
        if (point.size() <= prefix.size() + kSuffix.size() || !point.starts_with(prefix) ||
            !point.ends_with(kSuffix)) {
            continue;
        }
        top[point] = &m;
    }
    std::map<std::string, std::uint64_t> out;
    for (const auto& [point, entry] : top) {
        const auto name =
            point.substr(prefix.size(), point.size() - prefix.size() - kSuffix.size());
        if (entry->fs_type == "overlay" && is_valid_instance_name(name)) {
            out.emplace(name, entry->mount_id);
        }
    }
    return out;
}

} // namespace overlay
