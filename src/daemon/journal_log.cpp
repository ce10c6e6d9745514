#include "journal_log.hpp"

#include "error.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/stat.h>
// The CODE_FILE/LINE/FUNC fields would always name this file: leave them out.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>
#include <vector>

namespace overlay::daemon {

namespace {

// systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected to
// stderr. Comparing it with stderr itself (as sd_journal_stream_fd(3)
// recommends) avoids writing fields to the journal when stderr was
// redirected by a test or a shell after systemd started us.
bool stderr_is_journal() {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr) {
        return false;
    }
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) {
        return false;
    }
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) {
        return false;
    }
    return dev == static_cast<unsigned long long>(st.st_dev) &&
           ino == static_cast<unsigned long long>(st.st_ino);
}

bool use_journal() {
    static const bool journal = stderr_is_journal();
    return journal;
}

const char* level_word(int priority) {
    static constexpr const char* kWords[] = {"emerg",   "alert",  "crit", "error",
                                             "warning", "notice", "info", "debug"};
    return priority >= 0 && priority <= 7 ? kWords[priority] : "info";
}

void add_field(std::vector<std::string>& fields, std::string& line, const char* journal_key,
               const char* line_key, const std::string& value) {
    if (value.empty()) {
        return;
    }
    fields.push_back(std::string(journal_key) + "=" + value);
    line += std::string(" ") + line_key + "=" + value;
}

void emit(int priority, std::vector<std::string> fields, const std::string& message,
          const std::string& line) {
    if (use_journal()) {
        fields.push_back("MESSAGE=" + message);
        fields.push_back("PRIORITY=" + std::to_string(priority));
        fields.push_back("SYSLOG_IDENTIFIER=left4me-overlayd");
        std::vector<struct iovec> iov;
        iov.reserve(fields.size());
        for (auto& f : fields) {
            iov.push_back({f.data(), f.size()});
        }
        if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) {
            return;
        }
        // journald unreachable: the line below still reaches the stream.
    }
    // One fprintf per record: stdio locks the stream, so lines from
    // different threads never interleave.
    std::fprintf(stderr, "left4me-overlayd: %s: %s\n", level_word(priority), line.c_str());
}

} // namespace

void log_record(const LogRecord& r) noexcept {
    try {
        // Names and messages come from callers and hostile files: escaped,
        // so that a record is always one line.
        std::vector<std::string> fields;
        std::string message = printable(r.message);
        std::string line = message;
        add_field(fields, line, "L4M_ACTION", "action", r.action);
        add_field(fields, line, "L4M_INSTANCE", "instance", printable(r.instance));
        add_field(fields, line, "L4M_CALLER_BUS_NAME", "caller", r.caller_bus_name);
        add_field(fields, line, "L4M_CALLER_UID", "uid",
                  r.caller_uid ? std::to_string(*r.caller_uid) : std::string());
        add_field(fields, line, "L4M_CALLER_PID", "pid",
                  r.caller_pid ? std::to_string(*r.caller_pid) : std::string());
        add_field(fields, line, "L4M_POLKIT_RESULT", "polkit", printable(r.polkit));
        add_field(fields, line, "L4M_OUTCOME", "outcome", r.outcome);
        add_field(fields, line, "L4M_DURATION_MS", "duration_ms",
                  r.duration_ms ? std::to_string(*r.duration_ms) : std::string());
        emit(r.priority, std::move(fields), message, line);
    } catch (...) {
        // Logging must never take a call down with it.
    }
}

void log_message(int priority, const std::string& message) noexcept {
    try {
        std::string m = printable(message);
        emit(priority, {}, m, m);
    } catch (...) {
    }
}

} // namespace overlay::daemon
