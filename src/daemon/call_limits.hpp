// How many calls may be pending at once: in total, and per caller uid. Any
// local user may call the service, as often and as fast as they like, over
// as many connections as the bus daemon lets them open; what they can make
// it hold (memory, polkit checks, queued work) is bounded here, and the
// excess is refused at once with org.freedesktop.DBus.Error.LimitsExceeded.
//
// A call's uid is the one the authorizer's identity cache holds for its
// connection (asked of the bus daemon once per connection, kept until it
// leaves: KnownCallers), the only record of who a connection is. A call of
// a connection the cache knows is charged to its uid the moment it
// arrives, however many calls of it are pending or not. A call of one not
// known yet waits to be named (admit_uid, once the bus daemon has answered)
// in a budget of its own, a few per connection, so that one user's many
// fresh connections cannot take the places other users' calls need. Root
// is held only to the total.
// Thread-safe: admit_call and release run on the bus thread, admit_uid on
// the thread that learns the uid.
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
    // else why not. known_uid: the uid of sender's connection when the
    // identity cache knows it (Authorizer::known_uid); nullopt when not yet.
    std::optional<std::string> admit_call(std::uint64_t id, const std::string& sender,
                                          std::optional<uid_t> known_uid);
    // The bus daemon named the caller of call id (nothing changes for a
    // call charged to its uid on arrival).
    std::optional<std::string> admit_uid(std::uint64_t id, uid_t uid);
    void release(std::uint64_t id);

    std::size_t pending() const;

  private:
    enum class State { Unnamed, Counted, Refused };
    struct Held {
        std::string sender; // while Unnamed: whose budget it takes
        State state = State::Unnamed;
        uid_t uid = 0;
    };

    // Lock held. nullopt when a call of uid may be counted now.
    std::optional<std::string> refuse_named(uid_t uid) const;
    void charge(Held& held, uid_t uid);
    // Lock held: held leaves the budget of calls waiting to be named.
    void unname(const Held& held);

    const unsigned max_total_;
    const unsigned max_per_user_;
    mutable std::mutex mutex_;
    std::map<std::uint64_t, Held> calls_;
    std::map<std::string, unsigned> unnamed_by_connection_; // only connections with some
    std::map<uid_t, unsigned> per_uid_;
    unsigned counted_ = 0;
    unsigned unnamed_ = 0;
};

} // namespace overlay::daemon
