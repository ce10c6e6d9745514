#include "serve.hpp"

#include "config_source.hpp"
#include "error.hpp"
#include "executor_protocol.hpp"
#include "host_namespace.hpp"
#include "migrate.hpp"
#include "mount_watch.hpp"
#include "operations.hpp"
#include "packet_channel.hpp"
#include "process_capabilities.hpp"
#include "result_record.hpp"
#include "startup_warnings.hpp"
#include "unique_fd.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <optional>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace overlay::cmd {

namespace {

using vocabulary::Verb;

constexpr mode_t kUmask = 077;

// The serving end of one executor process: answers the daemon's requests
// one at a time (the daemon's Executor, daemon/executor.hpp, drives it).
class RequestServer {
  public:
    explicit RequestServer(const ServeOptions& options)
        : fd_(options.fd), watch_requested_(options.watch), migrate_(options.migrate),
          source_(options.config_path) {}

    int run() {
        protocol::ExecutorHello hello;
        try {
            config_ = source_.load();
            enter_namespace();
            hello.settings = *config_; // its DaemonSettings
            // Told once, by the executor the daemon starts first.
            if (watch_requested_) {
                hello.warnings = startup_warnings(*config_);
            }
        } catch (const Error& e) {
            // Served anyway: each request retries, and says what is wrong,
            // as the drop-in run per call does.
            hello.config_error = e.what();
        }
        if (!send(protocol::format_hello(hello))) {
            return 0;
        }
        start_watching();
        for (;;) {
            pollfd pfds[2] = {{fd_, POLLIN, 0}, {watch_fd(), watch_events(), 0}};
            if (::poll(pfds, watch_fd() >= 0 ? 2 : 1, -1) < 0) {
                if (errno == EINTR) {
                    continue;
                }
                std::cerr << "left4me-overlay: executor: poll: " << std::strerror(errno) << "\n";
                return 1;
            }
            if (watch_fd() >= 0 && (pfds[1].revents & (watch_events() | POLLERR)) != 0) {
                if (!report_mount_changes()) {
                    return 0;
                }
            }
            if ((pfds[0].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            const auto received = protocol::receive_message(fd_, std::chrono::milliseconds(0));
            if (received.status == protocol::ReceiveStatus::Closed) {
                return 0;
            }
            if (received.status == protocol::ReceiveStatus::TimedOut) {
                continue;
            }
            std::optional<std::string> reply = answer(received.message);
            if (!reply) {
                send(protocol::kRestart);
                return 0;
            }
            // Leave the process as the next request expects it, whatever
            // the core did on its way out of an error.
            restore_state();
            if (!send(*reply)) {
                return 0;
            }
        }
    }

  private:
    int watch_fd() const { return watch_ ? watch_->fd() : -1; }
    short watch_events() const { return watch_ ? watch_->events() : 0; }

    bool send(std::string_view message) { return protocol::send_message(fd_, message); }

    void enter_namespace() {
        if (entered_pid_ != 0) {
            return;
        }
        enter_host_mount_namespace(config_->host_pid);
        entered_pid_ = config_->host_pid;
        // setns moved the root and working directory to the host's root:
        // that is the state every request starts from.
        cwd_ = UniqueFd(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
        if (!cwd_) {
            throw_errno(ErrorCode::Failed, "cannot open / in the host mount namespace", errno);
        }
    }

    void start_watching() {
        if (watch_requested_ && !watch_ && entered_pid_ != 0 && config_) {
            watch_.emplace(*config_);
            send(protocol::format_mount_report(watch_->snapshot()));
        }
    }

    bool report_mount_changes() {
        auto report = watch_->changes();
        // A note (an overflow) is sent even when nothing changed: it is
        // logged.
        return (report.instances.empty() && report.note.empty()) ||
               send(protocol::format_mount_report(report));
    }

    // The result record; nullopt when the executor must be replaced.
    std::optional<std::string> answer(std::string_view text) {
        try {
            const auto request = protocol::parse_request(text);
            if (!request) {
                throw Error(ErrorCode::Failed, "executor: malformed request");
            }
            if (source_.changed()) {
                config_.reset();
                config_ = source_.load();
            }
            if (!config_) {
                config_ = source_.load();
            }
            if (entered_pid_ != 0 && config_->host_pid != entered_pid_) {
                return std::nullopt; // HostPid changed: only a new process can follow
            }
            enter_namespace();
            start_watching();
            return run(*request);
        } catch (const Error& e) {
            return protocol::format_error(e);
        } catch (const std::exception& e) {
            return protocol::format_error(Error(ErrorCode::Failed, printable(e.what())));
        }
    }

    std::string run(const protocol::Request& request) {
        const Config& config = *config_;
        if (!request.verb) {
            // Sync: every change up to now is reported before this answer.
            // The kernel marks the watched table at the change itself, so
            // an unmarked table has nothing new: no second read.
            if (watch_ && watch_->marked() && !report_mount_changes()) {
                throw Error(ErrorCode::Failed, "executor: cannot report mount changes");
            }
            return protocol::format_ok();
        }
        // Each executor serves its role's verbs: the daemon sends Migrate
        // only to the Migrate executors, the only ones able to chown.
        if ((*request.verb == Verb::Migrate) != migrate_) {
            throw Error(ErrorCode::Failed,
                        instance_context(request.instance) +
                            (migrate_ ? "executor: a Migrate executor (--migrate) serves only "
                                        "migrate"
                                      : "executor: migrate is served only by a Migrate executor "
                                        "(--serve FD --migrate)"));
        }
        switch (*request.verb) {
        case Verb::Mount:
            mount_instance(config, request.instance);
            return protocol::format_ok();
        case Verb::Unmount:
            unmount_instance(config, request.instance);
            return protocol::format_ok();
        case Verb::Status: {
            const auto status = instance_status(config, request.instance);
            return protocol::format_status(status.mounted, status.merged, status.lowerdirs);
        }
        case Verb::List:
            return protocol::format_list(list_instances(config));
        case Verb::Migrate:
            // The service's executor runs under RestrictSUIDSGID=yes: an
            // upper needing a set-id chmod is refused before anything
            // changes (the drop-in, as root outside the unit, converts it).
            return protocol::format_report(report_lines(
                migrate_instance(config, request.instance, request.dry_run, SetIdBits::Refuse)));
        }
        return protocol::format_ok();
    }

    // A reply holds at most kMaxMessage: the change lines of a large
    // migration are cut at kMaxReportBytes, with a line saying how many
    // more there were; the totals and summary always come.
    static constexpr std::size_t kMaxReportBytes = 4 * 1024 * 1024;
    static std::vector<std::string> report_lines(const MigrationReport& report) {
        std::vector<std::string> out;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < report.changes.size(); ++i) {
            bytes += report.changes[i].size() + 8;
            if (bytes > kMaxReportBytes) {
                out.push_back("... " + std::to_string(report.changes.size() - i) +
                              " more changes not listed here (the drop-in lists them all)");
                break;
            }
            out.push_back(report.changes[i]);
        }
        for (auto& line : report.summary_lines()) {
            out.push_back(std::move(line));
        }
        return out;
    }

    void restore_state() {
        ::umask(kUmask);
        if (cwd_ && ::fchdir(cwd_.get()) != 0) {
            std::cerr << "left4me-overlay: executor: cannot return to /: " << std::strerror(errno)
                      << "\n";
            std::_Exit(1); // a replacement starts clean
        }
    }

    const int fd_;
    const bool watch_requested_;
    const bool migrate_;
    ConfigSource source_;
    std::optional<Config> config_;
    pid_t entered_pid_ = 0;
    UniqueFd cwd_;
    std::optional<MountWatch> watch_;
};

} // namespace

int serve(const ServeOptions& options) {
    ::umask(kUmask);
    try {
        // Before anything else: only a Migrate executor keeps CAP_CHOWN and
        // CAP_FOWNER. A failure ends the executor (the daemon logs it).
        protocol::limit_capabilities(options.migrate ? protocol::ProcessRole::MigrateExecutor
                                                     : protocol::ProcessRole::Executor);
        RequestServer server(options);
        return server.run();
    } catch (const std::exception& e) {
        std::cerr << "left4me-overlay: executor: " << e.what() << "\n";
        return 1;
    }
}

} // namespace overlay::cmd
