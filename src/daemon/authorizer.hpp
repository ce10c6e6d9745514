// Who is calling, and may they? Answers asynchronously on the thread that
// runs a GMainContext (its own, or the daemon's bus thread) and owns it, the GDBusConnection used
// to ask the bus daemon for a connection's credentials (once per connection, kept until it leaves),
// and the PolkitAuthority (libpolkit-gobject completes async calls in the thread-default context of
// the thread that made them, so all polkit calls are made on this thread; `_sync` variants would
// block it for as long as a password dialog is open).
#pragma once

#include "glib_thread.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <sys/types.h>

namespace overlay::daemon {

struct AuthRequest {
    std::string sender;   // the caller's unique bus name
    std::string action;   // polkit action id; empty: identify the caller only
    std::string instance; // polkit detail "instance"
    bool interactive = false;
    // Called once the caller's uid is known, before polkit is asked (on the
    // thread that answers, see Callback): a reason refuses the call with
    // LimitsExceeded.
    std::function<std::optional<std::string>(uid_t)> admit;
};

struct AuthResult {
    enum class Verdict {
        Allowed,
        Denied,              // polkit said no, or could not be asked: fail closed
        InteractiveRequired, // polkit wants a password, the call forbade prompting
        LimitsExceeded,      // admit() refused: too many calls of this user
        CallerGone,          // the caller left the bus: do nothing
        Stopping,            // the service is stopping
    };
    Verdict verdict = Verdict::Denied;
    // From the bus daemon (GetConnectionCredentials), never from /proc.
    std::optional<uid_t> uid;
    std::optional<pid_t> pid;
    std::string polkit; // for the log: not-needed, root, authorized, not-authorized, ...
    std::string detail; // for the log: why, when something failed
};

class Authorizer {
  public:
    // Runs exactly once per check: on the thread that runs context(), or
    // before check() returns, on its caller's thread, when the connection is
    // known and the call needs no polkit check (root's; identification only).
    using Callback = std::function<void(AuthResult)>;

    // Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured),
    // starts the thread and subscribes to callers leaving the bus. At most
    // max_polkit_checks polkit checks are in flight at once, and at most
    // max_polkit_checks_per_uid of one uid; later ones wait, the uids
    // waiting served in turn (PolkitTurns). runner: ThisThread when the
    // constructing thread's own loop iterates context() (the daemon's bus
    // thread): checks then start and end on that thread, with no hop to
    // another. Throws overlay::Error when the bus is unreachable.
    Authorizer(unsigned max_polkit_checks, unsigned max_polkit_checks_per_uid,
               GlibThread::Runner runner = GlibThread::Runner::OwnThread);
    ~Authorizer(); // stop()
    Authorizer(const Authorizer&) = delete;
    Authorizer& operator=(const Authorizer&) = delete;

    // Any thread. Uid 0 is allowed without polkit. A check is cancelled when
    // the caller leaves the bus before it completes. admit() runs on the
    // thread that answers.
    void check(AuthRequest request, Callback done);

    // Any thread: the uid of the connection sender when it is known (asked
    // of the bus daemon once, kept until it leaves); nullopt before that.
    std::optional<uid_t> known_uid(const std::string& sender) const;

    // Any thread: pending and later checks end with Stopping.
    void cancel_all();

    // cancel_all(), wait for every callback, end the thread (ThisThread:
    // iterates context() here until then).
    void stop();

    // The context the checks run in; ThisThread: to be iterated by the
    // constructing thread's loop until stop().
    GMainContext* context() const noexcept;

    // Any thread but the GLib one: connections whose uid and pid are
    // known or being asked of the bus daemon (the tests' view of the cache).
    std::size_t callers_known();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace overlay::daemon
