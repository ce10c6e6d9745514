// polkit's text agent (pkttyagent) for this process, so that a password
// polkit asks for on our behalf is asked for in our terminal; what systemd's
// tools do in polkit_agent_open().
#pragma once

#include <sys/types.h>

namespace overlay::ctl {

class PolkitAgent {
  public:
    // Starts pkttyagent registered for this process and returns once it has
    // registered with polkit (or died trying; the call then fails on its
    // own with InteractiveAuthorizationRequired). Does nothing unless
    // standard input is a terminal and we are not root (root is authorized
    // without polkit). Call it while the process is single-threaded.
    PolkitAgent();
    // Stops the agent (SIGTERM) and reaps it.
    ~PolkitAgent();

    PolkitAgent(const PolkitAgent&) = delete;
    PolkitAgent& operator=(const PolkitAgent&) = delete;

    bool running() const { return pid_ > 0; }

  private:
    pid_t pid_ = -1;
};

} // namespace overlay::ctl
