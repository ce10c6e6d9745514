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

GlibThread::GlibThread()
    : context_(g_main_context_new()), loop_(g_main_loop_new(context_.get(), FALSE)) {
    thread_ = std::thread([context = context_.get(), loop = loop_.get()] {
        g_main_context_push_thread_default(context);
        g_main_loop_run(loop);
        g_main_context_pop_thread_default(context);
    });
}

GlibThread::~GlibThread() {
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
    g_main_loop_quit(loop_.get());
}

void GlibThread::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

} // namespace overlay::daemon
