// The daemon's persistent executor (left4me-overlay --serve) driven by the
// daemon's own Executor class, in this test's namespace (HostPid names
// this process): one process serving thousands of requests without
// leaking, a killed or hung executor failing only its request and being
// replaced, config changes picked up, and the watcher (each way of
// watching) reporting changes made by others, also past an overflow of
// its event queue.
#include "executor.hpp"
#include "owner_namespace.hpp"
#include "scratch.hpp"

#include <atomic>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <mutex>
#include <signal.h>
#include <sstream>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace {

using namespace l4m_test;
using overlay::ErrorCode;
using overlay::daemon::Executor;
using overlay::daemon::ExecutorOutcome;

// What the tests ask of an outcome.
bool ok(const ExecutorOutcome& out) {
    return std::holds_alternative<overlay::protocol::ExecutorResult>(out);
}
std::string message_of(const ExecutorOutcome& out) {
    const auto* f = std::get_if<overlay::protocol::ExecutorFailure>(&out);
    return f ? f->message : std::string();
}
ErrorCode error_of(const ExecutorOutcome& out) {
    const auto* f = std::get_if<overlay::protocol::ExecutorFailure>(&out);
    return f ? f->error : ErrorCode::Failed;
}
const overlay::protocol::ExecutorResult& result_of(const ExecutorOutcome& out) {
    return std::get<overlay::protocol::ExecutorResult>(out);
}
using overlay::protocol::Request;
using overlay::vocabulary::Verb;

// What must be the same before and after any request.
struct ProcessState {
    std::set<std::string> fds; // "N -> target"
    std::string cwd;
    std::string root;
    std::string mnt_ns;
    std::string umask, uid, gid, groups, cap_eff;
    std::size_t threads = 0;
    std::size_t children = 0;
    bool operator==(const ProcessState&) const = default;
};

std::string link_of(const std::string& path) {
    std::error_code ec;
    return std::filesystem::read_symlink(path, ec).string();
}

std::string status_field(const std::string& status, const std::string& key) {
    const auto at = status.find("\n" + key + ":");
    if (at == std::string::npos) {
        return {};
    }
    const auto end = status.find('\n', at + 1);
    return status.substr(at + key.size() + 2, end - at - key.size() - 2);
}

ProcessState state_of(pid_t pid) {
    const std::string proc = "/proc/" + std::to_string(pid);
    ProcessState s;
    for (const auto& e : std::filesystem::directory_iterator(proc + "/fd")) {
        s.fds.insert(e.path().filename().string() + " -> " + link_of(e.path()));
    }
    s.cwd = link_of(proc + "/cwd");
    s.root = link_of(proc + "/root");
    s.mnt_ns = link_of(proc + "/ns/mnt");
    const std::string status = "\n" + read_file(proc + "/status");
    s.umask = status_field(status, "Umask");
    s.uid = status_field(status, "Uid");
    s.gid = status_field(status, "Gid");
    s.groups = status_field(status, "Groups");
    s.cap_eff = status_field(status, "CapEff");
    s.threads = static_cast<std::size_t>(std::stoul(status_field(status, "Threads")));
    for (const auto& e : std::filesystem::directory_iterator(proc + "/task")) {
        const std::string kids = read_file(e.path().string() + "/children");
        s.children += kids.empty() ? 0 : 1;
    }
    return s;
}

// The unique ids a LockDir record (NAME.seen, NAME.mounts) names: lines
// "NAME ID DEVICE KIND".
std::set<std::uint64_t> ids_in(const std::string& path) {
    std::set<std::uint64_t> out;
    if (!std::filesystem::exists(path)) {
        return out;
    }
    std::istringstream lines(read_file(path));
    std::string name, kind;
    std::uint64_t id = 0, device = 0;
    while (lines >> name >> id >> device >> kind) {
        out.insert(id);
    }
    return out;
}

// The kernel's unique id of the mount whose root `path` is, asked here
// (statx STATX_MNT_ID_UNIQUE, Linux 6.8), not through the code under test.
std::uint64_t unique_mount_id(const std::string& path) {
    constexpr unsigned kMntIdUnique = 0x4000; // STATX_MNT_ID_UNIQUE
    struct statx st {};
    if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, kMntIdUnique, &st) != 0 ||
        (st.stx_mask & kMntIdUnique) == 0) {
        ADD_FAILURE() << "statx STATX_MNT_ID_UNIQUE " << path;
        return 0;
    }
    return st.stx_mnt_id;
}

// Stopped by SIGSTOP (state T in /proc/PID/stat): from then on it reads
// nothing until SIGCONT.
bool wait_until_stopped(pid_t pid) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
        const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        const auto paren = stat.rfind(')');
        if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'T') {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
}

class ExecutorTest : public ::testing::Test {
  protected:
    void SetUp() override {
        layout = make_layout();
        config_path = layout.root + "/../overlay.conf";
        write_config("");
    }
    void write_config(const std::string& extra) {
        // Replaced by rename, as editors and package upgrades do.
        const std::string tmp = config_path + ".new";
        write_file(tmp, "Root=" + layout.root + "\nHostPid=" + std::to_string(::getpid()) +
                            "\nLockDir=" + layout.lock_dir + "\n" + extra);
        ::chmod(tmp.c_str(), 0644);
        std::filesystem::rename(tmp, config_path);
    }
    Executor::Options options(bool watch = false) {
        Executor::Options o;
        o.executor_path = L4M_DROPIN_PATH;
        o.config_path = config_path;
        o.watch = watch;
        return o;
    }
    static Request req(Verb verb, std::string name = {}) { return {verb, std::move(name)}; }

    // Holds the instance's operation lock, as a running operation would.
    overlay::UniqueFd hold_instance_lock(const std::string& name) {
        std::filesystem::create_directories(layout.lock_dir);
        ::chmod(layout.lock_dir.c_str(), 0700);
        const std::string path = layout.lock_dir + "/" + name + ".lock";
        overlay::UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
        EXPECT_TRUE(fd);
        EXPECT_EQ(::flock(fd.get(), LOCK_EX), 0);
        return fd;
    }

    Layout layout;
    std::string config_path;
};

TEST_F(ExecutorTest, OneProcessServesTenThousandRequestsAndNothingLeaks) {
    layout.add_instance("beta", "/overlays/mod:/installation/base");
    Executor executor(options());
    ASSERT_TRUE(ok(executor.run(req(Verb::List))));
    const pid_t pid = executor.pid();
    ASSERT_GT(pid, 0);
    const ProcessState before = state_of(pid);
    EXPECT_EQ(before.threads, 1U);
    EXPECT_EQ(before.children, 0U);
    EXPECT_EQ(before.cwd, "/");

    // Successes and refusals of every kind, from every core path.
    const std::vector<std::pair<Request, std::optional<ErrorCode>>> cycle = {
        {req(Verb::Mount, "alpha"), std::nullopt},
        {req(Verb::Mount, "alpha"), ErrorCode::AlreadyMounted},
        {req(Verb::Status, "alpha"), std::nullopt},
        {req(Verb::Mount, "ghost"), ErrorCode::NoSuchInstance},
        {req(Verb::Mount, "beta"), ErrorCode::LowerdirNotAllowed},
        {req(Verb::List), std::nullopt},
        {req(Verb::Unmount, "alpha"), std::nullopt},
        {req(Verb::Unmount, "alpha"), ErrorCode::NotMounted},
        {req(Verb::Status, "ghost"), ErrorCode::NoSuchInstance},
        {req(Verb::Mount, "-bad"), ErrorCode::InvalidName},
    };
    int done = 0;
    while (done < 10'000) {
        for (const auto& [request, expected] : cycle) {
            const ExecutorOutcome out = executor.run(request);
            ASSERT_EQ(ok(out), !expected) << done << ": " << message_of(out);
            if (expected) {
                ASSERT_EQ(error_of(out), *expected) << message_of(out);
            }
            ++done;
        }
        if (done % 1000 == 0) {
            ASSERT_EQ(executor.pid(), pid) << "a new executor after " << done << " requests";
            const ProcessState now = state_of(pid);
            ASSERT_EQ(now.fds, before.fds) << "after " << done << " requests";
            ASSERT_EQ(now, before) << "after " << done << " requests";
        }
    }
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 0);
}

// Each executor role narrows its capabilities at start to its own
// (src/executor-protocol/process_capabilities.hpp): only a Migrate executor
// keeps CAP_CHOWN and CAP_FOWNER, none keeps anything inheritable or
// ambient. This test runs as full root: the executors are exec'd with
// every capability, so what they hold is what they chose to keep. Each
// also serves its own verbs only.
TEST_F(ExecutorTest, EachRoleKeepsOnlyItsCapabilities) {
    // CAP_DAC_OVERRIDE (1), CAP_SYS_CHROOT (18), CAP_SYS_PTRACE (19),
    // CAP_SYS_ADMIN (21); + CAP_CHOWN (0), CAP_FOWNER (3).
    const std::string operations = "00000000002c0002";
    const std::string migrate = "00000000002c000b";
    const std::string none = "0000000000000000";
    auto caps = [](pid_t pid) {
        const std::string status = "\n" + read_file("/proc/" + std::to_string(pid) + "/status");
        std::string out;
        for (const char* key : {"CapEff", "CapPrm", "CapInh", "CapAmb"}) {
            const std::string value = status_field(status, key);
            out += (out.empty() ? "" : " ") + value.substr(value.find_first_not_of(" \t"));
        }
        return out;
    };
    const std::string own = caps(::getpid());
    ASSERT_EQ(std::stoull(own.substr(0, 16), nullptr, 16) & 0x2c000bULL, 0x2c000bULL) << own;

    Executor operation(options());
    ASSERT_TRUE(ok(operation.run(req(Verb::List))));
    EXPECT_EQ(caps(operation.pid()), operations + " " + operations + " " + none + " " + none);
    const ExecutorOutcome refused = operation.run({Verb::Migrate, "alpha", true});
    EXPECT_EQ(message_of(refused), "instance alpha: executor: migrate is served only by a Migrate "
                                   "executor (--serve FD --migrate)");

    Executor watcher(options(true));
    watcher.ensure_started();
    ASSERT_GT(watcher.pid(), 0);
    EXPECT_EQ(caps(watcher.pid()), operations + " " + operations + " " + none + " " + none);

    Executor::Options o = options();
    o.migrate = true;
    Executor migrator(std::move(o));
    const ExecutorOutcome dry = migrator.run({Verb::Migrate, "alpha", true});
    EXPECT_TRUE(ok(dry)) << message_of(dry);
    EXPECT_EQ(caps(migrator.pid()), migrate + " " + migrate + " " + none + " " + none);
    const ExecutorOutcome mount = migrator.run(req(Verb::Mount, "alpha"));
    EXPECT_EQ(message_of(mount),
              "instance alpha: executor: a Migrate executor (--migrate) serves only migrate");
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 0);
}

TEST_F(ExecutorTest, KilledExecutorFailsOnlyItsRequestAndIsReplaced) {
    Executor executor(options());
    ASSERT_TRUE(ok(executor.run(req(Verb::List))));
    const pid_t first = executor.pid();
    auto lock = hold_instance_lock("alpha");
    std::thread killer([&] {
        // Kill the executor in the act: once it holds the instance's lock
        // file open, it is inside the mount, waiting for the lock we hold.
        // (Not by its wchan: between requests it is not always in poll, and
        // an idle executor killed there is replaced before it sees the mount.)
        const std::string lock_path = layout.lock_dir + "/alpha.lock";
        const std::string fd_dir = "/proc/" + std::to_string(first) + "/fd";
        auto opened_lock = [&] {
            std::error_code ec;
            for (const auto& e : std::filesystem::directory_iterator(fd_dir, ec)) {
                std::error_code link_ec;
                if (std::filesystem::read_symlink(e.path(), link_ec) == lock_path) {
                    return true;
                }
            }
            return false;
        };
        while (!opened_lock()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        ::kill(first, SIGKILL);
    });
    const ExecutorOutcome out = executor.run(req(Verb::Mount, "alpha"));
    killer.join();
    EXPECT_FALSE(ok(out));
    EXPECT_EQ(error_of(out), ErrorCode::Failed);
    EXPECT_EQ(message_of(out), "instance alpha: executor pid " + std::to_string(first) +
                                   " was killed by signal SIGKILL during mount");
    lock.reset();
    const ExecutorOutcome next = executor.run(req(Verb::Mount, "alpha"));
    EXPECT_TRUE(ok(next)) << message_of(next);
    EXPECT_NE(executor.pid(), first);
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 1);
    EXPECT_TRUE(ok(executor.run(req(Verb::Unmount, "alpha"))));
}

TEST_F(ExecutorTest, HungExecutorIsKilledAfterTheTimeoutAndReplaced) {
    Executor executor(options());
    executor.set_timeout(std::chrono::milliseconds(300));
    ASSERT_TRUE(ok(executor.run(req(Verb::List))));
    const pid_t first = executor.pid();
    auto lock = hold_instance_lock("alpha");
    const ExecutorOutcome out = executor.run(req(Verb::Mount, "alpha"));
    EXPECT_FALSE(ok(out));
    EXPECT_EQ(message_of(out), "instance alpha: executor pid " + std::to_string(first) +
                                   " did not finish within 300 ms and was killed by signal SIGKILL "
                                   "during mount");
    EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(first)));
    lock.reset();
    executor.set_timeout(std::chrono::seconds(60));
    const ExecutorOutcome next = executor.run(req(Verb::Mount, "alpha"));
    EXPECT_TRUE(ok(next)) << message_of(next);
    EXPECT_NE(executor.pid(), first);
    EXPECT_TRUE(ok(executor.run(req(Verb::Unmount, "alpha"))));
}

TEST_F(ExecutorTest, ConfigChangesArePickedUpWithoutARestart) {
    Executor executor(options());
    ExecutorOutcome out = executor.run(req(Verb::Status, "alpha"));
    ASSERT_TRUE(ok(out)) << message_of(out);
    const pid_t pid = executor.pid();
    ASSERT_EQ(result_of(out).lowerdirs.size(), 2U);

    layout.set_env("alpha", "L4D2_LOWERDIRS=" + layout.root +
                                "/installation/base\nOTHER_KEY=" + layout.root + "/overlays/mod\n");
    write_config("LowerdirsKey=OTHER_KEY\n");
    out = executor.run(req(Verb::Status, "alpha"));
    ASSERT_TRUE(ok(out)) << message_of(out);
    ASSERT_EQ(result_of(out).lowerdirs, std::vector<std::string>{layout.root + "/overlays/mod"});

    write_config("LowerdirsKey=\n");
    out = executor.run(req(Verb::Status, "alpha"));
    EXPECT_FALSE(ok(out));
    EXPECT_EQ(error_of(out), ErrorCode::BadConfig);
    EXPECT_NE(message_of(out).find("overlay.conf:4: LowerdirsKey"), std::string::npos)
        << message_of(out);

    write_config("");
    out = executor.run(req(Verb::Status, "alpha"));
    EXPECT_TRUE(ok(out)) << message_of(out);
    EXPECT_EQ(executor.pid(), pid);
}

TEST_F(ExecutorTest, WatcherReportsChangesWhoeverMadeThem) {
    std::mutex mutex;
    std::vector<std::pair<std::string, bool>> changes;
    std::vector<std::string> snapshot;
    bool have_snapshot = false;
    auto o = options(true);
    o.on_report = [&](const overlay::protocol::MountReport& report) {
        std::lock_guard lock(mutex);
        if (report.complete) {
            have_snapshot = true;
            for (const auto& [name, mounted] : report.instances) {
                snapshot.push_back(name);
            }
            return;
        }
        changes.insert(changes.end(), report.instances.begin(), report.instances.end());
    };
    layout.add_instance("beta", layout.root + "/overlays/mod");
    Executor watcher(std::move(o));
    Executor worker(options());
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "beta"))));
    const Request sync{}; // no verb: sync

    ASSERT_TRUE(ok(watcher.run(sync)));
    {
        std::lock_guard lock(mutex);
        ASSERT_TRUE(have_snapshot);
        EXPECT_EQ(snapshot, std::vector<std::string>{"beta"});
        EXPECT_TRUE(changes.empty());
    }
    // Mounted by another process (the drop-in), unmounted with umount2:
    // neither goes through the daemon.
    ASSERT_EQ(run_command({L4M_DROPIN_PATH, "--config", config_path, "mount", "alpha"}), 0);
    ASSERT_TRUE(ok(watcher.run(sync)));
    ASSERT_EQ(::umount2(layout.merged("alpha").c_str(), 0), 0);
    ASSERT_EQ(::umount2(layout.merged("beta").c_str(), 0), 0);
    // Read before beta is mounted again: the kernel hands a freed mount id
    // out again at once, so an unmount and a mount between two reads of
    // the table can look like no change (docs/architecture.md).
    ASSERT_TRUE(ok(watcher.run(sync)));
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "beta"))));
    ASSERT_TRUE(ok(watcher.run(sync)));
    std::lock_guard lock(mutex);
    const std::vector<std::pair<std::string, bool>> expected = {
        {"alpha", true}, {"alpha", false}, {"beta", false}, {"beta", true}};
    EXPECT_EQ(changes, expected);
}

// What a watching executor reports, recorded on its callback's thread: the
// changes not yet taken, the notes, and the last full report's "how" line.
// Declared before the watcher, whose callback it outlives.
class WatcherReports {
  public:
    using Changes = std::vector<std::pair<std::string, bool>>;

    template <class Options> void hook(Options& o) {
        o.on_report = [this](const overlay::protocol::MountReport& report) {
            std::lock_guard lock(mutex_);
            if (report.complete) {
                how_ = report.how;
                return;
            }
            changes_.insert(changes_.end(), report.instances.begin(), report.instances.end());
            if (!report.note.empty()) {
                notes_.push_back(report.note);
            }
        };
    }
    // The changes since the last take: the watcher's answer to a sync
    // follows every report it made before it.
    Changes take(Executor& watcher) {
        EXPECT_TRUE(ok(watcher.run(Request{})));
        std::lock_guard lock(mutex_);
        return std::exchange(changes_, {});
    }
    std::vector<std::string> notes() {
        std::lock_guard lock(mutex_);
        return notes_;
    }
    std::string how() {
        std::lock_guard lock(mutex_);
        return how_;
    }

  private:
    std::mutex mutex_;
    Changes changes_;
    std::vector<std::string> notes_;
    std::string how_;
};
using Changes = WatcherReports::Changes;

// Every way of watching, each forced: fanotify mount events, POLLPRI on
// mountinfo over the statmount table ("poll"), and POLLPRI over the
// mountinfo table ("mountinfo": what a kernel before 6.8, or a seccomp
// filter older than statmount, such as Debian 12's unit, leaves). With the
// instance owner renaming and removing merged from a namespace of its own:
// a rename is no change, a removal there detaches the host's overlay and
// is signalled, and (with unique ids) an unmount and a mount between two
// looks are two changes, not none.
class WatcherModes : public ExecutorTest, public ::testing::WithParamInterface<const char*> {
  protected:
    std::string mode() const { return GetParam(); }
    bool unique_ids() const { return mode() != "mountinfo"; }
    void configure() {
        write_config(unique_ids() ? "MountWatch=" + mode() + "\n" : "MountTable=mountinfo\n");
    }
    // The instance becomes its owner's, as the host manager makes it, so
    // the owner's namespace (OwnerNamespace) may rename and remove in it.
    void give_to_owner(const std::string& name) {
        for (const auto& e :
             std::filesystem::recursive_directory_iterator(layout.instance_dir(name))) {
            ASSERT_EQ(::lchown(e.path().c_str(), OwnerNamespace::kOwner, OwnerNamespace::kOwner),
                      0);
        }
        ASSERT_EQ(::lchown(layout.instance_dir(name).c_str(), OwnerNamespace::kOwner,
                           OwnerNamespace::kOwner),
                  0);
    }
    std::string expected_how() const {
        return mode() == "fanotify" ? "fanotify statmount"
               : mode() == "poll"   ? "poll statmount (MountWatch=poll)"
                                    : "poll mountinfo (MountTable=mountinfo)";
    }
};

TEST_P(WatcherModes, EveryChangeOnceInOrderWhereverTheOverlayIs) {
    const std::string mode = GetParam();
    configure();
    ASSERT_NO_FATAL_FAILURE(give_to_owner("alpha"));
    OwnerNamespace owner;
    WatcherReports reports;
    auto o = options(true);
    reports.hook(o);
    Executor watcher(std::move(o));
    Executor worker(options());
    ASSERT_EQ(reports.take(watcher), Changes{});
    // The first report says which watcher runs, and why not fanotify.
    EXPECT_EQ(reports.how(), expected_how());
    // The watcher in use, seen from its descriptors.
    bool fanotify = false;
    for (const auto& e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(watcher.pid()) + "/fd")) {
        fanotify = fanotify || link_of(e.path()) == "anon_inode:[fanotify]";
    }
    EXPECT_EQ(fanotify, mode == "fanotify");

    const std::string inst = layout.instance_dir("alpha");
    auto changes_now = [&] { return reports.take(watcher); };
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "alpha"))));
    EXPECT_EQ(changes_now(), (Changes{{"alpha", true}}));
    ASSERT_EQ(owner.rename(inst + "/merged", inst + "/moved"), 0);
    ASSERT_EQ(owner.mkdir(inst + "/merged"), 0);
    EXPECT_EQ(changes_now(), Changes{});
    const auto status = worker.run(req(Verb::Status, "alpha"));
    ASSERT_TRUE(ok(status));
    EXPECT_TRUE(result_of(status).mounted);
    EXPECT_EQ(result_of(status).merged, inst + "/moved");
    ASSERT_EQ(owner.rmdir(inst + "/moved"), 0);
    EXPECT_EQ(changes_now(), (Changes{{"alpha", false}}));

    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "alpha"))));
    EXPECT_EQ(changes_now(), (Changes{{"alpha", true}}));
    // Unmounted and mounted again between two looks: the kernel may hand
    // the same (reusable) mount id out again; the unique one differs. With
    // the reusable ids alone (the mountinfo table) that can look like no
    // change (docs/architecture.md): there, one look after each.
    ASSERT_EQ(::umount2(layout.merged("alpha").c_str(), 0), 0);
    if (!unique_ids()) {
        EXPECT_EQ(changes_now(), (Changes{{"alpha", false}}));
    }
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "alpha"))));
    EXPECT_EQ(changes_now(), (unique_ids() ? Changes{{"alpha", false}, {"alpha", true}}
                                           : Changes{{"alpha", true}}));
    ASSERT_TRUE(ok(worker.run(req(Verb::Unmount, "alpha"))));
    EXPECT_EQ(changes_now(), (Changes{{"alpha", false}}));

    // The watcher shares what it knows (LockDir/.watcher, NAME.seen), so the
    // other executors ask the kernel by id instead of listing the table, and
    // still see an admin's bind of the overlay: Unmount is Busy, naming it.
    // (Over the mountinfo table it shares nothing: they list the table.)
    EXPECT_EQ(std::filesystem::exists(layout.lock_dir + "/.watcher"), unique_ids());
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "alpha"))));
    const std::string bind = layout.outside + "/alpha-view";
    std::filesystem::create_directories(bind);
    ASSERT_EQ(::mount(layout.merged("alpha").c_str(), bind.c_str(), nullptr, MS_BIND, nullptr), 0);
    EXPECT_EQ(changes_now(), (Changes{{"alpha", true}}));
    if (unique_ids()) {
        EXPECT_EQ(ids_in(layout.lock_dir + "/alpha.seen"),
                  (std::set<std::uint64_t>{unique_mount_id(layout.merged("alpha")),
                                           unique_mount_id(bind)}));
    } else {
        EXPECT_FALSE(std::filesystem::exists(layout.lock_dir + "/alpha.seen"));
    }
    const auto busy = worker.run(req(Verb::Unmount, "alpha"));
    EXPECT_EQ(error_of(busy), ErrorCode::Busy) << message_of(busy);
    EXPECT_NE(message_of(busy).find(bind), std::string::npos) << message_of(busy);
    // The original goes behind the service's back: the bind keeps the
    // overlay, and the instance, mounted there.
    ASSERT_EQ(::umount2(layout.merged("alpha").c_str(), 0), 0);
    EXPECT_EQ(changes_now(), Changes{});
    const auto there = worker.run(req(Verb::Status, "alpha"));
    ASSERT_TRUE(ok(there));
    EXPECT_TRUE(result_of(there).mounted);
    EXPECT_EQ(result_of(there).merged, bind);
    EXPECT_EQ(error_of(worker.run(req(Verb::Mount, "alpha"))), ErrorCode::AlreadyMounted);
    ASSERT_TRUE(ok(worker.run(req(Verb::Unmount, "alpha"))));
    EXPECT_EQ(changes_now(), (Changes{{"alpha", false}}));
}

// An instance with two overlays of its own, not binds of one (stacked by an
// older version after its owner renamed merged, or mounted by hand): one
// mounted state, signalled once each way; Mount refused; status names the
// one on merged; Unmount detaches both, each by its id.
TEST_P(WatcherModes, TwoOverlaysOfOneInstanceAreOneStateAndUnmountedTogether) {
    configure();
    ASSERT_NO_FATAL_FAILURE(give_to_owner("alpha"));
    OwnerNamespace owner;
    WatcherReports reports;
    auto o = options(true);
    reports.hook(o);
    Executor watcher(std::move(o));
    Executor worker(options());
    auto changes_now = [&] { return reports.take(watcher); };
    ASSERT_EQ(changes_now(), Changes{});
    const std::string inst = layout.instance_dir("alpha");
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "alpha"))));
    ASSERT_EQ(owner.rename(inst + "/merged", inst + "/old"), 0);
    ASSERT_EQ(owner.mkdir(inst + "/merged"), 0);
    // The second, by hand: a read-only overlay of the same lowers.
    const std::string data =
        "lowerdir=" + layout.root + "/overlays/mod:" + layout.root + "/installation/base";
    ASSERT_EQ(::mount("left4me:alpha", (inst + "/merged").c_str(), "overlay", 0, data.c_str()), 0)
        << std::strerror(errno);
    EXPECT_EQ(changes_now(), (Changes{{"alpha", true}}));
    EXPECT_EQ(overlays_under(inst).size(), 2U);
    const auto status = worker.run(req(Verb::Status, "alpha"));
    ASSERT_TRUE(ok(status)) << message_of(status);
    EXPECT_TRUE(result_of(status).mounted);
    EXPECT_EQ(result_of(status).merged, inst + "/merged");
    const auto again = worker.run(req(Verb::Mount, "alpha"));
    EXPECT_EQ(error_of(again), ErrorCode::AlreadyMounted) << message_of(again);
    const auto unmounted = worker.run(req(Verb::Unmount, "alpha"));
    ASSERT_TRUE(ok(unmounted)) << message_of(unmounted);
    EXPECT_TRUE(overlays_under(inst).empty());
    EXPECT_EQ(changes_now(), (Changes{{"alpha", false}}));
    const auto after = worker.run(req(Verb::Status, "alpha"));
    ASSERT_TRUE(ok(after)) << message_of(after);
    EXPECT_FALSE(result_of(after).mounted);
}

INSTANTIATE_TEST_SUITE_P(Modes, WatcherModes, ::testing::Values("fanotify", "poll", "mountinfo"),
                         [](const ::testing::TestParamInfo<const char*>& param) {
                             return std::string(param.param);
                         });

// The fanotify watcher's queue holds fanotify's max_queued_events; past
// that the kernel drops events and queues one FAN_Q_OVERFLOW. The watcher
// is held (SIGSTOP) while instances change, then more mount events than
// the queue holds are made, then more instances change (events the kernel
// drops). Resumed, the watcher must log the overflow, list the table again
// and report every instance whose state changed, once each, in order per
// instance (an overlay unmounted and mounted again under a new unique id
// is two changes), and publish in LockDir what the table now holds.
TEST_F(ExecutorTest, FanotifyQueueOverflowListsTheTableAgainAndMissesNoChange) {
    write_config("MountWatch=fanotify\n");
    const std::string lowers = layout.root + "/overlays/mod";
    for (const char* name : {"beta", "delta", "gamma"}) {
        layout.add_instance(name, lowers);
    }
    WatcherReports reports;
    auto o = options(true);
    reports.hook(o);
    Executor watcher(std::move(o));
    Executor worker(options());
    auto changes_now = [&] { return reports.take(watcher); };
    ASSERT_EQ(changes_now(), Changes{}); // started: what follows are changes
    for (const char* name : {"alpha", "beta", "delta"}) {
        ASSERT_TRUE(ok(worker.run(req(Verb::Mount, name))));
    }
    ASSERT_EQ(changes_now(), (Changes{{"alpha", true}, {"beta", true}, {"delta", true}}));
    const std::uint64_t delta_before = unique_mount_id(layout.merged("delta"));
    EXPECT_EQ(ids_in(layout.lock_dir + "/delta.seen"), std::set<std::uint64_t>{delta_before});

    const pid_t pid = watcher.pid();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    // Resumed on every way out: a stopped executor would never see EOF.
    std::shared_ptr<void> resume(nullptr, [pid](void*) { ::kill(pid, SIGCONT); });
    ASSERT_TRUE(wait_until_stopped(pid));

    // Still queued: alpha's unmount.
    ASSERT_TRUE(ok(worker.run(req(Verb::Unmount, "alpha"))));
    // More events than the queue holds, cheaply: a bind mount moved back
    // and forth (each move is one event, FAN_MNT_ATTACH|FAN_MNT_DETACH;
    // no unmount, so no RCU grace period per event).
    const std::size_t max_events = std::stoul(read_file("/proc/sys/fs/fanotify/max_queued_events"));
    const std::string here = layout.outside + "/flood-a", there = layout.outside + "/flood-b";
    make_dirs(here);
    make_dirs(there);
    ASSERT_EQ(::mount(here.c_str(), here.c_str(), nullptr, MS_BIND, nullptr), 0);
    for (std::size_t i = 0; i < max_events + 100; ++i) {
        const bool forth = i % 2 == 0;
        ASSERT_EQ(::mount(forth ? here.c_str() : there.c_str(),
                          forth ? there.c_str() : here.c_str(), nullptr, MS_MOVE, nullptr),
                  0)
            << i << ": " << std::strerror(errno);
    }
    // Dropped by the kernel: beta unmounted; alpha mounted again; delta
    // unmounted behind the service's back and mounted again (a new unique
    // id: two changes, though it is mounted before and after); gamma
    // mounted by hand away from its merged (only the watcher can tell the
    // other executors of that one).
    ASSERT_TRUE(ok(worker.run(req(Verb::Unmount, "beta"))));
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "alpha"))));
    ASSERT_EQ(::umount2(layout.merged("delta").c_str(), 0), 0);
    ASSERT_TRUE(ok(worker.run(req(Verb::Mount, "delta"))));
    const std::string by_hand = layout.outside + "/gamma-by-hand";
    make_dirs(by_hand);
    const std::string data = "lowerdir=" + lowers + ":" + layout.root + "/installation/base";
    ASSERT_EQ(::mount("left4me:gamma", by_hand.c_str(), "overlay", 0, data.c_str()), 0)
        << std::strerror(errno);
    resume.reset();

    EXPECT_EQ(changes_now(),
              (Changes{{"alpha", false}, // the event
                                         // the table listed again: gone, replaced, new
                       {"beta", false},
                       {"delta", false},
                       {"delta", true},
                       {"alpha", true},
                       {"gamma", true}}));
    const std::vector<std::string> notes = reports.notes();
    ASSERT_EQ(notes.size(), 1U);
    EXPECT_EQ(notes[0], "the fanotify mount event queue overflowed after " +
                            std::to_string(max_events) +
                            " events; listed the mount table again and compared");
    // What the watcher shares is the table's, by unique id.
    EXPECT_EQ(ids_in(layout.lock_dir + "/alpha.seen"),
              std::set<std::uint64_t>{unique_mount_id(layout.merged("alpha"))});
    EXPECT_FALSE(std::filesystem::exists(layout.lock_dir + "/beta.seen"));
    const std::uint64_t delta_after = unique_mount_id(layout.merged("delta"));
    EXPECT_NE(delta_after, delta_before);
    EXPECT_EQ(ids_in(layout.lock_dir + "/delta.seen"), std::set<std::uint64_t>{delta_after});
    EXPECT_EQ(ids_in(layout.lock_dir + "/gamma.seen"),
              std::set<std::uint64_t>{unique_mount_id(by_hand)});
    // ... and what the other executors answer from it.
    const auto gamma = worker.run(req(Verb::Status, "gamma"));
    ASSERT_TRUE(ok(gamma)) << message_of(gamma);
    EXPECT_TRUE(result_of(gamma).mounted);
    EXPECT_EQ(result_of(gamma).merged, by_hand);
    const auto list = worker.run(req(Verb::List));
    ASSERT_TRUE(ok(list)) << message_of(list);
    EXPECT_EQ(result_of(list).instances,
              (Changes{{"alpha", true}, {"beta", false}, {"delta", true}, {"gamma", true}}));

    // And the watcher goes on event by event.
    ASSERT_TRUE(ok(worker.run(req(Verb::Unmount, "gamma"))));
    EXPECT_EQ(overlays_at(by_hand), 0);
    ASSERT_TRUE(ok(worker.run(req(Verb::Unmount, "alpha"))));
    EXPECT_EQ(changes_now(), (Changes{{"gamma", false}, {"alpha", false}}));
    EXPECT_EQ(reports.notes().size(), 1U);
}

TEST_F(ExecutorTest, MissingExecutorFailsNamingItAndRetriesLater) {
    auto o = options();
    o.executor_path = layout.root + "/no-such-executor";
    Executor executor(std::move(o));
    const ExecutorOutcome out = executor.run(req(Verb::Mount, "alpha"));
    EXPECT_FALSE(ok(out));
    EXPECT_NE(message_of(out).find("instance alpha: cannot start executor " + layout.root +
                                   "/no-such-executor: No such file or directory"),
              std::string::npos)
        << message_of(out);
    EXPECT_TRUE(executor.restart_due().has_value());
}

} // namespace
