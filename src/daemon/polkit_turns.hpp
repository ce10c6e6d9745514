// Who may ask polkit next. At most `total` checks are in polkit at once and
// at most `per_uid` of one uid, so a user whose checks polkit holds open
// (an authentication agent that never answers) holds only their own share.
// Checks that find no slot wait by uid; when a slot comes free the uids
// waiting for one are served in turn (round-robin, each uid's own checks
// in order), never first come first served: a user who queued many checks
// does not make the next user wait behind all of them.
// Not thread-safe: used on the authorizer's thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <sys/types.h>

namespace overlay::daemon {

class PolkitTurns {
  public:
    using Id = std::uint64_t;

    // Both at least 1; per_uid above total counts as total.
    PolkitTurns(unsigned total, unsigned per_uid);

    // A check of uid wants a slot: true when it took one now (then
    // release(uid) once when it leaves polkit), false when it waits (then
    // it is handed a slot by a later release(), or withdraw()n).
    bool take_or_wait(uid_t uid, Id id);
    // A waiting check gives up (cancelled); nothing when it is not waiting.
    void withdraw(uid_t uid, Id id);
    // A check of uid left polkit: the check that takes its slot, if any
    // waits for one (it holds the slot now: release it in turn).
    std::optional<Id> release(uid_t uid);

    unsigned in_flight() const noexcept { return in_flight_; }
    unsigned in_flight(uid_t uid) const;
    std::size_t waiting() const noexcept { return waiting_; }

  private:
    bool may_take(uid_t uid) const;

    const unsigned total_;
    const unsigned per_uid_;
    unsigned in_flight_ = 0;
    std::size_t waiting_ = 0;
    std::map<uid_t, unsigned> per_uid_in_flight_;
    std::map<uid_t, std::deque<Id>> queues_; // uids with checks waiting
    std::deque<uid_t> turn_;                 // those uids, next to be served first
};

} // namespace overlay::daemon
