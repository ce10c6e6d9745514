#include "error.hpp"
#include "mountinfo.hpp"

#include <gtest/gtest.h>
#include <random>
#include <string>
#include <string_view>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace overlay {
namespace {

using namespace std::string_literals;

TEST(Mountinfo, ParsesManPageLine) {
    const auto mounts = parse_mountinfo(
        "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n");
    ASSERT_EQ(mounts.size(), 1u);
    const auto& m = mounts[0];
    EXPECT_EQ(m.mount_id, 36u);
    EXPECT_EQ(m.parent_id, 35u);
    EXPECT_EQ(m.root, "/mnt1");
    EXPECT_EQ(m.mount_point, "/mnt2");
    EXPECT_EQ(m.mount_options, "rw,noatime");
    EXPECT_EQ(m.fs_type, "ext3");
    EXPECT_EQ(m.source, "/dev/root");
    EXPECT_EQ(m.super_options, "rw,errors=continue");
    // The superblock's device: what binds of one overlay share.
    EXPECT_EQ(m.device, ::makedev(98, 0));
}

TEST(Mountinfo, DeviceNumbersBeyondThirtyTwoBitsAreMalformed) {
    EXPECT_EQ(parse_mountinfo("1 0 4294967295:1048575 / / rw - x y rw\n")[0].device,
              ::makedev(4294967295U, 1048575U));
    for (const char* bad : {"1 0 4294967296:0 / / rw - x y rw\n", "1 0 0:4294967296 / / rw - x y rw\n"}) {
        try {
            parse_mountinfo(bad);
            ADD_FAILURE() << bad;
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("mountinfo:1: "), std::string::npos) << e.what();
        }
    }
}

TEST(Mountinfo, OptionalFields) {
    const auto mounts = parse_mountinfo(
        "1 0 0:1 / / rw - rootfs rootfs rw\n"
        "2 1 0:2 / /a rw shared:1 - tmpfs tmpfs rw\n"
        "3 1 0:3 / /b rw shared:2 master:1 propagate_from:1 unbindable - tmpfs none rw\n");
    ASSERT_EQ(mounts.size(), 3u);
    EXPECT_EQ(mounts[0].mount_point, "/");
    EXPECT_EQ(mounts[1].fs_type, "tmpfs");
    EXPECT_EQ(mounts[2].mount_point, "/b");
    EXPECT_EQ(mounts[2].source, "none");
    EXPECT_EQ(mounts[2].super_options, "rw");
}

TEST(Mountinfo, UnescapesRootMountPointAndSource) {
    const auto mounts = parse_mountinfo(
        "40 1 0:40 /r\\040oot /var/lib/left4me/instances/a\\040b/merged\\011x\\012y\\134z rw - "
        "overlay left4me:a\\040b rw,lowerdir=/x\\040y\n");
    ASSERT_EQ(mounts.size(), 1u);
    EXPECT_EQ(mounts[0].root, "/r oot");
    EXPECT_EQ(mounts[0].mount_point, "/var/lib/left4me/instances/a b/merged\tx\ny\\z");
    EXPECT_EQ(mounts[0].source, "left4me:a b");
    EXPECT_EQ(mounts[0].super_options, "rw,lowerdir=/x\\040y"); // left as the kernel wrote it
}

TEST(Mountinfo, LineEndingsAndBlankLines) {
    EXPECT_TRUE(parse_mountinfo("").empty());
    EXPECT_TRUE(parse_mountinfo("\n\n").empty());
    EXPECT_EQ(parse_mountinfo("1 0 0:1 / / rw - rootfs rootfs rw").size(), 1u);
    EXPECT_EQ(parse_mountinfo("1 0 0:1 / / rw - a a rw\n\n2 1 0:1 / /x rw - a a rw\n").size(), 2u);
}

TEST(Mountinfo, LargeIds) {
    const auto mounts = parse_mountinfo("18446744073709551615 0 0:1 / / rw - a a rw\n");
    ASSERT_EQ(mounts.size(), 1u);
    EXPECT_EQ(mounts[0].mount_id, 18446744073709551615u);
}

TEST(Mountinfo, RefusesMalformedLines) {
    struct Bad {
        const char* what;
        std::string text;
        const char* fragment;
    };
    const Bad cases[] = {
        {"missing separator", "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 ext3 /dev/root rw\n",
         "mountinfo:1: no ' - ' separator"},
        {"separator too early", "36 35 98:0 /mnt1 - rw ext3 /dev/root rw\n", "no ' - ' separator"},
        {"too few fields", "36 35\n", "no ' - ' separator"},
        {"one field", "x", "no ' - ' separator"},
        {"two after separator", "1 0 0:1 / / rw - a a\n", "not three fields after ' - '"},
        {"four after separator", "1 0 0:1 / / rw - a a rw x\n", "not three fields"},
        {"non-numeric id", "x 0 0:1 / / rw - a a rw\n", "mount id 'x' is not a decimal number"},
        {"negative id", "-1 0 0:1 / / rw - a a rw\n", "mount id '-1'"},
        {"id suffix", "1x 0 0:1 / / rw - a a rw\n", "mount id '1x'"},
        {"id overflow", "18446744073709551616 0 0:1 / / rw - a a rw\n", "mount id"},
        {"bad parent", "1 p 0:1 / / rw - a a rw\n", "parent id 'p'"},
        {"empty parent (double space)", "1  0:1 / / rw - a a rw\n", "parent id ''"},
        {"bad device", "1 0 98 / / rw - a a rw\n", "bad device number '98'"},
        {"bad device minor", "1 0 98: / / rw - a a rw\n", "bad device number"},
        {"bad escape digit", "1 0 0:1 / /a\\9bc rw - a a rw\n", "bad escape in mount point"},
        {"short escape", "1 0 0:1 / /a\\04 rw - a a rw\n", "bad escape in mount point"},
        {"escape out of range", "1 0 0:1 /\\400 / rw - a a rw\n", "bad escape in root"},
        {"trailing backslash", "1 0 0:1 / / rw - a a\\ rw\n", "bad escape in source"},
        {"empty fs type", "1 0 0:1 / / rw -  a rw\n", "empty mount point or file system type"},
        {"second line bad", "1 0 0:1 / / rw - a a rw\nbroken\n", "mountinfo:2:"},
        {"hostile bytes shown safely", "\x1b[2J 0 0:1 / / rw - a a rw\n", "'\\x1b[2J'"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        try {
            parse_mountinfo(c.text);
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::Failed);
            EXPECT_NE(std::string(e.what()).find(c.fragment), std::string::npos) << e.what();
        }
    }
}

// Hostile text (a mount point is whoever mounts' choice): a damaged line and
// random bytes either parse into entries with their required fields, or
// fail with Failed and a printable message; nothing else escapes. Both
// happen for these inputs. libFuzzer (fuzz_mountinfo) searches further; this
// runs in every unit run.
TEST(Mountinfo, DamagedLinesParseOrFailWithFailed) {
    std::mt19937 rng(42);
    const std::string alphabet = "0123456789 :-/\\\n\t\0abx"s;
    const std::string good = "1 0 0:1 / /m rw shared:1 - overlay left4me:x rw\n";
    int parsed = 0;
    int refused = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text;
        if (round % 2 == 0) {
            text = good;
            for (int flips = 0; flips < 3; ++flips) {
                text[rng() % text.size()] = alphabet[rng() % alphabet.size()];
            }
        } else {
            const auto size = rng() % 64;
            for (std::size_t i = 0; i < size; ++i) {
                text.push_back(static_cast<char>(rng() % 256));
            }
        }
        try {
            for (const auto& m : parse_mountinfo(text)) {
                ASSERT_FALSE(m.mount_point.empty()) << testing::PrintToString(text);
                ASSERT_FALSE(m.fs_type.empty()) << testing::PrintToString(text);
            }
            ++parsed;
        } catch (const Error& e) {
            ++refused;
            ASSERT_EQ(e.code(), ErrorCode::Failed) << testing::PrintToString(text);
            const std::string_view message = e.what();
            ASSERT_FALSE(message.empty()) << testing::PrintToString(text);
            for (unsigned char c : message) {
                ASSERT_TRUE(c >= 0x20 && c < 0x7f) << testing::PrintToString(std::string(message));
            }
        } catch (...) {
            FAIL() << "not an overlay::Error for " << testing::PrintToString(text);
        }
    }
    EXPECT_GT(parsed, 0);
    EXPECT_GT(refused, 0);
}

TEST(Mountinfo, FindMountAtLastWins) {
    const auto mounts = parse_mountinfo("1 0 0:1 / / rw - a a rw\n"
                                        "2 1 0:2 / /srv/merged rw - overlay first rw\n"
                                        "3 1 0:3 / /srv/merged2 rw - tmpfs t rw\n"
                                        "4 2 0:4 / /srv/merged rw - overlay second rw\n"
                                        "5 1 0:5 / /srv rw - tmpfs t rw\n");
    const auto* m = find_mount_at(mounts, "/srv/merged");
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->mount_id, 4u);
    EXPECT_EQ(m->source, "second");
    EXPECT_EQ(find_mount_at(mounts, "/srv/merge"), nullptr);
    EXPECT_EQ(find_mount_at(mounts, "/srv/merged/"), nullptr);
    EXPECT_EQ(find_mount_at(mounts, "/nowhere"), nullptr);
    ASSERT_NE(find_mount_at(mounts, "/"), nullptr);
    EXPECT_EQ(find_mount_at(mounts, "/")->mount_id, 1u);
    EXPECT_EQ(find_mount_at({}, "/"), nullptr);
}

TEST(Mountinfo, ReadsOwnMountTable) {
    const auto mounts = read_mountinfo(::getpid());
    ASSERT_FALSE(mounts.empty());
    EXPECT_NE(find_mount_at(mounts, "/"), nullptr);
    EXPECT_NE(find_mount_at(mounts, "/proc"), nullptr);
}

TEST(Mountinfo, ReadMissingProcessFails) {
    try {
        read_mountinfo(2147483647);
        ADD_FAILURE() << "read";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Failed);
        EXPECT_NE(std::string(e.what()).find("/proc/2147483647/mountinfo: cannot open"),
                  std::string::npos)
            << e.what();
    }
}

} // namespace
} // namespace overlay
