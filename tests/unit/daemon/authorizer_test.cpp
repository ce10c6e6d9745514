// The Authorizer against a bus daemon of the test's own. polkitd is never
// there: a check that reaches polkit either fails closed, or meets a
// stand-in that owns polkit's name and answers as the test tells it (or
// never, so that a check stays in polkit).
#include "authorizer.hpp"
#include "fake_polkit.hpp"
#include "private_bus.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <gtest/gtest.h>
#include <map>
#include <memory>
#include <mutex>
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

    Results results;
};

TEST_F(AuthorizerTest, NoActionIdentifiesTheCallerFromTheBus) {
    Authorizer authorizer(4);
    auto caller = t::connect(address());
    authorizer.check(AuthRequest{unique_name(caller), "", "alpha", false, {}},
                     results.callback("a"));
    const AuthResult r = results.wait("a");
    EXPECT_EQ(r.verdict, Verdict::Allowed);
    EXPECT_EQ(r.polkit, "not-needed");
    ASSERT_TRUE(r.uid);
    EXPECT_EQ(*r.uid, geteuid());
    ASSERT_TRUE(r.pid);
    EXPECT_EQ(*r.pid, getpid());
}

TEST_F(AuthorizerTest, AdmitRefusingIsLimitsExceededWithItsReason) {
    Authorizer authorizer(4);
    auto caller = t::connect(address());
    std::optional<uid_t> asked;
    authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", false,
                                 [&asked](uid_t uid) -> std::optional<std::string> {
                                     asked = uid;
                                     return "too many calls of this user";
                                 }},
                     results.callback("a"));
    const AuthResult r = results.wait("a");
    EXPECT_EQ(r.verdict, Verdict::LimitsExceeded);
    EXPECT_EQ(r.detail, "too many calls of this user");
    EXPECT_EQ(r.polkit, "not-asked");
    ASSERT_TRUE(asked);
    EXPECT_EQ(*asked, geteuid());
    EXPECT_EQ(r.uid, asked);
}

TEST_F(AuthorizerTest, UnprivilegedCallerIsDeniedWhenPolkitCannotBeAsked) {
    Authorizer authorizer(4);
    auto caller = t::connect_unprivileged(address());
    authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", false, {}},
                     results.callback("a"));
    const AuthResult r = results.wait("a");
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
    Authorizer authorizer(4);
    auto caller = t::connect(address()); // as root; no polkit on the bus
    authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", false, {}},
                     results.callback("a"));
    const AuthResult r = results.wait("a");
    EXPECT_EQ(r.verdict, Verdict::Allowed);
    EXPECT_EQ(r.polkit, "root");
    EXPECT_EQ(r.uid, std::optional<uid_t>(0));
}

TEST_F(AuthorizerTest, SenderNotOnTheBusIsCallerGone) {
    Authorizer authorizer(4);
    auto caller = t::connect(address());
    const std::string gone = unique_name(caller);
    leave(caller);
    authorizer.check(AuthRequest{gone, kAction, "alpha", false, {}}, results.callback("gone"));
    authorizer.check(AuthRequest{":1.99999", "", "alpha", false, {}}, results.callback("never"));
    EXPECT_EQ(results.wait("gone").verdict, Verdict::CallerGone);
    EXPECT_EQ(results.wait("never").verdict, Verdict::CallerGone);
}

TEST_F(AuthorizerTest, CallerLeavingWhileItsCheckWaitsIsCallerGone) {
    t::FakePolkit polkit(address());
    Authorizer authorizer(1);
    auto first = t::connect_unprivileged(address());
    auto second = t::connect_unprivileged(address());

    // The first check takes the one polkit slot and stays in polkit.
    authorizer.check(AuthRequest{unique_name(first), kAction, "alpha", false, {}},
                     results.callback("first"));
    ASSERT_TRUE(polkit.wait_for_checks(1));

    // The second waits for the slot: it is queued on the same turn of the
    // GLib thread that asked admit(), before any later bus message is seen.
    AdmitSignal queued;
    authorizer.check(AuthRequest{unique_name(second), kAction, "beta", false, queued.admit()},
                     results.callback("second"));
    ASSERT_TRUE(queued.wait());

    leave(second);
    const AuthResult waiting = results.wait("second");
    EXPECT_EQ(waiting.verdict, Verdict::CallerGone);
    EXPECT_EQ(waiting.detail, "caller left the bus");

    leave(first);
    const AuthResult in_polkit = results.wait("first");
    EXPECT_EQ(in_polkit.verdict, Verdict::CallerGone);
    EXPECT_EQ(in_polkit.polkit, "cancelled");

    authorizer.stop();
    EXPECT_EQ(results.calls("first"), 1);
    EXPECT_EQ(results.calls("second"), 1);
}

TEST_F(AuthorizerTest, FreedSlotGoesToTheNextCheckInOrder) {
    t::FakePolkit polkit(address());
    Authorizer authorizer(1);
    auto first = t::connect_unprivileged(address());
    auto second = t::connect_unprivileged(address());
    authorizer.check(AuthRequest{unique_name(first), kAction, "alpha", false, {}},
                     results.callback("first"));
    ASSERT_TRUE(polkit.wait_for_checks(1));
    authorizer.check(AuthRequest{unique_name(second), kAction, "beta", false, {}},
                     results.callback("second"));
    leave(first);
    EXPECT_EQ(results.wait("first").verdict, Verdict::CallerGone);
    // The waiting check now reaches polkit.
    EXPECT_TRUE(polkit.wait_for_checks(2));
    authorizer.stop();
    EXPECT_EQ(results.wait("second").verdict, Verdict::Stopping);
}

TEST_F(AuthorizerTest, CancelAllEndsPendingAndLaterChecksWithStopping) {
    t::FakePolkit polkit(address());
    Authorizer authorizer(1);
    auto first = t::connect_unprivileged(address());
    auto second = t::connect_unprivileged(address());
    authorizer.check(AuthRequest{unique_name(first), kAction, "alpha", false, {}},
                     results.callback("in-polkit"));
    ASSERT_TRUE(polkit.wait_for_checks(1));
    AdmitSignal queued;
    authorizer.check(AuthRequest{unique_name(second), kAction, "beta", false, queued.admit()},
                     results.callback("waiting"));
    ASSERT_TRUE(queued.wait());

    authorizer.cancel_all();
    EXPECT_EQ(results.wait("in-polkit").verdict, Verdict::Stopping);
    EXPECT_EQ(results.wait("waiting").verdict, Verdict::Stopping);
    authorizer.check(AuthRequest{unique_name(first), "", "alpha", false, {}},
                     results.callback("later"));
    const AuthResult later = results.wait("later");
    EXPECT_EQ(later.verdict, Verdict::Stopping);
    EXPECT_EQ(later.detail, "service is stopping");

    authorizer.stop();
    EXPECT_EQ(results.calls("in-polkit"), 1);
    EXPECT_EQ(results.calls("waiting"), 1);
    EXPECT_EQ(results.calls("later"), 1);
}

TEST_F(AuthorizerTest, StopAnswersEveryPendingCheckOnce) {
    t::FakePolkit polkit(address());
    auto first = t::connect_unprivileged(address());
    auto second = t::connect_unprivileged(address());
    {
        Authorizer authorizer(1);
        authorizer.check(AuthRequest{unique_name(first), kAction, "alpha", false, {}},
                         results.callback("in-polkit"));
        ASSERT_TRUE(polkit.wait_for_checks(1));
        AdmitSignal queued;
        authorizer.check(AuthRequest{unique_name(second), kAction, "beta", false, queued.admit()},
                         results.callback("waiting"));
        ASSERT_TRUE(queued.wait());
        authorizer.stop();
        // Every callback has run when stop() returns.
        EXPECT_EQ(results.calls("in-polkit"), 1);
        EXPECT_EQ(results.calls("waiting"), 1);
        authorizer.stop(); // twice is harmless
    }                      // and so is the destructor's stop()
    EXPECT_EQ(results.wait("in-polkit").verdict, Verdict::Stopping);
    EXPECT_EQ(results.wait("waiting").verdict, Verdict::Stopping);
    EXPECT_EQ(results.calls("in-polkit"), 1);
    EXPECT_EQ(results.calls("waiting"), 1);
}

TEST_F(AuthorizerTest, PolkitIsAskedAboutTheCallerTheActionAndTheInstance) {
    t::FakePolkit polkit(address(), t::FakePolkit::Answer::Authorized);
    Authorizer authorizer(4);
    auto caller = t::connect_unprivileged(address());
    authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", true, {}},
                     results.callback("a"));
    const AuthResult r = results.wait("a");
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
        Authorizer authorizer(4);
        authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", c.interactive, {}},
                         results.callback(key));
        const AuthResult r = results.wait(key);
        EXPECT_EQ(r.verdict, c.verdict) << "case " << key;
        EXPECT_EQ(r.polkit, c.polkit) << "case " << key << ": " << r.detail;
        EXPECT_FALSE(c.interactive && (polkit.last_asked().flags & 1U) == 0) << "case " << key;
    }
}

TEST_F(AuthorizerTest, AfterAPolkitErrorTheNextCheckAsksAgain) {
    auto caller = t::connect_unprivileged(address());
    Authorizer authorizer(4);
    {
        t::FakePolkit failing(address(), t::FakePolkit::Answer::Error);
        authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", false, {}},
                         results.callback("failed"));
        EXPECT_EQ(results.wait("failed").verdict, Verdict::Denied);
    }
    // polkitd "restarted": a new owner of its name.
    t::FakePolkit back(address(), t::FakePolkit::Answer::Authorized);
    authorizer.check(AuthRequest{unique_name(caller), kAction, "alpha", false, {}},
                     results.callback("back"));
    const AuthResult r = results.wait("back");
    EXPECT_EQ(r.verdict, Verdict::Allowed);
    EXPECT_EQ(r.polkit, "authorized");
}
