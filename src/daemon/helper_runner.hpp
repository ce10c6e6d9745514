// Runs the privileged helper (the drop-in command) for one operation and
// reads its result record. Blocking: called on a worker thread, never on
// the bus thread.
#pragma once

#include "error.hpp"
#include "helper_protocol.hpp"

#include <chrono>
#include <string>
#include <string_view>

namespace overlay::daemon {

struct HelperOutcome {
    bool ok = false;
    ErrorCode error = ErrorCode::Failed; // when !ok
    std::string message;                 // when !ok
    protocol::HelperResult result;       // when ok
};

class HelperRunner {
  public:
    // A helper stuck in the kernel (a hung filesystem under Root) must not
    // hold its instance's queue and the daemon's shutdown forever; the
    // default is far above any real operation (the instance lock waits 10 s,
    // a taint scan of 100,000 entries takes well under a second).
    static constexpr std::chrono::seconds kDefaultTimeout{120};

    HelperRunner(std::string helper_path, std::string config_path,
                 std::chrono::milliseconds timeout = kDefaultTimeout);

    // `HELPER --config CONFIG --result-fd 3 VERB [INSTANCE]`. Never throws:
    // a helper that cannot be started, dies, or writes no well-formed record
    // gives Failed naming the instance and how the helper ended; one still
    // running after the timeout is killed.
    HelperOutcome run(std::string_view verb, std::string_view instance) const noexcept;

    const std::string& helper_path() const noexcept { return helper_path_; }

  private:
    HelperOutcome run_or_throw(std::string_view verb, std::string_view instance) const;

    std::string helper_path_;
    std::string config_path_;
    std::chrono::milliseconds timeout_;
};

} // namespace overlay::daemon
