// The Authorizer against a bus daemon of the test's own. polkitd is never
// there: a check that reaches polkit either fails closed, or meets a
// stand-in that owns polkit's name and answers as the test tells it (or
// never, so that a check stays in polkit).
#include "authorization_checks.hpp"
#include "authorizer.hpp"
#include "fake_polkit.hpp"
#include "private_bus.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <gtest/gtest.h>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>
#include <unistd.h>

using namespace std::chrono_literals;
using overlay::daemon::Authorizer;
using overlay::daemon::AuthRequest;
using overlay::daemon::AuthResult;
using Verdict = AuthResult::Verdict;
namespace glib = overlay::daemon::glib;
namespace t = overlay::daemon::testing;

namespace {

constexpr const char* kAction = "org.left4me.overlay.mount";
// Only a guard against a hang: every wait below ends on an event.
constexpr auto kDeadline = 60s;

// Collects the results by key and counts every callback.
class Results {
  public:
    Authorizer::Callback callback(const std::string& key) {
        return [this, key](AuthResult result) {
            std::lock_guard lock(mutex_);
            ++calls_[key];
            results_.emplace(key, std::move(result));
            changed_.notify_all();
        };
    }

    AuthResult wait(const std::string& key) {
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, kDeadline, [&] { return results_.count(key) != 0; })) {
            ADD_FAILURE() << "no result for " << key;
            return {};
        }
        return results_.find(key)->second;
    }

    int calls(const std::string& key) {
        std::lock_guard lock(mutex_);
        return calls_[key];
    }

  private:
    std::mutex mutex_;
    std::condition_variable changed_;
    std::multimap<std::string, AuthResult> results_;
    std::map<std::string, int> calls_;
};

std::string unique_name(const glib::Object<GDBusConnection>& bus) {
    return g_dbus_connection_get_unique_name(bus.get());
}

void leave(glib::Object<GDBusConnection>& bus) {
    g_dbus_connection_close_sync(bus.get(), nullptr, nullptr);
}

// admit() that says when it was asked (the check has its caller's uid and
// is about to go on to polkit, on the same turn of the GLib thread).
struct AdmitSignal {
    std::promise<uid_t> asked;
    std::future<uid_t> when_asked = asked.get_future();

    std::function<std::optional<std::string>(uid_t)> admit() {
        return [this](uid_t uid) -> std::optional<std::string> {
            asked.set_value(uid);
            return std::nullopt;
        };
    }
    bool wait() { return when_asked.wait_for(kDeadline) == std::future_status::ready; }
};

} // namespace

class AuthorizerTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        // Before any g_bus_get: the Authorizer's "system bus" is this one.
        setenv("DBUS_SYSTEM_BUS_ADDRESS", address().c_str(), 1);
        // Held for the whole program: GDBus's worker thread is started by
        // the first connection, from this thread and with its uid.
        static const glib::Object<GDBusConnection> keep = t::connect(address());
    }

    static const std::string& address() { return t::shared_bus().address(); }

    // The request checked, its result once it has come; under `key` in
    // `results`, or a key of its own.
    AuthResult check_and_wait(Authorizer& authorizer, AuthRequest request, std::string key = "") {
        if (key.empty()) {
            key = "check " + std::to_string(++checks_);
        }
        authorizer.check(std::move(request), results.callback(key));
        return results.wait(key);
    }

    // The waiting checks' tests: an Authorizer with one polkit slot, a
    // polkit that never answers, and two unprivileged callers, one to hold
    // the slot and one to wait for it (the Authorizer goes first).
    struct OneSlot {
        t::FakePolkit polkit{address()};
        glib::Object<GDBusConnection> holder = t::connect_unprivileged(address());
        glib::Object<GDBusConnection> waiter = t::connect_unprivileged(address());
        Authorizer authorizer{1, 1};
    };

    // The holder's check takes the slot and stays in polkit (result
    // "in-polkit"); the waiter's is queued behind it ("waiting") on the same
    // turn of the GLib thread that asked admit(), before any later bus
    // message is seen. Fatal failures: call in ASSERT_NO_FATAL_FAILURE.
    void take_slot_and_queue(OneSlot& slot) {
        slot.authorizer.check(AuthRequest{unique_name(slot.holder), kAction, "alpha", false, {}},
                              results.callback("in-polkit"));
        ASSERT_TRUE(slot.polkit.wait_for_checks(1));
        AdmitSignal queued;
        slot.authorizer.check(
            AuthRequest{unique_name(slot.waiter), kAction, "beta", false, queued.admit()},
            results.callback("waiting"));
        ASSERT_TRUE(queued.wait());
    }

    // Each of the keys' callbacks has run, and only once.
    void expect_answered_once(std::initializer_list<const char*> keys) {
        for (const char* key : keys) {
            EXPECT_EQ(results.calls(key), 1) << key;
        }
    }

    Results results;

  private:
    int checks_ = 0;
};

TEST_F(AuthorizerTest, NoActionIdentifiesTheCallerFromTheBus) {
    Authorizer authorizer(4, 4);
    auto caller = t::connect(address());
    const AuthResult r =
        check_and_wait(authorizer, AuthRequest{unique_name(caller), "", "alpha", false, {}});
    EXPECT_EQ(r.verdict, Verdict::Allowed);
    EXPECT_EQ(r.polkit, "not-needed");
    ASSERT_TRUE(r.uid);
    EXPECT_EQ(*r.uid, geteuid());
    ASSERT_TRUE(r.pid);
    EXPECT_EQ(*r.pid, getpid());
}

TEST_F(AuthorizerTest, AdmitRefusingIsLimitsExceededWithItsReason) {
    Authorizer authorizer(4, 4);
    auto caller = t::connect(address());
    std::optional<uid_t> asked;
    const AuthResult r =
        check_and_wait(authorizer, AuthRequest{unique_name(caller), kAction, "alpha", false,
                                               [&asked](uid_t uid) -> std::optional<std::string> {
                                                   asked = uid;
                                                   return "too many calls of this user";
                                               }});
    EXPECT_EQ(r.verdict, Verdict::LimitsExceeded);
    EXPECT_EQ(r.detail, "too many calls of this user");
    EXPECT_EQ(r.polkit, "not-asked");
    ASSERT_TRUE(asked);
    EXPECT_EQ(*asked, geteuid());
    EXPECT_EQ(r.uid, asked);
}

TEST_F(AuthorizerTest, UnprivilegedCallerIsDeniedWhenPolkitCannotBeAsked) {
    Authorizer authorizer(4, 4);
    auto caller = t::connect_unprivileged(address());
    const AuthResult r = check_and_wait(
        authorizer, AuthRequest{unique_name(caller), kAction, "alpha", false, {}}, "a");
    EXPECT_EQ(r.verdict, Verdict::Denied);
    // Refused by the bus at once ("error"), not after the check's timeout.
    EXPECT_EQ(r.polkit, "error") << r.detail;
    EXPECT_NE(r.detail.find("polkit"), std::string::npos) << r.detail;
    ASSERT_TRUE(r.uid);
    EXPECT_NE(*r.uid, 0U);
    EXPECT_EQ(results.calls("a"), 1);
}

TEST_F(AuthorizerTest, RootIsAllowedWithoutPolkit) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root: only a root process connects to the bus as uid 0";
    }
    Authorizer authorizer(4, 4);
    auto caller = t::connect(address()); // as root; no polkit on the bus
    const AuthResult r =
        check_and_wait(authorizer, AuthRequest{unique_name(caller), kAction, "alpha", false, {}});
    EXPECT_EQ(r.verdict, Verdict::Allowed);
    EXPECT_EQ(r.polkit, "root");
    EXPECT_EQ(r.uid, std::optional<uid_t>(0));
}

TEST_F(AuthorizerTest, SenderNotOnTheBusIsCallerGone) {
    Authorizer authorizer(4, 4);
    auto caller = t::connect(address());
    const std::string gone = unique_name(caller);
    leave(caller);
    authorizer.check(AuthRequest{gone, kAction, "alpha", false, {}}, results.callback("gone"));
    authorizer.check(AuthRequest{":1.99999", "", "alpha", false, {}}, results.callback("never"));
    EXPECT_EQ(results.wait("gone").verdict, Verdict::CallerGone);
    EXPECT_EQ(results.wait("never").verdict, Verdict::CallerGone);
}

TEST_F(AuthorizerTest, CallerLeavingWhileItsCheckWaitsIsCallerGone) {
    OneSlot slot;
    ASSERT_NO_FATAL_FAILURE(take_slot_and_queue(slot));

    leave(slot.waiter);
    const AuthResult waiting = results.wait("waiting");
    EXPECT_EQ(waiting.verdict, Verdict::CallerGone);
    EXPECT_EQ(waiting.detail, "caller left the bus");

    leave(slot.holder);
    const AuthResult in_polkit = results.wait("in-polkit");
    EXPECT_EQ(in_polkit.verdict, Verdict::CallerGone);
    EXPECT_EQ(in_polkit.polkit, "cancelled");

    slot.authorizer.stop();
    expect_answered_once({"in-polkit", "waiting"});
}

TEST_F(AuthorizerTest, FreedSlotGoesToTheNextCheckInOrder) {
    OneSlot slot;
    ASSERT_NO_FATAL_FAILURE(take_slot_and_queue(slot));
    leave(slot.holder);
    EXPECT_EQ(results.wait("in-polkit").verdict, Verdict::CallerGone);
    // The waiting check now reaches polkit.
    EXPECT_TRUE(slot.polkit.wait_for_checks(2));
    slot.authorizer.stop();
    EXPECT_EQ(results.wait("waiting").verdict, Verdict::Stopping);
}

TEST_F(AuthorizerTest, CancelAllEndsPendingAndLaterChecksWithStopping) {
    OneSlot slot;
    ASSERT_NO_FATAL_FAILURE(take_slot_and_queue(slot));

    slot.authorizer.cancel_all();
    EXPECT_EQ(results.wait("in-polkit").verdict, Verdict::Stopping);
    EXPECT_EQ(results.wait("waiting").verdict, Verdict::Stopping);
    const AuthResult later = check_and_wait(
        slot.authorizer, AuthRequest{unique_name(slot.holder), "", "alpha", false, {}}, "later");
    EXPECT_EQ(later.verdict, Verdict::Stopping);
    EXPECT_EQ(later.detail, "service is stopping");

    slot.authorizer.stop();
    expect_answered_once({"in-polkit", "waiting", "later"});
}

TEST_F(AuthorizerTest, StopAnswersEveryPendingCheckOnce) {
    {
        OneSlot slot;
        ASSERT_NO_FATAL_FAILURE(take_slot_and_queue(slot));
        slot.authorizer.stop();
        // Every callback has run when stop() returns.
        expect_answered_once({"in-polkit", "waiting"});
        slot.authorizer.stop(); // twice is harmless
    }                           // and so is the destructor's stop()
    EXPECT_EQ(results.wait("in-polkit").verdict, Verdict::Stopping);
    EXPECT_EQ(results.wait("waiting").verdict, Verdict::Stopping);
    expect_answered_once({"in-polkit", "waiting"});
}

TEST_F(AuthorizerTest, PolkitIsAskedAboutTheCallerTheActionAndTheInstance) {
    t::FakePolkit polkit(address(), t::FakePolkit::Answer::Authorized);
    Authorizer authorizer(4, 4);
    auto caller = t::connect_unprivileged(address());
    const AuthResult r =
        check_and_wait(authorizer, AuthRequest{unique_name(caller), kAction, "alpha", true, {}});
    EXPECT_EQ(r.verdict, Verdict::Allowed);
    EXPECT_EQ(r.polkit, "authorized");
    const t::FakePolkit::Asked asked = polkit.last_asked();
    EXPECT_EQ(asked.subject_kind, "system-bus-name");
    EXPECT_EQ(asked.subject_name, unique_name(caller));
    EXPECT_EQ(asked.action, kAction);
    EXPECT_EQ(asked.instance, "alpha");
    EXPECT_EQ(asked.flags, 1U); // AllowUserInteraction: the call allowed it
}

TEST_F(AuthorizerTest, PolkitAnswersBecomeVerdicts) {
    struct Case {
        t::FakePolkit::Answer answer;
        bool interactive;
        Verdict verdict;
        const char* polkit;
    };
    const Case cases[] = {
        {t::FakePolkit::Answer::Challenge, false, Verdict::InteractiveRequired, "challenge"},
        // A challenge with prompting allowed that still came back means no.
        {t::FakePolkit::Answer::Challenge, true, Verdict::Denied, "not-authorized"},
        {t::FakePolkit::Answer::NotAuthorized, false, Verdict::Denied, "not-authorized"},
        {t::FakePolkit::Answer::Dismissed, true, Verdict::Denied, "dismissed"},
        {t::FakePolkit::Answer::Error, false, Verdict::Denied, "error"},
    };
    auto caller = t::connect_unprivileged(address());
    int n = 0;
    for (const Case& c : cases) {
        const std::string key = std::to_string(n++);
        t::FakePolkit polkit(address(), c.answer);
        Authorizer authorizer(4, 4);
        const AuthResult r = check_and_wait(
            authorizer, AuthRequest{unique_name(caller), kAction, "alpha", c.interactive, {}}, key);
        EXPECT_EQ(r.verdict, c.verdict) << "case " << key;
        EXPECT_EQ(r.polkit, c.polkit) << "case " << key << ": " << r.detail;
        EXPECT_FALSE(c.interactive && (polkit.last_asked().flags & 1U) == 0) << "case " << key;
    }
}

TEST_F(AuthorizerTest, AfterAPolkitErrorTheNextCheckAsksAgain) {
    auto caller = t::connect_unprivileged(address());
    Authorizer authorizer(4, 4);
    {
        t::FakePolkit failing(address(), t::FakePolkit::Answer::Error);
        EXPECT_EQ(check_and_wait(authorizer,
                                 AuthRequest{unique_name(caller), kAction, "alpha", false, {}})
                      .verdict,
                  Verdict::Denied);
    }
    // polkitd "restarted": a new owner of its name.
    t::FakePolkit back(address(), t::FakePolkit::Answer::Authorized);
    const AuthResult r = check_and_wait(
        authorizer, AuthRequest{unique_name(caller), kAction, "alpha", false, {}}, "back");
    EXPECT_EQ(r.verdict, Verdict::Allowed);
    EXPECT_EQ(r.polkit, "authorized");
}

namespace {

// Counts the calls of one member to the bus daemon, seen by a monitor
// connection (org.freedesktop.DBus.Monitoring.BecomeMonitor: the bus's own
// uid may, and the test started the bus).
class DriverCallCounter {
  public:
    DriverCallCounter(const std::string& address, std::string member)
        : bus_(t::connect(address)), member_(std::move(member)) {
        g_dbus_connection_add_filter(bus_.get(), filter, this, nullptr);
        const std::string rule = "type='method_call',destination='org.freedesktop.DBus',member='" +
                                 member_ + "'";
        const gchar* rules[] = {rule.c_str(), nullptr};
        g_autoptr(GError) error = nullptr;
        g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
            bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus.Monitoring", "BecomeMonitor",
            g_variant_new("(^asu)", rules, 0U), nullptr, G_DBUS_CALL_FLAGS_NONE, -1, nullptr,
            &error);
        if (reply == nullptr) {
            throw std::runtime_error(std::string("BecomeMonitor: ") + error->message);
        }
        monitoring_ = true;
    }
    ~DriverCallCounter() { g_dbus_connection_close_sync(bus_.get(), nullptr, nullptr); }

    // The calls seen from sender, once every call made before this one
    // has been seen: a marker call of the same member, from a connection of
    // the test's own, is routed (and copied to the monitor) after them.
    int calls_from(const std::string& sender, const std::string& address) {
        auto marker = t::connect(address);
        const std::string marker_name = g_dbus_connection_get_unique_name(marker.get());
        g_autoptr(GVariant) reply = g_dbus_connection_call_sync(
            marker.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
            member_.c_str(), g_variant_new("(s)", marker_name.c_str()), nullptr,
            G_DBUS_CALL_FLAGS_NONE, -1, nullptr, nullptr);
        std::unique_lock lock(mutex_);
        if (!changed_.wait_for(lock, kDeadline, [&] { return senders_.count(marker_name) != 0; })) {
            ADD_FAILURE() << "the monitor never saw the marker call";
        }
        return static_cast<int>(senders_.count(sender));
    }

  private:
    // Every copy is consumed here: a monitor must send nothing, not even
    // GDBus's UnknownMethod answer to a call that was not its own.
    static GDBusMessage* filter(GDBusConnection*, GDBusMessage* message, gboolean incoming,
                                gpointer data) {
        auto* self = static_cast<DriverCallCounter*>(data);
        if (!incoming || !self->monitoring_) {
            return message;
        }
        if (g_dbus_message_get_message_type(message) == G_DBUS_MESSAGE_TYPE_METHOD_CALL &&
            g_strcmp0(g_dbus_message_get_member(message), self->member_.c_str()) == 0) {
            std::lock_guard lock(self->mutex_);
            self->senders_.insert(g_dbus_message_get_sender(message));
            self->changed_.notify_all();
        }
        g_object_unref(message);
        return nullptr;
    }

    glib::Object<GDBusConnection> bus_;
    const std::string member_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::multiset<std::string> senders_;
    std::atomic<bool> monitoring_ = false;
};

// Waits for the authorizer to have forgotten every caller (it learns of
// departures from the bus, asynchronously).
bool wait_until_no_caller_known(Authorizer& authorizer) {
    const auto give_up = std::chrono::steady_clock::now() + kDeadline;
    while (authorizer.callers_known() != 0) {
        if (std::chrono::steady_clock::now() > give_up) {
            return false;
        }
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

// Users every Debian system has (nobody, daemon, bin): the bus daemon
// closes a connection whose uid has no user entry.
constexpr uid_t kUserA = 65534;
constexpr uid_t kUserB = 1;
constexpr uid_t kUserC = 2;

} // namespace

TEST_F(AuthorizerTest, ConnectionIsIdentifiedOnceAndForgottenWhenItLeaves) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root: connections of two uids";
    }
    Authorizer authorizer(4, 2);
    DriverCallCounter counter(address(), "GetConnectionCredentials");
    auto caller = t::connect_as(address(), kUserA);
    const std::string name = unique_name(caller);
    for (int i = 0; i < 20; ++i) {
        const std::string key = "call" + std::to_string(i);
        const AuthResult r = check_and_wait(authorizer, AuthRequest{name, "", "", false, {}}, key);
        EXPECT_EQ(r.verdict, Verdict::Allowed);
        EXPECT_EQ(r.uid, std::optional<uid_t>(kUserA));
        EXPECT_EQ(r.pid, std::optional<pid_t>(getpid()));
    }
    EXPECT_EQ(authorizer.callers_known(), 1U);

    // The authorizer's own connection is the one g_bus_get gave it, the
    // test's "system bus": the only one that asks the bus daemon for
    // credentials here. Twenty calls, one question.
    g_autoptr(GDBusConnection) system = g_bus_get_sync(G_BUS_TYPE_SYSTEM, nullptr, nullptr);
    EXPECT_EQ(counter.calls_from(g_dbus_connection_get_unique_name(system), address()), 1);

    leave(caller);
    ASSERT_TRUE(wait_until_no_caller_known(authorizer));

    // A new connection, of another uid: asked anew, never taken for the old.
    auto other = t::connect_as(address(), kUserB);
    EXPECT_EQ(check_and_wait(authorizer, AuthRequest{unique_name(other), "", "", false, {}}).uid,
              std::optional<uid_t>(kUserB));
    EXPECT_EQ(counter.calls_from(g_dbus_connection_get_unique_name(system), address()), 2);
    // The old name, asked after it left: gone, not the old identity.
    EXPECT_EQ(check_and_wait(authorizer, AuthRequest{name, "", "", false, {}}, "old").verdict,
              Verdict::CallerGone);
}

TEST_F(AuthorizerTest, OneUidHoldsOnlyItsShareOfPolkit) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root: connections of two uids";
    }
    t::FakePolkit polkit(address());
    Authorizer authorizer(3, 2);
    auto holder = t::connect_as(address(), kUserA);
    auto member = t::connect_as(address(), kUserB);
    // Four interactive checks polkit never answers: two reach it.
    for (int i = 0; i < 4; ++i) {
        authorizer.check(AuthRequest{unique_name(holder), kAction, "alpha", true, {}},
                         results.callback("held"));
    }
    ASSERT_TRUE(polkit.wait_for_checks(2));
    // Another uid's check goes to polkit at once, after those two only: the
    // holder's third and fourth were queued before it on the same thread.
    authorizer.check(AuthRequest{unique_name(member), kAction, "beta", false, {}},
                     results.callback("member"));
    ASSERT_TRUE(polkit.wait_for_checks(3));
    EXPECT_EQ(polkit.subjects(), (std::vector<std::string>{unique_name(holder), unique_name(holder),
                                                           unique_name(member)}));
    authorizer.stop();
    EXPECT_EQ(results.calls("held"), 4);
    EXPECT_EQ(results.wait("member").verdict, Verdict::Stopping);
}

TEST_F(AuthorizerTest, UidsWaitingForPolkitAreServedInTurn) {
    if (geteuid() != 0) {
        GTEST_SKIP() << "needs root: connections of three uids";
    }
    t::FakePolkit polkit(address());
    Authorizer authorizer(1, 1);
    auto first = t::connect_as(address(), kUserC);
    std::vector<glib::Object<GDBusConnection>> many;
    for (int i = 0; i < 3; ++i) {
        many.push_back(t::connect_as(address(), kUserA));
    }
    auto late = t::connect_as(address(), kUserB);

    authorizer.check(AuthRequest{unique_name(first), kAction, "alpha", false, {}},
                     results.callback("first"));
    ASSERT_TRUE(polkit.wait_for_checks(1));
    // Uid A queues three checks, then uid B one, each queued before the next
    // is posted.
    for (int i = 0; i < 3; ++i) {
        AdmitSignal queued;
        authorizer.check(AuthRequest{unique_name(many[i]), kAction, "alpha", false, queued.admit()},
                         results.callback("many" + std::to_string(i)));
        ASSERT_TRUE(queued.wait());
    }
    AdmitSignal queued;
    authorizer.check(AuthRequest{unique_name(late), kAction, "beta", false, queued.admit()},
                     results.callback("late"));
    ASSERT_TRUE(queued.wait());

    // Each departure frees the one slot.
    leave(first);
    ASSERT_TRUE(polkit.wait_for_checks(2));
    leave(many[0]);
    ASSERT_TRUE(polkit.wait_for_checks(3));
    leave(late);
    ASSERT_TRUE(polkit.wait_for_checks(4));
    // First come first served would have been first, A, A, A.
    EXPECT_EQ(polkit.subjects(),
              (std::vector<std::string>{unique_name(first), unique_name(many[0]),
                                        unique_name(late), unique_name(many[1])}));
    authorizer.stop();
    EXPECT_EQ(results.wait("many1").verdict, Verdict::Stopping);
    EXPECT_EQ(results.wait("many2").verdict, Verdict::Stopping);
}

TEST_F(AuthorizerTest, KnownCallerNeedingNoPolkitIsAnsweredOnTheCallingThread) {
    Authorizer authorizer(4, 2);
    auto caller = t::connect(address()); // as root when the test runs as root
    const std::string name = unique_name(caller);
    EXPECT_EQ(check_and_wait(authorizer, AuthRequest{name, "", "alpha", false, {}}).verdict,
              Verdict::Allowed);
    // The first check counts as answered once its callback has returned,
    // on the GLib thread: a task run there after it says that has happened.
    EXPECT_EQ(authorizer.callers_known(), 1U);

    // Known now: no trip through the GLib thread, the answer is given
    // before check() returns.
    std::optional<std::thread::id> answered_on;
    std::optional<uid_t> admitted;
    authorizer.check(AuthRequest{name, geteuid() == 0 ? kAction : "", "alpha", false,
                                 [&admitted](uid_t uid) -> std::optional<std::string> {
                                     admitted = uid;
                                     return std::nullopt;
                                 }},
                     [&](AuthResult r) {
                         answered_on = std::this_thread::get_id();
                         results.callback("second")(std::move(r));
                     });
    EXPECT_EQ(answered_on, std::optional<std::thread::id>(std::this_thread::get_id()));
    const AuthResult second = results.wait("second");
    EXPECT_EQ(second.verdict, Verdict::Allowed);
    EXPECT_EQ(second.polkit, geteuid() == 0 ? "root" : "not-needed");
    EXPECT_EQ(second.uid, std::optional<uid_t>(geteuid()));
    EXPECT_EQ(second.pid, std::optional<pid_t>(getpid()));
    EXPECT_EQ(admitted, std::optional<uid_t>(geteuid()));

    // A call that needs polkit still goes to the GLib thread (none here:
    // denied, fail closed), and so does every call once stopping.
    if (geteuid() != 0) {
        EXPECT_EQ(check_and_wait(authorizer, AuthRequest{name, kAction, "alpha", false, {}}, "pk")
                      .verdict,
                  Verdict::Denied);
    }
    authorizer.cancel_all();
    EXPECT_EQ(check_and_wait(authorizer, AuthRequest{name, "", "alpha", false, {}}, "late").verdict,
              Verdict::Stopping);
}

TEST(KnownCallersTest, ACallerWithAnUnansweredCheckIsNotSettled) {
    overlay::daemon::KnownCallers known;
    EXPECT_EQ(known.find_settled(":1.7"), std::nullopt);
    known.sent(":1.7"); // its first call, before anyone knows it
    known.add(":1.7", {1000, 42});
    // Known, but a call answered at once would overtake the first one.
    EXPECT_EQ(known.find_settled(":1.7"), std::nullopt);
    known.sent(":1.7");
    known.answered(":1.7");
    EXPECT_EQ(known.find_settled(":1.7"), std::nullopt);
    known.answered(":1.7");
    const auto settled = known.find_settled(":1.7");
    ASSERT_TRUE(settled);
    EXPECT_EQ(settled->uid, 1000U);
    EXPECT_EQ(settled->pid, std::optional<pid_t>(42));
    EXPECT_EQ(known.find_settled(":1.8"), std::nullopt);
    known.remove(":1.7"); // it left
    EXPECT_EQ(known.find_settled(":1.7"), std::nullopt);
}

TEST(KnownCallersTest, TheUidIsKnownWhateverItsChecksUntilItLeaves) {
    // What CallLimits charges a call to: the uid, settled or not.
    overlay::daemon::KnownCallers known;
    EXPECT_EQ(known.uid_of(":1.7"), std::nullopt);
    known.sent(":1.7");
    EXPECT_EQ(known.uid_of(":1.7"), std::nullopt);
    known.add(":1.7", {1000, 42});
    EXPECT_EQ(known.uid_of(":1.7"), std::optional<uid_t>(1000));
    known.answered(":1.7");
    EXPECT_EQ(known.uid_of(":1.7"), std::optional<uid_t>(1000));
    EXPECT_EQ(known.uid_of(":1.8"), std::nullopt);
    known.remove(":1.7");
    EXPECT_EQ(known.uid_of(":1.7"), std::nullopt);
}

TEST_F(AuthorizerTest, KnownUidIsTheCachedIdentity) {
    Authorizer authorizer(4, 2);
    auto caller = t::connect(address());
    const std::string name = unique_name(caller);
    EXPECT_EQ(authorizer.known_uid(name), std::nullopt);
    authorizer.check(AuthRequest{name, "", "", false, {}}, results.callback("first"));
    EXPECT_EQ(results.wait("first").uid, std::optional<uid_t>(geteuid()));
    EXPECT_EQ(authorizer.known_uid(name), std::optional<uid_t>(geteuid()));
    leave(caller);
    ASSERT_TRUE(wait_until_no_caller_known(authorizer));
    EXPECT_EQ(authorizer.known_uid(name), std::nullopt);
}

TEST_F(AuthorizerTest, KnownCallerNeedingPolkitIsAdmittedOnce) {
    Authorizer authorizer(4, 2);
    auto caller = t::connect_unprivileged(address());
    const std::string name = unique_name(caller);
    EXPECT_EQ(check_and_wait(authorizer, AuthRequest{name, "", "alpha", false, {}}).verdict,
              Verdict::Allowed);
    std::atomic<int> admitted = 0;
    authorizer.check(AuthRequest{name, kAction, "alpha", false,
                                 [&admitted](uid_t) -> std::optional<std::string> {
                                     ++admitted;
                                     return std::nullopt;
                                 }},
                     results.callback("pk"));
    // No polkit on this bus: denied, after one admission on the GLib thread.
    EXPECT_EQ(results.wait("pk").verdict, Verdict::Denied);
    EXPECT_EQ(admitted.load(), 1);
}

namespace {

// Iterates context on this thread (which owns it) until done() or the
// deadline.
template <typename Done> bool iterate_until(GMainContext* context, Done done) {
    const auto give_up = std::chrono::steady_clock::now() + kDeadline;
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up) {
            return false;
        }
        if (!g_main_context_iteration(context, FALSE)) {
            std::this_thread::sleep_for(1ms);
        }
    }
    return true;
}

} // namespace

TEST_F(AuthorizerTest, OnTheCallersOwnLoopChecksStartAndEndOnThatThread) {
    // The daemon's way: its bus thread owns the context and iterates it.
    t::FakePolkit polkit(address(), t::FakePolkit::Answer::Authorized);
    Authorizer authorizer(4, 2, overlay::daemon::GlibThread::Runner::ThisThread);
    auto caller = t::connect_unprivileged(address());
    std::optional<std::thread::id> answered_on;
    std::optional<AuthResult> result;
    authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", false, {}},
                     [&](AuthResult r) {
                         answered_on = std::this_thread::get_id();
                         result = std::move(r);
                     });
    // Nothing moves until this thread iterates the context: the lookup of
    // the caller and polkit's answer complete here.
    ASSERT_TRUE(iterate_until(authorizer.context(), [&] { return result.has_value(); }));
    EXPECT_EQ(answered_on, std::optional<std::thread::id>(std::this_thread::get_id()));
    EXPECT_EQ(result->verdict, Verdict::Allowed);
    EXPECT_EQ(polkit.last_asked().instance, "alpha");
}

TEST_F(AuthorizerTest, OnTheCallersOwnLoopStopEndsWhatPolkitHolds) {
    t::FakePolkit polkit(address()); // never answers
    Authorizer authorizer(4, 2, overlay::daemon::GlibThread::Runner::ThisThread);
    auto caller = t::connect_unprivileged(address());
    std::optional<AuthResult> result;
    authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", true, {}},
                     [&](AuthResult r) { result = std::move(r); });
    ASSERT_TRUE(iterate_until(authorizer.context(), [&] { return polkit.checks() >= 1; }));
    // stop() iterates the context here until the cancelled check has ended.
    authorizer.stop();
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->verdict, Verdict::Stopping);
}
