// PolkitTurns: a share of the polkit slots per uid, and the uids waiting
// for a slot served in turn.
#include "polkit_turns.hpp"

#include <gtest/gtest.h>
#include <initializer_list>
#include <optional>
#include <vector>

using overlay::daemon::PolkitTurns;

namespace {

constexpr uid_t kA = 1001;
constexpr uid_t kB = 1002;
constexpr uid_t kC = 1003;

struct Check {
    uid_t uid;
    PolkitTurns::Id id;
};

// What release() answers: the check handed the freed slot, if any.
using Next = std::optional<PolkitTurns::Id>;

} // namespace

// Each test starts from checks that took a slot and checks that wait for
// one, asked for in that order.
class PolkitTurnsTest : public ::testing::Test {
  protected:
    void start(unsigned total, unsigned per_uid, std::initializer_list<Check> holding,
               std::initializer_list<Check> waiting = {}) {
        turns.emplace(total, per_uid);
        take(holding);
        queue(waiting);
    }

    // Each check takes a slot at once.
    void take(std::initializer_list<Check> checks) { ask(checks, true); }
    // Each check waits for a slot.
    void queue(std::initializer_list<Check> checks) { ask(checks, false); }

    std::optional<PolkitTurns> turns;

  private:
    void ask(std::initializer_list<Check> checks, bool takes) {
        for (const Check& c : checks) {
            EXPECT_EQ(turns->take_or_wait(c.uid, c.id), takes)
                << "check " << c.id << " of uid " << c.uid << (takes ? " waits" : " took a slot");
        }
    }
};

TEST_F(PolkitTurnsTest, OneUidHoldsOnlyItsShare) {
    start(8, 2, {{kA, 1}, {kA, 2}});
    // Its third waits although six slots are free...
    for (PolkitTurns::Id id = 3; id <= 16; ++id) {
        queue({{kA, id}});
    }
    EXPECT_EQ(turns->in_flight(kA), 2U);
    EXPECT_EQ(turns->waiting(), 14U);
    // ...and they are other users'.
    take({{kB, 20}, {kB, 21}, {kC, 30}});
    EXPECT_EQ(turns->in_flight(), 5U);
}

TEST_F(PolkitTurnsTest, TotalIsTheCapWhenEveryUidIsBelowItsShare) {
    start(2, 2, {{kA, 1}, {kB, 2}}, {{kC, 3}});
    EXPECT_EQ(turns->release(kA), Next(3));
    EXPECT_EQ(turns->in_flight(kC), 1U);
    EXPECT_EQ(turns->in_flight(kA), 0U);
    EXPECT_EQ(turns->release(kB), std::nullopt);
    EXPECT_EQ(turns->release(kC), std::nullopt);
    EXPECT_EQ(turns->in_flight(), 0U);
}

TEST_F(PolkitTurnsTest, ShareAboveTotalIsTotal) {
    // Both slots are A's, and its third waits.
    start(2, 100, {{kA, 1}, {kA, 2}}, {{kA, 3}});
}

// First come first served would give 1 2 3 4 5 6; in turn, each uid that
// waits gets a slot before any uid gets a second one.
TEST_F(PolkitTurnsTest, WaitingUidsAreServedInTurn) {
    start(1, 1, {{kC, 100}}, {{kA, 1}, {kA, 2}, {kA, 3}, {kB, 4}, {kC, 5}, {kB, 6}});

    std::vector<PolkitTurns::Id> served;
    uid_t holder = kC;
    const std::vector<uid_t> owner_of = {0, kA, kA, kA, kB, kC, kB};
    while (auto next = turns->release(holder)) {
        served.push_back(*next);
        holder = owner_of.at(*next);
    }
    EXPECT_EQ(served, (std::vector<PolkitTurns::Id>{1, 4, 5, 2, 6, 3}));
    EXPECT_EQ(turns->in_flight(), 0U);
    EXPECT_EQ(turns->waiting(), 0U);
}

TEST_F(PolkitTurnsTest, UidAtItsShareIsPassedOverAndKeepsItsPlace) {
    // A's waits at its share, then C's because no slot is left.
    start(2, 1, {{kA, 1}, {kB, 2}}, {{kA, 3}, {kC, 4}});
    // B's slot: A still holds its share, so C, behind it, is served.
    EXPECT_EQ(turns->release(kB), Next(4));
    // A's own slot: its waiting check.
    EXPECT_EQ(turns->release(kA), Next(3));
    EXPECT_EQ(turns->waiting(), 0U);
}

TEST_F(PolkitTurnsTest, NewCheckOfAWaitingUidWaitsBehindItsOwn) {
    start(3, 1, {{kA, 1}}, {{kA, 2}, {kA, 3}});
    EXPECT_EQ(turns->release(kA), Next(2));
    EXPECT_EQ(turns->release(kA), Next(3));
    EXPECT_EQ(turns->release(kA), std::nullopt);
}

TEST_F(PolkitTurnsTest, WithdrawnCheckIsNeverServed) {
    start(1, 1, {{kA, 1}}, {{kB, 2}, {kC, 3}});
    turns->withdraw(kB, 2);
    turns->withdraw(kB, 99); // not waiting: nothing
    EXPECT_EQ(turns->waiting(), 1U);
    EXPECT_EQ(turns->release(kA), Next(3));
    EXPECT_EQ(turns->release(kC), std::nullopt);
}
