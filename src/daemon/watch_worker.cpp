#include "watch_worker.hpp"

#include <cerrno>
#include <chrono>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace overlay::daemon {

WatchWorker::WatchWorker(Executor::Options options)
    : executor_(std::move(options)), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!wake_fd_) {
        throw_errno(ErrorCode::Failed, "eventfd", errno);
    }
    thread_ = std::thread([this] { loop(); });
}

WatchWorker::~WatchWorker() {
    stop();
}

void WatchWorker::wake() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void WatchWorker::sync(std::function<void()> done) {
    {
        std::lock_guard lock(mutex_);
        if (!stopping_) {
            syncs_.push_back(std::move(done));
            done = nullptr;
        }
    }
    if (done) {
        done();
        return;
    }
    wake();
}

void WatchWorker::stop() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake();
    if (thread_.joinable()) {
        thread_.join();
    }
}

void WatchWorker::loop() {
    const protocol::Request sync_request{}; // no verb: sync
    for (;;) {
        std::deque<std::function<void()>> syncs;
        bool stopping = false;
        {
            std::lock_guard lock(mutex_);
            syncs.swap(syncs_);
            stopping = stopping_;
        }
        if (!syncs.empty()) {
            executor_.ensure_started();
            // One round trip answers every sync queued so far. Failure
            // changes nothing for the callers: a restarted executor reports
            // the whole table, and the daemon signals what differs.
            if (executor_.socket() >= 0) {
                executor_.run(sync_request);
            }
            for (auto& done : syncs) {
                done();
            }
            continue;
        }
        if (stopping) {
            break;
        }
        executor_.ensure_started();
        int timeout = -1;
        if (auto due = executor_.restart_due()) {
            timeout = static_cast<int>(std::max<long long>(
                1,
                std::chrono::duration_cast<std::chrono::milliseconds>(*due - Executor::Clock::now())
                    .count()));
        }
        pollfd pfds[2] = {{wake_fd_.get(), POLLIN, 0}, {executor_.socket(), POLLIN, 0}};
        const int ready = ::poll(pfds, executor_.socket() >= 0 ? 2 : 1, timeout);
        if (ready < 0 && errno != EINTR) {
            break;
        }
        if (ready > 0 && (pfds[0].revents & POLLIN) != 0) {
            std::uint64_t count = 0;
            [[maybe_unused]] auto n = ::read(wake_fd_.get(), &count, sizeof count);
        }
        if (ready > 0 && executor_.socket() >= 0 && pfds[1].revents != 0) {
            executor_.on_readable();
        }
    }
    executor_.stop();
}

} // namespace overlay::daemon
