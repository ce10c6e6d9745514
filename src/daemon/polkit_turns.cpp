#include "polkit_turns.hpp"

#include <algorithm>

namespace overlay::daemon {

PolkitTurns::PolkitTurns(unsigned total, unsigned per_uid)
    : total_(std::max(total, 1U)), per_uid_(std::clamp(per_uid, 1U, std::max(total, 1U))) {}

unsigned PolkitTurns::in_flight(uid_t uid) const {
    auto it = per_uid_in_flight_.find(uid);
    return it == per_uid_in_flight_.end() ? 0 : it->second;
}

bool PolkitTurns::may_take(uid_t uid) const {
    return in_flight_ < total_ && in_flight(uid) < per_uid_;
}

bool PolkitTurns::take_or_wait(uid_t uid, Id id) {
    // A uid with checks waiting is at its cap, or every slot is taken (a
    // slot that came free went to a waiting check at once): either way a
    // new check of it waits behind its own.
    if (!queues_.contains(uid) && may_take(uid)) {
        ++in_flight_;
        ++per_uid_in_flight_[uid];
        return true;
    }
    auto [it, added] = queues_.try_emplace(uid);
    if (added) {
        turn_.push_back(uid);
    }
    it->second.push_back(id);
    ++waiting_;
    return false;
}

void PolkitTurns::withdraw(uid_t uid, Id id) {
    auto it = queues_.find(uid);
    if (it == queues_.end()) {
        return;
    }
    auto& queue = it->second;
    auto pos = std::find(queue.begin(), queue.end(), id);
    if (pos == queue.end()) {
        return;
    }
    queue.erase(pos);
    --waiting_;
    if (queue.empty()) {
        queues_.erase(it);
        std::erase(turn_, uid);
    }
}

std::optional<PolkitTurns::Id> PolkitTurns::release(uid_t uid) {
    if (auto it = per_uid_in_flight_.find(uid); it != per_uid_in_flight_.end()) {
        if (--it->second == 0) {
            per_uid_in_flight_.erase(it);
        }
        --in_flight_;
    }
    // The first uid in turn that may take the slot (one at its cap is
    // passed over and keeps its place); it goes to the back of the turn.
    for (auto at = turn_.begin(); at != turn_.end(); ++at) {
        const uid_t next = *at;
        if (!may_take(next)) {
            continue;
        }
        turn_.erase(at);
        auto queue = queues_.find(next);
        const Id id = queue->second.front();
        queue->second.pop_front();
        --waiting_;
        if (queue->second.empty()) {
            queues_.erase(queue);
        } else {
            turn_.push_back(next);
        }
        ++in_flight_;
        ++per_uid_in_flight_[next];
        return id;
    }
    return std::nullopt;
}

} // namespace overlay::daemon
