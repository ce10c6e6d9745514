// PolkitTurns: a share of the polkit slots per uid, and the uids waiting
// for a slot served in turn.
#include "polkit_turns.hpp"

#include <gtest/gtest.h>
#include <optional>
#include <vector>

using overlay::daemon::PolkitTurns;

namespace {

constexpr uid_t kA = 1001;
constexpr uid_t kB = 1002;
constexpr uid_t kC = 1003;

} // namespace

TEST(PolkitTurnsTest, OneUidHoldsOnlyItsShare) {
    PolkitTurns turns(8, 2);
    EXPECT_TRUE(turns.take_or_wait(kA, 1));
    EXPECT_TRUE(turns.take_or_wait(kA, 2));
    // Its third waits although six slots are free...
    for (PolkitTurns::Id id = 3; id <= 16; ++id) {
        EXPECT_FALSE(turns.take_or_wait(kA, id));
    }
    EXPECT_EQ(turns.in_flight(kA), 2U);
    EXPECT_EQ(turns.waiting(), 14U);
    // ...and they are other users'.
    EXPECT_TRUE(turns.take_or_wait(kB, 20));
    EXPECT_TRUE(turns.take_or_wait(kB, 21));
    EXPECT_TRUE(turns.take_or_wait(kC, 30));
    EXPECT_EQ(turns.in_flight(), 5U);
}

TEST(PolkitTurnsTest, TotalIsTheCapWhenEveryUidIsBelowItsShare) {
    PolkitTurns turns(2, 2);
    EXPECT_TRUE(turns.take_or_wait(kA, 1));
    EXPECT_TRUE(turns.take_or_wait(kB, 2));
    EXPECT_FALSE(turns.take_or_wait(kC, 3));
    EXPECT_EQ(turns.release(kA), std::optional<PolkitTurns::Id>(3));
    EXPECT_EQ(turns.in_flight(kC), 1U);
    EXPECT_EQ(turns.in_flight(kA), 0U);
    EXPECT_EQ(turns.release(kB), std::nullopt);
    EXPECT_EQ(turns.release(kC), std::nullopt);
    EXPECT_EQ(turns.in_flight(), 0U);
}

TEST(PolkitTurnsTest, ShareAboveTotalIsTotal) {
    PolkitTurns turns(2, 100);
    EXPECT_TRUE(turns.take_or_wait(kA, 1));
    EXPECT_TRUE(turns.take_or_wait(kA, 2));
    EXPECT_FALSE(turns.take_or_wait(kA, 3));
}

// First come first served would give 1 2 3 4 5 6; in turn, each uid that
// waits gets a slot before any uid gets a second one.
TEST(PolkitTurnsTest, WaitingUidsAreServedInTurn) {
    PolkitTurns turns(1, 1);
    ASSERT_TRUE(turns.take_or_wait(kC, 100));
    EXPECT_FALSE(turns.take_or_wait(kA, 1));
    EXPECT_FALSE(turns.take_or_wait(kA, 2));
    EXPECT_FALSE(turns.take_or_wait(kA, 3));
    EXPECT_FALSE(turns.take_or_wait(kB, 4));
    EXPECT_FALSE(turns.take_or_wait(kC, 5));
    EXPECT_FALSE(turns.take_or_wait(kB, 6));

    std::vector<PolkitTurns::Id> served;
    uid_t holder = kC;
    const std::vector<uid_t> owner_of = {0, kA, kA, kA, kB, kC, kB};
    while (auto next = turns.release(holder)) {
        served.push_back(*next);
        holder = owner_of.at(*next);
    }
    EXPECT_EQ(served, (std::vector<PolkitTurns::Id>{1, 4, 5, 2, 6, 3}));
    EXPECT_EQ(turns.in_flight(), 0U);
    EXPECT_EQ(turns.waiting(), 0U);
}

TEST(PolkitTurnsTest, UidAtItsShareIsPassedOverAndKeepsItsPlace) {
    PolkitTurns turns(2, 1);
    ASSERT_TRUE(turns.take_or_wait(kA, 1));
    ASSERT_TRUE(turns.take_or_wait(kB, 2));
    EXPECT_FALSE(turns.take_or_wait(kA, 3)); // A at its share
    EXPECT_FALSE(turns.take_or_wait(kC, 4)); // no slot left
    // B's slot: A still holds its share, so C, behind it, is served.
    EXPECT_EQ(turns.release(kB), std::optional<PolkitTurns::Id>(4));
    // A's own slot: its waiting check.
    EXPECT_EQ(turns.release(kA), std::optional<PolkitTurns::Id>(3));
    EXPECT_EQ(turns.waiting(), 0U);
}

TEST(PolkitTurnsTest, NewCheckOfAWaitingUidWaitsBehindItsOwn) {
    PolkitTurns turns(3, 1);
    ASSERT_TRUE(turns.take_or_wait(kA, 1));
    EXPECT_FALSE(turns.take_or_wait(kA, 2));
    EXPECT_FALSE(turns.take_or_wait(kA, 3));
    EXPECT_EQ(turns.release(kA), std::optional<PolkitTurns::Id>(2));
    EXPECT_EQ(turns.release(kA), std::optional<PolkitTurns::Id>(3));
    EXPECT_EQ(turns.release(kA), std::nullopt);
}

TEST(PolkitTurnsTest, WithdrawnCheckIsNeverServed) {
    PolkitTurns turns(1, 1);
    ASSERT_TRUE(turns.take_or_wait(kA, 1));
    EXPECT_FALSE(turns.take_or_wait(kB, 2));
    EXPECT_FALSE(turns.take_or_wait(kC, 3));
    turns.withdraw(kB, 2);
    turns.withdraw(kB, 99); // not waiting: nothing
    EXPECT_EQ(turns.waiting(), 1U);
    EXPECT_EQ(turns.release(kA), std::optional<PolkitTurns::Id>(3));
    EXPECT_EQ(turns.release(kC), std::nullopt);
}
