// The watching executor's knowledge of every instance overlay in the host
// namespace (binds and overlays made outside the service included), shared
// with the other executors and the drop-in through the root-only LockDir:
// LockDir/NAME.seen lists the unique ids the watcher knows for NAME, and
// LockDir/.watcher names the watcher (pid and start time) while it keeps
// them. With a live watcher an operation asks the kernel about those ids
// (and the one Mount recorded in NAME.mounts) instead of listing the whole
// mount table; without one (the drop-in alone, the mountinfo table) it
// lists the table.
#pragma once

#include "config.hpp"
#include "mount_table.hpp"
#include "unique_fd.hpp"

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace overlay {

// The writer: one per watching executor.
class WatchedOverlays {
  public:
    // Opens LockDir and removes what an earlier watcher left there.
    explicit WatchedOverlays(const Config& config);
    // Replaces NAME.seen with `mounts` (removes it when empty).
    void publish(std::string_view name, const std::vector<MountFacts>& mounts) const;
    // From now on readers may trust the .seen files: call after the first
    // complete publish.
    void announce() const;

  private:
    std::string dir_path_;
    UniqueFd dir_;
};

// Whether LockDir/.watcher names a live process with the start time it
// wrote.
bool watcher_publishes(const Config& config);

// Every overlay of the instance the kernel still has: by id from
// NAME.mounts and (with a live watcher) NAME.seen, else by listing the
// table. `listed` says which.
std::vector<MountFacts> known_overlays(const Config& config, MountTableKind kind,
                                       std::string_view name, bool* listed = nullptr);

// Every instance with an overlay, by name: from the .seen and .mounts files
// with a live watcher (each checked by id), else by listing the table.
std::set<std::string> mounted_instance_names(const Config& config, MountTableKind kind);

} // namespace overlay
