// The bus thread's loop. sdbus-c++ 1.2 is not safe to use from two threads
// while its own event loop runs: replies and signals sent from another
// thread race on sd-bus' non-atomic message and bus reference counts, and a
// reply that does not fit the socket stays queued until the loop thread
// happens to wake (its poll() was armed without POLLOUT). So this loop owns
// the connection alone: it polls the sd-bus fd (events and timeout re-read
// every turn, so queued output is flushed) with sdbus-c++ 2.x's own event fd
// (sdbus_compat::bus_poll), an eventfd through which other threads post
// tasks, and a signalfd for SIGTERM/SIGINT. Every sdbus object
// (Result, reply, signal) is created, used and destroyed on this thread.
// It may also run a GMainContext this thread owns (poll_glib: the
// authorizer's), whose fds it polls with its own and whose sources it
// dispatches, so that GLib's async calls complete on this thread.
#pragma once

#include "unique_fd.hpp"

#include <chrono>
#include <deque>
#include <functional>
#include <glib.h>
#include <mutex>
#include <optional>
#include <sdbus-c++/Error.h>
#include <sdbus-c++/IConnection.h>

namespace overlay::daemon {

class EventLoop {
  public:
    using Clock = std::chrono::steady_clock;

    // Blocks SIGTERM and SIGINT in the calling thread: construct it in main
    // before any other thread exists, so that every thread inherits the mask
    // and the signals arrive only through the signalfd.
    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Any thread. Tasks run on the loop thread in posting order; tasks
    // still queued when the loop has ended are dropped unrun.
    void post(std::function<void()> task);

    struct Hooks {
        std::function<void(int signal)> on_signal;
        std::function<void()> on_bus_message; // a message was dispatched
        std::function<std::optional<Clock::time_point>()> deadline;
        std::function<void()> on_deadline;
        std::function<bool()> done; // checked when nothing is left to do
    };

    // Before run(): the context run() also iterates, owned (acquired) by
    // the thread that calls run().
    void poll_glib(GMainContext* context) noexcept { glib_ = context; }

    enum class End { Done, BusDisconnected };
    End run(sdbus::IConnection& bus, const Hooks& hooks);

  private:
    void run_posted();
    bool drain_signals(const Hooks& hooks);

    UniqueFd wake_fd_;
    UniqueFd signal_fd_;
    std::mutex mutex_;
    std::deque<std::function<void()>> posted_;
    GMainContext* glib_ = nullptr;
};

} // namespace overlay::daemon
