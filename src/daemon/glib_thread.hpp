// A thread that runs a GMainLoop on its own GMainContext, pushed as that
// thread's default: GLib async calls made on it (GDBus, libpolkit-gobject)
// complete on it. Other threads reach it only through invoke().
#pragma once

#include "glib_handles.hpp"

#include <functional>
#include <thread>

namespace overlay::daemon {

class GlibThread {
  public:
    GlibThread();  // starts the thread
    ~GlibThread(); // quits the loop if it still runs, and joins
    GlibThread(const GlibThread&) = delete;
    GlibThread& operator=(const GlibThread&) = delete;

    GMainContext* context() const noexcept { return context_.get(); }

    // Any thread: runs task on the thread, in order with other tasks (at
    // once when called on the thread itself). A task queued after the loop
    // has ended is dropped unrun.
    void invoke(std::function<void()> task);

    // On the thread: ends the loop once the current task returns.
    void quit() noexcept;

    // Any other thread: waits for the loop to end (someone must quit() it).
    void join();

  private:
    glib::MainContext context_;
    glib::MainLoop loop_;
    std::thread thread_;
};

} // namespace overlay::daemon
