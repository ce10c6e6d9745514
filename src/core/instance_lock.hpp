// One operation per instance at a time, across the daemon's executors and
// the sudo drop-in: an flock on LockDir/NAME.lock, a file only root can open.
// (It used to be the instance directory itself, which any user who can read
// it can flock too, and so hold every operation off.)
#pragma once

#include "config.hpp"
#include "unique_fd.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace overlay {

class InstanceLock {
  public:
    static constexpr std::chrono::milliseconds kDefaultWait{10'000};

    // Opens (creating, mode 0600) the lock file of instance `name` in
    // config.lock_dir (lock_dir.hpp) and takes an exclusive flock, waiting
    // at most `wait` for the operation that holds it, then throws Busy. The
    // lock file must be a regular file owned by root with no group or other
    // permissions (UnsafePath otherwise: someone may already hold it open).
    // The name must already be valid. Held until destroyed.
    InstanceLock(const Config& config, std::string_view name,
                 std::chrono::milliseconds wait = kDefaultWait);

    const std::string& path() const { return path_; }

  private:
    std::string path_;
    UniqueFd fd_;
};

} // namespace overlay
