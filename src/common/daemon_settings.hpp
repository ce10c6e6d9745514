// The keys of the config (/etc/left4me/overlay.conf) that the daemon itself
// applies, with their defaults, once. Config holds them like its other keys
// (the executors read the file); an executor's hello passes them on, as
// they are, to the daemon, which reads no file under Root and parses no
// config (executor_protocol.hpp). Applied when the daemon starts.
#pragma once

namespace overlay {

struct DaemonSettings {
    unsigned executors = 2;                     // Executors: 1..16
    unsigned max_pending_calls = 256;           // MaxPendingCalls
    unsigned max_pending_calls_per_user = 32;   // MaxPendingCallsPerUser
    unsigned max_concurrent_authorizations = 8; // MaxConcurrentAuthorizations
    // MaxConcurrentAuthorizationsPerUser: of those, one uid's (its checks
    // held open by an agent that never answers hold only this many).
    unsigned max_concurrent_authorizations_per_user = 2;
    unsigned operation_timeout_sec = 120; // OperationTimeoutSec: 1..3600
    // Migrate runs on executors of its own (never Mount's and Unmount's), at
    // most MigrateExecutors at once, each killed after MigrateTimeoutSec.
    unsigned migrate_executors = 2;       // MigrateExecutors: 1..16
    unsigned migrate_timeout_sec = 21600; // MigrateTimeoutSec: 60..86400
};

} // namespace overlay
