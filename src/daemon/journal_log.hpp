// Every decision and operation, one record each, through the program's one
// spdlog logger: to the journal with structured fields (L4M_INSTANCE,
// L4M_CALLER_UID, ..., a MESSAGE_ID per event kind, OBJECT_PID= the caller)
// when a journal runs, else to syslog (/dev/log); and as one line on stderr
// when stderr leads somewhere (a terminal, a file, a pipe) other than the
// journal or /dev/null.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
// Priorities are syslog's, by their names (LOG_ERR, LOG_NOTICE, ...).
#include <syslog.h>

namespace overlay::daemon {

// What happened in a call, said by the code that saw it happen; each kind
// has its MESSAGE_ID and its L4M_EVENT word. None: a record that is no
// event (a caller who left before anything was decided).
enum class LogEvent { None, Authorized, Denied, Mounted, Unmounted, Failed };

struct LogRecord {
    int priority = LOG_INFO;
    LogEvent event = LogEvent::None;
    std::string message;
    std::string action; // mount, unmount, status, list, migrate
    std::string instance;
    std::string caller_bus_name;
    std::optional<uid_t> caller_uid;
    std::optional<pid_t> caller_pid;
    std::string polkit;  // polkit result: "not needed", "root", "authorized", ...
    std::string outcome; // "ok", an error name, "caller-left", ...
    std::optional<long long> duration_ms;
};

void log_record(const LogRecord& record) noexcept;
// Start-up, shutdown and other lines that concern no call.
void log_message(int priority, const std::string& message) noexcept;

} // namespace overlay::daemon
