// A persistent executor and its restart policy, used by one thread at a
// time (an operation worker, or the status worker). It is started on first
// use and after a death, with a growing delay between failed starts; a
// request the executor does not answer within the operation timeout gets it
// killed. Either way only the request in flight fails, with Failed naming
// the instance and how the executor ended.
#pragma once

#include "error.hpp"
#include "executor_process.hpp"
#include "executor_protocol.hpp"
#include "result_record.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace overlay::daemon {

// The answer to one request: the executor's result, or why there is none
// (its own refusal, or what became of the executor).
using ExecutorOutcome = protocol::ResultRecord;

class Executor {
  public:
    using Clock = std::chrono::steady_clock;

    struct Options {
        std::string executor_path;
        std::string config_path;
        bool watch = false;
        // A Migrate executor (--migrate): the only role keeping CAP_CHOWN
        // and CAP_FOWNER, and the only one serving Migrate.
        bool migrate = false;
        // Called on the using thread: the hello of every executor started.
        std::function<void(const protocol::ExecutorHello&)> on_hello;
        // Called on the using thread (watch only): mount changes.
        std::function<void(const protocol::MountReport&)> on_report;
        // Called on the using thread when a start fails (the message).
        std::function<void(const std::string&)> on_start_failed;
    };

    explicit Executor(Options options);
    ~Executor();
    Executor(const Executor&) = delete;
    Executor& operator=(const Executor&) = delete;

    void set_timeout(std::chrono::milliseconds timeout) noexcept { timeout_ = timeout; }

    // Sends one request and waits for its answer. Never throws.
    ExecutorOutcome run(const protocol::Request& request) noexcept;

    // Starts the executor now unless it runs or its restart delay has not
    // passed. Never throws: a failed start only moves the next attempt.
    void ensure_started() noexcept;
    // When the next start may be tried (nullopt: running, or no delay).
    std::optional<Clock::time_point> restart_due() const noexcept;

    // The running executor's socket, to poll while idle (-1: none).
    int socket() const noexcept { return process_ ? process_->socket() : -1; }
    pid_t pid() const noexcept { return process_ ? process_->pid() : -1; }
    // The socket is readable while idle: a mount report, or its death.
    void on_readable() noexcept;
    // While idle: reaps an executor that died and starts another (when its
    // restart delay has passed), so none is left a zombie until next used.
    void check_alive() noexcept;

    // Closes the socket and reaps the executor (it exits on EOF).
    void stop() noexcept;

  private:
    std::optional<std::string> start(); // error message, or nullopt
    void lost() noexcept;               // the process is gone: the next start waits
    bool died_while_idle() noexcept;
    ExecutorOutcome run_once(const protocol::Request& request, bool& restart);

    Options options_;
    std::chrono::milliseconds timeout_{std::chrono::seconds(120)};
    std::unique_ptr<ExecutorProcess> process_;
    unsigned failures_ = 0;
    std::optional<Clock::time_point> next_start_;
};

} // namespace overlay::daemon
