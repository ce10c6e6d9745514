// ReplyGuard with real calls: an sdbus::Result can only answer a call that
// arrived on a connection, so a service and a client meet on a bus of the
// test's own.
#include "private_bus.hpp"
#include "reply_guard.hpp"
#include "sdbus_compat.hpp"

#include <gtest/gtest.h>
#include <memory>
#include <optional>

using overlay::ErrorCode;
using overlay::daemon::make_error;
using overlay::daemon::ReplyGuard;
namespace sdbus_compat = overlay::sdbus_compat;

namespace {

constexpr const char* kInterface = "org.left4me.Test";
constexpr const char* kPath = "/org/left4me/Test";

class ReplyGuardTest : public ::testing::Test {
  protected:
    void SetUp() override {
        server_ = sdbus::createSessionBusConnectionWithAddress(
            overlay::daemon::testing::shared_bus().address());
        object_ = sdbus::createObject(*server_, sdbus_compat::object_path(kPath));
        // Each call says how the guard is to be used.
        sdbus_compat::add_method(
            *object_, kInterface, "Answer",
            [](sdbus::Result<std::string>&& result, const std::string& how) {
                ReplyGuard<std::string> guard(std::move(result));
                if (how == "succeed") {
                    guard.succeed("ok");
                    guard.fail(make_error(ErrorCode::Busy, "too late"));
                } else if (how == "fail") {
                    guard.fail(make_error(ErrorCode::Busy, "instance alpha: busy"));
                    guard.succeed("too late");
                } else if (how == "move") {
                    ReplyGuard<std::string> moved(std::move(guard));
                    moved.succeed("moved");
                } else if (how == "dismiss") {
                    guard.dismiss();
                } // "drop": destroyed unanswered
            });
        server_->enterEventLoopAsync();
        client_ = sdbus::createSessionBusConnectionWithAddress(
            overlay::daemon::testing::shared_bus().address());
        proxy_ = sdbus_compat::proxy(*client_, server_->getUniqueName(), kPath);
    }

    void TearDown() override {
        proxy_.reset();
        server_->leaveEventLoop();
        object_.reset();
    }

    std::string call(const std::string& how) {
        std::string answer;
        proxy_->callMethod("Answer")
            .onInterface(kInterface)
            .withArguments(how)
            .storeResultsTo(answer);
        return answer;
    }

    std::unique_ptr<sdbus::IConnection> server_;
    std::unique_ptr<sdbus::IObject> object_;
    std::unique_ptr<sdbus::IConnection> client_;
    std::unique_ptr<sdbus::IProxy> proxy_;
};

std::optional<sdbus::Error> error_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const sdbus::Error& e) {
        return e;
    }
    return std::nullopt;
}

} // namespace

TEST_F(ReplyGuardTest, TheFirstAnswerWins) {
    EXPECT_EQ(call("succeed"), "ok");
    const auto error = error_of([&] { call("fail"); });
    ASSERT_TRUE(error);
    EXPECT_EQ(error->getName(), "org.left4me.Overlay1.Error.Busy");
    EXPECT_EQ(error->getMessage(), "instance alpha: busy");
}

TEST_F(ReplyGuardTest, AMovedGuardAnswersOnceFromItsNewPlace) {
    EXPECT_EQ(call("move"), "moved");
}

TEST_F(ReplyGuardTest, DroppedUnansweredItFailsTheCall) {
    const auto error = error_of([&] { call("drop"); });
    ASSERT_TRUE(error);
    EXPECT_EQ(error->getName(), "org.left4me.Overlay1.Error.Failed");
    EXPECT_EQ(error->getMessage(), "service is stopping");
}

TEST_F(ReplyGuardTest, DismissedItSendsNothing) {
    bool answered = false;
    proxy_->callMethodAsync("Answer")
        .onInterface(kInterface)
        .withArguments(std::string("dismiss"))
        .uponReplyInvoke([&](sdbus_compat::ReplyError, const std::string&) { answered = true; });
    // The service handles calls in order and the bus keeps its replies in
    // order: once the second call is answered, an answer to the first would
    // already be here.
    EXPECT_EQ(call("succeed"), "ok");
    while (sdbus_compat::process_pending(*client_)) {
    }
    EXPECT_FALSE(answered);
}
