#include "call_limits.hpp"

#include <gtest/gtest.h>

using overlay::daemon::CallLimits;

namespace {

bool contains(const std::optional<std::string>& s, const std::string& part) {
    return s && s->find(part) != std::string::npos;
}

} // namespace

TEST(CallLimits, TheTotalOfNamedCallsIsCapped) {
    CallLimits limits(3, 10);
    for (std::uint64_t id = 1; id <= 3; ++id) {
        ASSERT_FALSE(limits.admit_call(id, ":1." + std::to_string(id)));
        ASSERT_FALSE(limits.admit_uid(id, 1000 + static_cast<uid_t>(id)));
    }
    ASSERT_FALSE(limits.admit_call(4, ":1.4"));
    EXPECT_TRUE(contains(limits.admit_uid(4, 1004), "MaxPendingCalls"));
    limits.release(4);
    limits.release(2);
    ASSERT_FALSE(limits.admit_call(5, ":1.5"));
    EXPECT_FALSE(limits.admit_uid(5, 1005));
    EXPECT_EQ(limits.pending(), 3U);
}

TEST(CallLimits, ANamedConnectionIsChargedToItsUidOnArrival) {
    CallLimits limits(100, 3);
    ASSERT_FALSE(limits.admit_call(1, ":1.7"));
    ASSERT_FALSE(limits.admit_uid(1, 1001));
    // Named now: the next calls count against uid 1001 at once.
    EXPECT_FALSE(limits.admit_call(2, ":1.7"));
    EXPECT_FALSE(limits.admit_call(3, ":1.7"));
    EXPECT_TRUE(contains(limits.admit_call(4, ":1.7"), "uid 1001 has 3 calls pending"));
    // admit_uid of a call counted on arrival changes nothing.
    EXPECT_FALSE(limits.admit_uid(2, 1001));
    limits.release(3);
    EXPECT_FALSE(limits.admit_call(5, ":1.7"));
}

TEST(CallLimits, OneUidOverManyConnectionsIsHeldToItsCap) {
    CallLimits limits(100, 2);
    for (std::uint64_t id = 1; id <= 3; ++id) {
        ASSERT_FALSE(limits.admit_call(id, ":1." + std::to_string(id)));
    }
    EXPECT_FALSE(limits.admit_uid(1, 1001));
    EXPECT_FALSE(limits.admit_uid(2, 1001));
    EXPECT_TRUE(contains(limits.admit_uid(3, 1001), "uid 1001 has 2 calls pending"));
    limits.release(3);
    limits.release(1);
    ASSERT_FALSE(limits.admit_call(5, ":1.5"));
    EXPECT_FALSE(limits.admit_uid(5, 1001));
}

TEST(CallLimits, CallsWaitingToBeNamedHaveABudgetOfTheirOwn) {
    // One user's flood on fresh connections, before the bus has named any:
    // a few per connection, and never the places of named calls.
    CallLimits limits(20, 4);
    const unsigned per = CallLimits::kUnnamedPerConnection;
    for (unsigned i = 0; i < per; ++i) {
        ASSERT_FALSE(limits.admit_call(100 + i, ":1.50"));
    }
    EXPECT_TRUE(contains(limits.admit_call(200, ":1.50"), "waiting for the bus to name"));
    // Another user, already named, is not affected.
    ASSERT_FALSE(limits.admit_call(300, ":1.60"));
    ASSERT_FALSE(limits.admit_uid(300, 1002));
    ASSERT_FALSE(limits.admit_call(301, ":1.60"));
    // Once named, the flooder's connection is held to its uid's cap.
    for (unsigned i = 0; i < per; ++i) {
        auto r = limits.admit_uid(100 + i, 1001);
        EXPECT_EQ(r.has_value(), i >= 4) << i;
    }
    EXPECT_TRUE(contains(limits.admit_call(201, ":1.50"), "uid 1001"));
}

TEST(CallLimits, RootIsHeldOnlyToTheTotal) {
    CallLimits limits(100, 1);
    ASSERT_FALSE(limits.admit_call(1, ":1.1"));
    ASSERT_FALSE(limits.admit_uid(1, 0));
    for (std::uint64_t id = 2; id <= 6; ++id) {
        EXPECT_FALSE(limits.admit_call(id, ":1.1")) << id;
    }
}

TEST(CallLimits, AConnectionIsForgottenWhenItHasNothingPending) {
    CallLimits limits(2, 1);
    for (int round = 0; round < 1000; ++round) {
        ASSERT_FALSE(limits.admit_call(1, ":1.9"));
        ASSERT_FALSE(limits.admit_uid(1, 1001));
        limits.release(1);
        // A refused call on an idle connection leaves nothing either.
        ASSERT_FALSE(limits.admit_call(2, ":1." + std::to_string(round + 10)));
        ASSERT_FALSE(limits.admit_uid(2, 1002));
        ASSERT_TRUE(limits.admit_call(3, ":1." + std::to_string(round + 10)));
        limits.release(2);
    }
    EXPECT_EQ(limits.pending(), 0U);
    // Forgotten: the next call on :1.9 waits to be named again.
    ASSERT_FALSE(limits.admit_call(4, ":1.9"));
    EXPECT_FALSE(limits.admit_uid(4, 1001));
}
