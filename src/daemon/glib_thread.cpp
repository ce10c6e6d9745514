#include "glib_thread.hpp"

#include "journal_log.hpp"

namespace overlay::daemon {

namespace {

gboolean run_task(gpointer data) {
    auto* task = static_cast<std::function<void()>*>(data);
    try {
        (*task)();
    } catch (...) {
        // An exception must not unwind through GLib's C frames.
        log_message(LOG_ERR, "internal error in a task of the GLib thread");
    }
    return G_SOURCE_REMOVE;
}

} // namespace

GlibThread::GlibThread(Runner runner)
    : runner_(runner), context_(g_main_context_new()),
      loop_(g_main_loop_new(context_.get(), FALSE)) {
    if (runner_ == Runner::ThisThread) {
        // Owned by this thread from now on: invoke() here runs at once, and
        // only this thread may iterate it.
        g_main_context_acquire(context_.get());
        g_main_context_push_thread_default(context_.get());
        return;
    }
    thread_ = std::thread([context = context_.get(), loop = loop_.get()] {
        g_main_context_push_thread_default(context);
        g_main_loop_run(loop);
        g_main_context_pop_thread_default(context);
    });
}

GlibThread::~GlibThread() {
    if (runner_ == Runner::ThisThread) {
        g_main_context_pop_thread_default(context_.get());
        g_main_context_release(context_.get());
        return;
    }
    if (thread_.joinable()) {
        // Never left waiting for a loop nobody ends.
        invoke([this] { quit(); });
        join();
    }
}

void GlibThread::invoke(std::function<void()> task) {
    g_main_context_invoke_full(context_.get(), G_PRIORITY_DEFAULT, run_task,
                               glib::user_data(std::move(task)),
                               glib::free_user_data<std::function<void()>>);
}

void GlibThread::quit() noexcept {
    quit_requested_ = true;
    g_main_loop_quit(loop_.get());
}

void GlibThread::join() {
    if (runner_ == Runner::ThisThread) {
        // quit() may have come already (nothing was left to wait for).
        while (!quit_requested_) {
            g_main_context_iteration(context_.get(), TRUE);
        }
        return;
    }
    if (thread_.joinable()) {
        thread_.join();
    }
}

} // namespace overlay::daemon
