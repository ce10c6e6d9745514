// The checks in flight and what each is waiting for: its caller's identity,
// a polkit slot (PolkitTurns: a share per uid, uids served in turn), the
// PolkitAuthority, polkit's answer. And the callers: a connection's uid and
// pid are asked of the bus daemon once (unique names are never reused) and
// kept until it leaves the bus, seen through one subscription to the bus
// daemon's NameOwnerChanged for departures (never a match per call or per
// connection). A caller leaving ends its checks with CallerGone.
// Single-threaded: every member is called on the thread that runs the
// GMainContext it was given (Authorizer posts work there), so that GDBus's
// and libpolkit-gobject's async calls complete on that thread.
#pragma once

#include "authorizer.hpp"
#include "glib_handles.hpp"
#include "polkit_turns.hpp"

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <polkit/polkit.h>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace overlay::daemon {

// The connections whose identity is known, readable from any thread, so
// that a known caller's call needing no polkit check (root's, or one that
// only identifies its caller) is answered on the thread it arrived on,
// without a trip through the checks' context. Identities are added and removed
// by AuthorizationChecks on its thread; the Authorizer counts the checks of
// each connection it sent there, so that a call answered at once never
// overtakes an earlier one of the same connection.
class KnownCallers {
  public:
    struct Identity {
        uid_t uid = 0;
        std::optional<pid_t> pid;
    };
    // Known, and no earlier check of it still unanswered.
    std::optional<Identity> find_settled(const std::string& sender) const;
    // Its uid, when known (whatever its checks): what CallLimits charges.
    std::optional<uid_t> uid_of(const std::string& sender) const;
    void add(const std::string& sender, Identity identity);
    void remove(const std::string& sender);
    // A check of sender sent to the checks' context; answered (after its
    // answer was handed on).
    void sent(const std::string& sender);
    void answered(const std::string& sender);

  private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Identity> known_;
    std::unordered_map<std::string, unsigned> unanswered_;
};

// Whether polkit must be asked about a call of uid: not when it only
// identifies its caller, nor for root (as systemd's services do: root needs
// no polkit round trip, and must not be locked out when polkitd is down).
bool needs_polkit(const AuthRequest& request, uid_t uid);

// The verdict on a call of an identified caller that needs no polkit check
// (admit() refused it, or needs_polkit() is false), with result.uid and
// .pid set; nullopt when polkit must be asked. Calls request.admit once.
std::optional<AuthResult> decide_without_polkit(const AuthRequest& request, uid_t uid,
                                                std::optional<pid_t> pid);

class AuthorizationChecks {
  public:
    // Callers without a check in flight kept known (beyond that the oldest
    // is forgotten: asked again if it calls again).
    static constexpr std::size_t kMaxIdleCallers = 4096;

    // bus: the connection used to ask the bus daemon who is calling.
    // quit: called once, on the thread, when quit_when_idle() was asked
    // and the last check has ended.
    AuthorizationChecks(glib::Object<GDBusConnection> bus, GMainContext* context,
                        unsigned max_polkit_checks, unsigned max_polkit_checks_per_uid,
                        std::function<void()> quit);
    ~AuthorizationChecks();
    AuthorizationChecks(const AuthorizationChecks&) = delete;
    AuthorizationChecks& operator=(const AuthorizationChecks&) = delete;

    // Subscribes to departures: on the thread, before the first start().
    // Blocks for one round trip to the bus daemon, so that every later call
    // on the connection is ordered after the match. Throws overlay::Error.
    void watch_departures();
    void start(AuthRequest request, Authorizer::Callback done);
    // Pending and later checks end with Stopping.
    void cancel_all();
    // cancel_all(), then quit once no check and no identity lookup is left.
    void quit_when_idle();
    // Connections whose identity is known or being asked.
    std::size_t callers() const noexcept { return callers_.size(); }
    // Any thread.
    KnownCallers& known() noexcept { return known_; }

  private:
    enum class Stage { Identity, WaitingForSlot, WaitingForAuthority, Polkit };
    enum class CancelReason { None, CallerGone, Stopping, Timeout };
    struct Check;
    struct Caller;
    struct Ref;
    struct LookupRef;

    Check* find(std::uint64_t id);
    void finish(std::uint64_t id, AuthResult::Verdict verdict, std::string polkit,
                std::string detail = {});
    void finish_cancelled(Check& check, const std::string& what);
    void cancel(Check& check, CancelReason reason);
    void identified(Check& check, uid_t uid, std::optional<pid_t> pid);
    void need_polkit(Check& check);
    void take_slot(std::uint64_t id);
    void start_polkit(Check& check);
    void forget_when_idle(const std::string& sender);
    void maybe_quit();

    void ask_identity(const std::string& sender, Caller& caller);
    void on_identity(const std::string& sender, std::uint64_t serial, GVariant* reply,
                     GError* error);
    void on_departure(const std::string& sender);
    void on_authority(PolkitAuthority* authority, GError* error);
    void on_polkit_result(std::uint64_t id, PolkitAuthorizationResult* result, GError* error);

    static void identity_ready(GObject* source, GAsyncResult* res, gpointer data);
    static void authority_ready(GObject* source, GAsyncResult* res, gpointer data);
    static void polkit_ready(GObject* source, GAsyncResult* res, gpointer data);
    static void name_owner_changed(GDBusConnection*, const gchar*, const gchar*, const gchar*,
                                   const gchar*, GVariant* parameters, gpointer data);
    static gboolean timed_out(gpointer data);

    glib::Object<GDBusConnection> bus_;
    GMainContext* context_;
    std::function<void()> quit_;
    glib::SignalSubscription departures_;
    glib::Object<PolkitAuthority> authority_;
    bool authority_pending_ = false;
    std::vector<std::uint64_t> waiting_for_authority_;
    PolkitTurns turns_;
    std::map<std::uint64_t, std::unique_ptr<Check>> checks_;
    std::map<std::string, Caller> callers_;
    std::list<std::string> idle_callers_; // known, no check in flight; oldest first
    KnownCallers known_;                  // the known ones, for other threads
    unsigned lookups_in_flight_ = 0;
    std::uint64_t next_id_ = 1;
    std::uint64_t next_lookup_ = 1;
    bool stopping_ = false;
    bool quit_requested_ = false;
};

} // namespace overlay::daemon
