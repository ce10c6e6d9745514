#include "exit_status.hpp"

#include "vocabulary.hpp"

namespace overlay::ctl {

ExitStatus exit_status_for_error(std::string_view name) {
    // The service's two authorization verdicts.
    if (name == vocabulary::kAccessDenied ||
        name == vocabulary::kInteractiveAuthorizationRequired) {
        return kExitNotAuthorized;
    }
    // Errors of the bus itself: nobody is serving the name (not installed,
    // activation failed) or nobody answered. sd-bus reports its own timeout
    // as NoReply (ETIMEDOUT) and a lost connection as Disconnected.
    for (std::string_view unreachable :
         {"org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner",
          "org.freedesktop.DBus.Error.NoReply", "org.freedesktop.DBus.Error.Timeout",
          "org.freedesktop.DBus.Error.TimedOut", "org.freedesktop.DBus.Error.Disconnected",
          "org.freedesktop.DBus.Error.NoServer", "org.freedesktop.DBus.Error.UnknownObject"}) {
        if (name == unreachable) {
            return kExitUnreachable;
        }
    }
    // Activation failures: org.freedesktop.DBus.Error.Spawn.ChildExited,
    // .Spawn.ServiceNotFound, .Spawn.FailedToSetup, ...
    if (name.starts_with("org.freedesktop.DBus.Error.Spawn.")) {
        return kExitUnreachable;
    }
    return kExitFailed;
}

} // namespace overlay::ctl
