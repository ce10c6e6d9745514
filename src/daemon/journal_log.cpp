#include "journal_log.hpp"

#include "error.hpp"

#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <mutex>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
// The CODE_FILE/LINE/FUNC fields would always name this file: leave them out.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>
#include <unistd.h>
#include <vector>

namespace overlay::daemon {

namespace {

constexpr const char* kIdentifier = "left4me-overlayd";
// journald's native protocol socket (sd_journal_sendv writes there).
constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

// One MESSAGE_ID per kind of event, fixed forever (journalctl
// MESSAGE_ID=... finds every denial, every mount, ... of every version),
// and the word L4M_EVENT carries.
struct EventKind {
    LogEvent event;
    const char* word;
    const char* message_id;
};
constexpr EventKind kEventKinds[] = {
    {LogEvent::Authorized, "authorized", "2a77d29f1dce4a609437aa82afded821"},
    {LogEvent::Denied, "denied", "0d6240d8d6f641dc80ab8e3964bf4b56"},
    {LogEvent::Mounted, "mounted", "4b6135ae048e4fd1a10230ed24f7b54b"},
    {LogEvent::Unmounted, "unmounted", "2ef44a6055e4433f95f4b965bb450d80"},
    {LogEvent::Failed, "failed", "28a51a80e9cc44e39c7b6fe8b50b9b34"},
};

const EventKind* kind_of(LogEvent event) {
    for (const auto& k : kEventKinds) {
        if (k.event == event) {
            return &k;
        }
    }
    return nullptr; // LogEvent::None
}

// systemd sets JOURNAL_STREAM=DEV:INODE of the stream it connected to
// stderr. Comparing it with stderr itself (as sd_journal_stream_fd(3)
// recommends) tells a stderr redirected by a test or a shell after systemd
// started us.
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

// stderr leads nowhere: closed, or /dev/null (bus activation by
// dbus-daemon alone gives us that).
bool stderr_is_void() {
    struct stat st {};
    if (fstat(STDERR_FILENO, &st) != 0) {
        return true;
    }
    return S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3;
}

const char* level_word(int priority) {
    static constexpr const char* kWords[] = {"emerg",   "alert",  "crit", "error",
                                             "warning", "notice", "info", "debug"};
    return priority >= 0 && priority <= 7 ? kWords[priority] : "info";
}

int syslog_priority(spdlog::level::level_enum level) {
    switch (level) {
    case spdlog::level::critical:
        return LOG_CRIT;
    case spdlog::level::err:
        return LOG_ERR;
    case spdlog::level::warn:
        return LOG_WARNING;
    case spdlog::level::debug:
    case spdlog::level::trace:
        return LOG_DEBUG;
    default:
        return LOG_INFO;
    }
}

void send_syslog(int priority, const std::string& line) {
    ::syslog(LOG_DAEMON | priority, "%s", line.c_str());
}

// What a record hands to each sink: the exact syslog priority (spdlog has
// no "notice"), the message, the journal fields, and the one-line text
// with key=value pairs.
struct Entry {
    int priority;
    const std::string& message;
    const std::vector<std::string>& fields;
    const std::string& line;
};

// The program's sinks: each writes a whole Entry under its own lock. A
// message logged through the spdlog logger by other code (it has no
// fields) arrives through sink_it_ and is sent as it is.
class Sink : public spdlog::sinks::base_sink<std::mutex> {
  public:
    void write(const Entry& entry) {
        std::lock_guard<std::mutex> lock(mutex_);
        write_(entry);
    }

  protected:
    virtual void write_(const Entry& entry) = 0;

    void sink_it_(const spdlog::details::log_msg& msg) override {
        const std::string text(msg.payload.data(), msg.payload.size());
        const std::vector<std::string> no_fields;
        write_(Entry{syslog_priority(msg.level), text, no_fields, text});
    }
    void flush_() override {}
};

// The journal, natively: MESSAGE plus the record's fields.
class JournalSink final : public Sink {
  protected:
    void write_(const Entry& entry) override {
        const std::string own[] = {"MESSAGE=" + entry.message,
                                   "PRIORITY=" + std::to_string(entry.priority),
                                   std::string("SYSLOG_IDENTIFIER=") + kIdentifier};
        std::vector<struct iovec> iov;
        iov.reserve(entry.fields.size() + std::size(own));
        // sd_journal_sendv only reads them.
        for (const auto& f : entry.fields) {
            iov.push_back({const_cast<char*>(f.data()), f.size()});
        }
        for (const auto& f : own) {
            iov.push_back({const_cast<char*>(f.data()), f.size()});
        }
        if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) < 0) {
            // journald gone: syslog is the next best place.
            send_syslog(entry.priority, entry.line);
        }
    }
};

// syslog(3): /dev/log, whoever listens there (rsyslog, busybox syslogd, or
// journald's own /dev/log socket).
class SyslogSink final : public Sink {
  public:
    SyslogSink() { ::openlog(kIdentifier, LOG_PID, LOG_DAEMON); }

  protected:
    void write_(const Entry& entry) override { send_syslog(entry.priority, entry.line); }
};

// One line per record: "left4me-overlayd: LEVEL: LINE", flushed at once.
// One fprintf per record: stdio locks the stream, so lines never
// interleave.
class StderrSink final : public Sink {
  protected:
    void write_(const Entry& entry) override {
        std::fprintf(stderr, "%s: %s: %s\n", kIdentifier, level_word(entry.priority),
                     entry.line.c_str());
        std::fflush(stderr);
    }
    void flush_() override { std::fflush(stderr); }
};

std::shared_ptr<spdlog::logger> make_logger() {
    std::vector<spdlog::sink_ptr> sinks;
    const bool journal_stream = stderr_is_journal();
    if (journal_stream || ::access(kJournalSocket, W_OK) == 0) {
        sinks.push_back(std::make_shared<JournalSink>());
    } else {
        sinks.push_back(std::make_shared<SyslogSink>());
    }
    if (!journal_stream && !stderr_is_void()) {
        sinks.push_back(std::make_shared<StderrSink>());
    }
    auto logger = std::make_shared<spdlog::logger>(kIdentifier, sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::trace);
    logger->flush_on(spdlog::level::trace);
    // A sink that throws must not take a call down, nor write elsewhere.
    logger->set_error_handler([](const std::string&) {});
    return logger;
}

spdlog::logger& logger() {
    // The program's one logger, made on first use (main logs first, before
    // any other thread exists).
    static const std::shared_ptr<spdlog::logger> instance = make_logger();
    return *instance;
}

// Appended in place: a record is written twice per Mount or Unmount, and
// temporaries for each piece were most of its cost.
void add_field(std::vector<std::string>& fields, std::string& line, std::string_view journal_key,
               std::string_view line_key, std::string_view value) {
    if (value.empty()) {
        return;
    }
    std::string& field = fields.emplace_back();
    field.reserve(journal_key.size() + 1 + value.size());
    field.append(journal_key).append(1, '=').append(value);
    line.append(1, ' ').append(line_key).append(1, '=').append(value);
}

// Every sink of the logger is a Sink (make_logger puts no other there).
void emit(const Entry& entry) noexcept {
    for (const auto& sink : logger().sinks()) {
        try {
            static_cast<Sink&>(*sink).write(entry);
        } catch (...) {
            // A sink that throws must not take a call down, nor write
            // elsewhere.
        }
    }
}

} // namespace

void log_record(const LogRecord& r) noexcept {
    try {
        // Names and messages come from callers and hostile files: escaped,
        // so that a record is always one line.
        std::vector<std::string> fields;
        fields.reserve(12);
        std::string message = printable(r.message);
        std::string line;
        line.reserve(message.size() + 192);
        line.append(message);
        const EventKind* kind = kind_of(r.event);
        if (kind != nullptr) {
            fields.push_back(std::string("MESSAGE_ID=") + kind->message_id);
        }
        add_field(fields, line, "L4M_EVENT", "event", kind != nullptr ? kind->word : "");
        add_field(fields, line, "L4M_ACTION", "action", r.action);
        add_field(fields, line, "L4M_INSTANCE", "instance", printable(r.instance));
        add_field(fields, line, "L4M_CALLER_BUS_NAME", "caller", r.caller_bus_name);
        add_field(fields, line, "L4M_CALLER_UID", "uid",
                  r.caller_uid ? std::to_string(*r.caller_uid) : std::string());
        add_field(fields, line, "L4M_CALLER_PID", "pid",
                  r.caller_pid ? std::to_string(*r.caller_pid) : std::string());
        // journald adds the caller's _COMM, _EXE, _SYSTEMD_UNIT, ... as
        // OBJECT_* fields (accepted from root only, which we are).
        if (r.caller_pid && *r.caller_pid > 0) {
            fields.push_back("OBJECT_PID=" + std::to_string(*r.caller_pid));
        }
        add_field(fields, line, "L4M_POLKIT_RESULT", "polkit", printable(r.polkit));
        add_field(fields, line, "L4M_OUTCOME", "outcome", r.outcome);
        add_field(fields, line, "L4M_DURATION_MS", "duration_ms",
                  r.duration_ms ? std::to_string(*r.duration_ms) : std::string());
        emit(Entry{r.priority, message, fields, line});
    } catch (...) {
        // Logging must never take a call down with it.
    }
}

void log_message(int priority, const std::string& message) noexcept {
    try {
        const std::string m = printable(message);
        const std::vector<std::string> no_fields;
        emit(Entry{priority, m, no_fields, m});
    } catch (...) {
    }
}

} // namespace overlay::daemon
