#include "authorization_checks.hpp"

#include "journal_log.hpp"

#include <utility>

namespace overlay::daemon {

namespace {

// A check without a password prompt is a rule evaluation (polkit stops
// runaway rules after 15 s); one with a prompt waits for a human.
constexpr guint kCheckTimeoutMs = 20'000;
constexpr guint kInteractiveCheckTimeoutMs = 5 * 60'000;
constexpr gint kCredentialsTimeoutMs = 10'000;

using Verdict = AuthResult::Verdict;

void deliver(Authorizer::Callback& done, AuthResult result) noexcept {
    try {
        done(std::move(result));
    } catch (...) {
        log_message(3, "internal error delivering an authorization result");
    }
}

} // namespace

struct AuthorizationChecks::Check {
    std::uint64_t id = 0;
    AuthRequest request;
    Authorizer::Callback done;
    AuthResult result;
    Stage stage = Stage::Credentials;
    bool holds_slot = false; // counted in polkit_in_flight_
    CancelReason reason = CancelReason::None;
    glib::Object<GCancellable> cancellable;
    glib::SignalSubscription caller_watch;
    glib::Source timeout;
};

// Async callbacks carry the check's id, not a pointer: a check may have
// finished (cancelled) before a late callback arrives.
struct AuthorizationChecks::Ref {
    AuthorizationChecks* self;
    std::uint64_t id;
};

AuthorizationChecks::AuthorizationChecks(glib::Object<GDBusConnection> bus, GMainContext* context,
                                         unsigned max_polkit_checks, std::function<void()> quit)
    : bus_(std::move(bus)), context_(context), quit_(std::move(quit)),
      max_polkit_checks_(max_polkit_checks == 0 ? 1 : max_polkit_checks) {}

AuthorizationChecks::~AuthorizationChecks() = default;

AuthorizationChecks::Check* AuthorizationChecks::find(std::uint64_t id) {
    auto it = checks_.find(id);
    return it == checks_.end() ? nullptr : it->second.get();
}

void AuthorizationChecks::maybe_quit() {
    if (quit_requested_ && checks_.empty()) {
        quit_requested_ = false;
        // Dropped here, on the thread whose context its proxy uses.
        authority_.reset();
        quit_();
    }
}

void AuthorizationChecks::finish(std::uint64_t id, Verdict verdict, std::string polkit,
                                 std::string detail) {
    auto it = checks_.find(id);
    if (it == checks_.end()) {
        return;
    }
    std::unique_ptr<Check> check = std::move(it->second);
    checks_.erase(it);
    // No callback of this check fires after this point: the watch and the
    // timeout go now, and late async completions find no check by its id.
    check->caller_watch.reset();
    check->timeout.reset();
    check->cancellable.reset();
    if (check->holds_slot) {
        release_slot();
    }
    check->result.verdict = verdict;
    check->result.polkit = std::move(polkit);
    check->result.detail = std::move(detail);
    deliver(check->done, std::move(check->result));
    maybe_quit();
}

// The one place a cancelled operation turns into a verdict.
void AuthorizationChecks::finish_cancelled(Check& check, const std::string& what) {
    switch (check.reason) {
    case CancelReason::CallerGone:
        finish(check.id, Verdict::CallerGone, "cancelled", "caller left the bus");
        return;
    case CancelReason::Stopping:
        finish(check.id, Verdict::Stopping, "cancelled", "service is stopping");
        return;
    case CancelReason::Timeout:
        finish(check.id, Verdict::Denied, "timeout", what + " timed out");
        return;
    case CancelReason::None:
        break;
    }
    finish(check.id, Verdict::Denied, "error", what + " was cancelled");
}

void AuthorizationChecks::cancel(Check& check, CancelReason reason) {
    if (check.reason == CancelReason::None) {
        check.reason = reason;
    }
    switch (check.stage) {
    case Stage::WaitingForAuthority:
        // No operation of this check is in flight: end it here.
        std::erase(waiting_for_authority_, check.id);
        finish_cancelled(check, "polkit connection");
        return;
    case Stage::WaitingForSlot:
        std::erase(waiting_for_slot_, check.id);
        finish_cancelled(check, "wait for a polkit check");
        return;
    case Stage::Credentials:
    case Stage::Polkit:
        // The in-flight call completes with G_IO_ERROR_CANCELLED and ends
        // the check from its callback (polkit also withdraws a pending
        // dialog).
        g_cancellable_cancel(check.cancellable.get());
        return;
    }
}

void AuthorizationChecks::cancel_all() {
    stopping_ = true;
    std::vector<std::uint64_t> ids;
    for (const auto& entry : checks_) {
        ids.push_back(entry.first);
    }
    for (auto id : ids) {
        if (Check* check = find(id)) {
            cancel(*check, CancelReason::Stopping);
        }
    }
}

void AuthorizationChecks::quit_when_idle() {
    cancel_all();
    quit_requested_ = true;
    maybe_quit();
}

// A polkit slot came free: the longest-waiting check takes it.
void AuthorizationChecks::release_slot() {
    --polkit_in_flight_;
    while (!waiting_for_slot_.empty()) {
        const std::uint64_t next = waiting_for_slot_.front();
        waiting_for_slot_.pop_front();
        if (Check* check = find(next)) {
            need_polkit(*check);
            return;
        }
    }
}

void AuthorizationChecks::need_polkit(Check& check) {
    if (!check.holds_slot) {
        if (polkit_in_flight_ >= max_polkit_checks_) {
            check.stage = Stage::WaitingForSlot;
            waiting_for_slot_.push_back(check.id);
            return;
        }
        ++polkit_in_flight_;
        check.holds_slot = true;
    }
    if (authority_) {
        start_polkit(check);
        return;
    }
    check.stage = Stage::WaitingForAuthority;
    waiting_for_authority_.push_back(check.id);
    if (!authority_pending_) {
        authority_pending_ = true;
        // Completes on this thread, which outlives it: the loop ends only
        // when no check is left, and nothing iterates the context after.
        polkit_authority_get_async(nullptr, authority_ready, this);
    }
}

void AuthorizationChecks::authority_ready(GObject*, GAsyncResult* res, gpointer data) {
    g_autoptr(GError) error = nullptr;
    PolkitAuthority* authority = polkit_authority_get_finish(res, &error);
    static_cast<AuthorizationChecks*>(data)->on_authority(authority, error);
}

void AuthorizationChecks::on_authority(PolkitAuthority* authority, GError* error) {
    authority_pending_ = false;
    authority_.reset(authority);
    std::vector<std::uint64_t> waiting;
    waiting.swap(waiting_for_authority_);
    for (auto id : waiting) {
        Check* check = find(id);
        if (check == nullptr) {
            continue;
        }
        if (authority_) {
            start_polkit(*check);
        } else {
            finish(id, Verdict::Denied, "error",
                   std::string("polkit unavailable: ") + (error ? error->message : "unknown"));
        }
    }
}

void AuthorizationChecks::start_polkit(Check& check) {
    check.stage = Stage::Polkit;
    g_autoptr(PolkitSubject) subject = polkit_system_bus_name_new(check.request.sender.c_str());
    g_autoptr(PolkitDetails) details = polkit_details_new();
    polkit_details_insert(details, "instance", check.request.instance.c_str());
    const auto flags = check.request.interactive
                           ? POLKIT_CHECK_AUTHORIZATION_FLAGS_ALLOW_USER_INTERACTION
                           : POLKIT_CHECK_AUTHORIZATION_FLAGS_NONE;
    polkit_authority_check_authorization(authority_.get(), subject, check.request.action.c_str(),
                                         details, flags, check.cancellable.get(), polkit_ready,
                                         glib::user_data(Ref{this, check.id}));
}

void AuthorizationChecks::polkit_ready(GObject* source, GAsyncResult* res, gpointer data) {
    const auto ref = glib::take_user_data<Ref>(data);
    g_autoptr(GError) error = nullptr;
    g_autoptr(PolkitAuthorizationResult) result =
        polkit_authority_check_authorization_finish(POLKIT_AUTHORITY(source), res, &error);
    ref->self->on_polkit_result(ref->id, result, error);
}

void AuthorizationChecks::on_polkit_result(std::uint64_t id, PolkitAuthorizationResult* result,
                                           GError* error) {
    Check* check = find(id);
    if (check == nullptr) {
        return;
    }
    if (error != nullptr) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            finish_cancelled(*check, "polkit check");
            return;
        }
        // Fail closed. Drop the authority too: the next check gets a fresh
        // one, in case polkitd was restarted under it.
        authority_.reset();
        finish(id, Verdict::Denied, "error", std::string("polkit check failed: ") + error->message);
        return;
    }
    if (polkit_authorization_result_get_is_authorized(result)) {
        finish(id, Verdict::Allowed, "authorized");
    } else if (polkit_authorization_result_get_is_challenge(result) &&
               !check->request.interactive) {
        finish(id, Verdict::InteractiveRequired, "challenge");
    } else if (polkit_authorization_result_get_dismissed(result)) {
        finish(id, Verdict::Denied, "dismissed");
    } else {
        finish(id, Verdict::Denied, "not-authorized");
    }
}

void AuthorizationChecks::credentials_ready(GObject* source, GAsyncResult* res, gpointer data) {
    const auto ref = glib::take_user_data<Ref>(data);
    g_autoptr(GError) error = nullptr;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    ref->self->on_credentials(ref->id, reply, error);
}

void AuthorizationChecks::on_credentials(std::uint64_t id, GVariant* reply, GError* error) {
    Check* check = find(id);
    if (check == nullptr) {
        return;
    }
    if (error != nullptr) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            finish_cancelled(*check, "caller identification");
            return;
        }
        g_autofree gchar* remote = g_dbus_error_get_remote_error(error);
        if (g_strcmp0(remote, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0) {
            // Left before we could ask: the same as leaving during the check.
            finish(id, Verdict::CallerGone, "cancelled", "caller left the bus");
            return;
        }
        finish(id, Verdict::Denied, "error",
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
        finish(id, Verdict::Denied, "error", "the bus did not report the caller's uid");
        return;
    }
    check->result.uid = static_cast<uid_t>(uid);
    if (check->request.admit) {
        if (auto refused = check->request.admit(static_cast<uid_t>(uid))) {
            finish(id, Verdict::LimitsExceeded, "not-asked", *refused);
            return;
        }
    }
    if (check->request.action.empty()) {
        finish(id, Verdict::Allowed, "not-needed");
    } else if (uid == 0) {
        // As systemd's services do: root needs no polkit round trip (and
        // must not be locked out when polkitd is down).
        finish(id, Verdict::Allowed, "root");
    } else {
        need_polkit(*check);
    }
}

void AuthorizationChecks::name_owner_changed(GDBusConnection*, const gchar*, const gchar*,
                                             const gchar*, const gchar*, GVariant* parameters,
                                             gpointer data) {
    const auto* ref = static_cast<const Ref*>(data);
    const gchar* name = nullptr;
    const gchar* old_owner = nullptr;
    const gchar* new_owner = nullptr;
    g_variant_get(parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
    if (new_owner != nullptr && new_owner[0] != '\0') {
        return;
    }
    if (Check* check = ref->self->find(ref->id)) {
        ref->self->cancel(*check, CancelReason::CallerGone);
    }
}

gboolean AuthorizationChecks::timed_out(gpointer data) {
    const auto* ref = static_cast<const Ref*>(data);
    if (Check* check = ref->self->find(ref->id)) {
        ref->self->cancel(*check, CancelReason::Timeout);
    }
    return G_SOURCE_REMOVE;
}

void AuthorizationChecks::start(AuthRequest request, Authorizer::Callback done) {
    if (stopping_) {
        deliver(done, AuthResult{Verdict::Stopping, {}, {}, "cancelled", "service is stopping"});
        return;
    }
    const std::uint64_t id = next_id_++;
    auto owned = std::make_unique<Check>();
    Check& check = *owned;
    check.id = id;
    check.request = std::move(request);
    check.done = std::move(done);
    check.cancellable.reset(g_cancellable_new());
    checks_.emplace(id, std::move(owned));

    const char* sender = check.request.sender.c_str();
    // Subscribed before the credentials call on the same connection, so the
    // bus processes the match first: a caller that leaves after this point
    // is seen leaving, one that left before makes the call fail. (Watching
    // only from the polkit stage on would spare root's calls the match, but
    // a caller leaving between the two would go unseen.)
    check.caller_watch = glib::SignalSubscription(
        bus_.get(),
        g_dbus_connection_signal_subscribe(
            bus_.get(), "org.freedesktop.DBus", "org.freedesktop.DBus", "NameOwnerChanged",
            "/org/freedesktop/DBus", sender, G_DBUS_SIGNAL_FLAGS_NONE, name_owner_changed,
            glib::user_data(Ref{this, id}), glib::free_user_data<Ref>));

    check.timeout.reset(g_timeout_source_new(check.request.interactive ? kInteractiveCheckTimeoutMs
                                                                       : kCheckTimeoutMs));
    g_source_set_callback(check.timeout.get(), timed_out, glib::user_data(Ref{this, id}),
                          glib::free_user_data<Ref>);
    g_source_attach(check.timeout.get(), context_);

    g_dbus_connection_call(bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus", "GetConnectionCredentials",
                           g_variant_new("(s)", sender), G_VARIANT_TYPE("(a{sv})"),
                           G_DBUS_CALL_FLAGS_NONE, kCredentialsTimeoutMs, check.cancellable.get(),
                           credentials_ready, glib::user_data(Ref{this, id}));
}

} // namespace overlay::daemon
