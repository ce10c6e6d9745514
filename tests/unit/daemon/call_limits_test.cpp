#include "call_limits.hpp"

#include <gtest/gtest.h>

using overlay::daemon::CallLimits;

namespace {

constexpr std::optional<uid_t> kUnknown = std::nullopt;

bool contains(const std::optional<std::string>& s, const std::string& part) {
    return s && s->find(part) != std::string::npos;
}

} // namespace

TEST(CallLimits, TheTotalOfNamedCallsIsCapped) {
    CallLimits limits(3, 10);
    for (std::uint64_t id = 1; id <= 3; ++id) {
        ASSERT_FALSE(limits.admit_call(id, ":1." + std::to_string(id), kUnknown));
        ASSERT_FALSE(limits.admit_uid(id, 1000 + static_cast<uid_t>(id)));
    }
    ASSERT_FALSE(limits.admit_call(4, ":1.4", kUnknown));
    EXPECT_TRUE(contains(limits.admit_uid(4, 1004), "MaxPendingCalls"));
    // A known connection is refused on arrival.
    EXPECT_TRUE(contains(limits.admit_call(5, ":1.1", 1001), "MaxPendingCalls"));
    limits.release(4);
    limits.release(2);
    ASSERT_FALSE(limits.admit_call(6, ":1.6", kUnknown));
    EXPECT_FALSE(limits.admit_uid(6, 1006));
    EXPECT_EQ(limits.pending(), 3U);
}

TEST(CallLimits, AKnownConnectionIsChargedToItsUidOnArrival) {
    CallLimits limits(100, 3);
    ASSERT_FALSE(limits.admit_call(1, ":1.7", kUnknown));
    ASSERT_FALSE(limits.admit_uid(1, 1001));
    // The identity cache knows the connection now: the next calls count
    // against uid 1001 at once.
    EXPECT_FALSE(limits.admit_call(2, ":1.7", 1001));
    EXPECT_FALSE(limits.admit_call(3, ":1.7", 1001));
    EXPECT_TRUE(contains(limits.admit_call(4, ":1.7", 1001), "uid 1001 has 3 calls pending"));
    // admit_uid of a call counted on arrival changes nothing.
    EXPECT_FALSE(limits.admit_uid(2, 1001));
    limits.release(3);
    EXPECT_FALSE(limits.admit_call(5, ":1.7", 1001));
}

TEST(CallLimits, ABurstOnAKnownConnectionWithNothingPendingIsChargedToItsUid) {
    // MaxPendingCalls and MaxPendingCallsPerUser's defaults.
    CallLimits limits(256, 32);
    ASSERT_FALSE(limits.admit_call(1, ":1.7", kUnknown));
    ASSERT_FALSE(limits.admit_uid(1, 1001));
    limits.release(1);
    ASSERT_EQ(limits.pending(), 0U);
    // Nothing of it pending, but known: the burst is its uid's, not a
    // fresh connection's few calls waiting to be named.
    unsigned admitted = 0;
    for (std::uint64_t id = 2; id < 52; ++id) {
        auto refused = limits.admit_call(id, ":1.7", 1001);
        if (!refused) {
            ++admitted;
            continue;
        }
        EXPECT_TRUE(contains(refused, "uid 1001 has 32 calls pending")) << *refused;
    }
    EXPECT_EQ(admitted, 32U);
    EXPECT_EQ(limits.pending(), 32U);
}

TEST(CallLimits, OneUidOverManyConnectionsIsHeldToItsCap) {
    CallLimits limits(100, 2);
    for (std::uint64_t id = 1; id <= 3; ++id) {
        ASSERT_FALSE(limits.admit_call(id, ":1." + std::to_string(id), kUnknown));
    }
    EXPECT_FALSE(limits.admit_uid(1, 1001));
    EXPECT_FALSE(limits.admit_uid(2, 1001));
    EXPECT_TRUE(contains(limits.admit_uid(3, 1001), "uid 1001 has 2 calls pending"));
    EXPECT_TRUE(contains(limits.admit_call(4, ":1.1", 1001), "uid 1001 has 2 calls pending"));
    limits.release(3);
    limits.release(1);
    ASSERT_FALSE(limits.admit_call(5, ":1.5", kUnknown));
    EXPECT_FALSE(limits.admit_uid(5, 1001));
}

TEST(CallLimits, CallsWaitingToBeNamedHaveABudgetOfTheirOwn) {
    // One user's flood on fresh connections, before the bus has named any:
    // a few per connection, and never the places of named calls.
    CallLimits limits(20, 4);
    const unsigned per = CallLimits::kUnnamedPerConnection;
    for (unsigned i = 0; i < per; ++i) {
        ASSERT_FALSE(limits.admit_call(100 + i, ":1.50", kUnknown));
    }
    EXPECT_TRUE(contains(limits.admit_call(200, ":1.50", kUnknown), "waiting for the bus to name"));
    // Another user, already known, is not affected.
    ASSERT_FALSE(limits.admit_call(300, ":1.60", kUnknown));
    ASSERT_FALSE(limits.admit_uid(300, 1002));
    ASSERT_FALSE(limits.admit_call(301, ":1.60", 1002));
    // Once named, the flooder's connection is held to its uid's cap.
    for (unsigned i = 0; i < per; ++i) {
        auto r = limits.admit_uid(100 + i, 1001);
        EXPECT_EQ(r.has_value(), i >= 4) << i;
    }
    EXPECT_TRUE(contains(limits.admit_call(201, ":1.50", 1001), "uid 1001"));
    // Its budget of calls waiting to be named is free again.
    EXPECT_FALSE(limits.admit_call(202, ":1.50", kUnknown));
}

TEST(CallLimits, RootIsHeldOnlyToTheTotal) {
    CallLimits limits(100, 1);
    ASSERT_FALSE(limits.admit_call(1, ":1.1", kUnknown));
    ASSERT_FALSE(limits.admit_uid(1, 0));
    for (std::uint64_t id = 2; id <= 6; ++id) {
        EXPECT_FALSE(limits.admit_call(id, ":1.1", 0)) << id;
    }
}

TEST(CallLimits, ALeftConnectionsCallsStayChargedUntilReleased) {
    CallLimits limits(100, 2);
    ASSERT_FALSE(limits.admit_call(1, ":1.9", 1001));
    ASSERT_FALSE(limits.admit_call(2, ":1.9", 1001));
    // It left: the cache no longer knows it, and a call of it that was
    // already queued waits to be named (the bus daemon then says it is
    // gone). Its pending calls still count against its uid.
    ASSERT_FALSE(limits.admit_call(3, ":1.9", kUnknown));
    EXPECT_TRUE(contains(limits.admit_uid(3, 1001), "uid 1001 has 2 calls pending"));
    EXPECT_TRUE(contains(limits.admit_call(4, ":1.10", 1001), "uid 1001 has 2 calls pending"));
    limits.release(1);
    limits.release(2);
    limits.release(3);
    EXPECT_EQ(limits.pending(), 0U);
    EXPECT_FALSE(limits.admit_call(5, ":1.10", 1001));
    EXPECT_FALSE(limits.admit_call(6, ":1.10", 1001));
}

TEST(CallLimits, NothingIsKeptOfAConnectionWithNoCallPending) {
    CallLimits limits(2, 1);
    for (int round = 0; round < 1000; ++round) {
        const std::string name = ":1." + std::to_string(round + 10);
        ASSERT_FALSE(limits.admit_call(1, ":1.9", kUnknown));
        ASSERT_FALSE(limits.admit_uid(1, 1001));
        limits.release(1);
        // A refused call leaves nothing either.
        ASSERT_FALSE(limits.admit_call(2, name, kUnknown));
        ASSERT_FALSE(limits.admit_uid(2, 1002));
        ASSERT_TRUE(limits.admit_call(3, name, 1002));
        limits.release(2);
    }
    EXPECT_EQ(limits.pending(), 0U);
    // A connection the cache does not know waits to be named again.
    ASSERT_FALSE(limits.admit_call(10, ":1.9", kUnknown));
    EXPECT_FALSE(limits.admit_uid(10, 1001));
}
