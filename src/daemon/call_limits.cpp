#include "call_limits.hpp"

namespace overlay::daemon {

CallLimits::CallLimits(unsigned max_total, unsigned max_per_user)
    : max_total_(max_total), max_per_user_(max_per_user) {}

std::optional<std::string> CallLimits::refuse_named(uid_t uid) const {
    if (counted_ >= max_total_) {
        return "the service has " + std::to_string(counted_) +
               " calls pending, its limit (MaxPendingCalls)";
    }
    if (uid != 0) {
        auto it = per_uid_.find(uid);
        const unsigned n = it == per_uid_.end() ? 0 : it->second;
        if (n >= max_per_user_) {
            return "uid " + std::to_string(uid) + " has " + std::to_string(n) +
                   " calls pending, the limit per user (MaxPendingCallsPerUser)";
        }
    }
    return std::nullopt;
}

void CallLimits::charge(Held& held, uid_t uid) {
    held.state = State::Counted;
    held.uid = uid;
    ++per_uid_[uid];
    ++counted_;
}

void CallLimits::unname(const Held& held) {
    if (auto it = unnamed_by_connection_.find(held.sender);
        it != unnamed_by_connection_.end() && --it->second == 0) {
        unnamed_by_connection_.erase(it);
    }
    --unnamed_;
}

std::optional<std::string> CallLimits::admit_call(std::uint64_t id, const std::string& sender,
                                                  std::optional<uid_t> known_uid) {
    std::lock_guard lock(mutex_);
    if (known_uid) {
        if (auto refused = refuse_named(*known_uid)) {
            return refused;
        }
        Held held;
        charge(held, *known_uid);
        calls_.emplace(id, std::move(held));
        return std::nullopt;
    }
    auto it = unnamed_by_connection_.find(sender);
    const unsigned waiting = it == unnamed_by_connection_.end() ? 0 : it->second;
    if (waiting >= kUnnamedPerConnection) {
        return "connection " + sender + " has " + std::to_string(waiting) +
               " calls waiting for the bus to name their caller";
    }
    if (unnamed_ >= max_total_) {
        return std::to_string(unnamed_) +
               " calls are waiting for the bus to name their callers, the limit "
               "(MaxPendingCalls)";
    }
    ++unnamed_by_connection_[sender];
    ++unnamed_;
    calls_.emplace(id, Held{sender});
    return std::nullopt;
}

std::optional<std::string> CallLimits::admit_uid(std::uint64_t id, uid_t uid) {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second.state != State::Unnamed) {
        return std::nullopt; // counted when it arrived: its connection was known
    }
    Held& held = it->second;
    unname(held);
    if (auto refused = refuse_named(uid)) {
        held.state = State::Refused; // still held until release()
        return refused;
    }
    charge(held, uid);
    return std::nullopt;
}

void CallLimits::release(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return;
    }
    const Held& held = it->second;
    switch (held.state) {
    case State::Unnamed:
        unname(held);
        break;
    case State::Counted:
        if (auto u = per_uid_.find(held.uid); u != per_uid_.end() && --u->second == 0) {
            per_uid_.erase(u);
        }
        --counted_;
        break;
    case State::Refused:
        break;
    }
    calls_.erase(it);
}

std::size_t CallLimits::pending() const {
    std::lock_guard lock(mutex_);
    return calls_.size();
}

} // namespace overlay::daemon
