// Runs the privileged helper (the drop-in command) for one operation and
// reads its result record. Blocking: called on a worker thread, never on
// the bus thread.
#pragma once

#include "error.hpp"
#include "helper_protocol.hpp"

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
    HelperRunner(std::string helper_path, std::string config_path);

    // `HELPER --config CONFIG --result-fd 3 VERB [INSTANCE]`. Never throws:
    // a helper that cannot be started, dies, or writes no well-formed record
    // gives Failed naming the instance and how the helper ended.
    HelperOutcome run(std::string_view verb, std::string_view instance) const noexcept;

    const std::string& helper_path() const noexcept { return helper_path_; }

  private:
    HelperOutcome run_or_throw(std::string_view verb, std::string_view instance) const;

    std::string helper_path_;
    std::string config_path_;
};

} // namespace overlay::daemon
