#include "call_limits.hpp"

#include <gtest/gtest.h>

using overlay::daemon::CallLimits;

TEST(CallLimits, TotalCapRefusesTheExcessAndReleaseFreesASlot) {
    CallLimits limits(3, 10);
    EXPECT_FALSE(limits.admit_call(1, ":1.1"));
    EXPECT_FALSE(limits.admit_call(2, ":1.2"));
    EXPECT_FALSE(limits.admit_call(3, ":1.3"));
    auto refused = limits.admit_call(4, ":1.4");
    ASSERT_TRUE(refused);
    EXPECT_NE(refused->find("MaxPendingCalls"), std::string::npos) << *refused;
    limits.release(2);
    EXPECT_FALSE(limits.admit_call(4, ":1.4"));
    EXPECT_EQ(limits.pending(), 3U);
}

TEST(CallLimits, OneConnectionIsHeldToThePerUserCap) {
    CallLimits limits(100, 2);
    EXPECT_FALSE(limits.admit_call(1, ":1.7"));
    EXPECT_FALSE(limits.admit_call(2, ":1.7"));
    auto refused = limits.admit_call(3, ":1.7");
    ASSERT_TRUE(refused);
    EXPECT_NE(refused->find(":1.7"), std::string::npos) << *refused;
    // Another connection is not affected.
    EXPECT_FALSE(limits.admit_call(4, ":1.8"));
}

TEST(CallLimits, OneUidOverManyConnectionsIsHeldToItsCap) {
    CallLimits limits(100, 2);
    for (std::uint64_t id = 1; id <= 3; ++id) {
        ASSERT_FALSE(limits.admit_call(id, ":1." + std::to_string(id)));
    }
    EXPECT_FALSE(limits.admit_uid(1, 1001));
    EXPECT_FALSE(limits.admit_uid(2, 1001));
    auto refused = limits.admit_uid(3, 1001);
    ASSERT_TRUE(refused);
    EXPECT_NE(refused->find("uid 1001"), std::string::npos) << *refused;
    limits.release(3); // the refused call is released by its owner too
    limits.release(1);
    ASSERT_FALSE(limits.admit_call(5, ":1.5"));
    EXPECT_FALSE(limits.admit_uid(5, 1001));
}

TEST(CallLimits, RootIsHeldOnlyToTheTotal) {
    CallLimits limits(100, 1);
    for (std::uint64_t id = 1; id <= 5; ++id) {
        ASSERT_FALSE(limits.admit_call(id, ":1." + std::to_string(id)));
        EXPECT_FALSE(limits.admit_uid(id, 0));
    }
}

TEST(CallLimits, ReleasingEverythingLeavesNothingBehind) {
    CallLimits limits(2, 1);
    for (int round = 0; round < 1000; ++round) {
        ASSERT_FALSE(limits.admit_call(1, ":1.9"));
        ASSERT_FALSE(limits.admit_uid(1, 1001));
        limits.release(1);
    }
    EXPECT_EQ(limits.pending(), 0U);
    EXPECT_FALSE(limits.admit_call(2, ":1.9"));
    EXPECT_FALSE(limits.admit_uid(2, 1001));
}
