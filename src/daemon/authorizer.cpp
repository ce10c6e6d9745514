#include "authorizer.hpp"

#include "error.hpp"
#include "journal_log.hpp"

#include <gio/gio.h>
#include <deque>
#include <map>
#include <polkit/polkit.h>
#include <vector>

namespace overlay::daemon {

namespace {

// A check without a password prompt is a rule evaluation (polkit stops
// runaway rules after 15 s); one with a prompt waits for a human.
constexpr guint kCheckTimeoutMs = 20'000;
constexpr guint kInteractiveCheckTimeoutMs = 5 * 60'000;
constexpr gint kCredentialsTimeoutMs = 10'000;

using Verdict = AuthResult::Verdict;

enum class Stage { Credentials, WaitingForSlot, WaitingForAuthority, Polkit };
enum class CancelReason { None, CallerGone, Stopping, Timeout };

struct Check {
    std::uint64_t id = 0;
    AuthRequest request;
    Authorizer::Callback done;
    AuthResult result;
    Stage stage = Stage::Credentials;
    bool holds_slot = false; // counted in State::polkit_in_flight
    CancelReason reason = CancelReason::None;
    GCancellable* cancellable = nullptr;
    guint name_watch = 0;
    GSource* timeout = nullptr;
};

} // namespace

// Everything below the constructor's bus connection is touched only on the
// GLib thread.
struct Authorizer::State {
    GMainContext* context = nullptr;
    GMainLoop* loop = nullptr;
    GDBusConnection* bus = nullptr;
    PolkitAuthority* authority = nullptr;
    bool authority_pending = false;
    std::vector<std::uint64_t> waiting_for_authority;
    unsigned max_polkit_checks = 1;
    unsigned polkit_in_flight = 0;
    std::deque<std::uint64_t> waiting_for_slot;
    std::map<std::uint64_t, std::unique_ptr<Check>> checks;
    std::uint64_t next_id = 1;
    bool stopping = false;
    bool quit_requested = false;
};

namespace {

using State = Authorizer::State;

// Async callbacks carry the check's id, not a pointer: a check may have
// finished (cancelled) before a late callback arrives.
struct CheckRef {
    State* state;
    std::uint64_t id;
};

gpointer new_ref(State* state, std::uint64_t id) {
    return new CheckRef{state, id};
}
void free_ref(gpointer p) {
    delete static_cast<CheckRef*>(p);
}

Check* find(State* state, std::uint64_t id) {
    auto it = state->checks.find(id);
    return it == state->checks.end() ? nullptr : it->second.get();
}

void maybe_quit(State* state) {
    if (state->quit_requested && state->checks.empty()) {
        g_main_loop_quit(state->loop);
    }
}

void deliver(Authorizer::Callback& done, AuthResult result) {
    try {
        done(std::move(result));
    } catch (...) {
        log_message(3, "internal error delivering an authorization result");
    }
}

void need_polkit(State* state, Check* check);

// A polkit slot came free: the longest-waiting check takes it.
void release_slot(State* state) {
    --state->polkit_in_flight;
    while (!state->waiting_for_slot.empty()) {
        const std::uint64_t next = state->waiting_for_slot.front();
        state->waiting_for_slot.pop_front();
        if (Check* check = find(state, next)) {
            need_polkit(state, check);
            return;
        }
    }
}

void finish(State* state, std::uint64_t id, Verdict verdict, std::string polkit,
            std::string detail = {}) {
    auto it = state->checks.find(id);
    if (it == state->checks.end()) {
        return;
    }
    std::unique_ptr<Check> check = std::move(it->second);
    state->checks.erase(it);
    if (check->name_watch != 0) {
        g_dbus_connection_signal_unsubscribe(state->bus, check->name_watch);
    }
    if (check->timeout != nullptr) {
        g_source_destroy(check->timeout);
        g_source_unref(check->timeout);
    }
    g_clear_object(&check->cancellable);
    if (check->holds_slot) {
        release_slot(state);
    }
    check->result.verdict = verdict;
    check->result.polkit = std::move(polkit);
    check->result.detail = std::move(detail);
    deliver(check->done, std::move(check->result));
    maybe_quit(state);
}

// The one place a cancelled operation turns into a verdict.
void finish_cancelled(State* state, Check* check, const std::string& what) {
    switch (check->reason) {
    case CancelReason::CallerGone:
        finish(state, check->id, Verdict::CallerGone, "cancelled", "caller left the bus");
        return;
    case CancelReason::Stopping:
        finish(state, check->id, Verdict::Stopping, "cancelled", "service is stopping");
        return;
    case CancelReason::Timeout:
        finish(state, check->id, Verdict::Denied, "timeout", what + " timed out");
        return;
    case CancelReason::None:
        break;
    }
    finish(state, check->id, Verdict::Denied, "error", what + " was cancelled");
}

void cancel(State* state, Check* check, CancelReason reason) {
    if (check->reason == CancelReason::None) {
        check->reason = reason;
    }
    if (check->stage == Stage::WaitingForAuthority) {
        // No operation of this check is in flight: end it here.
        std::erase(state->waiting_for_authority, check->id);
        finish_cancelled(state, check, "polkit connection");
        return;
    }
    if (check->stage == Stage::WaitingForSlot) {
        std::erase(state->waiting_for_slot, check->id);
        finish_cancelled(state, check, "wait for a polkit check");
        return;
    }
    // The in-flight call completes with G_IO_ERROR_CANCELLED and ends the
    // check from its callback (polkit also withdraws a pending dialog).
    g_cancellable_cancel(check->cancellable);
}

void on_polkit_result(GObject* source, GAsyncResult* res, gpointer user_data) {
    auto* ref = static_cast<CheckRef*>(user_data);
    State* state = ref->state;
    const std::uint64_t id = ref->id;
    free_ref(user_data);

    g_autoptr(GError) error = nullptr;
    g_autoptr(PolkitAuthorizationResult) result =
        polkit_authority_check_authorization_finish(POLKIT_AUTHORITY(source), res, &error);
    Check* check = find(state, id);
    if (check == nullptr) {
        return;
    }
    if (error != nullptr) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            finish_cancelled(state, check, "polkit check");
            return;
        }
        // Fail closed. Drop the authority too: the next check gets a fresh
        // one, in case polkitd was restarted under it.
        g_clear_object(&state->authority);
        finish(state, id, Verdict::Denied, "error",
               std::string("polkit check failed: ") + error->message);
        return;
    }
    if (polkit_authorization_result_get_is_authorized(result)) {
        finish(state, id, Verdict::Allowed, "authorized");
    } else if (polkit_authorization_result_get_is_challenge(result) &&
               !check->request.interactive) {
        finish(state, id, Verdict::InteractiveRequired, "challenge");
    } else if (polkit_authorization_result_get_dismissed(result)) {
        finish(state, id, Verdict::Denied, "dismissed");
    } else {
        finish(state, id, Verdict::Denied, "not-authorized");
    }
}

void start_polkit(State* state, Check* check) {
    check->stage = Stage::Polkit;
    g_autoptr(PolkitSubject) subject = polkit_system_bus_name_new(check->request.sender.c_str());
    g_autoptr(PolkitDetails) details = polkit_details_new();
    polkit_details_insert(details, "instance", check->request.instance.c_str());
    const auto flags = check->request.interactive
                           ? POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION
                           : POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;
    polkit_authority_check_authorization(state->authority, subject, check->request.action.c_str(),
                                         details, flags, check->cancellable, on_polkit_result,
                                         new_ref(state, check->id));
}

void on_authority(GObject*, GAsyncResult* res, gpointer user_data) {
    auto* state = static_cast<State*>(user_data);
    g_autoptr(GError) error = nullptr;
    PolkitAuthority* authority = polkit_authority_get_finish(res, &error);
    state->authority_pending = false;
    g_clear_object(&state->authority);
    state->authority = authority;
    std::vector<std::uint64_t> waiting;
    waiting.swap(state->waiting_for_authority);
    for (auto id : waiting) {
        Check* check = find(state, id);
        if (check == nullptr) {
            continue;
        }
        if (authority != nullptr) {
            start_polkit(state, check);
        } else {
            finish(state, id, Verdict::Denied, "error",
                   std::string("polkit unavailable: ") + (error ? error->message : "unknown"));
        }
    }
}

void need_polkit(State* state, Check* check) {
    if (!check->holds_slot) {
        if (state->polkit_in_flight >= state->max_polkit_checks) {
            check->stage = Stage::WaitingForSlot;
            state->waiting_for_slot.push_back(check->id);
            return;
        }
        ++state->polkit_in_flight;
        check->holds_slot = true;
    }
    if (state->authority != nullptr) {
        start_polkit(state, check);
        return;
    }
    check->stage = Stage::WaitingForAuthority;
    state->waiting_for_authority.push_back(check->id);
    if (!state->authority_pending) {
        state->authority_pending = true;
        polkit_authority_get_async(nullptr, on_authority, state);
    }
}

void on_credentials(GObject* source, GAsyncResult* res, gpointer user_data) {
    auto* ref = static_cast<CheckRef*>(user_data);
    State* state = ref->state;
    const std::uint64_t id = ref->id;
    free_ref(user_data);

    g_autoptr(GError) error = nullptr;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    Check* check = find(state, id);
    if (check == nullptr) {
        return;
    }
    if (error != nullptr) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            finish_cancelled(state, check, "caller identification");
            return;
        }
        g_autofree gchar* remote = g_dbus_error_get_remote_error(error);
        if (remote != nullptr &&
            g_strcmp0(remote, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0) {
            // Left before we could ask: the same as leaving during the check.
            finish(state, id, Verdict::CallerGone, "cancelled", "caller left the bus");
            return;
        }
        finish(state, id, Verdict::Denied, "error",
               std::string("cannot identify the caller: ") + error->message);
        return;
    }
    g_autoptr(GVariant) creds = g_variant_get_child_value(reply, 0);
    guint32 uid = 0;
    guint32 pid = 0;
    if (g_variant_lookup(creds, "ProcessID", "u", &pid)) {
        check->result.pid = static_cast<pid_t>(pid);
    }
    if (!g_variant_lookup(creds, "UnixUserID", "u", &uid)) {
        finish(state, id, Verdict::Denied, "error", "the bus did not report the caller's uid");
        return;
    }
    check->result.uid = static_cast<uid_t>(uid);
    if (check->request.admit) {
        if (auto refused = check->request.admit(static_cast<uid_t>(uid))) {
            finish(state, id, Verdict::LimitsExceeded, "not-asked", *refused);
            return;
        }
    }
    if (check->request.action.empty()) {
        finish(state, id, Verdict::Allowed, "not-needed");
    } else if (uid == 0) {
        // As systemd's services do: root needs no polkit round trip (and
        // must not be locked out when polkitd is down).
        finish(state, id, Verdict::Allowed, "root");
    } else {
        need_polkit(state, check);
    }
}

void on_name_owner_changed(GDBusConnection*, const gchar*, const gchar*, const gchar*, const gchar*,
                           GVariant* parameters, gpointer user_data) {
    auto* ref = static_cast<CheckRef*>(user_data);
    const gchar* name = nullptr;
    const gchar* old_owner = nullptr;
    const gchar* new_owner = nullptr;
    g_variant_get(parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
    if (new_owner != nullptr && new_owner[0] != '\0') {
        return;
    }
    if (Check* check = find(ref->state, ref->id)) {
        cancel(ref->state, check, CancelReason::CallerGone);
    }
}

gboolean on_timeout(gpointer user_data) {
    auto* ref = static_cast<CheckRef*>(user_data);
    if (Check* check = find(ref->state, ref->id)) {
        cancel(ref->state, check, CancelReason::Timeout);
    }
    return G_SOURCE_REMOVE;
}

void start(State* state, std::unique_ptr<Check> owned) {
    if (state->stopping) {
        deliver(owned->done,
                AuthResult{Verdict::Stopping, {}, {}, "cancelled", "service is stopping"});
        return;
    }
    const std::uint64_t id = state->next_id++;
    owned->id = id;
    Check* check = owned.get();
    state->checks.emplace(id, std::move(owned));
    check->cancellable = g_cancellable_new();

    const char* sender = check->request.sender.c_str();
    // Subscribed before the credentials call on the same connection, so the
    // bus processes the match first: a caller that leaves after this point
    // is seen leaving, one that left before makes the call fail.
    check->name_watch = g_dbus_connection_signal_subscribe(
        state->bus, "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
        "/org/freedesktop/DBus", sender, G_DBUS_SIGNAL_FLAGS_NONE, on_name_owner_changed,
        new_ref(state, id), free_ref);

    check->timeout = g_timeout_source_new(check->request.interactive ? kInteractiveCheckTimeoutMs
                                                                     : kCheckTimeoutMs);
    g_source_set_callback(check->timeout, on_timeout, new_ref(state, id), free_ref);
    g_source_attach(check->timeout, state->context);

    g_dbus_connection_call(state->bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetConnectionCredentials",
                           g_variant_new("(s)", sender), G_VARIANT_TYPE("(a{sv})"),
                           G_DBUS_CALL_FLAGS_NONE, kCredentialsTimeoutMs, check->cancellable,
                           on_credentials, new_ref(state, id));
}

void cancel_all_checks(State* state) {
    state->stopping = true;
    std::vector<std::uint64_t> ids;
    for (const auto& [id, check] : state->checks) {
        ids.push_back(id);
    }
    for (auto id : ids) {
        if (Check* check = find(state, id)) {
            cancel(state, check, CancelReason::Stopping);
        }
    }
}

struct StartTask {
    State* state;
    std::unique_ptr<Check> check;
};

} // namespace

Authorizer::Authorizer(unsigned max_polkit_checks) : state_(std::make_unique<State>()) {
    state_->max_polkit_checks = max_polkit_checks == 0 ? 1 : max_polkit_checks;
    g_autoptr(GError) error = nullptr;
    // g_bus_get also honours DBUS_SYSTEM_BUS_ADDRESS, so the credentials
    // come from the same bus daemon that routed the call.
    state_->bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, nullptr, &error);
    if (state_->bus == nullptr) {
        throw Error(ErrorCode::Failed,
                    std::string("cannot connect to the system bus: ") + error->message);
    }
    // GLib would raise(SIGTERM) when the bus goes away; the bus thread's
    // own connection notices that and shuts down in order.
    g_dbus_connection_set_exit_on_close(state_->bus, FALSE);
    state_->context = g_main_context_new();
    state_->loop = g_main_loop_new(state_->context, FALSE);
    thread_ = std::thread([state = state_.get()] {
        g_main_context_push_thread_default(state->context);
        g_main_loop_run(state->loop);
        g_clear_object(&state->authority);
        g_main_context_pop_thread_default(state->context);
    });
}

Authorizer::~Authorizer() {
    stop();
    g_clear_object(&state_->bus);
    g_main_loop_unref(state_->loop);
    g_main_context_unref(state_->context);
}

void Authorizer::check(AuthRequest request, Callback done) {
    auto check = std::make_unique<Check>();
    check->request = std::move(request);
    check->done = std::move(done);
    auto* task = new StartTask{state_.get(), std::move(check)};
    g_main_context_invoke_full(
        state_->context, G_PRIORITY_DEFAULT,
        [](gpointer data) -> gboolean {
            auto* t = static_cast<StartTask*>(data);
            start(t->state, std::move(t->check));
            return G_SOURCE_REMOVE;
        },
        task, [](gpointer data) { delete static_cast<StartTask*>(data); });
}

void Authorizer::cancel_all() {
    g_main_context_invoke_full(
        state_->context, G_PRIORITY_DEFAULT,
        [](gpointer data) -> gboolean {
            cancel_all_checks(static_cast<State*>(data));
            return G_SOURCE_REMOVE;
        },
        state_.get(), nullptr);
}

void Authorizer::stop() {
    if (!thread_.joinable()) {
        return;
    }
    g_main_context_invoke_full(
        state_->context, G_PRIORITY_DEFAULT,
        [](gpointer data) -> gboolean {
            auto* state = static_cast<State*>(data);
            cancel_all_checks(state);
            state->quit_requested = true;
            maybe_quit(state);
            return G_SOURCE_REMOVE;
        },
        state_.get(), nullptr);
    thread_.join();
}

} // namespace overlay::daemon
