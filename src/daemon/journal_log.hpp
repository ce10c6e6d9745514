// Every decision and operation, one record each: to the journal with
// structured fields (L4M_INSTANCE, L4M_CALLER_UID, ...) when stderr is the
// journal stream systemd gave us, else one line on stderr.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>

namespace overlay::daemon {

struct LogRecord {
    int priority = 6; // LOG_INFO; syslog priorities
    std::string message;
    std::string action; // mount, unmount, status, list
    std::string instance;
    std::string caller_bus_name;
    std::optional<uid_t> caller_uid;
    std::optional<pid_t> caller_pid;
    std::string polkit;  // polkit result: "not needed", "root", "authorized", ...
    std::string outcome; // "ok", an error name, "caller left", ...
    std::optional<long long> duration_ms;
};

void log_record(const LogRecord& record) noexcept;
// Start-up, shutdown and other lines that concern no call.
void log_message(int priority, const std::string& message) noexcept;

} // namespace overlay::daemon
