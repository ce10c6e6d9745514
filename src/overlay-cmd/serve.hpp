// left4me-overlay --serve FD: the daemon's persistent executor. Started once
// by the daemon (exec'd: a clean single-threaded image), it enters the host
// mount namespace once and then answers one request at a time on the
// SOCK_SEQPACKET socket FD with the same core and result record as a run
// per call. With --watch it also reports every change of an instance's
// mounted state, whoever made it, from the host's mount table. Its first act
// is to narrow its capabilities to its role's (--migrate or not).
#pragma once

#include <string>

namespace overlay::cmd {

struct ServeOptions {
    int fd = -1;
    std::string config_path;
    bool watch = false;
    // A Migrate executor: the only one that keeps CAP_CHOWN and CAP_FOWNER
    // (process_capabilities.hpp); it serves Migrate and nothing else.
    bool migrate = false;
};

// Returns the exit status: 0 when the daemon closed the socket (or asked
// for a restart), 1 when the socket failed.
int serve(const ServeOptions& options);

} // namespace overlay::cmd
