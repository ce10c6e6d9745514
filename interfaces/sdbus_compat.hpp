// The few sdbus-c++ calls that differ between 1.2 (Debian 12, Ubuntu 24.04
// has 1.4) and 2.x (Debian 13 and most current distributions), for the
// daemon, the CLI and their tests: 2.x takes strong name types
// (ObjectPath, ServiceName, Error::Name, InterfaceName, MethodName),
// renamed processPendingRequest to processPendingEvent, adds an event fd to
// the poll data, hands out the message being processed by value and
// registers methods through vtables. This header is the one place that
// knows; everything else is written once. Behaviour is the same on both:
// the same error names and messages, the same replies.
//
// L4M_SDBUS_CPP_MAJOR is the major version of the sdbus-c++ package CMake
// found (interfaces/CMakeLists.txt): sdbus-c++ has no version macro.
#pragma once

#include <memory>
#include <optional>
#include <poll.h>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <systemd/sd-bus.h>
#include <utility>

#if !defined(L4M_SDBUS_CPP_MAJOR)
#error                                                                                             \
    "L4M_SDBUS_CPP_MAJOR comes from interfaces/CMakeLists.txt: link overlay1_dbus_adaptor or overlay1_dbus_proxy"
#elif L4M_SDBUS_CPP_MAJOR != 1 && L4M_SDBUS_CPP_MAJOR != 2
#error "sdbus-c++ 1.x or 2.x is needed"
#endif

namespace overlay::sdbus_compat {

#if L4M_SDBUS_CPP_MAJOR >= 2
using ServiceName = sdbus::ServiceName;
// What an asynchronous reply handler gets in place of an error.
using ReplyError = std::optional<sdbus::Error>;
#else
using ServiceName = std::string;
using ReplyError = const sdbus::Error*;
#endif

// ObjectPath is a class of its own in both versions and is what 2.x wants;
// 1.2 takes a std::string, which ObjectPath is.
inline sdbus::ObjectPath object_path(std::string path) {
    return sdbus::ObjectPath(std::move(path));
}

// A D-Bus error reply or failure: name and message.
inline sdbus::Error error(std::string name, std::string message = {}) {
#if L4M_SDBUS_CPP_MAJOR >= 2
    return sdbus::Error(sdbus::Error::Name(std::move(name)), std::move(message));
#else
    return sdbus::Error(name, message);
#endif
}

// --- An external event loop over one connection (the daemon's bus thread).

// Dispatches one pending message, reply or timeout; false when sd-bus has
// nothing left to do until its fds are ready again.
inline bool process_pending(sdbus::IConnection& bus) {
#if L4M_SDBUS_CPP_MAJOR >= 2
    return bus.processPendingEvent();
#else
    return bus.processPendingRequest();
#endif
}

// What to poll for the connection, re-read before every poll: the bus fd
// with the events sd-bus wants (POLLOUT while output is queued), and in 2.x
// sdbus-c++'s event fd, which it signals when messages wait in sd-bus'
// queues (1.2 has none: fd -1, which poll() skips). Either becoming ready
// means: call process_pending() until it returns false.
struct BusPoll {
    pollfd bus;
    pollfd queued;
    int timeout_ms; // -1: no timeout
};

inline BusPoll bus_poll(const sdbus::IConnection& bus) {
    const sdbus::IConnection::PollData data = bus.getEventLoopPollData();
#if L4M_SDBUS_CPP_MAJOR >= 2
    const pollfd queued{data.eventFd, POLLIN, 0};
#else
    const pollfd queued{-1, 0, 0};
#endif
    return BusPoll{{data.fd, data.events, 0}, queued, data.getPollTimeout()};
}

// --- The raw message: ALLOW_INTERACTIVE_AUTHORIZATION.

// Neither version lets a caller set or read the header flag
// ALLOW_INTERACTIVE_AUTHORIZATION (checked up to 2.3), nor hands out the
// sd_bus_message*; both keep it in the protected member Message::msg_. A
// pointer to that member, formed inside a class derived from Message, may be
// applied to any Message: the one standard way to reach it without patching
// the library, and the only place that touches sdbus-c++ internals. The
// struct is never instantiated.
inline sd_bus_message* raw_message(const sdbus::Message& message) {
    struct RawMessage : sdbus::Message {
        static void* get(const sdbus::Message& m) { return m.*(&RawMessage::msg_); }
    };
    return static_cast<sd_bus_message*>(RawMessage::get(message));
}

// The client side: polkit may ask for a password through an agent.
inline void allow_interactive_authorization(sdbus::MethodCall& call) {
    const int r = sd_bus_message_set_allow_interactive_authorization(raw_message(call), 1);
    if (r < 0) {
        throw sdbus::createError(-r, "cannot allow interactive authorization on the call");
    }
}

// The service side: who sent the call being handled, and whether it allows
// interactive authorization. Valid inside a method handler only.
struct CurrentCall {
    std::string sender;
    bool interactive = false;
};

inline CurrentCall current_call(const sdbus::IObject& object) {
#if L4M_SDBUS_CPP_MAJOR >= 2
    const sdbus::Message message = object.getCurrentlyProcessedMessage(); // a counted reference
    const char* sender_or_null = message.getSender();
    std::string sender = sender_or_null != nullptr ? sender_or_null : "";
#else
    const sdbus::Message& message = *object.getCurrentlyProcessedMessage();
    std::string sender = message.getSender();
#endif
    sd_bus_message* raw = raw_message(message);
    return CurrentCall{std::move(sender),
                       raw != nullptr &&
                           sd_bus_message_get_allow_interactive_authorization(raw) > 0};
}

// A method call made by hand (the generated proxy's calls can carry neither
// the flag above nor a per-call timeout).
inline sdbus::MethodCall method_call(sdbus::IProxy& proxy, const std::string& interface,
                                     const std::string& method) {
#if L4M_SDBUS_CPP_MAJOR >= 2
    return proxy.createMethodCall(sdbus::InterfaceName(interface), sdbus::MethodName(method));
#else
    return proxy.createMethodCall(interface, method);
#endif
}

// --- Objects and proxies made without the generated code (tests, bench).

// A proxy of `destination` on a borrowed connection (no event-loop thread).
inline std::unique_ptr<sdbus::IProxy> proxy(sdbus::IConnection& bus, std::string destination,
                                            std::string path) {
    return sdbus::createProxy(bus, ServiceName(std::move(destination)),
                              object_path(std::move(path)));
}

// Subscribes the signal handlers added with uponSignal() (1.2 waits for
// this to send the AddMatch calls; 2.x sends each at once).
inline void finish_signals([[maybe_unused]] sdbus::IProxy& proxy) {
#if L4M_SDBUS_CPP_MAJOR < 2
    proxy.finishRegistration();
#endif
}

// Registers one method and makes it callable (1.2: registerMethod and
// finishRegistration; 2.x: a one-item vtable).
template <typename Handler>
void add_method(sdbus::IObject& object, const std::string& interface, const std::string& method,
                Handler&& handler) {
#if L4M_SDBUS_CPP_MAJOR >= 2
    object.addVTable(sdbus::registerMethod(method).implementedAs(std::forward<Handler>(handler)))
        .forInterface(interface);
#else
    object.registerMethod(method).onInterface(interface).implementedAs(
        std::forward<Handler>(handler));
    object.finishRegistration();
#endif
}

} // namespace overlay::sdbus_compat
