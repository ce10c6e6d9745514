#include "event_loop.hpp"

#include "error.hpp"
#include "journal_log.hpp"
#include "sdbus_compat.hpp"

#include <cerrno>
#include <cstdint>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>
#include <vector>

namespace overlay::daemon {

EventLoop::EventLoop() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (int err = pthread_sigmask(SIG_BLOCK, &mask, nullptr); err != 0) {
        throw_errno(ErrorCode::Failed, "pthread_sigmask", err);
    }
    signal_fd_ = UniqueFd(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!signal_fd_) {
        throw_errno(ErrorCode::Failed, "signalfd", errno);
    }
    wake_fd_ = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_fd_) {
        throw_errno(ErrorCode::Failed, "eventfd", errno);
    }
}

void EventLoop::post(std::function<void()> task) {
    bool first = false;
    {
        std::lock_guard lock(mutex_);
        first = posted_.empty();
        posted_.push_back(std::move(task));
    }
    // Tasks already queued mean a wake-up is on its way (the loop reads the
    // eventfd before it takes the queue): one write is enough for all.
    if (!first) {
        return;
    }
    const std::uint64_t one = 1;
    // Cannot fail short of a counter overflow; the loop drains all tasks
    // on any wake-up anyway.
    [[maybe_unused]] auto n = ::write(wake_fd_.get(), &one, sizeof one);
}

void EventLoop::run_posted() {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(wake_fd_.get(), &count, sizeof count);
    std::deque<std::function<void()>> tasks;
    {
        std::lock_guard lock(mutex_);
        tasks.swap(posted_);
    }
    for (auto& task : tasks) {
        try {
            task();
        } catch (const std::exception& e) {
            log_message(LOG_ERR, std::string("internal error in a posted task: ") + e.what());
        } catch (...) {
            log_message(LOG_ERR, "internal error in a posted task");
        }
    }
}

bool EventLoop::drain_signals(const Hooks& hooks) {
    bool any = false;
    signalfd_siginfo info{};
    while (::read(signal_fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        any = true;
        hooks.on_signal(static_cast<int>(info.ssi_signo));
    }
    return any;
}

namespace {

// systemd's watchdog (WatchdogSec= in the unit): pinged from this loop, so
// a loop that stops turning (a handler stuck, a deadlock) stops the pings
// and systemd restarts the service. Pings go at half the interval, as
// sd_watchdog_enabled(3) recommends. Nothing to do when no watchdog is set
// (not under systemd, or no WatchdogSec=).
class Watchdog {
  public:
    Watchdog() {
        std::uint64_t usec = 0;
        if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
            interval_ = std::chrono::microseconds(usec / 2);
            ping();
        }
    }
    // Milliseconds until the next ping is due, or -1 without a watchdog.
    int timeout_ms() const {
        if (interval_.count() == 0) {
            return -1;
        }
        auto left =
            std::chrono::ceil<std::chrono::milliseconds>(next_ - EventLoop::Clock::now()).count();
        return left < 0 ? 0 : static_cast<int>(left);
    }
    void ping_if_due() {
        if (interval_.count() != 0 && EventLoop::Clock::now() >= next_) {
            ping();
        }
    }

  private:
    void ping() {
        sd_notify(0, "WATCHDOG=1");
        next_ = EventLoop::Clock::now() + interval_;
    }
    std::chrono::microseconds interval_{0};
    EventLoop::Clock::time_point next_{};
};

} // namespace

EventLoop::End EventLoop::run(sdbus::IConnection& bus, const Hooks& hooks) {
    Watchdog watchdog;
    constexpr std::size_t kOwnFds = 4;
    std::vector<pollfd> fds(kOwnFds);
    std::vector<GPollFD> glib_fds(4);
    for (;;) {
        watchdog.ping_if_due();
        // Dispatch everything sd-bus already has before sleeping: one
        // readable event may carry many messages.
        sdbus_compat::BusPoll bus_poll{};
        try {
            while (sdbus_compat::process_pending(bus)) {
                hooks.on_bus_message();
            }
            if (hooks.done()) {
                return End::Done;
            }
            bus_poll = sdbus_compat::bus_poll(bus);
        } catch (const sdbus::Error& e) {
            // sd-bus reports a closed connection as ENOTCONN/ECONNRESET
            // from sd_bus_process or sd_bus_get_fd.
            log_message(LOG_ERR, std::string("bus connection lost: ") + e.getMessage());
            return End::BusDisconnected;
        }
        int timeout = bus_poll.timeout_ms;
        if (auto deadline = hooks.deadline()) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
            int ms = left.count() < 0 ? 0 : static_cast<int>(left.count());
            timeout = timeout < 0 ? ms : std::min(timeout, ms);
        }
        if (int ms = watchdog.timeout_ms(); ms >= 0) {
            timeout = timeout < 0 ? ms : std::min(timeout, ms);
        }
        // GLib's half of the poll (g_main_context_iteration, unrolled):
        // its fds and the time to its next timeout.
        gint glib_priority = 0;
        gint glib_count = 0;
        if (glib_ != nullptr) {
            g_main_context_prepare(glib_, &glib_priority);
            gint glib_timeout = -1;
            for (;;) {
                glib_count =
                    g_main_context_query(glib_, glib_priority, &glib_timeout, glib_fds.data(),
                                         static_cast<gint>(glib_fds.size()));
                if (static_cast<std::size_t>(glib_count) <= glib_fds.size()) {
                    break;
                }
                glib_fds.resize(static_cast<std::size_t>(glib_count));
            }
            if (glib_timeout >= 0) {
                timeout = timeout < 0 ? glib_timeout : std::min(timeout, glib_timeout);
            }
        }
        const auto glib_n = static_cast<std::size_t>(glib_count);
        fds.resize(kOwnFds + glib_n);
        fds[0] = {wake_fd_.get(), POLLIN, 0};
        fds[1] = {signal_fd_.get(), POLLIN, 0};
        fds[2] = bus_poll.bus;
        fds[3] = bus_poll.queued;
        for (std::size_t i = 0; i < glib_n; ++i) {
            fds[kOwnFds + i] = {glib_fds[i].fd, static_cast<short>(glib_fds[i].events), 0};
        }
        int r = ::poll(fds.data(), fds.size(), timeout);
        if (r < 0 && errno != EINTR) {
            throw_errno(ErrorCode::Failed, "poll", errno);
        }
        if (glib_ != nullptr) {
            // After every prepare and query, a check (nothing ready when
            // poll was interrupted).
            for (std::size_t i = 0; i < glib_n; ++i) {
                glib_fds[i].revents = r < 0 ? 0 : static_cast<gushort>(fds[kOwnFds + i].revents);
            }
            if (g_main_context_check(glib_, glib_priority, glib_fds.data(), glib_count)) {
                g_main_context_dispatch(glib_);
            }
        }
        if (r < 0) {
            continue;
        }
        if (fds[1].revents != 0) {
            drain_signals(hooks);
        }
        if (fds[0].revents != 0) {
            run_posted();
        }
        if (auto deadline = hooks.deadline(); deadline && Clock::now() >= *deadline) {
            hooks.on_deadline();
        }
        // The bus fds (readable, writable, hung up or timed out) are
        // handled by process_pending() at the top.
    }
}

} // namespace overlay::daemon
