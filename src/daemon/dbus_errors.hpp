// The one closed table of errors the service sends. Handlers never build an
// sdbus::Error by hand: every failure goes through these functions, so a
// caller sees exactly the names documented in the interface XML.
#pragma once

#include "error.hpp"

#include <sdbus-c++/Error.h>
#include <string>

namespace overlay::daemon {

// Failures that are not the core's: the authorization verdicts, and the
// refusal of a caller over its limit of pending calls.
enum class AuthError {
    AccessDenied,                     // org.freedesktop.DBus.Error.AccessDenied
    InteractiveAuthorizationRequired, // org.freedesktop.DBus.Error.InteractiveAuthorizationRequired
    LimitsExceeded,                   // org.freedesktop.DBus.Error.LimitsExceeded
};

// What a call the service will no longer serve is told, with Failed: new
// calls once it stops, calls it was still checking or queueing, and a
// reply left unanswered at the end.
inline constexpr const char* kStoppingMessage = "service is stopping";

// "org.left4me.Overlay1.Error." + error_name(code).
sdbus::Error make_error(ErrorCode code, const std::string& message);
sdbus::Error make_error(AuthError code, const std::string& message);

// Maps the exception being handled (call only inside a catch block):
// overlay::Error keeps its name, sdbus::Error from the table passes through,
// anything else becomes Failed. Never throws.
sdbus::Error error_from_current_exception() noexcept;

// D-Bus strings must be valid UTF-8 or sdbus-c++ refuses to send the reply;
// anything else is escaped with overlay::printable().
std::string dbus_safe(std::string text);

} // namespace overlay::daemon
