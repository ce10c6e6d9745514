// The calls left4me-overlayctl makes to org.left4me.Overlay1 on the system
// bus. Errors arrive as sdbus::Error (name and message of the reply, or of
// the client-side failure).
#pragma once

#include "output.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace sdbus {
class IConnection;
}

namespace overlay::ctl {

class OverlayClient {
  public:
    // Connects to the system bus ($DBUS_SYSTEM_BUS_ADDRESS, else the
    // standard socket). Throws sdbus::Error when there is no bus.
    OverlayClient();
    ~OverlayClient();

    OverlayClient(const OverlayClient&) = delete;
    OverlayClient& operator=(const OverlayClient&) = delete;

    // allow_interactive sets ALLOW_INTERACTIVE_AUTHORIZATION, so that polkit
    // may ask for a password through an agent instead of refusing.
    void mount(const std::string& instance, bool allow_interactive, std::chrono::seconds timeout);
    void unmount(const std::string& instance, bool allow_interactive, std::chrono::seconds timeout);
    InstanceStatus status(const std::string& instance, bool allow_interactive,
                          std::chrono::seconds timeout);
    InstanceList list(bool allow_interactive, std::chrono::seconds timeout);
    // The report lines: each change, then the totals and a summary.
    std::vector<std::string> migrate(const std::string& instance, bool dry_run,
                                     bool allow_interactive, std::chrono::seconds timeout);

  private:
    class Proxy;
    std::unique_ptr<sdbus::IConnection> bus_;
    std::unique_ptr<Proxy> proxy_;
};

} // namespace overlay::ctl
