#include "executor.hpp"

#include "journal_log.hpp"
#include "packet_channel.hpp"

#include <algorithm>
#include <poll.h>
#include <syslog.h>
#include <thread>

namespace overlay::daemon {

namespace {

// A healthy executor says hello within a few milliseconds; the bound only
// keeps a broken one from holding its thread.
constexpr std::chrono::seconds kHelloTimeout{10};
constexpr std::chrono::milliseconds kFirstRestartDelay{100};
constexpr std::chrono::milliseconds kMaxRestartDelay{5000};

std::string subject_of(const protocol::Request& r) {
    if (!r.instance.empty()) {
        return "instance " + r.instance;
    }
    return std::string(protocol::request_word(r));
}

ExecutorOutcome failed(std::string message) {
    return protocol::ExecutorFailure{ErrorCode::Failed, std::move(message)};
}

} // namespace

Executor::Executor(Options options) : options_(std::move(options)) {}

Executor::~Executor() {
    stop();
}

std::optional<Executor::Clock::time_point> Executor::restart_due() const noexcept {
    if (process_) {
        return std::nullopt;
    }
    return next_start_;
}

void Executor::lost() noexcept {
    process_.reset();
    ++failures_;
    auto delay = kFirstRestartDelay * (1U << std::min(failures_ - 1, 6U));
    next_start_ = Clock::now() + std::min<std::chrono::milliseconds>(delay, kMaxRestartDelay);
}

std::optional<std::string> Executor::start() {
    try {
        auto process = std::make_unique<ExecutorProcess>(
            options_.executor_path, options_.config_path, options_.watch, options_.migrate);
        const auto hello = protocol::receive_message(process->socket(), kHelloTimeout);
        std::optional<protocol::ExecutorHello> parsed;
        if (hello.status == protocol::ReceiveStatus::Message) {
            parsed = protocol::parse_hello(hello.message);
        }
        if (!parsed) {
            const std::string why =
                hello.status == protocol::ReceiveStatus::TimedOut
                    ? "did not say hello in time and " + process->kill_and_reap()
                : hello.status == protocol::ReceiveStatus::Closed
                    ? process->reap(std::chrono::milliseconds(1000))
                    : "sent a malformed hello and " + process->kill_and_reap();
            return "executor " + printable(options_.executor_path) + " " + why;
        }
        if (options_.on_hello) {
            options_.on_hello(*parsed);
        }
        process_ = std::move(process);
        next_start_.reset();
        return std::nullopt;
    } catch (const std::exception& e) {
        return e.what();
    }
}

void Executor::ensure_started() noexcept {
    if (process_ || (next_start_ && Clock::now() < *next_start_)) {
        return;
    }
    if (auto error = start()) {
        log_message(LOG_ERR, "cannot start an executor: " + *error);
        lost();
        if (options_.on_start_failed) {
            options_.on_start_failed(*error);
        }
    }
}

void Executor::on_readable() noexcept {
    if (!process_) {
        return;
    }
    try {
        const auto received =
            protocol::receive_message(process_->socket(), std::chrono::milliseconds(0));
        if (received.status == protocol::ReceiveStatus::TimedOut) {
            return;
        }
        if (received.status == protocol::ReceiveStatus::Closed) {
            const std::string how = process_->reap(std::chrono::milliseconds(1000));
            log_message(LOG_ERR, "executor pid " + std::to_string(process_->pid()) + " " + how +
                                     " while idle; restarting it");
            lost();
            return;
        }
        auto report = protocol::parse_mount_report(received.message);
        if (!report) {
            throw Error(ErrorCode::Failed, "an unrequested message that is no mount report");
        }
        if (options_.on_report) {
            options_.on_report(*report);
        }
    } catch (const std::exception& e) {
        const std::string how = process_->kill_and_reap();
        log_message(LOG_ERR, std::string("executor broke the protocol (") + e.what() + ") and " +
                                 how + "; restarting it");
        lost();
    }
}

ExecutorOutcome Executor::run(const protocol::Request& request) noexcept {
    try {
        bool restart = false;
        ExecutorOutcome out = run_once(request, restart);
        if (restart) {
            // The config moved to another host namespace: a new executor
            // enters it, and the request is asked once more.
            out = run_once(request, restart);
            if (restart) {
                return failed(subject_of(request) + ": executor asked for a second restart");
            }
        }
        return out;
    } catch (const std::exception& e) {
        return failed(subject_of(request) + ": " + e.what());
    }
}

bool Executor::died_while_idle() noexcept {
    if (!process_) {
        return false;
    }
    pollfd pfd{process_->socket(), POLLIN, 0};
    if (::poll(&pfd, 1, 0) <= 0 || (pfd.revents & (POLLHUP | POLLERR)) == 0) {
        return false;
    }
    const pid_t pid = process_->pid();
    const std::string how = process_->reap(std::chrono::milliseconds(1000));
    log_message(LOG_ERR, "executor pid " + std::to_string(pid) + " " + how +
                             " while idle; starting another");
    lost();
    return true;
}

void Executor::check_alive() noexcept {
    died_while_idle();
    ensure_started();
}

ExecutorOutcome Executor::run_once(const protocol::Request& request, bool& restart) {
    restart = false;
    const std::string subject = subject_of(request);
    const std::string message = protocol::format_request(request);
    // An executor that died while idle never saw this request: replace it
    // and ask the new one, once.
    bool sent = false;
    for (int attempt = 0; attempt < 2 && !sent; ++attempt) {
        if (!process_) {
            if (next_start_) {
                std::this_thread::sleep_until(*next_start_);
            }
            if (auto error = start()) {
                lost();
                return failed(subject + ": " + *error);
            }
        }
        if (died_while_idle()) {
            continue;
        }
        if (protocol::send_message(process_->socket(), message)) {
            sent = true;
        } else {
            const pid_t pid = process_->pid();
            log_message(LOG_ERR, "executor pid " + std::to_string(pid) + " " +
                                     process_->reap(std::chrono::milliseconds(1000)) +
                                     " before it got a request; starting another");
            lost();
        }
    }
    if (!sent) {
        return failed(subject + ": no executor would take the request");
    }
    const pid_t pid = process_->pid();
    const std::string verb(protocol::request_word(request));
    auto died = [&](const std::string& how) {
        lost();
        return failed(subject + ": executor pid " + std::to_string(pid) + " " + how + " during " +
                      verb);
    };
    const auto deadline = Clock::now() + timeout_;
    for (;;) {
        const auto left =
            std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()),
                     std::chrono::milliseconds(0));
        protocol::Received received;
        try {
            received = protocol::receive_message(process_->socket(), left);
        } catch (const Error& e) {
            return died(process_->kill_and_reap() + " after a protocol error (" + e.what() + ")");
        }
        if (received.status == protocol::ReceiveStatus::TimedOut) {
            return died("did not finish within " + std::to_string(timeout_.count()) + " ms and " +
                        process_->kill_and_reap());
        }
        if (received.status == protocol::ReceiveStatus::Closed) {
            return died(process_->reap(std::chrono::milliseconds(1000)));
        }
        if (received.message == protocol::kRestart) {
            process_->reap(std::chrono::milliseconds(1000));
            process_.reset();
            restart = true;
            return {};
        }
        if (auto report = protocol::parse_mount_report(received.message)) {
            if (options_.on_report) {
                options_.on_report(*report);
            }
            continue;
        }
        auto parsed = protocol::parse_result_record(received.message);
        if (!parsed) {
            return died(process_->kill_and_reap() + " after an unreadable answer");
        }
        failures_ = 0;
        return std::move(*parsed);
    }
}

void Executor::stop() noexcept {
    if (process_) {
        process_->reap(std::chrono::milliseconds(2000));
        process_.reset();
    }
}

} // namespace overlay::daemon
