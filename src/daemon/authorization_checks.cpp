#include "authorization_checks.hpp"

#include "dbus_errors.hpp"
#include "error.hpp"
#include "journal_log.hpp"

#include <optional>
#include <utility>

namespace overlay::daemon {

namespace {

// A check without a password prompt is a rule evaluation (polkit stops
// runaway rules after 15 s); one with a prompt waits for a human. Counted
// from when the check wants a polkit slot, so a wait for one counts too.
constexpr guint kCheckTimeoutMs = 20'000;
constexpr guint kInteractiveCheckTimeoutMs = 5 * 60'000;
constexpr gint kCredentialsTimeoutMs = 10'000;

// Departures only: a unique name whose new owner is empty. The bus daemon
// sends nothing for arrivals or for well-known names changing hands.
constexpr const char* kDepartureRule =
    "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
    "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg2=''";

using Verdict = AuthResult::Verdict;

void deliver(Authorizer::Callback& done, AuthResult result) noexcept {
    try {
        done(std::move(result));
    } catch (...) {
        log_message(LOG_ERR, "internal error delivering an authorization result");
    }
}

} // namespace

std::optional<KnownCallers::Identity> KnownCallers::find_settled(const std::string& sender) const {
    std::lock_guard lock(mutex_);
    auto it = known_.find(sender);
    if (it == known_.end() || unanswered_.contains(sender)) {
        return std::nullopt;
    }
    return it->second;
}

std::optional<uid_t> KnownCallers::uid_of(const std::string& sender) const {
    std::lock_guard lock(mutex_);
    auto it = known_.find(sender);
    if (it == known_.end()) {
        return std::nullopt;
    }
    return it->second.uid;
}

void KnownCallers::sent(const std::string& sender) {
    std::lock_guard lock(mutex_);
    ++unanswered_[sender];
}

void KnownCallers::answered(const std::string& sender) {
    std::lock_guard lock(mutex_);
    auto it = unanswered_.find(sender);
    if (it != unanswered_.end() && --it->second == 0) {
        unanswered_.erase(it);
    }
}

void KnownCallers::add(const std::string& sender, Identity identity) {
    std::lock_guard lock(mutex_);
    known_.insert_or_assign(sender, identity);
}

void KnownCallers::remove(const std::string& sender) {
    std::lock_guard lock(mutex_);
    known_.erase(sender);
}

std::optional<AuthResult> decide_without_polkit(const AuthRequest& request, uid_t uid,
                                                std::optional<pid_t> pid) {
    AuthResult result;
    result.uid = uid;
    result.pid = pid;
    if (request.admit) {
        if (auto refused = request.admit(uid)) {
            result.verdict = Verdict::LimitsExceeded;
            result.polkit = "not-asked";
            result.detail = std::move(*refused);
            return result;
        }
    }
    if (needs_polkit(request, uid)) {
        return std::nullopt;
    }
    result.verdict = Verdict::Allowed;
    result.polkit = request.action.empty() ? "not-needed" : "root";
    return result;
}

bool needs_polkit(const AuthRequest& request, uid_t uid) {
    return !request.action.empty() && uid != 0;
}

struct AuthorizationChecks::Check {
    std::uint64_t id = 0;
    AuthRequest request;
    Authorizer::Callback done;
    AuthResult result; // uid and pid once the caller is identified
    Stage stage = Stage::Identity;
    bool holds_slot = false; // a slot of turns_
    CancelReason reason = CancelReason::None;
    glib::Object<GCancellable> cancellable; // of the polkit call
    glib::Source timeout;                   // from the wait for a slot on
};

// A connection, by unique name: known (its uid and pid from the bus
// daemon) or being asked, and its checks in flight.
struct AuthorizationChecks::Caller {
    bool known = false;
    uid_t uid = 0;
    std::optional<pid_t> pid;
    std::uint64_t lookup = 0; // the lookup in flight (0: none)
    glib::Object<GCancellable> lookup_cancellable;
    std::set<std::uint64_t> checks;
    std::optional<std::list<std::string>::iterator> idle; // in idle_callers_
};

// Async callbacks carry the check's id, not a pointer: a check may have
// finished (cancelled) before a late callback arrives.
struct AuthorizationChecks::Ref {
    AuthorizationChecks* self;
    std::uint64_t id;
};

// The same for a lookup: the caller may have left (and its entry gone)
// before the answer arrives.
struct AuthorizationChecks::LookupRef {
    AuthorizationChecks* self;
    std::string sender;
    std::uint64_t lookup;
};

AuthorizationChecks::AuthorizationChecks(glib::Object<GDBusConnection> bus, GMainContext* context,
                                         unsigned max_polkit_checks,
                                         unsigned max_polkit_checks_per_uid,
                                         std::function<void()> quit)
    : bus_(std::move(bus)), context_(context), quit_(std::move(quit)),
      turns_(max_polkit_checks, max_polkit_checks_per_uid) {}

AuthorizationChecks::~AuthorizationChecks() = default;

void AuthorizationChecks::watch_departures() {
    // Delivered on this thread (the subscribing thread's default context).
    // No match of GDBus's own: the one below says exactly what to send.
    departures_ = glib::SignalSubscription(
        bus_.get(), g_dbus_connection_signal_subscribe(
                        bus_.get(), "org.freedesktop.DBus", "org.freedesktop.DBus",
                        "NameOwnerChanged", "/org/freedesktop/DBus", nullptr,
                        G_DBUS_SIGNAL_FLAGS_NO_MATCH_RULE, name_owner_changed, this, nullptr));
    g_autoptr(GError) error = nullptr;
    g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
        bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "AddMatch", g_variant_new("(s)", kDepartureRule), nullptr, G_DBUS_CALL_FLAGS_NONE,
        kCredentialsTimeoutMs, nullptr, &error);
    if (reply == nullptr) {
        departures_.reset();
        // Fail closed: without it a caller leaving would go unseen.
        throw Error(ErrorCode::Failed,
                    std::string("cannot watch callers leaving the bus: ") + error->message);
    }
}

AuthorizationChecks::Check* AuthorizationChecks::find(std::uint64_t id) {
    auto it = checks_.find(id);
    return it == checks_.end() ? nullptr : it->second.get();
}

void AuthorizationChecks::maybe_quit() {
    if (quit_requested_ && checks_.empty() && lookups_in_flight_ == 0) {
        quit_requested_ = false;
        // Dropped here, on the thread whose context their proxies use.
        authority_.reset();
        if (departures_) {
            // The connection may outlive us (GLib shares it): no reply wanted.
            g_dbus_connection_call(bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                   "org.freedesktop.DBus", "RemoveMatch",
                                   g_variant_new("(s)", kDepartureRule), nullptr,
                                   G_DBUS_CALL_FLAGS_NONE, -1, nullptr, nullptr, nullptr);
            departures_.reset();
        }
        quit_();
    }
}

// A known caller without checks stays known until it leaves; beyond
// kMaxIdleCallers the one idle longest is forgotten (it is asked again).
void AuthorizationChecks::forget_when_idle(const std::string& sender) {
    auto it = callers_.find(sender);
    if (it == callers_.end()) {
        return;
    }
    Caller& caller = it->second;
    if (!caller.known || !caller.checks.empty() || caller.idle) {
        return;
    }
    caller.idle = idle_callers_.insert(idle_callers_.end(), sender);
    while (idle_callers_.size() > kMaxIdleCallers) {
        known_.remove(idle_callers_.front());
        callers_.erase(idle_callers_.front());
        idle_callers_.pop_front();
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
    // No callback of this check fires after this point: the timeout goes
    // now, and late async completions find no check by its id.
    check->timeout.reset();
    check->cancellable.reset();
    if (auto caller = callers_.find(check->request.sender); caller != callers_.end()) {
        caller->second.checks.erase(id);
        forget_when_idle(check->request.sender);
    }
    if (check->stage == Stage::WaitingForSlot) {
        turns_.withdraw(*check->result.uid, id);
    }
    if (check->holds_slot) {
        if (auto next = turns_.release(*check->result.uid)) {
            take_slot(*next);
        }
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
        finish(check.id, Verdict::Stopping, "cancelled", kStoppingMessage);
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
    case Stage::Identity:
        // The lookup is its caller's, not this check's: it goes on for the
        // caller's other checks (and to know the caller next time).
        finish_cancelled(check, "caller identification");
        return;
    case Stage::WaitingForAuthority:
        // No operation of this check is in flight: end it here.
        std::erase(waiting_for_authority_, check.id);
        finish_cancelled(check, "polkit connection");
        return;
    case Stage::WaitingForSlot:
        finish_cancelled(check, "wait for a polkit check");
        return;
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
    for (auto& entry : callers_) {
        if (entry.second.lookup_cancellable) {
            g_cancellable_cancel(entry.second.lookup_cancellable.get());
        }
    }
}

void AuthorizationChecks::quit_when_idle() {
    cancel_all();
    quit_requested_ = true;
    maybe_quit();
}

void AuthorizationChecks::identified(Check& check, uid_t uid, std::optional<pid_t> pid) {
    check.result.uid = uid;
    check.result.pid = pid;
    if (auto decided = decide_without_polkit(check.request, uid, pid)) {
        finish(check.id, decided->verdict, std::move(decided->polkit), std::move(decided->detail));
    } else {
        need_polkit(check);
    }
}

void AuthorizationChecks::need_polkit(Check& check) {
    check.timeout.reset(g_timeout_source_new(check.request.interactive ? kInteractiveCheckTimeoutMs
                                                                       : kCheckTimeoutMs));
    g_source_set_callback(check.timeout.get(), timed_out, glib::user_data(Ref{this, check.id}),
                          glib::free_user_data<Ref>);
    g_source_attach(check.timeout.get(), context_);
    if (!turns_.take_or_wait(*check.result.uid, check.id)) {
        check.stage = Stage::WaitingForSlot; // take_slot() when its turn comes
        return;
    }
    check.holds_slot = true;
    take_slot(check.id);
}

// Check id holds a polkit slot: on to polkit.
void AuthorizationChecks::take_slot(std::uint64_t id) {
    Check* check = find(id);
    if (check == nullptr) {
        // Cannot be: a check leaving the wait is withdrawn from turns_.
        log_message(LOG_ERR, "internal error: a polkit slot went to a finished check");
        return;
    }
    check->holds_slot = true;
    if (authority_) {
        start_polkit(*check);
        return;
    }
    check->stage = Stage::WaitingForAuthority;
    waiting_for_authority_.push_back(id);
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
    check.cancellable.reset(g_cancellable_new());
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

// Once per connection: its later calls find it known.
void AuthorizationChecks::ask_identity(const std::string& sender, Caller& caller) {
    caller.lookup = next_lookup_++;
    caller.lookup_cancellable.reset(g_cancellable_new());
    ++lookups_in_flight_;
    // The departure match was added on this connection before: a caller
    // that leaves after the bus daemon answers is seen leaving, one that
    // left before makes the lookup fail.
    g_dbus_connection_call(
        bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "GetConnectionCredentials", g_variant_new("(s)", sender.c_str()), G_VARIANT_TYPE("(a{sv})"),
        G_DBUS_CALL_FLAGS_NONE, kCredentialsTimeoutMs, caller.lookup_cancellable.get(),
        identity_ready, glib::user_data(LookupRef{this, sender, caller.lookup}));
}

void AuthorizationChecks::identity_ready(GObject* source, GAsyncResult* res, gpointer data) {
    const auto ref = glib::take_user_data<LookupRef>(data);
    g_autoptr(GError) error = nullptr;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), res, &error);
    AuthorizationChecks* self = ref->self;
    --self->lookups_in_flight_;
    self->on_identity(ref->sender, ref->lookup, reply, error);
    self->maybe_quit();
}

void AuthorizationChecks::on_identity(const std::string& sender, std::uint64_t lookup,
                                      GVariant* reply, GError* error) {
    auto it = callers_.find(sender);
    if (it == callers_.end() || it->second.lookup != lookup) {
        return; // it left meanwhile: its checks have ended
    }
    Caller& caller = it->second;
    caller.lookup = 0;
    caller.lookup_cancellable.reset();
    const std::vector<std::uint64_t> ids(caller.checks.begin(), caller.checks.end());

    std::optional<std::pair<Verdict, std::string>> failed;
    guint32 uid = 0;
    guint32 pid = 0;
    bool has_pid = false;
    if (error != nullptr) {
        g_autofree gchar* remote = g_dbus_error_get_remote_error(error);
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            failed.emplace(Verdict::Stopping, kStoppingMessage);
        } else if (g_strcmp0(remote, "org.freedesktop.DBus.Error.NameHasNoOwner") == 0) {
            // Left before we could ask: the same as leaving during the check.
            failed.emplace(Verdict::CallerGone, "caller left the bus");
        } else {
            failed.emplace(Verdict::Denied,
                           std::string("cannot identify the caller: ") + error->message);
        }
    } else {
        g_autoptr(GVariant) creds = g_variant_get_child_value(reply, 0);
        has_pid = g_variant_lookup(creds, "ProcessID", "u", &pid);
        if (!g_variant_lookup(creds, "UnixUserID", "u", &uid)) {
            failed.emplace(Verdict::Denied, "the bus did not report the caller's uid");
        }
    }
    if (failed) {
        // Not kept: a later call asks again.
        callers_.erase(it);
        const char* polkit = failed->first == Verdict::Denied ? "error" : "cancelled";
        for (auto id : ids) {
            finish(id, failed->first, polkit, failed->second);
        }
        return;
    }
    caller.known = true;
    caller.uid = static_cast<uid_t>(uid);
    if (has_pid) {
        caller.pid = static_cast<pid_t>(pid);
    }
    known_.add(sender, KnownCallers::Identity{caller.uid, caller.pid});
    const std::optional<pid_t> known_pid = caller.pid;
    forget_when_idle(sender); // no check left waiting for it
    for (auto id : ids) {
        if (Check* check = find(id); check != nullptr && check->stage == Stage::Identity) {
            identified(*check, static_cast<uid_t>(uid), known_pid);
        }
    }
}

// A connection left the bus: forgotten, and its checks end.
void AuthorizationChecks::on_departure(const std::string& sender) {
    auto it = callers_.find(sender);
    if (it == callers_.end()) {
        return;
    }
    Caller& caller = it->second;
    known_.remove(sender);
    if (caller.idle) {
        idle_callers_.erase(*caller.idle);
    }
    if (caller.lookup_cancellable) {
        g_cancellable_cancel(caller.lookup_cancellable.get());
    }
    const std::vector<std::uint64_t> ids(caller.checks.begin(), caller.checks.end());
    callers_.erase(it);
    for (auto id : ids) {
        if (Check* check = find(id)) {
            cancel(*check, CancelReason::CallerGone);
        }
    }
}

void AuthorizationChecks::name_owner_changed(GDBusConnection*, const gchar*, const gchar*,
                                             const gchar*, const gchar*, GVariant* parameters,
                                             gpointer data) {
    const gchar* name = nullptr;
    const gchar* old_owner = nullptr;
    const gchar* new_owner = nullptr;
    g_variant_get(parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
    // Other matches on this connection (GDBus's own, for polkit's name)
    // deliver here too: only a unique name leaving is a departure.
    if (name[0] != ':' || new_owner[0] != '\0') {
        return;
    }
    static_cast<AuthorizationChecks*>(data)->on_departure(name);
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
        deliver(done, AuthResult{Verdict::Stopping, {}, {}, "cancelled", kStoppingMessage});
        return;
    }
    const std::uint64_t id = next_id_++;
    auto owned = std::make_unique<Check>();
    Check& check = *owned;
    check.id = id;
    check.request = std::move(request);
    check.done = std::move(done);
    checks_.emplace(id, std::move(owned));

    const std::string& sender = check.request.sender;
    Caller& caller = callers_[sender];
    if (caller.idle) {
        idle_callers_.erase(*caller.idle);
        caller.idle.reset();
    }
    caller.checks.insert(id);
    if (caller.known) {
        identified(check, caller.uid, caller.pid);
    } else if (caller.lookup == 0) {
        ask_identity(sender, caller);
    }
}

} // namespace overlay::daemon
