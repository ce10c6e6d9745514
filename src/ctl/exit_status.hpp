// The exit statuses of left4me-overlayctl (documented in --help and
// left4me-overlayctl(1)), and which D-Bus errors lead to which.
#pragma once

#include <string_view>

namespace overlay::ctl {

enum ExitStatus : int {
    kExitOk = 0,
    kExitFailed = 1,        // the service refused or failed the operation
    kExitUsage = 2,         // bad command line
    kExitNotAuthorized = 3, // polkit said no, or wanted a password we could not ask for
    kExitUnreachable = 4,   // no bus, no service, or no answer
};

// The exit status for an error reply (or a client-side error) named name.
ExitStatus exit_status_for_error(std::string_view name);

} // namespace overlay::ctl
