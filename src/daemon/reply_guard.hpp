// sdbus::Result<> sends nothing when it is dropped: the caller would wait
// for its timeout. A ReplyGuard answers exactly once on every path: with
// the results, with an error, deliberately not at all (dismiss(): the caller
// left the bus), or, when destroyed unanswered, with Failed "service is
// stopping" (kStoppingMessage). Used and destroyed on the bus thread only, before the
// connection is destroyed.
#pragma once

#include "dbus_errors.hpp"
#include "journal_log.hpp"

#include <sdbus-c++/sdbus-c++.h>
#include <utility>

namespace overlay::daemon {

template <typename... Results> class ReplyGuard {
  public:
    explicit ReplyGuard(sdbus::Result<Results...>&& result) : result_(std::move(result)) {}
    ReplyGuard(ReplyGuard&& other) noexcept
        : result_(std::move(other.result_)), answered_(std::exchange(other.answered_, true)) {}
    ReplyGuard& operator=(ReplyGuard&&) = delete;
    ReplyGuard(const ReplyGuard&) = delete;
    ReplyGuard& operator=(const ReplyGuard&) = delete;

    ~ReplyGuard() {
        if (!answered_) {
            fail(make_error(ErrorCode::Failed, kStoppingMessage));
        }
    }

    void succeed(const Results&... results) noexcept {
        if (std::exchange(answered_, true)) {
            return;
        }
        try {
            result_.returnResults(results...);
        } catch (...) {
            // The reply could not be built or sent (a connection that is
            // gone, a string sdbus refused): tell the caller why instead.
            try {
                result_.returnError(error_from_current_exception());
            } catch (...) {
                log_message(LOG_ERR, "cannot send a reply");
            }
        }
    }

    void fail(const sdbus::Error& error) noexcept {
        if (std::exchange(answered_, true)) {
            return;
        }
        try {
            result_.returnError(error);
        } catch (...) {
            log_message(LOG_ERR, "cannot send an error reply");
        }
    }

    void dismiss() noexcept { answered_ = true; }

  private:
    sdbus::Result<Results...> result_;
    bool answered_ = false;
};

} // namespace overlay::daemon
