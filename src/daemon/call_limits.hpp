// How many calls may be pending at once: in total, and per caller uid. Any
// local user may call the service, as often and as fast as they like, over
// as many connections as the bus daemon lets them open; what they can make
// it hold (memory, polkit checks, queued work) is bounded here, and the
// excess is refused at once with org.freedesktop.DBus.Error.LimitsExceeded.
//
// A call's uid is known only once the bus daemon has named the caller
// (asynchronously, on the authorizer's thread). So a connection is named
// once and remembered while it has calls pending: later calls on it are
// charged to their uid the moment they arrive. Calls that arrive before
// their connection is named wait in a budget of their own, a few per
// connection, so that one user's many fresh connections cannot take the
// places other users' calls need. Root is held only to the total.
// Thread-safe: admit_call and release run on the bus thread, admit_uid on
// the authorizer's thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>

namespace overlay::daemon {

class CallLimits {
  public:
    // Calls of one connection that may wait for it to be named.
    static constexpr unsigned kUnnamedPerConnection = 8;

    // max_total: calls held at once, named ones (and, apart, as many
    // waiting to be named); max_per_user: calls of one uid.
    CallLimits(unsigned max_total, unsigned max_per_user);

    // nullopt when admitted (then release(id) once, whatever follows),
    // else why not.
    std::optional<std::string> admit_call(std::uint64_t id, const std::string& sender);
    // The bus daemon named the caller of call id.
    std::optional<std::string> admit_uid(std::uint64_t id, uid_t uid);
    void release(std::uint64_t id);

    std::size_t pending() const;

  private:
    enum class State { Unnamed, Counted, Refused };
    struct Held {
        std::string sender;
        State state = State::Unnamed;
        uid_t uid = 0;
    };
    struct Connection {
        unsigned pending = 0; // calls held, in any state
        unsigned unnamed = 0;
        std::optional<uid_t> uid; // once named, while it has calls pending
    };

    // Lock held. nullopt when a call of uid may be counted now.
    std::optional<std::string> refuse_named(uid_t uid) const;
    void charge(Held& held, uid_t uid);
    void drop_if_idle(const std::string& sender);

    const unsigned max_total_;
    const unsigned max_per_user_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, Held> calls_;
    std::map<std::string, Connection> connections_;
    std::map<uid_t, unsigned> per_uid_;
    unsigned counted_ = 0;
    unsigned unnamed_ = 0;
};

} // namespace overlay::daemon
