// /proc/PID/mountinfo of the host mount namespace: the only source of truth
// for "is it mounted" (never the daemon's memory).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace overlay {

struct MountEntry {
    std::uint64_t mount_id = 0;
    std::uint64_t parent_id = 0;
    std::uint64_t device = 0; // field 3, the superblock's major:minor (makedev)
    std::string root;         // field 4, unescaped
    std::string mount_point;  // field 5, unescaped (\040 -> ' ', etc.)
    std::string mount_options;
    std::string fs_type;
    std::string source; // unescaped
    std::string super_options;
};

// Parses the whole text; malformed lines are Error(Failed, "mountinfo:LINE:
// reason"). Exactly three fields must follow the " - " separator; \ooo
// escapes are decoded in root, mount point and source, and any other
// backslash is malformed. Empty lines are skipped.
std::vector<MountEntry> parse_mountinfo(std::string_view text);

// Reads /proc/PID/mountinfo (which shows mount points relative to that
// process's root) to its end and parses it; Error(Failed) beyond 64 MiB.
std::vector<MountEntry> read_mountinfo(pid_t pid);

// The topmost mount whose mount point is exactly `path` (the last one in
// the table wins: it is the one visible there), or nullptr.
const MountEntry* find_mount_at(const std::vector<MountEntry>& mounts, std::string_view path);

} // namespace overlay
