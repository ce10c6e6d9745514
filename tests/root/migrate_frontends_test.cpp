// migrate through its front ends, the drop-in verb and the executor, and
// over uppers written by a real fuse-overlayfs (migrate_fixture.hpp).

#include "migrate_fixture.hpp"

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
    // The service's executor sets no set-id bit (RestrictSUIDSGID): the
    // fuse-era upper's `owned` (a security.* override asking for 4755 after
    // a chown) and `mine` (set-uid kept, mode changed) are refused before
    // anything changes, dry run or not.
    for (bool dry_run : {true, false}) {
        ASSERT_TRUE(p::send_message(sock.get(), p::format_request({overlay::vocabulary::Verb::Migrate,
                                                                   "alpha", dry_run})));
        auto setid = p::receive_message(sock.get(), wait);
        auto setid_record = p::parse_result_record(setid.message);
        ASSERT_TRUE(setid_record) << setid.message;
        const auto* setid_result = std::get_if<p::ExecutorFailure>(&*setid_record);
        ASSERT_TRUE(setid_result) << setid.message;
        EXPECT_EQ(setid_result->error, ErrorCode::UpperdirTainted) << setid.message;
        EXPECT_NE(setid.message.find("sudo left4me-overlay migrate alpha"), std::string::npos)
            << setid.message;
        EXPECT_EQ(tree(upper), before);
    }
    // The admin sets those by hand and removes the overrides.
    ASSERT_EQ(::lremovexattr((upper + "/owned").c_str(), "security.fuseoverlayfs.override_stat"),
              0);
    ASSERT_EQ(::lremovexattr((upper + "/mine").c_str(), "user.fuseoverlayfs.override_stat"), 0);
    ASSERT_TRUE(
        p::send_message(sock.get(), p::format_request({overlay::vocabulary::Verb::Migrate, "alpha", true})));
    auto dry = p::receive_message(sock.get(), wait);
    ASSERT_EQ(dry.status, p::ReceiveStatus::Message);
    auto dry_record = p::parse_result_record(dry.message);
    ASSERT_TRUE(dry_record) << dry.message;
    const auto* dry_result = std::get_if<p::ExecutorResult>(&*dry_record);
    ASSERT_TRUE(dry_result) << dry.message;
    EXPECT_TRUE(has_line(dry_result->report, "convert-whiteout " + upper + "/.wh.b.txt"));
    EXPECT_EQ(dry_result->report.back(), "dry run: nothing was changed");
    EXPECT_EQ(tree(upper), before);

    ASSERT_TRUE(p::send_message(sock.get(), p::format_request({overlay::vocabulary::Verb::Migrate, "alpha"})));
    auto real = p::receive_message(sock.get(), wait);
    auto real_record = p::parse_result_record(real.message);
    ASSERT_TRUE(real_record) << real.message;
    const auto* real_result = std::get_if<p::ExecutorResult>(&*real_record);
    ASSERT_TRUE(real_result) << real.message;
    EXPECT_TRUE(has_line(real_result->report, "verified: the kernel overlay shows the same"));
    EXPECT_TRUE(is_whiteout(upper + "/b.txt"));

    // A refusal is an error record like any other verb's.
    ASSERT_TRUE(p::send_message(sock.get(), p::format_request({overlay::vocabulary::Verb::Migrate, "ghost"})));
    auto refused = p::receive_message(sock.get(), wait);
    auto refused_record = p::parse_result_record(refused.message);
    ASSERT_TRUE(refused_record) << refused.message;
    const auto* refused_result = std::get_if<p::ExecutorFailure>(&*refused_record);
    ASSERT_TRUE(refused_result) << refused.message;
    EXPECT_EQ(refused_result->error, ErrorCode::NoSuchInstance) << refused.message;

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

    void run_fuse_era(const std::string& options, const std::string& more = "") {
        std::string fuse_view;
        write_through_fuse(options, more, &fuse_view);
        if (HasFatalFailure()) {
            return;
        }
        ASSERT_NE(fuse_view.find("./dir2/n"), std::string::npos) << fuse_view;
        const std::string& s = s_;
        overlay::MigrationReport report;
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
    ASSERT_NO_FATAL_FAILURE(run_fuse_era(",xattr_permissions=2"));
    // fuse-overlayfs kept the owner and mode of each file it made in
    // override_stat: migrate applied them (the views agree) and removed it.
    EXPECT_FALSE(get_x(upper + "/newdir/f", "user.fuseoverlayfs.override_stat"));
}

// fuse-overlayfs 1.10, unprivileged with xattr_permissions=2 (outside a
// user namespace), records a chmod of a file it copied up or of a
// directory as "0:0:MODE" (any chmod, in fact), and a chgrp as "-1:GID":
// its FUSE mount then shows those entries as root's or nobody's (65534). A user.* override naming
// root or another user is refused, before anything changes; once an admin
// has set owner and mode by hand and removed the xattr, the run goes on.
TEST_P(MigrateFuseOverlayfs, WithXattrPermissions2AChmodOrChgrpNamesRootOrNobody) {
    std::string view;
    ASSERT_NO_FATAL_FAILURE(write_through_fuse(
        ",xattr_permissions=2",
        " && chmod 600 keep/k2 && chgrp " + std::to_string(kCrew) + " keep/k3", &view));
    EXPECT_NE(view.find("./keep/k2 regular file 600 0:0\n"), std::string::npos) << view;
    EXPECT_NE(view.find("./keep/k3 regular file 644 65534:" + std::to_string(kCrew) + "\n"),
              std::string::npos)
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
                                 std::to_string(kCrew) + ":100644'"));
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
