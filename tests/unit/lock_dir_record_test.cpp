// The LockDir's record line, "NAME ID DEVICE KIND\n", written by Mount
// (NAME.mounts, DEV:INO.use) and the watcher (NAME.seen) and read by the
// daemon's executors and the sudo drop-in: what is written reads back, and
// anything else reads as no record (a reader takes it for stale).
#include "lock_dir_record.hpp"

#include <cstdint>
#include <gtest/gtest.h>
#include <limits>
#include <string>
#include <vector>

namespace overlay {
namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

TEST(LockDirRecord, FormatsOneLineNamingTheIdsKind) {
    EXPECT_EQ(format_lock_dir_record({"alpha", 42, 2049, MountTableKind::Statmount}),
              "alpha 42 2049 statmount\n");
    EXPECT_EQ(format_lock_dir_record({"beta_2", 7, 0, MountTableKind::Mountinfo}),
              "beta_2 7 0 mountinfo\n");
}

TEST(LockDirRecord, EveryRecordOfEitherKindRoundTrips) {
    const std::vector<LockDirRecord> records = {
        {"alpha", 42, 2049, MountTableKind::Statmount},
        {"alpha", 42, 2049, MountTableKind::Mountinfo},
        {"a", 0, 0, MountTableKind::Statmount},
        {std::string(64, 'x'), kMax, kMax, MountTableKind::Mountinfo},
        {"-dash_under", 0x8000000000000001ULL, 1, MountTableKind::Statmount},
    };
    for (const auto& record : records) {
        const std::string line = format_lock_dir_record(record);
        SCOPED_TRACE(line);
        const auto parsed = parse_lock_dir_record(line);
        ASSERT_TRUE(parsed.has_value());
        EXPECT_EQ(*parsed, record);
    }
}

TEST(LockDirRecord, TheKindIsReadFromTheLine) {
    const auto statmount = parse_lock_dir_record("alpha 5 6 statmount\n");
    const auto mountinfo = parse_lock_dir_record("alpha 5 6 mountinfo\n");
    ASSERT_TRUE(statmount && mountinfo);
    EXPECT_EQ(statmount->kind, MountTableKind::Statmount);
    EXPECT_EQ(mountinfo->kind, MountTableKind::Mountinfo);
    EXPECT_EQ(statmount->mount_id, 5U);
    EXPECT_EQ(mountinfo->device, 6U);
}

struct Malformed {
    const char* what;
    std::string line;
};

TEST(LockDirRecord, AnythingElseIsNoRecord) {
    const Malformed cases[] = {
        {"empty", ""},
        {"newline only", "\n"},
        {"no newline", "alpha 1 2 statmount"},
        {"two lines", "alpha 1 2 statmount\nalpha 3 4 statmount\n"},
        {"three fields", "alpha 1 statmount\n"},
        {"five fields", "alpha 1 2 3 statmount\n"},
        {"trailing space", "alpha 1 2 statmount \n"},
        {"double space", "alpha  1 2 statmount\n"},
        {"tab", "alpha\t1 2 statmount\n"},
        {"CR LF", "alpha 1 2 statmount\r\n"},
        {"empty id", "alpha  2 statmount\n"},
        {"empty device", "alpha 1  statmount\n"},
        {"empty kind", "alpha 1 2 \n"},
        {"unknown kind", "alpha 1 2 listmount\n"},
        {"kind's case", "alpha 1 2 Statmount\n"},
        {"signed id", "alpha +1 2 statmount\n"},
        {"negative id", "alpha -1 2 statmount\n"},
        {"hex id", "alpha 0x10 2 statmount\n"},
        {"id with a letter", "alpha 1a 2 statmount\n"},
        {"id over 64 bits", "alpha 18446744073709551616 2 statmount\n"},
        {"device over 64 bits", "alpha 1 99999999999999999999 statmount\n"},
        {"negative device", "alpha 1 -2 mountinfo\n"},
        {"NUL in the kind", std::string("alpha 1 2 statmount\0\n", 21)},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        EXPECT_EQ(parse_lock_dir_record(c.line), std::nullopt);
    }
}

TEST(LockDirRecord, DecimalNumbersOnly) {
    EXPECT_EQ(parse_decimal("0"), std::optional<std::uint64_t>(0));
    EXPECT_EQ(parse_decimal("007"), std::optional<std::uint64_t>(7));
    EXPECT_EQ(parse_decimal("4194304"), std::optional<std::uint64_t>(4194304));
    EXPECT_EQ(parse_decimal("18446744073709551615"), std::optional<std::uint64_t>(kMax));
    for (const char* bad :
         {"", " 1", "1 ", "+1", "-1", "0x1", "1.0", "1e3", "one", "18446744073709551616"}) {
        SCOPED_TRACE(bad);
        EXPECT_EQ(parse_decimal(bad), std::nullopt);
    }
}

} // namespace
} // namespace overlay
