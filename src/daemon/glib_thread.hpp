// The GMainContext that GLib's async calls (GDBus, libpolkit-gobject) made
// on it complete in: it is the thread-default context of the thread that
// runs it. Either a thread of its own runs it (a GMainLoop: the unit
// tests), or the thread that made it does, inside its own loop: the
// daemon's bus thread polls the context's fds with its others
// (EventLoop::poll_glib), so that starting a polkit check and handing its
// answer on cost no hop between threads. Others reach it through invoke().
#pragma once

#include "glib_handles.hpp"

#include <functional>
#include <thread>

namespace overlay::daemon {

class GlibThread {
  public:
    enum class Runner {
        OwnThread,  // a thread started here runs the context
        ThisThread, // the constructing thread owns it and runs it in its loop
    };

    explicit GlibThread(Runner runner = Runner::OwnThread);
    ~GlibThread(); // quits the loop if it still runs, and joins
    GlibThread(const GlibThread&) = delete;
    GlibThread& operator=(const GlibThread&) = delete;

    GMainContext* context() const noexcept { return context_.get(); }

    // Any thread: runs task on the context's thread, in order with other
    // tasks (at once when called on that thread). A task queued after the
    // loop has ended is dropped unrun.
    void invoke(std::function<void()> task);

    // On the context's thread: ends the loop once the current task returns.
    void quit() noexcept;

    // OwnThread, any other thread: waits for the loop to end. ThisThread,
    // on that thread: runs the context here until quit(). Someone must
    // quit() it.
    void join();

  private:
    Runner runner_;
    glib::MainContext context_;
    glib::MainLoop loop_;
    std::thread thread_;
    bool quit_requested_ = false; // ThisThread: on that thread only
};

} // namespace overlay::daemon
