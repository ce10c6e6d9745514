// migrate_instance against fuse-era uppers built here by hand, following
// fuse-overlayfs' rules (FUSE cannot run on the test machines): both
// whiteout kinds, both opaque kinds, override_stat, origin xattrs, leftover
// pairs, hard links, symlinks aimed outside, FIFOs; an interrupted run
// resumed; the refusals. Real mounts, in this test's own namespace.
#include "error.hpp"
#include "executor_protocol.hpp"
#include "expect_error.hpp"
#include "fs_open.hpp"
#include "helper_protocol.hpp"
#include "instance_lock.hpp"
#include "migrate.hpp"
#include "operations.hpp"
#include "packet_channel.hpp"
#include "scratch.hpp"
#include "taint_scan.hpp"
#include "unique_fd.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using overlay::UniqueFd;
using namespace l4m_test;
namespace fs = std::filesystem;

void set_x(const std::string& path, const std::string& name, const std::string& value) {
    ASSERT_EQ(::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0), 0)
        << path << " " << name << ": " << std::strerror(errno);
}

std::optional<std::string> get_x(const std::string& path, const std::string& name) {
    char buf[256];
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf);
    if (n < 0) {
        return std::nullopt;
    }
    return std::string(buf, static_cast<std::size_t>(n));
}

// fuse-overlayfs' fallback whiteout: an empty file, mode 0700.
void fuse_whiteout(const std::string& dir, const std::string& name) {
    write_file(dir + "/.wh." + name, "");
    ASSERT_EQ(::chmod((dir + "/.wh." + name).c_str(), 0700), 0);
}

void kernel_whiteout(const std::string& path) {
    ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0, makedev(0, 0)), 0) << path;
}

// A directory fuse-overlayfs made opaque without privilege.
void fuse_opaque_dir(const std::string& dir) {
    make_dirs(dir);
    set_x(dir, "user.fuseoverlayfs.opaque", "y");
    write_file(dir + "/.wh..wh..opq", "");
}

bool is_whiteout(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Every entry under `top`: path, type, mode, owner, size, contents or
// target. What a user of the instance sees.
std::string tree(const std::string& top) {
    std::vector<std::string> lines;
    for (auto it = fs::recursive_directory_iterator(top); it != fs::recursive_directory_iterator();
         ++it) {
        const std::string p = it->path().string();
        struct stat st {};
        ::lstat(p.c_str(), &st);
        std::ostringstream line;
        line << p.substr(top.size()) << " " << std::oct << st.st_mode << std::dec << " "
             << st.st_uid << ":" << st.st_gid;
        if (S_ISREG(st.st_mode)) {
            line << " '" << read_file(p) << "'";
        } else if (S_ISLNK(st.st_mode)) {
            line << " -> " << fs::read_symlink(p).string();
        }
        lines.push_back(line.str());
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

bool has_line(const std::vector<std::string>& lines, const std::string& fragment) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const auto& l) { return l.find(fragment) != std::string::npos; });
}

class Migrate : public ::testing::TestWithParam<overlay::PathResolver> {
  protected:
    void SetUp() override {
        overlay::set_path_resolver(GetParam());
        layout = make_layout();
        base = layout.root + "/installation/base";
        mod = layout.root + "/overlays/mod";
        upper = layout.instance_dir("alpha") + "/upper";
    }
    void TearDown() override {
        overlay::set_migration_stop_after_for_tests(0);
        if (overlays_at(layout.merged("alpha")) > 0) {
            ::umount2(layout.merged("alpha").c_str(), MNT_DETACH);
        }
        overlay::set_path_resolver(overlay::PathResolver::Auto);
    }

    // Lowers and a fuse-era upper with one of each kind of entry.
    void build_fuse_era() {
        make_dirs(base + "/keep");
        write_file(base + "/keep/k1", "k1");
        write_file(base + "/keep/k2", "k2");
        make_dirs(base + "/keep/sub");
        write_file(base + "/keep/sub/s1", "s1");
        make_dirs(base + "/keep/sub/deeper");
        write_file(base + "/keep/sub/deeper/d1", "d1");
        make_dirs(base + "/gone");
        write_file(base + "/gone/g1", "g1");
        make_dirs(base + "/opq");
        write_file(base + "/opq/o1", "o1");
        make_dirs(base + "/uo");
        write_file(base + "/uo/x", "x");
        write_file(base + "/c.txt", "c");
        write_file(base + "/pair", "lower pair");
        make_dirs(base + "/odir");

        fuse_whiteout(upper, "b.txt");     // base's b.txt: becomes char 0/0
        fuse_whiteout(upper, "never");     // nothing below: removed
        fuse_whiteout(upper, "gone");      // a lower directory
        kernel_whiteout(upper + "/c.txt"); // kernel form already: stays
        fuse_opaque_dir(upper + "/opq");   // opaque, and a file of its own
        write_file(upper + "/opq/n1", "n1");
        fuse_whiteout(upper + "/opq", "o1"); // in an opaque dir: nothing to hide
        make_dirs(upper + "/keep");          // merged with base/keep
        fuse_whiteout(upper + "/keep", "k1");
        make_dirs(upper + "/keep/sub"); // opaque both ways (privileged fuse)
        set_x(upper + "/keep/sub", "trusted.overlay.opaque", "y");
        write_file(upper + "/keep/sub/.wh..wh..opq", "");
        write_file(upper + "/keep/sub/t1", "t1");
        fuse_opaque_dir(upper + "/keep/sub/deeper"); // nested opaque
        make_dirs(upper + "/uo");                    // user.overlay.opaque only
        set_x(upper + "/uo", "user.overlay.opaque", "y");
        write_file(upper + "/log.txt", "log");
        set_x(upper + "/log.txt", "user.fuseoverlayfs.origin", "origin-bytes");
        set_x(upper + "/log.txt", "user.admin-note", "kept");
        write_file(upper + "/owned", "suid");
        ::chmod((upper + "/owned").c_str(), 0600);
        // Privileged fuse-overlayfs: only root can write security.*.
        set_x(upper + "/owned", "security.fuseoverlayfs.override_stat", "1000:1001:4755");
        write_file(upper + "/mine", "own suid"); // already set-uid, as the override says
        ASSERT_EQ(::chown((upper + "/mine").c_str(), 1000, 1000), 0);
        ASSERT_EQ(::chmod((upper + "/mine").c_str(), 04755), 0);
        set_x(upper + "/mine", "user.fuseoverlayfs.override_stat", "1000:1000:4700");
        make_dirs(upper + "/odir");
        set_x(upper + "/odir", "user.fuseoverlayfs.override_stat", "1002:1003:750");
        write_file(upper + "/pair", "crash leftover"); // .wh.pair beside pair
        fuse_whiteout(upper, "pair");
        write_file(upper + "/lonely", "hidden"); // .wh.lonely, nothing below
        fuse_whiteout(upper, "lonely");
        write_file(upper + "/hl1", "linked");
        ASSERT_EQ(::link((upper + "/hl1").c_str(), (upper + "/hl2").c_str()), 0);
        set_x(upper + "/hl1", "user.fuseoverlayfs.origin", "o");
        ASSERT_EQ(::symlink("/etc/passwd", (upper + "/esc").c_str()), 0);
        ASSERT_EQ(::symlink("../../../outside/secret.txt", (upper + "/esc2").c_str()), 0);
        ASSERT_EQ(::mkfifo((upper + "/fifo").c_str(), 0644), 0);
        // A symlink where the lowers have a directory, aimed at a directory
        // outside full of fuse-overlayfs artefacts: never followed.
        make_dirs(base + "/linkdir");
        make_dirs(layout.outside + "/victim");
        fuse_whiteout(layout.outside + "/victim", "a");
        set_x(layout.outside + "/victim", "user.fuseoverlayfs.opaque", "y");
        ASSERT_EQ(::symlink("../../../../outside/victim", (upper + "/linkdir").c_str()), 0);
    }

    overlay::MigrationReport migrate(bool dry_run) {
        return overlay::migrate_instance(layout.config, "alpha", dry_run);
    }

    Layout layout;
    std::string base, mod, upper;
};

TEST_P(Migrate, DryRunChangesNothingAndListsEveryChange) {
    build_fuse_era();
    const std::string before = tree(upper);
    const auto report = migrate(true);
    EXPECT_EQ(tree(upper), before);
    const auto lines = report.lines();
    EXPECT_TRUE(has_line(lines, "convert-whiteout " + upper + "/.wh.b.txt -> " + upper + "/b.txt"));
    EXPECT_TRUE(has_line(lines, "remove-whiteout " + upper + "/.wh.never (nothing below"));
    EXPECT_TRUE(has_line(lines, "set-opaque " + upper + "/opq "));
    EXPECT_TRUE(has_line(lines, "remove-marker " + upper + "/opq/.wh..wh..opq"));
    EXPECT_TRUE(has_line(lines, "chown " + upper + "/owned 1000:1001"));
    EXPECT_TRUE(has_line(lines, "chmod " + upper + "/owned 4755"));
    EXPECT_TRUE(has_line(lines, "quarantine " + upper + "/pair -> "));
    EXPECT_TRUE(has_line(lines, "remove-xattr " + upper + "/log.txt user.fuseoverlayfs.origin"));
    EXPECT_TRUE(has_line(lines, "dry run: nothing was changed"));
    EXPECT_EQ(report.totals.quarantined, 2U);
    EXPECT_EQ(report.totals.changes() + 2, lines.size()); // + totals + summary
    EXPECT_FALSE(exists(layout.instance_dir("alpha") + "/migrate-quarantine"));
    EXPECT_FALSE(get_x(upper, std::string(overlay::kMigrationMarkerXattr)));
}

TEST_P(Migrate, ConvertsEveryKindOfEntryVerifiesAndThenMounts) {
    build_fuse_era();
    const auto dry = migrate(true);
    const auto report = migrate(false);
    // The real run does what the dry run said, line for line.
    // (The quarantine's name is the time of the run: the second may change.)
    auto dry_lines = dry.changes;
    const auto run_of = [](const std::string& q) { return fs::path(q).filename().string(); };
    for (auto& line : dry_lines) {
        if (auto at = line.find(run_of(dry.quarantine)); at != std::string::npos) {
            line.replace(at, run_of(dry.quarantine).size(), run_of(report.quarantine));
        }
    }
    EXPECT_EQ(report.changes, dry_lines);
    EXPECT_GT(report.verified_entries, 15U);

    EXPECT_TRUE(is_whiteout(upper + "/b.txt"));
    EXPECT_TRUE(is_whiteout(upper + "/gone"));
    EXPECT_TRUE(is_whiteout(upper + "/c.txt"));
    EXPECT_TRUE(is_whiteout(upper + "/keep/k1"));
    EXPECT_TRUE(is_whiteout(upper + "/pair")); // base has a pair to hide
    EXPECT_FALSE(exists(upper + "/never"));
    EXPECT_FALSE(exists(upper + "/lonely"));
    EXPECT_FALSE(exists(upper + "/opq/o1")); // opaque: no whiteout needed
    EXPECT_EQ(get_x(upper + "/opq", "trusted.overlay.opaque"), "y");
    EXPECT_EQ(get_x(upper + "/keep/sub", "trusted.overlay.opaque"), "y");
    EXPECT_EQ(get_x(upper + "/keep/sub/deeper", "trusted.overlay.opaque"), "y");
    EXPECT_EQ(get_x(upper + "/uo", "trusted.overlay.opaque"), "y");
    EXPECT_FALSE(get_x(upper + "/uo", "user.overlay.opaque"));
    EXPECT_FALSE(get_x(upper + "/keep", "trusted.overlay.opaque"));
    EXPECT_FALSE(get_x(upper + "/log.txt", "user.fuseoverlayfs.origin"));
    EXPECT_EQ(get_x(upper + "/log.txt", "user.admin-note"), "kept");
    struct stat st {};
    ASSERT_EQ(::lstat((upper + "/owned").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1000U);
    EXPECT_EQ(st.st_gid, 1001U);
    EXPECT_EQ(st.st_mode & 07777, 04755U); // chown first, or the set-uid bit is lost
    EXPECT_FALSE(get_x(upper + "/owned", "security.fuseoverlayfs.override_stat"));
    ASSERT_EQ(::lstat((upper + "/mine").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 04700U);
    ASSERT_EQ(::lstat((upper + "/odir").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1002U);
    EXPECT_EQ(st.st_mode & 07777, 0750U);
    EXPECT_EQ(fs::read_symlink(upper + "/esc"), "/etc/passwd");
    EXPECT_EQ(fs::read_symlink(upper + "/esc2"), "../../../outside/secret.txt");
    EXPECT_TRUE(fs::is_fifo(fs::symlink_status(upper + "/fifo")));
    ASSERT_EQ(::lstat((upper + "/hl2").c_str(), &st), 0);
    EXPECT_EQ(st.st_nlink, 2U);
    EXPECT_FALSE(get_x(upper + "/hl2", "user.fuseoverlayfs.origin"));
    EXPECT_EQ(read_file(layout.outside + "/secret.txt"), "outside\n");
    EXPECT_TRUE(exists(layout.outside + "/victim/.wh.a"));
    EXPECT_EQ(get_x(layout.outside + "/victim", "user.fuseoverlayfs.opaque"), "y");
    EXPECT_FALSE(get_x(layout.outside + "/victim", "trusted.overlay.opaque"));
    EXPECT_EQ(fs::read_symlink(upper + "/linkdir"), "../../../../outside/victim");
    EXPECT_TRUE(fs::is_directory(upper + "/linkdir")); // it does reach the victim

    // The hidden halves of leftover pairs are kept, not deleted.
    ASSERT_FALSE(report.quarantine.empty());
    EXPECT_EQ(read_file(report.quarantine + "/pair"), "crash leftover");
    EXPECT_EQ(read_file(report.quarantine + "/lonely"), "hidden");

    // Clean by the mount path's own scan, and mountable.
    UniqueFd ufd(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_NO_THROW(overlay::check_upper_untainted(ufd.get(), upper, "alpha"));
    ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
    const std::string m = layout.merged("alpha");
    EXPECT_EQ(read_file(m + "/a.txt"), "mod-a\n");
    for (const char* gone :
         {"/b.txt", "/c.txt", "/gone", "/never", "/pair", "/lonely", "/opq/o1", "/keep/k1",
          "/keep/sub/s1", "/keep/sub/deeper/d1", "/uo/x", "/opq/.wh..wh..opq"}) {
        EXPECT_FALSE(exists(m + gone)) << gone;
    }
    EXPECT_EQ(read_file(m + "/keep/k2"), "k2");
    EXPECT_EQ(read_file(m + "/keep/sub/t1"), "t1");
    EXPECT_EQ(read_file(m + "/opq/n1"), "n1");
    overlay::unmount_instance(layout.config, "alpha");

    // Once converted, there is nothing left to do.
    const auto again = migrate(false);
    EXPECT_EQ(again.totals.changes(), 0U);
}

TEST_P(Migrate, AnInterruptedRunIsSimplyRunAgain) {
    auto fresh = [&] {
        layout = make_layout();
        base = layout.root + "/installation/base";
        mod = layout.root + "/overlays/mod";
        upper = layout.instance_dir("alpha") + "/upper";
        build_fuse_era();
    };
    // The reference: one uninterrupted run.
    fresh();
    const std::size_t total = migrate(true).totals.changes();
    ASSERT_GT(total, 10U);
    migrate(false);
    overlay::mount_instance(layout.config, "alpha");
    const std::string want = tree(layout.merged("alpha"));
    overlay::unmount_instance(layout.config, "alpha");

    for (std::size_t stop : {std::size_t{1}, total / 3, total / 2, total - 1}) {
        SCOPED_TRACE("stopped after " + std::to_string(stop));
        fresh();
        overlay::set_migration_stop_after_for_tests(stop);
        EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::Failed, "test hook"));
        overlay::set_migration_stop_after_for_tests(0);
        // Half converted: the mount path refuses it until the run is done.
        EXPECT_TRUE(throws_error([&] { overlay::mount_instance(layout.config, "alpha"); },
                                 ErrorCode::UpperdirTainted,
                                 std::string(overlay::kMigrationMarkerXattr)));
        const auto resumed = migrate(false);
        // What was done is not done again (a whiteout made but whose fuse form
        // was not yet removed counts once more, as its removal).
        EXPECT_LE(resumed.totals.changes(), total);
        ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
        EXPECT_EQ(tree(layout.merged("alpha")), want);
        overlay::unmount_instance(layout.config, "alpha");
    }
}

// The instance lock is held from before the first change to the end, so
// nothing (the daemon's executors, the drop-in) mounts it half way.
TEST_P(Migrate, HoldsTheInstanceLockThroughout) {
    build_fuse_era();
    std::size_t checked = 0;
    overlay::migrate_instance(layout.config, "alpha", false, [&](const std::string&) {
        ++checked;
        EXPECT_TRUE(throws_error(
            [&] { overlay::InstanceLock(layout.config, "alpha", std::chrono::milliseconds(1)); },
            ErrorCode::Busy, "alpha"));
    });
    EXPECT_GT(checked, 10U);
    // And let go after.
    EXPECT_NO_THROW(overlay::InstanceLock(layout.config, "alpha", std::chrono::milliseconds(1)));
}

TEST_P(Migrate, RefusesAMountedInstanceAndChangesNothing) {
    write_file(upper + "/plain", "x");
    overlay::mount_instance(layout.config, "alpha");
    fuse_whiteout(upper, "b.txt"); // written behind the live mount's back
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::AlreadyMounted,
                             "instance alpha: " + layout.merged("alpha") + " is a mount point"));
    EXPECT_TRUE(throws_error([&] { migrate(true); }, ErrorCode::AlreadyMounted, "unmount"));
    EXPECT_TRUE(exists(upper + "/.wh.b.txt"));
    overlay::unmount_instance(layout.config, "alpha");
}

TEST_P(Migrate, RefusesASymlinkedUpper) {
    fs::remove_all(upper);
    make_dirs(layout.outside + "/fake-upper");
    fuse_whiteout(layout.outside + "/fake-upper", "a.txt");
    ASSERT_EQ(::symlink((layout.outside + "/fake-upper").c_str(), upper.c_str()), 0);
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UnsafePath, upper));
    EXPECT_TRUE(exists(layout.outside + "/fake-upper/.wh.a.txt"));
}

TEST_P(Migrate, RefusesAMountInsideUpper) {
    make_dirs(upper + "/d/m");
    fuse_whiteout(upper + "/d/m", "x");
    ASSERT_EQ(::mount("tmpfs", (upper + "/d/m").c_str(), "tmpfs", 0, nullptr), 0);
    fuse_whiteout(upper + "/d/m", "y");
    EXPECT_TRUE(throws_error([&] { migrate(true); }, ErrorCode::UnsafePath, "another mount"));
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UnsafePath, "another mount"));
    EXPECT_TRUE(exists(upper + "/d/m/.wh.y"));
    ::umount2((upper + "/d/m").c_str(), MNT_DETACH);
}

TEST_P(Migrate, AMismatchIsReportedAndTheInstanceStaysRefused) {
    // A fuse-overlayfs whiteout in a lower layer (which migrate does not
    // touch): fuse-overlayfs hid base's b.txt and mod's own c-file; the
    // kernel shows both, and the .wh. file too.
    write_file(mod + "/c-file", "c");
    fuse_whiteout(mod, "c-file");
    fuse_whiteout(mod, "b.txt");
    fuse_whiteout(upper, "a.txt");
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                             "instance alpha: migrate: verification failed"));
    EXPECT_TRUE(throws_error([&] { overlay::mount_instance(layout.config, "alpha"); },
                             ErrorCode::UpperdirTainted, "failed verification"));
    EXPECT_TRUE(
        throws_error([&] { migrate(true); }, ErrorCode::UpperdirTainted, "an earlier migration"));
    EXPECT_TRUE(
        throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted, "an earlier migration"));
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 0);
}

TEST_P(Migrate, DeepAndWideTrees) {
    std::string dir = upper;
    std::string lower = base;
    for (int i = 0; i < 100; ++i) {
        dir += "/d";
        lower += "/d";
        make_dirs(lower);
        write_file(lower + "/f", "f");
        make_dirs(dir);
        fuse_whiteout(dir, "f");
        set_x(dir, "user.fuseoverlayfs.origin", "o");
    }
    make_dirs(upper + "/wide");
    make_dirs(base + "/wide");
    for (int i = 0; i < 3000; ++i) {
        const std::string n = "n" + std::to_string(i);
        write_file(base + "/wide/" + n, n);
        fuse_whiteout(upper + "/wide", n);
        write_file(upper + "/wide/u" + std::to_string(i), "u");
    }
    const auto report = migrate(false);
    EXPECT_EQ(report.totals.whiteouts_converted, 3100U);
    EXPECT_EQ(report.totals.xattrs_removed, 100U);
    ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
    EXPECT_FALSE(exists(layout.merged("alpha") + "/wide/n7"));
    EXPECT_TRUE(exists(layout.merged("alpha") + "/wide/u7"));
    overlay::unmount_instance(layout.config, "alpha");
}

// Not a timed test: prints how long a migration of 100,000 upper entries
// takes, when L4M_MIGRATE_BENCH is set.
TEST_P(Migrate, Bench100k) {
    if (std::getenv("L4M_MIGRATE_BENCH") == nullptr) {
        GTEST_SKIP() << "set L4M_MIGRATE_BENCH=1 to measure";
    }
    for (int d = 0; d < 100; ++d) {
        const std::string dir = upper + "/d" + std::to_string(d);
        const std::string low = base + "/d" + std::to_string(d);
        fuse_opaque_dir(dir);
        make_dirs(low);
        for (int i = 0; i < 998; ++i) {
            const std::string n = "f" + std::to_string(i);
            if (i % 10 == 0) {
                write_file(low + "/" + n, "x");
                fuse_whiteout(dir, n);
            } else {
                write_file(dir + "/" + n, "data");
                set_x(dir + "/" + n, "user.fuseoverlayfs.origin", "o");
            }
        }
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto dry = migrate(true);
    const auto t1 = std::chrono::steady_clock::now();
    const auto report = migrate(false);
    const auto t2 = std::chrono::steady_clock::now();
    auto ms = [](auto d) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    };
    std::printf("migrate bench: %zu entries, %zu changes: dry run %lld ms, real run %lld ms\n",
                report.totals.entries, dry.totals.changes(), static_cast<long long>(ms(t1 - t0)),
                static_cast<long long>(ms(t2 - t1)));
}

TEST_P(Migrate, OddEntriesAreQuarantinedOrRefusedNeverDeleted) {
    make_dirs(base + "/pairdir");
    make_dirs(upper + "/pairdir/inner"); // a directory beside its .wh.
    write_file(upper + "/pairdir/inner/data", "keep me");
    fuse_whiteout(upper, "pairdir");
    make_dirs(upper + "/.wh.odd"); // a directory under a whiteout name
    write_file(upper + "/.wh.odd/x", "x");
    write_file(upper + "/.wh.notempty", "data"); // a non-empty file under such a name
    kernel_whiteout(upper + "/both");            // both forms of one whiteout
    write_file(base + "/both", "b");
    fuse_whiteout(upper, "both");
    make_dirs(upper + "/notopq"); // trusted says no: not opaque
    set_x(upper + "/notopq", "trusted.overlay.opaque", "n");
    set_x(upper + "/notopq", "user.fuseoverlayfs.opaque", "y");
    write_file(upper + "/notopq/.wh..wh..opq", "");
    make_dirs(base + "/notopq");
    write_file(base + "/notopq/shown", "s");
    make_dirs(upper + "/long"); // a long value starting with y
    set_x(upper + "/long", "user.fuseoverlayfs.opaque", "y" + std::string(400, 'x'));
    make_dirs(base + "/long");
    write_file(base + "/long/hidden", "h");
    make_dirs(upper + "/yes"); // "yes" is opaque to fuse, not the kernel
    set_x(upper + "/yes", "trusted.overlay.opaque", "yes");
    make_dirs(base + "/yes");
    write_file(base + "/yes/hidden", "h");

    const auto report = migrate(false);
    EXPECT_EQ(report.totals.quarantined, 3U);
    EXPECT_EQ(read_file(report.quarantine + "/.wh.notempty"), "data");
    EXPECT_EQ(read_file(report.quarantine + "/pairdir/inner/data"), "keep me");
    EXPECT_EQ(read_file(report.quarantine + "/.wh.odd/x"), "x");
    EXPECT_TRUE(is_whiteout(upper + "/pairdir"));
    EXPECT_TRUE(is_whiteout(upper + "/both"));
    EXPECT_FALSE(exists(upper + "/.wh.both"));
    EXPECT_EQ(get_x(upper + "/notopq", "trusted.overlay.opaque"), "n");
    EXPECT_EQ(get_x(upper + "/yes", "trusted.overlay.opaque"), "y");
    ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
    EXPECT_TRUE(exists(layout.merged("alpha") + "/notopq/shown"));
    EXPECT_FALSE(exists(layout.merged("alpha") + "/yes/hidden"));
    EXPECT_FALSE(exists(layout.merged("alpha") + "/long/hidden"));
    EXPECT_FALSE(exists(layout.merged("alpha") + "/pairdir"));
    overlay::unmount_instance(layout.config, "alpha");
}

TEST_P(Migrate, AUserWrittenOverrideStatCannotMakeASetIdFile) {
    write_file(upper + "/sh", "#!/bin/sh");
    ASSERT_EQ(::chown((upper + "/sh").c_str(), 1000, 1000), 0);
    for (const char* which :
         {"user.fuseoverlayfs.override_stat", "user.containers.override_stat"}) {
        set_x(upper + "/sh", which, "0:0:4755");
        EXPECT_TRUE(
            throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                         upper + "/sh carries " + which + " '0:0:4755', asking for a set-uid"));
        ASSERT_EQ(::lremovexattr((upper + "/sh").c_str(), which), 0);
    }
    set_x(upper + "/sh", "user.fuseoverlayfs.override_stat", "1000:0:2755");
    EXPECT_TRUE(throws_error([&] { migrate(true); }, ErrorCode::UpperdirTainted, "set-gid"));
    // Not even for its own owner: anyone who may write the file may write
    // the xattr (a root-owned 0666 file copied up, say).
    set_x(upper + "/sh", "user.fuseoverlayfs.override_stat", "1000:1000:4755");
    EXPECT_TRUE(throws_error([&] { migrate(true); }, ErrorCode::UpperdirTainted, "set-uid"));
    struct stat st {};
    ASSERT_EQ(::lstat((upper + "/sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1000U);
    EXPECT_EQ(st.st_mode & 07000, 0U);
    // Owner and mode without set-id bits are applied.
    set_x(upper + "/sh", "user.fuseoverlayfs.override_stat", "0:0:0755");
    ASSERT_NO_THROW(migrate(false));
    ASSERT_EQ(::lstat((upper + "/sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0U);
    EXPECT_EQ(st.st_mode & 07777, 0755U);
}

TEST_P(Migrate, AMalformedOverrideStatIsRefused) {
    write_file(upper + "/f", "x");
    set_x(upper + "/f", "user.fuseoverlayfs.override_stat", "1000:1000:rwx");
    EXPECT_TRUE(throws_error([&] { migrate(true); }, ErrorCode::UpperdirTainted,
                             upper + "/f carries a malformed user.fuseoverlayfs.override_stat"));
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted, "malformed"));
    EXPECT_EQ(get_x(upper + "/f", "user.fuseoverlayfs.override_stat"), "1000:1000:rwx");
}

// The verification mount is made by each mount API the config may force.
TEST_P(Migrate, VerifiesThroughEachMountApi) {
    for (auto api : {overlay::MountApi::LayerFds, overlay::MountApi::LowerdirStrings,
                     overlay::MountApi::Legacy}) {
        SCOPED_TRACE(static_cast<int>(api));
        layout = make_layout(api);
        base = layout.root + "/installation/base";
        mod = layout.root + "/overlays/mod";
        upper = layout.instance_dir("alpha") + "/upper";
        build_fuse_era();
        overlay::MigrationReport report;
        ASSERT_NO_THROW(report = migrate(false));
        EXPECT_GT(report.verified_entries, 15U);
        // And a mismatch is found by each.
        layout = make_layout(api);
        mod = layout.root + "/overlays/mod";
        fuse_whiteout(mod, "a.txt");
        EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                                 "verification failed"));
    }
}

// The drop-in verb: the report on stdout, refusals as one line on stderr,
// exit 0 / 1 / 2 like the other verbs.
TEST_P(Migrate, DropInPrintsTheReportAndExitsLikeTheOtherVerbs) {
    build_fuse_era();
    const std::string config = layout.root + "/../overlay.conf";
    write_file(config, "Root=" + layout.root + "\nHostPid=" + std::to_string(::getpid()) +
                           "\nLockDir=" + layout.lock_dir + "\n");
    const std::string out = layout.root + "/../out.txt";
    auto dropin = [&](const std::string& args, std::string* err) {
        return run_command({"sh", "-c",
                            "exec unshare --mount --propagation private " +
                                std::string(L4M_DROPIN_PATH) + " --config " + config + " " + args +
                                " >" + out},
                           err);
    };
    std::string err;
    const std::string before = tree(upper);
    ASSERT_EQ(dropin("migrate alpha --dry-run", &err), 0) << err;
    EXPECT_EQ(tree(upper), before);
    const std::string dry = read_file(out);
    EXPECT_NE(dry.find("convert-whiteout " + upper + "/.wh.b.txt"), std::string::npos) << dry;
    EXPECT_NE(dry.find("would make "), std::string::npos) << dry;
    EXPECT_NE(dry.find("dry run: nothing was changed\n"), std::string::npos) << dry;

    ASSERT_EQ(dropin("migrate alpha", &err), 0) << err;
    const std::string real = read_file(out);
    EXPECT_NE(real.find("made "), std::string::npos) << real;
    EXPECT_NE(real.find("verified: the kernel overlay shows the same"), std::string::npos) << real;
    EXPECT_TRUE(is_whiteout(upper + "/b.txt"));

    ASSERT_EQ(dropin("mount alpha", &err), 0) << err;
    EXPECT_EQ(dropin("migrate alpha", &err), 1);
    EXPECT_EQ(err, "left4me-overlay: instance alpha: " + layout.merged("alpha") +
                       " is a mount point: unmount the instance before migrating it\n");
    ASSERT_EQ(dropin("umount alpha", &err), 0) << err;

    // A run that fails verification still shows what it changed.
    fuse_whiteout(mod, "a.txt");
    fuse_whiteout(upper, "new-gone");
    write_file(base + "/new-gone", "x");
    EXPECT_EQ(dropin("migrate alpha", &err), 1);
    EXPECT_NE(read_file(out).find("convert-whiteout " + upper + "/.wh.new-gone"), std::string::npos)
        << read_file(out);
    EXPECT_EQ(read_file(out).find("verified"), std::string::npos) << read_file(out);
    EXPECT_NE(err.find("left4me-overlay: instance alpha: migrate: verification failed, "),
              std::string::npos)
        << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_EQ(dropin("mount alpha", &err), 1);
    EXPECT_NE(err.find("failed verification"), std::string::npos) << err;

    EXPECT_EQ(dropin("migrate", &err), 2);
    EXPECT_EQ(dropin("mount alpha --dry-run", &err), 2);
    EXPECT_NE(err.find("--dry-run is only for migrate"), std::string::npos) << err;
}

// A persistent executor (--serve) answers migrate and migrate-dry-run with
// the report, one `report` line each, as the daemon will relay them.
TEST_P(Migrate, AnExecutorAnswersMigrateRequestsWithTheReport) {
    build_fuse_era();
    const std::string config = layout.root + "/../overlay.conf";
    write_file(config, "Root=" + layout.root + "\nHostPid=" + std::to_string(::getpid()) +
                           "\nLockDir=" + layout.lock_dir + "\n");
    int sv[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::dup2(sv[1], 3) != 3) {
            ::_exit(127);
        }
        ::execlp("unshare", "unshare", "--mount", "--propagation", "private", L4M_DROPIN_PATH,
                 "--config", config.c_str(), "--serve", "3", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(sv[1]);
    UniqueFd sock(sv[0]);
    namespace p = overlay::protocol;
    const auto wait = std::optional<std::chrono::milliseconds>(std::chrono::seconds(60));
    auto hello = p::receive_message(sock.get(), wait);
    ASSERT_EQ(hello.status, p::ReceiveStatus::Message);
    ASSERT_TRUE(p::parse_hello(hello.message)) << hello.message;
    ASSERT_TRUE(p::parse_hello(hello.message)->config_error.empty()) << hello.message;

    const std::string before = tree(upper);
    ASSERT_TRUE(
        p::send_message(sock.get(), p::format_request(p::RequestVerb::MigrateDryRun, "alpha")));
    auto dry = p::receive_message(sock.get(), wait);
    ASSERT_EQ(dry.status, p::ReceiveStatus::Message);
    auto dry_record = p::parse_helper_result(dry.message);
    ASSERT_TRUE(dry_record) << dry.message;
    const auto* dry_result = std::get_if<p::HelperResult>(&*dry_record);
    ASSERT_TRUE(dry_result) << dry.message;
    EXPECT_TRUE(has_line(dry_result->report, "convert-whiteout " + upper + "/.wh.b.txt"));
    EXPECT_EQ(dry_result->report.back(), "dry run: nothing was changed");
    EXPECT_EQ(tree(upper), before);

    ASSERT_TRUE(p::send_message(sock.get(), p::format_request(p::RequestVerb::Migrate, "alpha")));
    auto real = p::receive_message(sock.get(), wait);
    auto real_record = p::parse_helper_result(real.message);
    ASSERT_TRUE(real_record) << real.message;
    const auto* real_result = std::get_if<p::HelperResult>(&*real_record);
    ASSERT_TRUE(real_result) << real.message;
    EXPECT_TRUE(has_line(real_result->report, "verified: the kernel overlay shows the same"));
    EXPECT_TRUE(is_whiteout(upper + "/b.txt"));

    // A refusal is an error record like any other verb's.
    ASSERT_TRUE(p::send_message(sock.get(), p::format_request(p::RequestVerb::Migrate, "ghost")));
    auto refused = p::receive_message(sock.get(), wait);
    auto refused_record = p::parse_helper_result(refused.message);
    ASSERT_TRUE(refused_record) << refused.message;
    const auto* refused_result = std::get_if<p::HelperFailure>(&*refused_record);
    ASSERT_TRUE(refused_result) << refused.message;
    EXPECT_EQ(refused_result->error, ErrorCode::NoSuchInstance) << refused.message;

    sock.reset();
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

INSTANTIATE_TEST_SUITE_P(Resolvers, Migrate,
                         ::testing::Values(overlay::PathResolver::Openat2,
                                           overlay::PathResolver::NofollowWalk),
                         [](const ::testing::TestParamInfo<overlay::PathResolver>& p) {
                             return p.param == overlay::PathResolver::Openat2
                                        ? std::string("Openat2")
                                        : std::string("NofollowWalk");
                         });

} // namespace
