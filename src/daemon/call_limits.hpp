// How many calls may be pending at once: in total, per connection and per
// caller uid. Any local user may call the service, as often and as fast as
// they like; what they can make it hold (memory, polkit checks, queued
// work) is bounded here, and the excess is refused at once with
// org.freedesktop.DBus.Error.LimitsExceeded. A connection belongs to one
// uid, so its cap is the per-uid cap, checked before the uid is known; the
// uid's own cap is checked as soon as the bus daemon has told it. Root is
// held only to the total. Thread-safe: admit_call and release run on the
// bus thread, admit_uid on the authorizer's thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>

namespace overlay::daemon {

class CallLimits {
  public:
    CallLimits(unsigned max_total, unsigned max_per_user);

    // nullopt when admitted (then release(id) once), else why not.
    std::optional<std::string> admit_call(std::uint64_t id, const std::string& sender);
    std::optional<std::string> admit_uid(std::uint64_t id, uid_t uid);
    void release(std::uint64_t id);

    std::size_t pending() const;

  private:
    struct Held {
        std::string sender;
        std::optional<uid_t> uid;
    };
    const unsigned max_total_;
    const unsigned max_per_user_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, Held> calls_;
    std::map<std::string, unsigned> per_sender_;
    std::map<uid_t, unsigned> per_uid_;
};

} // namespace overlay::daemon
