// migrate_instance against fuse-era uppers built here by hand, following
// fuse-overlayfs' rules (FUSE cannot run on the test machines): both
// whiteout kinds, both opaque kinds, override_stat, origin xattrs, leftover
// pairs, hard links, symlinks aimed outside, FIFOs; an interrupted run
// resumed; the refusals. Real mounts, in this test's own namespace.

#include "migrate_fixture.hpp"

namespace {

using namespace l4m_migrate_test;

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
    EXPECT_EQ(st.st_uid, kOwner);
    EXPECT_EQ(st.st_gid, kCrew);
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
        fresh_layout();
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
        EXPECT_TRUE(throws_error([&] { migrate(false, stop); }, ErrorCode::Failed, "test hook"));
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
    overlay::migrate_instance(layout.config, "alpha", false, overlay::SetIdBits::Set, [&](const std::string&) {
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
    chown_to(upper + "/sh", kOwner, kOwner);
    const std::string o = std::to_string(kOwner);
    for (const char* which :
         {"user.fuseoverlayfs.override_stat", "user.containers.override_stat"}) {
        set_x(upper + "/sh", which, o + ":" + o + ":4755");
        EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                                 upper + "/sh carries " + which + " '" + o + ":" + o +
                                     ":4755', asking for a set-uid file"));
        ASSERT_EQ(::lremovexattr((upper + "/sh").c_str(), which), 0);
    }
    // Not even for its own owner and group: anyone who may write the file
    // may write the xattr (a root-owned 0666 file copied up, say).
    set_x(upper + "/sh", "user.fuseoverlayfs.override_stat", o + ":" + o + ":2755");
    EXPECT_TRUE(throws_error([&] { migrate(true); }, ErrorCode::UpperdirTainted, "set-gid file"));
    struct stat st {};
    ASSERT_EQ(::lstat((upper + "/sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kOwner);
    EXPECT_EQ(st.st_mode & 07000, 0U);
    // Owner and mode without set-id bits are applied.
    set_x(upper + "/sh", "user.fuseoverlayfs.override_stat",
          o + ":" + std::to_string(kCrew) + ":0750");
    ASSERT_NO_THROW(migrate(false));
    ASSERT_EQ(::lstat((upper + "/sh").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kOwner);
    EXPECT_EQ(st.st_gid, kCrew);
    EXPECT_EQ(st.st_mode & 07777, 0750U);
}

// A user.* override may name only what the upper's owner could give a file
// itself: never root, another user, a group it is not in, nor a set-id
// directory. Each is refused before anything changes, in the dry run too.
// The overrides are written by the owner, as it would.
TEST_P(Migrate, AUserOverrideNamesOnlyTheOwnerAndItsGroups) {
    build_fuse_era();
    write_file(upper + "/f", "chosen by the owner");
    make_dirs(upper + "/d");
    chown_to(upper + "/f", kOwner, kOwner);
    chown_to(upper + "/d", kOwner, kOwner);
    const std::string o = std::to_string(kOwner);
    const std::string before = tree(upper);
    struct Case {
        std::string path, value, why;
    };
    const std::vector<Case> cases = {
        {"f", "0:0:0666", "naming root as its owner"},
        {"f", "0:0:100666", "naming root as its owner"},
        {"f", o + ":0:0666", "naming group root"},
        {"f", std::to_string(kOther) + ":" + o + ":0644",
         "naming uid " + std::to_string(kOther) + " as its owner, not the upper's owner"},
        {"f", o + ":" + std::to_string(kOtherGroup) + ":0644",
         "naming group " + std::to_string(kOtherGroup) + ", which is not one of the upper owner's"},
        {"d", o + ":" + o + ":2777", "asking for a set-gid directory"},
        {"d", o + ":" + std::to_string(kCrew) + ":42775", "asking for a set-gid directory"},
        {"d", o + ":" + o + ":4755", "asking for a set-uid directory"},
        {"d", "0:0:40777", "naming root as its owner"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.path + " " + c.value);
        as_owner("setfattr -n user.fuseoverlayfs.override_stat -v '" + c.value + "' " + upper +
                 "/" + c.path);
        for (bool dry : {true, false}) {
            EXPECT_TRUE(throws_error([&] { migrate(dry); }, ErrorCode::UpperdirTainted,
                                     "instance alpha: migrate: " + upper + "/" + c.path +
                                         " carries user.fuseoverlayfs.override_stat '" + c.value +
                                         "', " + c.why));
        }
        EXPECT_EQ(tree(upper), before);
        EXPECT_FALSE(get_x(upper, std::string(overlay::kMigrationMarkerXattr)));
        as_owner("setfattr -x user.fuseoverlayfs.override_stat " + upper + "/" + c.path);
    }
    // The type bits fuse-overlayfs writes must be the inode's own.
    as_owner("setfattr -n user.fuseoverlayfs.override_stat -v " + o + ":" + o + ":40644 " + upper +
             "/f");
    EXPECT_TRUE(throws_error([&] { migrate(true); }, ErrorCode::UpperdirTainted, "malformed"));
    as_owner("setfattr -x user.fuseoverlayfs.override_stat " + upper + "/f");
    // What the owner could do itself is applied: its own group, a sticky dir.
    as_owner("setfattr -n user.fuseoverlayfs.override_stat -v " + o + ":" + std::to_string(kCrew) +
             ":100640 " + upper + "/f");
    as_owner("setfattr -n user.fuseoverlayfs.override_stat -v " + o + ":" + o + ":41777 " + upper +
             "/d");
    ASSERT_NO_THROW(migrate(false));
    struct stat st {};
    ASSERT_EQ(::lstat((upper + "/f").c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, kCrew);
    EXPECT_EQ(st.st_mode & 07777, 0640U);
    ASSERT_EQ(::lstat((upper + "/d").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 01777U);
}

// The service's executor runs under RestrictSUIDSGID=yes, which fails any
// chmod carrying S_ISUID/S_ISGID with EPERM: with SetIdBits::Refuse an
// inode whose conversion needs one (a security.* override asking for
// set-id bits, a user.* one keeping them while the mode changes, a chown
// of a set-id inode) is refused before anything changes, in the dry run
// too, naming the override and the drop-in. The drop-in (Set) converts.
TEST_P(Migrate, TheServiceRefusesASetIdChmodBeforeAnythingChanges) {
    build_fuse_era();
    // The fuse-era upper's own set-id overrides (owned, mine) go: each case
    // below is then the only one.
    ASSERT_EQ(::lremovexattr((upper + "/owned").c_str(), "security.fuseoverlayfs.override_stat"),
              0);
    ASSERT_EQ(::lremovexattr((upper + "/mine").c_str(), "user.fuseoverlayfs.override_stat"), 0);
    const std::string o = std::to_string(kOwner);
    const std::string crew = std::to_string(kCrew);
    write_file(upper + "/suid", "root asked for set-uid");
    chown_to(upper + "/suid", kOwner, kOwner);
    ASSERT_EQ(::chmod((upper + "/suid").c_str(), 0644), 0);
    make_dirs(upper + "/sgid");
    chown_to(upper + "/sgid", kOwner, kOwner);
    ASSERT_EQ(::chmod((upper + "/sgid").c_str(), 0755), 0);
    make_dirs(upper + "/kept");
    chown_to(upper + "/kept", kOwner, kOwner);
    ASSERT_EQ(::chmod((upper + "/kept").c_str(), 02755), 0);
    struct Case {
        std::string path, xattr, value, chmod;
    };
    const std::vector<Case> cases = {
        {"suid", "security.fuseoverlayfs.override_stat", "0:0:104755",
         "a chmod to 4755 (set-uid, after a chown, which clears set-id bits)"},
        {"sgid", "security.fuseoverlayfs.override_stat", o + ":" + crew + ":42775",
         "a chmod to 2775 (set-gid, after a chown, which clears set-id bits)"},
        // Already set-gid, the owner's own: the user.* rules apply it, but
        // the mode change is a chmod carrying S_ISGID.
        {"kept", "user.fuseoverlayfs.override_stat", o + ":" + o + ":42775",
         "a chmod to 2775 (set-gid)"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.path + " " + c.value);
        set_x(upper + "/" + c.path, c.xattr, c.value);
        const std::string before = tree(upper);
        for (bool dry : {true, false}) {
            EXPECT_TRUE(throws_error(
                [&] { migrate(dry, 0, overlay::SetIdBits::Refuse); }, ErrorCode::UpperdirTainted,
                "instance alpha: migrate: " + upper + "/" + c.path + " carries " + c.xattr + " '" +
                    c.value + "', whose conversion needs " + c.chmod +
                    "; the service sets no set-uid or set-gid bit (its unit's "
                    "RestrictSUIDSGID=yes refuses such a chmod), so nothing was changed: run the "
                    "conversion as root with the drop-in, sudo left4me-overlay migrate alpha"));
            EXPECT_EQ(tree(upper), before);
            EXPECT_FALSE(get_x(upper, std::string(overlay::kMigrationMarkerXattr)));
            EXPECT_TRUE(get_x(upper + "/" + c.path, c.xattr));
            EXPECT_TRUE(exists(upper + "/.wh.b.txt")); // nothing converted
        }
        ASSERT_EQ(::lremovexattr((upper + "/" + c.path).c_str(), c.xattr.c_str()), 0);
    }
    // A set-id inode whose override keeps owner and mode needs no chmod: the
    // service converts around it.
    set_x(upper + "/kept", "user.fuseoverlayfs.override_stat", o + ":" + o + ":42755");
    EXPECT_NO_THROW(migrate(true, 0, overlay::SetIdBits::Refuse));
    ASSERT_EQ(::lremovexattr((upper + "/kept").c_str(), "user.fuseoverlayfs.override_stat"), 0);

    // The drop-in sets the bits the overrides ask for.
    for (const auto& c : cases) {
        set_x(upper + "/" + c.path, c.xattr, c.value);
    }
    const auto dry = migrate(true, 0, overlay::SetIdBits::Set);
    EXPECT_TRUE(has_line(dry.changes, "chmod " + upper + "/suid 4755"));
    ASSERT_NO_THROW(migrate(false, 0, overlay::SetIdBits::Set));
    struct stat st {};
    ASSERT_EQ(::lstat((upper + "/suid").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0U);
    EXPECT_EQ(st.st_gid, 0U);
    EXPECT_EQ(st.st_mode & 07777, 04755U);
    ASSERT_EQ(::lstat((upper + "/sgid").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, kOwner);
    EXPECT_EQ(st.st_gid, kCrew);
    EXPECT_EQ(st.st_mode & 07777, 02775U);
    ASSERT_EQ(::lstat((upper + "/kept").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 02775U);
    for (const auto& c : cases) {
        EXPECT_FALSE(get_x(upper + "/" + c.path, c.xattr));
    }
    EXPECT_TRUE(is_whiteout(upper + "/b.txt"));
}

// The owner hard-links a root-owned file it may write (root:its group 0660,
// as a file in /etc might be) into its upper and asks, by a user.*
// override, for it to become its own. The file is left alone, in the dry
// run's report and the real run's, and the instance stays refused until
// an admin looks; a file of its own with two links keeps its owner and mode.
TEST_P(Migrate, AHardLinkOrAnotherOwnersFileIsLeftAlone) {
    build_fuse_era();
    const std::string victim = layout.outside + "/etc-file";
    write_file(victim, "root's");
    chown_to(victim, 0, kCrew);
    ASSERT_EQ(::chmod(victim.c_str(), 0660), 0);
    ASSERT_EQ(::chmod(layout.outside.c_str(), 0755), 0);
    const std::string o = std::to_string(kOwner);
    // protected_hardlinks lets the owner link a file it may read and write.
    as_owner("ln " + victim + " " + upper +
             "/hl-root && setfattr -n "
             "user.fuseoverlayfs.override_stat -v " +
             o + ":" + o + ":0644 " + upper + "/hl-root");
    write_file(upper + "/own", "mine");
    chown_to(upper + "/own", kOwner, kOwner);
    ASSERT_EQ(::chmod((upper + "/own").c_str(), 0600), 0);
    as_owner("ln " + upper + "/own " + upper +
             "/own2 && setfattr -n "
             "user.fuseoverlayfs.override_stat -v " +
             o + ":" + std::to_string(kCrew) + ":0666 " + upper + "/own");
    // A directory the owner does not own, with an override.
    make_dirs(upper + "/rootdir");
    set_x(upper + "/rootdir", "user.fuseoverlayfs.override_stat", o + ":" + o + ":40777");

    const auto dry = migrate(true);
    EXPECT_TRUE(has_line(dry.changes, "leave-alone " + upper + "/hl-root: is owned by 0:" +
                                          std::to_string(kCrew) + ", not by the upper's owner"));
    EXPECT_TRUE(has_line(dry.changes, "leave-alone " + upper + "/rootdir: is owned by 0:0"));
    EXPECT_TRUE(has_line(dry.changes, "leave-alone " + upper + "/own: has 2 links"));
    EXPECT_EQ(dry.totals.left_alone, 3U);
    EXPECT_TRUE(has_line(dry.summary_lines(), "; 3 entries left alone"));

    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                             "converted and verified, but 2 entries not owned by the upper's "
                             "owner were left alone"));
    struct stat st {};
    ASSERT_EQ(::lstat(victim.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 0U);
    EXPECT_EQ(st.st_gid, kCrew);
    EXPECT_EQ(st.st_mode & 07777, 0660U);
    EXPECT_EQ(read_file(victim), "root's");
    ASSERT_EQ(::lstat((upper + "/rootdir").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0755U);
    EXPECT_TRUE(get_x(upper + "/rootdir", "user.fuseoverlayfs.override_stat"));
    ASSERT_EQ(::lstat((upper + "/own").c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, kOwner);
    EXPECT_EQ(st.st_mode & 07777, 0600U);
    EXPECT_FALSE(get_x(upper + "/own", "user.fuseoverlayfs.override_stat"));
    EXPECT_TRUE(is_whiteout(upper + "/b.txt")); // the rest was converted
    EXPECT_TRUE(throws_error([&] { overlay::mount_instance(layout.config, "alpha"); },
                             ErrorCode::UpperdirTainted, "user.fuseoverlayfs.override_stat"));
    // Once an admin has removed them, the run completes.
    ASSERT_EQ(::unlink((upper + "/hl-root").c_str()), 0);
    ASSERT_EQ(::lremovexattr((upper + "/rootdir").c_str(), "user.fuseoverlayfs.override_stat"), 0);
    ASSERT_NO_THROW(migrate(false));
    ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
    overlay::unmount_instance(layout.config, "alpha");
}

// A sparse terabyte costs its data, not its size: verification reads the
// data ranges (SEEK_DATA/SEEK_HOLE) only. Read whole, it would take hours.
TEST_P(Migrate, ASparseTerabyteVerifiesByItsData) {
    fuse_whiteout(upper, "b.txt");
    as_owner("truncate -s 1T " + upper + "/sparse && printf head | dd of=" + upper +
             "/sparse conv=notrunc status=none && printf middle | dd of=" + upper +
             "/sparse bs=1 seek=549755813888 conv=notrunc status=none");
    overlay::MigrationReport report;
    ASSERT_NO_THROW(report = migrate(false));
    EXPECT_EQ(report.totals.whiteouts_converted, 1U);
    ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
    const std::string m = layout.merged("alpha") + "/sparse";
    EXPECT_EQ(fs::file_size(m), 1ULL << 40);
    overlay::unmount_instance(layout.config, "alpha");
}

// Paths longer than PATH_MAX (18 directories of 250 characters): the walk,
// the conversion and the verification go one component at a time.
TEST_P(Migrate, PathsLongerThanPathMax) {
    const std::string long_name(250, 'd');
    UniqueFd up(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UniqueFd low(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    for (int i = 0; i < 18; ++i) {
        for (UniqueFd* fd : {&up, &low}) {
            ASSERT_EQ(::mkdirat(fd->get(), long_name.c_str(), 0755), 0);
            fd->reset(::openat(fd->get(), long_name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            ASSERT_TRUE(*fd);
        }
        ASSERT_EQ(::fchown(up.get(), kOwner, kOwner), 0);
    }
    auto put = [](int dir, const char* name, const std::string& data) {
        UniqueFd f(::openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        ASSERT_TRUE(f);
        ASSERT_EQ(::write(f.get(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    };
    put(low.get(), "gone", "lower");
    put(up.get(), ".wh.gone", "");
    put(up.get(), "deep", "deep data");
    const std::string o = std::to_string(kOwner);
    ASSERT_EQ(::fchownat(up.get(), "deep", kOwner, kOwner, 0), 0);
    const std::string v = o + ":" + std::to_string(kCrew) + ":100640";
    {
        UniqueFd f(::openat(up.get(), "deep", O_RDONLY | O_CLOEXEC));
        ASSERT_EQ(::fsetxattr(f.get(), "user.fuseoverlayfs.override_stat", v.data(), v.size(), 0),
                  0);
    }
    overlay::MigrationReport report;
    ASSERT_NO_THROW(report = migrate(false));
    EXPECT_EQ(report.totals.whiteouts_converted, 1U);
    EXPECT_EQ(report.totals.owners_set, 1U);
    struct stat st {};
    ASSERT_EQ(::fstatat(up.get(), "gone", &st, AT_SYMLINK_NOFOLLOW), 0);
    EXPECT_TRUE(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
    ASSERT_EQ(::fstatat(up.get(), "deep", &st, AT_SYMLINK_NOFOLLOW), 0);
    EXPECT_EQ(st.st_gid, kCrew);
    EXPECT_EQ(st.st_mode & 07777, 0640U);
}

// fuse-overlayfs 1.10 leaves a char 0/0 ".wh..opq" beside ".wh..wh..opq" in
// a directory it made opaque: one of its markers, removed like the other.
TEST_P(Migrate, TheOpaqueWhiteoutNodeIsAMarker) {
    make_dirs(base + "/o");
    write_file(base + "/o/hidden", "h");
    fuse_opaque_dir(upper + "/o");
    kernel_whiteout(upper + "/o/.wh..opq");
    write_file(upper + "/o/mine", "m");
    const auto report = migrate(false);
    EXPECT_TRUE(has_line(report.changes, "remove-marker " + upper + "/o/.wh..opq"));
    EXPECT_EQ(report.totals.quarantined, 0U);
    EXPECT_FALSE(exists(upper + "/o/.wh..opq"));
    ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
    EXPECT_FALSE(exists(layout.merged("alpha") + "/o/hidden"));
    EXPECT_EQ(read_file(layout.merged("alpha") + "/o/mine"), "m");
    overlay::unmount_instance(layout.config, "alpha");
}

// A quarantine the owner replaced by a symlink is named as one.
TEST_P(Migrate, AQuarantineThatIsASymlinkIsSaidToBeOne) {
    write_file(upper + "/pair", "leftover");
    write_file(base + "/pair", "lower");
    fuse_whiteout(upper, "pair");
    make_dirs(layout.outside + "/q");
    const std::string q = layout.instance_dir("alpha") + "/migrate-quarantine";
    ASSERT_EQ(::symlink((layout.outside + "/q").c_str(), q.c_str()), 0);
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UnsafePath,
                             "instance alpha: migrate: " + q + " is a symlink (not followed)"));
    EXPECT_TRUE(fs::is_empty(layout.outside + "/q"));
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
        fresh_layout(api);
        build_fuse_era();
        overlay::MigrationReport report;
        ASSERT_NO_THROW(report = migrate(false));
        EXPECT_GT(report.verified_entries, 15U);
        // And a mismatch is found by each.
        fresh_layout(api);
        fuse_whiteout(mod, "a.txt");
        EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                                 "verification failed"));
    }
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
