#include "authorizer.hpp"

#include "authorization_checks.hpp"
#include "error.hpp"
#include "glib_thread.hpp"

#include <atomic>
#include <exception>
#include <future>
#include <utility>

namespace overlay::daemon {

namespace {

glib::Object<GDBusConnection> connect_system_bus() {
    g_autoptr(GError) error = nullptr;
    // g_bus_get also honours DBUS_SYSTEM_BUS_ADDRESS, so the credentials
    // come from the same bus daemon that routed the call.
    glib::Object<GDBusConnection> bus(g_bus_get_sync(G_BUS_TYPE_SYSTEM, nullptr, &error));
    if (!bus) {
        throw Error(ErrorCode::Failed,
                    std::string("cannot connect to the system bus: ") + error->message);
    }
    // GLib would raise(SIGTERM) when the bus goes away; the bus thread's
    // own connection notices that and shuts down in order.
    g_dbus_connection_set_exit_on_close(bus.get(), FALSE);
    return bus;
}

} // namespace

// The checks are touched only on the thread, from tasks it runs; they are
// destroyed after it has ended.
struct Authorizer::Impl {
    Impl(glib::Object<GDBusConnection> bus, unsigned max_polkit_checks,
         unsigned max_polkit_checks_per_uid, GlibThread::Runner runner)
        : thread(runner), checks(std::move(bus), thread.context(), max_polkit_checks,
                                 max_polkit_checks_per_uid, [this] { thread.quit(); }) {}

    GlibThread thread;
    AuthorizationChecks checks;
    bool stopped = false;
    std::atomic<bool> stopping = false; // cancel_all() was asked
};

// The bus first: when it is unreachable no thread is started. The watch
// for departures is in place before the first check is posted.
Authorizer::Authorizer(unsigned max_polkit_checks, unsigned max_polkit_checks_per_uid,
                       GlibThread::Runner runner)
    : impl_(std::make_unique<Impl>(connect_system_bus(), max_polkit_checks,
                                   max_polkit_checks_per_uid, runner)) {
    std::promise<void> watching;
    impl_->thread.invoke([checks = &impl_->checks, &watching] {
        try {
            checks->watch_departures();
            watching.set_value();
        } catch (...) {
            watching.set_exception(std::current_exception());
        }
    });
    try {
        watching.get_future().get();
    } catch (...) {
        stop();
        throw;
    }
}

Authorizer::~Authorizer() {
    stop();
}

void Authorizer::check(AuthRequest request, Callback done) {
    KnownCallers& known = impl_->checks.known();
    // A connection the checks already know, on a call that needs no
    // polkit check: answered here. (If it has just left the bus, the answer
    // is still its own: unique names are never reused.) Not while an
    // earlier call of it is still with the checks: this one would overtake it.
    if (!impl_->stopping.load()) {
        if (auto who = known.find_settled(request.sender);
            who && !needs_polkit(request, who->uid)) {
            done(*decide_without_polkit(request, who->uid, who->pid));
            return;
        }
    }
    known.sent(request.sender);
    // Counted as answered only once the answer is handed on.
    auto answered = [&known, sender = request.sender, done = std::move(done)](AuthResult r) {
        try {
            done(std::move(r));
        } catch (...) {
            known.answered(sender);
            throw;
        }
        known.answered(sender);
    };
    impl_->thread.invoke([checks = &impl_->checks, request = std::move(request),
                          done = std::move(answered)]() mutable {
        checks->start(std::move(request), std::move(done));
    });
}

GMainContext* Authorizer::context() const noexcept {
    return impl_->thread.context();
}

std::optional<uid_t> Authorizer::known_uid(const std::string& sender) const {
    return impl_->checks.known().uid_of(sender);
}

void Authorizer::cancel_all() {
    impl_->stopping = true;
    impl_->thread.invoke([checks = &impl_->checks] { checks->cancel_all(); });
}

std::size_t Authorizer::callers_known() {
    // Shared: a task dropped unrun (the thread has ended) breaks the promise
    // instead of leaving get() waiting.
    auto count = std::make_shared<std::promise<std::size_t>>();
    auto answer = count->get_future();
    impl_->thread.invoke([checks = &impl_->checks, count] { count->set_value(checks->callers()); });
    return answer.get();
}

void Authorizer::stop() {
    if (std::exchange(impl_->stopped, true)) {
        return;
    }
    impl_->stopping = true;
    impl_->thread.invoke([checks = &impl_->checks] { checks->quit_when_idle(); });
    impl_->thread.join();
}

} // namespace overlay::daemon
