#include "call_limits.hpp"

namespace overlay::daemon {

CallLimits::CallLimits(unsigned max_total, unsigned max_per_user)
    : max_total_(max_total), max_per_user_(max_per_user) {}

std::optional<std::string> CallLimits::admit_call(std::uint64_t id, const std::string& sender) {
    std::lock_guard lock(mutex_);
    if (calls_.size() >= max_total_) {
        return "the service has " + std::to_string(calls_.size()) +
               " calls pending, its limit (MaxPendingCalls)";
    }
    unsigned& n = per_sender_[sender];
    if (n >= max_per_user_) {
        return "connection " + sender + " has " + std::to_string(n) +
               " calls pending, the limit per caller (MaxPendingCallsPerUser)";
    }
    ++n;
    calls_.emplace(id, Held{sender, std::nullopt});
    return std::nullopt;
}

std::optional<std::string> CallLimits::admit_uid(std::uint64_t id, uid_t uid) {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second.uid || uid == 0) {
        return std::nullopt;
    }
    unsigned& n = per_uid_[uid];
    if (n >= max_per_user_) {
        if (n == 0) {
            per_uid_.erase(uid);
        }
        return "uid " + std::to_string(uid) + " has " + std::to_string(n) +
               " calls pending, the limit per user (MaxPendingCallsPerUser)";
    }
    ++n;
    it->second.uid = uid;
    return std::nullopt;
}

void CallLimits::release(std::uint64_t id) {
    std::lock_guard lock(mutex_);
    auto it = calls_.find(id);
    if (it == calls_.end()) {
        return;
    }
    if (auto s = per_sender_.find(it->second.sender); s != per_sender_.end() && --s->second == 0) {
        per_sender_.erase(s);
    }
    if (it->second.uid) {
        if (auto u = per_uid_.find(*it->second.uid); u != per_uid_.end() && --u->second == 0) {
            per_uid_.erase(u);
        }
    }
    calls_.erase(it);
}

std::size_t CallLimits::pending() const {
    std::lock_guard lock(mutex_);
    return calls_.size();
}

} // namespace overlay::daemon
