// migrate through its front ends, the drop-in verb and the executor, and
// over uppers written by a real fuse-overlayfs (migrate_fixture.hpp).

#include "migrate_fixture.hpp"

#include <cctype>
#include <functional>

namespace {

using namespace l4m_migrate_test;

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

// A persistent Migrate executor (--serve --migrate) answers migrate and
// migrate-dry-run with the report, one `report` line each, as the daemon
// will relay them.
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
                 "--config", config.c_str(), "--serve", "3", "--migrate",
                 static_cast<char*>(nullptr));
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
    // One Migrate request; the executor's answer and its result record.
    auto migrate = [&](const std::string& name, bool dry_run) {
        EXPECT_TRUE(p::send_message(
            sock.get(), p::format_request({overlay::vocabulary::Verb::Migrate, name, dry_run})));
        auto answer = p::receive_message(sock.get(), wait);
        EXPECT_EQ(answer.status, p::ReceiveStatus::Message);
        return std::make_pair(answer.message, p::parse_result_record(answer.message));
    };
    // The service's executor sets no set-id bit (RestrictSUIDSGID): the
    // fuse-era upper's `owned` (a security.* override asking for 4755 after
    // a chown) and `mine` (set-uid kept, mode changed) are refused before
    // anything changes, dry run or not.
    for (bool dry_run : {true, false}) {
        const auto [message, record] = migrate("alpha", dry_run);
        ASSERT_TRUE(record) << message;
        const auto* setid_result = std::get_if<p::ExecutorFailure>(&*record);
        ASSERT_TRUE(setid_result) << message;
        EXPECT_EQ(setid_result->error, ErrorCode::UpperdirTainted) << message;
        EXPECT_NE(message.find("sudo left4me-overlay migrate alpha"), std::string::npos) << message;
        EXPECT_EQ(tree(upper), before);
    }
    // The admin sets those by hand and removes the overrides.
    ASSERT_EQ(::lremovexattr((upper + "/owned").c_str(), "security.fuseoverlayfs.override_stat"),
              0);
    ASSERT_EQ(::lremovexattr((upper + "/mine").c_str(), "user.fuseoverlayfs.override_stat"), 0);
    const auto [dry, dry_record] = migrate("alpha", true);
    ASSERT_TRUE(dry_record) << dry;
    const auto* dry_result = std::get_if<p::ExecutorResult>(&*dry_record);
    ASSERT_TRUE(dry_result) << dry;
    EXPECT_TRUE(has_line(dry_result->report, "convert-whiteout " + upper + "/.wh.b.txt"));
    EXPECT_EQ(dry_result->report.back(), "dry run: nothing was changed");
    EXPECT_EQ(tree(upper), before);

    const auto [real, real_record] = migrate("alpha", false);
    ASSERT_TRUE(real_record) << real;
    const auto* real_result = std::get_if<p::ExecutorResult>(&*real_record);
    ASSERT_TRUE(real_result) << real;
    EXPECT_TRUE(has_line(real_result->report, "verified: the kernel overlay shows the same"));
    EXPECT_TRUE(is_whiteout(upper + "/b.txt"));

    // A refusal is an error record like any other verb's.
    const auto [refused, refused_record] = migrate("ghost", false);
    ASSERT_TRUE(refused_record) << refused;
    const auto* refused_result = std::get_if<p::ExecutorFailure>(&*refused_record);
    ASSERT_TRUE(refused_result) << refused;
    EXPECT_EQ(refused_result->error, ErrorCode::NoSuchInstance) << refused;

    sock.reset();
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

#ifdef L4M_FUSE_OVERLAYFS
// A true fuse-era upper, written by Debian's fuse-overlayfs run as the
// upper's owner (without privilege, in a private mount namespace with a
// /dev/fuse it may open), with and without xattr_permissions=2: deletes,
// a replaced directory, copy-ups, chmod and chgrp, a new directory and a
// symlink, made inside the FUSE mount. The FUSE mount's view, recorded by
// the owner before unmounting it, must be the kernel overlay's after
// migrate, entry by entry: names, kinds, modes, owners, contents.
class MigrateFuseOverlayfs : public Migrate {
  protected:
    // The version the fuse-overlayfs these tests run prints ("" if none).
    // Uppers written with xattr_permissions=2 differ between the two Debian
    // ships (README: "Bringing fuse-era instances over"): 1.10 (Debian 12)
    // writes user.fuseoverlayfs.* overrides, records chmod as 0:0:MODE and
    // chgrp as -1:GID, and gives files mode|0755 on disk and in the override
    // alike; 1.14 (Debian 13) writes user.containers.override_stat, keeps
    // the owner on chmod and chgrp, makes files 0755 on disk whatever the
    // override says, and gives an upper whose root (and the lowers' roots)
    // carry no override 0:0:555, making the top of its mount root's and
    // read-only. The tests assert what the version found does, and fail on
    // one they do not know.
    static std::string fuse_version() {
        const std::string out = scratch() + "/fuse-version-" + std::to_string(::getpid());
        if (run_command({"sh", "-c", std::string(L4M_FUSE_OVERLAYFS) + " --version >" + out +
                                         " 2>&1"}) != 0) {
            return "";
        }
        const std::string text = read_file(out);
        const std::string tag = "fuse-overlayfs: version ";
        const auto at = text.find(tag);
        if (at == std::string::npos) {
            return "";
        }
        const auto start = at + tag.size();
        return text.substr(start, text.find_first_of(" \n", start) - start);
    }
    // Sets *is_1_14 to whether fuse-overlayfs writes as 1.14 does, failing
    // (fatally) unless it is 1.10 or 1.14. Debian 13's package 1.14-1 says
    // "1.13-dev" (upstream's tag left the version string behind).
    static void known_fuse_version(bool* is_1_14) {
        const std::string v = fuse_version();
        *is_1_14 = v == "1.14" || v == "1.13-dev";
        ASSERT_TRUE(v == "1.10" || *is_1_14)
            << L4M_FUSE_OVERLAYFS << " --version gives '" << v
            << "': these tests know how fuse-overlayfs 1.10 (Debian 12) and 1.14 (Debian 13, "
               "which says 1.13-dev) write an upper with xattr_permissions=2; teach them this one";
    }
    // What containers/storage does before running 1.14 over an upper: the
    // owner presets the upper root's override (its owner, 0755), so 1.14
    // does not give it 0:0:555 and the owner may work at the top.
    void preset_upper_root_override() {
        set_x(upper, "user.containers.override_stat", owner_ids() + ":40755");
    }
    static mode_t disk_mode(const std::string& path) {
        struct stat st {};
        EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
        return st.st_mode & 07777;
    }

    // Lists `dir` as the owner sees it, one line per entry, sorted. (A
    // directory's size is left out: tmpfs counts the entries it held.)
    static std::string lister(const std::string& dir, const std::string& out) {
        return "(cd " + dir +
               " && find . -mindepth 1 | LC_ALL=C sort | while read -r p; do "
               "stat -c '%n %F %a %u:%g' \"$p\"; "
               "if [ -L \"$p\" ]; then readlink \"$p\"; "
               "elif [ -f \"$p\" ]; then stat -c %s \"$p\"; md5sum < \"$p\"; fi; done) > " +
               out;
    }

    // The owner's work inside the FUSE mount (`more`: commands of its own).
    static std::string fuse_session(const std::string& m, const std::string& more) {
        return "(cd " + m +
               " && rm a.txt && rm -r dir1 && rm -r dir2 && mkdir dir2 && echo new > dir2/n"
               " && echo more >> keep/k1 && mkdir newdir && echo x > newdir/f"
               " && ln -s ../b.txt newdir/link && rm keep/sub/s1 && mkdir keep/sub/s1"
               " && echo replaced > keep/sub/s1/r" +
               more + ")";
    }

    // Writes the upper through fuse-overlayfs; *view: the FUSE mount's view.
    void write_through_fuse(const std::string& options, const std::string& more,
                            std::string* view) {
        for (const char* d : {"/dir1/x1", "/dir2/y1", "/keep/sub/s2"}) {
            make_dirs(fs::path(base + d).parent_path());
            write_file(base + d, d);
        }
        write_file(base + "/keep/k1", "k1\n");
        write_file(base + "/keep/k2", "k2\n");
        write_file(base + "/keep/k3", "k3\n");
        write_file(base + "/keep/sub/s1", "s1\n");
        // Lowers the owner may change through the FUSE mount (fuse-overlayfs,
        // unprivileged, cannot give a whiteout or a copy-up another owner's
        // ids, and answers EPERM).
        const std::string o = std::to_string(kOwner);
        for (const auto& l : {base, mod}) {
            ASSERT_EQ(run_command({"chown", "-R", o + ":" + o, l}), 0) << l;
        }
        s_ = scratch() + "/fuse-" + std::to_string(::getpid()) + "-" + std::to_string(++runs_);
        const std::string& s = s_;
        make_dirs(s + "/work");
        make_dirs(s + "/mnt");
        chown_to(s, kOwner, kOwner);
        chown_to(s + "/work", kOwner, kOwner);
        chown_to(s + "/mnt", kOwner, kOwner);
        const std::string as_user =
            "setpriv --reuid=" + o + " --regid=" + o + " --init-groups sh -ec ";
        auto quote = [](const std::string& x) {
            std::string q = "'";
            for (char c : x) {
                q += c == '\'' ? std::string("'\\''") : std::string(1, c);
            }
            return q + "'";
        };
        const std::string user_script =
            std::string(L4M_FUSE_OVERLAYFS) + " -o lowerdir=" + mod + ":" + base +
            ",upperdir=" + upper + ",workdir=" + s + "/work" + options + " " + s + "/mnt && " +
            fuse_session(s + "/mnt", more) + " && " + lister(s + "/mnt", s + "/fuse-view") +
            " && fusermount3 -u " + s + "/mnt";
        const std::string root_script = "mknod " + s + "/fuse c 10 229 && chmod 666 " + s +
                                        "/fuse && mount --bind " + s + "/fuse /dev/fuse && " +
                                        as_user + quote(user_script);
        std::string err;
        ASSERT_EQ(
            run_command(
                {"unshare", "--mount", "--propagation", "private", "sh", "-ec", root_script}, &err),
            0)
            << err;
        *view = read_file(s + "/fuse-view");
    }

    // before_migrate(view): checks of the FUSE view and the upper as
    // fuse-overlayfs left it. The report is kept in report_.
    void run_fuse_era(const std::string& options, const std::string& more = "",
                      const std::function<void(const std::string&)>& before_migrate = {}) {
        std::string fuse_view;
        write_through_fuse(options, more, &fuse_view);
        if (HasFatalFailure()) {
            return;
        }
        ASSERT_NE(fuse_view.find("./dir2/n"), std::string::npos) << fuse_view;
        if (before_migrate) {
            before_migrate(fuse_view);
        }
        const std::string& s = s_;
        overlay::MigrationReport& report = report_;
        ASSERT_NO_THROW(report = migrate(false));
        EXPECT_GT(report.totals.changes(), 3U);
        EXPECT_EQ(report.totals.quarantined, 0U);
        EXPECT_EQ(report.totals.left_alone, 0U);
        // The replaced directory is opaque, with both of fuse-overlayfs'
        // markers (".wh..opq" a char 0/0 node): both removed as markers.
        EXPECT_TRUE(has_line(report.changes, "set-opaque " + upper + "/dir2 "));
        EXPECT_TRUE(has_line(report.changes, "remove-marker " + upper + "/dir2/.wh..wh..opq"));
        EXPECT_TRUE(has_line(report.changes, "remove-marker " + upper + "/dir2/.wh..opq"));
        ASSERT_NO_THROW(overlay::mount_instance(layout.config, "alpha"));
        as_owner(lister(layout.merged("alpha"), s + "/kernel-view"));
        overlay::unmount_instance(layout.config, "alpha");
        EXPECT_EQ(read_file(s + "/kernel-view"), fuse_view);
        std::string lines;
        for (const auto& l : report.lines()) {
            lines += l + "\n";
        }
        RecordProperty("report", lines);
    }

    std::string s_; // this run's FUSE scratch directory
    overlay::MigrationReport report_; // run_fuse_era's migrate
    static inline int runs_ = 0;
};

TEST_P(MigrateFuseOverlayfs, WithoutXattrPermissions) {
    const std::string crew = std::to_string(kCrew);
    ASSERT_NO_FATAL_FAILURE(run_fuse_era("", " && chmod 600 keep/k2 && chgrp " + crew +
                                                 " keep/k3 && chmod 640 newdir/f && chgrp " + crew +
                                                 " newdir/f && chmod 750 newdir && chmod 700 "
                                                 "keep/sub"));
}

TEST_P(MigrateFuseOverlayfs, WithXattrPermissions2) {
    bool is_1_14 = false;
    ASSERT_NO_FATAL_FAILURE(known_fuse_version(&is_1_14));
    const std::string o = std::to_string(kOwner);
    if (!is_1_14) {
        ASSERT_NO_FATAL_FAILURE(run_fuse_era(",xattr_permissions=2", "", [&](const std::string&) {
            // 1.10 kept the owner and mode of each file it made in its
            // override, the mode with 0755 added, as on disk.
            EXPECT_EQ(get_x(upper + "/newdir/f", "user.fuseoverlayfs.override_stat"),
                      o + ":" + o + ":100755");
            EXPECT_EQ(disk_mode(upper + "/newdir/f"), 0755U);
            // and gave the upper's root the owner's (1.14: root's, 0555).
            const auto top = get_x(upper, "user.fuseoverlayfs.override_stat");
            ASSERT_TRUE(top);
            EXPECT_EQ(top->rfind(o + ":" + o + ":40", 0), 0U) << *top;
        }));
        // Migrate applied the overrides (the views agree) and removed them;
        // nothing needed a chmod.
        EXPECT_FALSE(get_x(upper + "/newdir/f", "user.fuseoverlayfs.override_stat"));
        EXPECT_FALSE(has_line(report_.changes, "chmod ")) << ::testing::PrintToString(report_.changes);
        return;
    }
    preset_upper_root_override();
    ASSERT_NO_FATAL_FAILURE(run_fuse_era(",xattr_permissions=2", "", [&](const std::string& view) {
        // 1.14 kept the preset (so the session's changes at the top
        // worked), recorded the owner and mode of each file it made in
        // user.containers.override_stat and left the file 0755 on disk.
        EXPECT_EQ(get_x(upper, "user.containers.override_stat"), o + ":" + o + ":40755");
        EXPECT_NE(view.find("./newdir/f regular file 644 " + o + ":" + o + "\n"), std::string::npos)
            << view;
        const auto f = get_x(upper + "/newdir/f", "user.containers.override_stat");
        ASSERT_TRUE(f);
        EXPECT_EQ(f->rfind(o + ":" + o + ":", 0), 0U) << *f;
        EXPECT_EQ(disk_mode(upper + "/newdir/f"), 0755U);
        EXPECT_FALSE(get_x(upper + "/newdir/f", "user.fuseoverlayfs.override_stat"));
    }));
    // Migrate chmodded the files to the overrides' modes (the views agree)
    // and removed the overrides, the upper root's too.
    EXPECT_TRUE(has_line(report_.changes, "chmod " + upper + "/newdir/f 0644 "))
        << ::testing::PrintToString(report_.changes);
    EXPECT_FALSE(get_x(upper + "/newdir/f", "user.containers.override_stat"));
    EXPECT_FALSE(get_x(upper, "user.containers.override_stat"));
    EXPECT_EQ(disk_mode(upper + "/newdir/f"), 0644U);
}

// chmod and chgrp by the owner in the FUSE mount, with xattr_permissions=2
// (unprivileged, outside a user namespace).
//
// fuse-overlayfs 1.10 records a chmod of a file it copied up or of a
// directory as "0:0:MODE" (any chmod, in fact), and a chgrp as "-1:GID":
// its FUSE mount then shows those entries as root's or nobody's (65534). A
// user.* override naming root or another user is refused, before anything
// changes; once an admin has set owner and mode by hand and removed the
// xattr, the run goes on.
//
// fuse-overlayfs 1.14 records them keeping the owner, the file 0755 on
// disk: migrate chowns and chmods as the overrides say.
TEST_P(MigrateFuseOverlayfs, WithXattrPermissions2ChmodAndChgrp) {
    bool is_1_14 = false;
    ASSERT_NO_FATAL_FAILURE(known_fuse_version(&is_1_14));
    const std::string o = std::to_string(kOwner);
    const std::string crew = std::to_string(kCrew);
    const std::string more = " && chmod 600 keep/k2 && chgrp " + crew + " keep/k3";
    if (is_1_14) {
        preset_upper_root_override();
        ASSERT_NO_FATAL_FAILURE(run_fuse_era(",xattr_permissions=2", more, [&](const std::string&
                                                                                    view) {
            EXPECT_NE(view.find("./keep/k2 regular file 600 " + o + ":" + o + "\n"),
                      std::string::npos)
                << view;
            EXPECT_NE(view.find("./keep/k3 regular file 644 " + o + ":" + crew + "\n"),
                      std::string::npos)
                << view;
            const auto k2 = get_x(upper + "/keep/k2", "user.containers.override_stat");
            const auto k3 = get_x(upper + "/keep/k3", "user.containers.override_stat");
            ASSERT_TRUE(k2 && k3);
            EXPECT_EQ(k2->rfind(o + ":" + o + ":", 0), 0U) << *k2;
            EXPECT_EQ(k3->rfind(o + ":" + crew + ":", 0), 0U) << *k3;
            EXPECT_EQ(disk_mode(upper + "/keep/k2"), 0755U);
        }));
        EXPECT_TRUE(has_line(report_.changes, "chmod " + upper + "/keep/k2 0600 "))
            << ::testing::PrintToString(report_.changes);
        EXPECT_TRUE(has_line(report_.changes, "chown " + upper + "/keep/k3 " + o + ":" + crew + " "))
            << ::testing::PrintToString(report_.changes);
        EXPECT_TRUE(has_line(report_.changes, "chmod " + upper + "/keep/k3 0644 "))
            << ::testing::PrintToString(report_.changes);
        EXPECT_FALSE(get_x(upper + "/keep/k2", "user.containers.override_stat"));
        EXPECT_FALSE(get_x(upper + "/keep/k3", "user.containers.override_stat"));
        return;
    }
    std::string view;
    ASSERT_NO_FATAL_FAILURE(write_through_fuse(",xattr_permissions=2", more, &view));
    EXPECT_NE(view.find("./keep/k2 regular file 600 0:0\n"), std::string::npos) << view;
    EXPECT_NE(view.find("./keep/k3 regular file 644 65534:" + crew + "\n"), std::string::npos)
        << view;
    const std::string before = tree(upper);
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                             upper + "/keep/k2 carries user.fuseoverlayfs.override_stat "
                                     "'0:0:100600', naming root as its owner"));
    EXPECT_EQ(tree(upper), before);
    ASSERT_EQ(::lremovexattr((upper + "/keep/k2").c_str(), "user.fuseoverlayfs.override_stat"), 0);
    EXPECT_TRUE(throws_error([&] { migrate(false); }, ErrorCode::UpperdirTainted,
                             upper +
                                 "/keep/k3 carries a malformed "
                                 "user.fuseoverlayfs.override_stat '-1:" +
                                 crew + ":100644'"));
    ASSERT_EQ(::lremovexattr((upper + "/keep/k3").c_str(), "user.fuseoverlayfs.override_stat"), 0);
    ASSERT_NO_THROW(migrate(false));
}

INSTANTIATE_TEST_SUITE_P(Resolvers, MigrateFuseOverlayfs,
                         ::testing::Values(overlay::PathResolver::Openat2),
                         [](const ::testing::TestParamInfo<overlay::PathResolver>&) {
                             return std::string("Openat2");
                         });
#endif

} // namespace
