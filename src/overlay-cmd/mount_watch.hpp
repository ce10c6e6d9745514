// The watching executor's view of the host mount table: which instances
// are mounted, and what changed since it last looked. The kernel marks an
// open /proc/self/mountinfo with POLLPRI (and POLLERR) after any change to
// the namespace's mounts; poll() clears the mark, so each wake-up is one
// fresh read of the table.
#pragma once

#include "config.hpp"
#include "executor_protocol.hpp"
#include "unique_fd.hpp"

#include <cstdint>
#include <map>
#include <string>

namespace overlay::cmd {

class MountWatch {
  public:
    // Opens the current namespace's mountinfo and reads the table once.
    explicit MountWatch(const Config& config);

    int fd() const noexcept { return fd_.get(); }

    // Whether the table changed since the kernel last said so (a poll()
    // that does not wait; it clears the mark, so follow it with changes()).
    bool marked() const;

    // Every instance mounted now (as last read).
    protocol::MountReport snapshot() const;

    // Reads the table again; the instances whose state differs from the
    // last read (possibly none: the change was elsewhere). An instance
    // unmounted and mounted again in between (a new mount id) is reported
    // twice, unmounted then mounted: each change is one entry.
    protocol::MountReport changes(const Config& config);

  private:
    UniqueFd fd_;
    std::map<std::string, std::uint64_t> mounted_;
};

} // namespace overlay::cmd
