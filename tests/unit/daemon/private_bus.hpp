// A dbus-daemon of the test's own, on an abstract socket (so a connection
// of any uid may reach it), open to everyone, with no activatable service:
// nothing answers for polkit unless a test puts something there.
#pragma once

#include "glib_handles.hpp"

#include <string>
#include <sys/types.h>

namespace overlay::daemon::testing {

class PrivateBus {
  public:
    PrivateBus(); // started and listening when this returns
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    const std::string& address() const { return address_; }

  private:
    std::string dir_;
    pid_t pid_ = -1;
    std::string address_;
};

// One bus for the whole test program, started on first use and stopped at
// exit. Not one per suite: GLib keeps its system bus connection (and polkit
// its authority) for as long as anything holds them, and a connection to a
// bus that was stopped would fail every later check.
PrivateBus& shared_bus();

// A new private connection to the bus at address, registered (it has a
// unique name). Throws std::runtime_error.
glib::Object<GDBusConnection> connect(const std::string& address);

// The same, authenticated as uid 65534 when the test runs as root (the
// caller's own uid otherwise): the bus reports that uid for it.
glib::Object<GDBusConnection> connect_unprivileged(const std::string& address);
inline constexpr uid_t kNobody = 65534;

// The same as uid (as root only; the caller's own uid otherwise).
glib::Object<GDBusConnection> connect_as(const std::string& address, uid_t uid);

} // namespace overlay::daemon::testing
