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

void CallLimits::drop_if_idle(const std::string& sender) {
    auto it = connections_.find(sender);
    if (it != connections_.end() && it->second.pending == 0) {
        connections_.erase(it); // its uid is asked again next time
    }
}

std::optional<std::string> CallLimits::admit_call(std::uint64_t id, const std::string& sender) {
    std::lock_guard lock(mutex_);
    Connection& conn = connections_[sender];
    std::optional<std::string> refused;
    if (conn.uid) {
        refused = refuse_named(*conn.uid);
    } else if (conn.unnamed >= kUnnamedPerConnection) {
        refused = "connection " + sender + " has " + std::to_string(conn.unnamed) +
                  " calls waiting for the bus to name their caller";
    } else if (unnamed_ >= max_total_) {
        refused = std::to_string(unnamed_) +
                  " calls are waiting for the bus to name their callers, the limit "
                  "(MaxPendingCalls)";
    }
    if (refused) {
        drop_if_idle(sender);
        return refused;
    }
    Held held{sender};
    if (conn.uid) {
        charge(held, *conn.uid);
    } else {
        ++conn.unnamed;
        ++unnamed_;
    }
    ++conn.pending;
    calls_.emplace(id, std::move(held));
    return std::nullopt;
}

std::optional<std::string> CallLimits::admit_uid(std::uint64_t id, uid_t uid) {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second.state != State::Unnamed) {
        return std::nullopt; // counted when it arrived: its connection was named
    }
    Held& held = it->second;
    Connection& conn = connections_[held.sender];
    --conn.unnamed;
    --unnamed_;
    conn.uid = uid;
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
    Connection& conn = connections_[held.sender];
    switch (held.state) {
    case State::Unnamed:
        --conn.unnamed;
        --unnamed_;
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
    --conn.pending;
    const std::string sender = held.sender;
    calls_.erase(it);
    drop_if_idle(sender);
}

std::size_t CallLimits::pending() const {
    std::lock_guard lock(mutex_);
    return calls_.size();
}

} // namespace overlay::daemon
