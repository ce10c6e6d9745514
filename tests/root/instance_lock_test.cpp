// The per-instance lock is a file in LockDir that only root can open: a
// user's flock on anything in the instance changes nothing, while two
// operations on one instance still take turns.
#include "expect_error.hpp"
#include "fs_open.hpp"
#include "holder.hpp"
#include "instance_lock.hpp"
#include "operations.hpp"
#include "scratch.hpp"

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using namespace l4m_test;
namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;

// In a child only: become an unrelated local user.
bool become_nobody() {
    return ::setgroups(0, nullptr) == 0 && ::setresgid(kNobody, kNobody, kNobody) == 0 &&
           ::setresuid(kNobody, kNobody, kNobody) == 0;
}

bool flock_as_user(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    return fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0; // fd left open: held
}

class UserFlocks : public ::testing::TestWithParam<overlay::PathResolver> {
  protected:
    void SetUp() override { overlay::set_path_resolver(GetParam()); }
    void TearDown() override { overlay::set_path_resolver(overlay::PathResolver::Auto); }
};

TEST_P(UserFlocks, ChangeNothing) {
    const Layout layout = make_layout();
    const auto dir = layout.instance_dir("alpha");
    // The instance is 0755, as the old layout made it: anyone can open it.
    ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
    Holder user([&] {
        return become_nobody() && flock_as_user(dir) && flock_as_user(dir + "/instance.env") &&
               flock_as_user(dir + "/merged");
    });
    ASSERT_TRUE(user.ready()) << "the user could not open and flock the instance's files";
    // With the old lock (flock on the instance dir) this waited 10 s and
    // failed Busy.
    overlay::mount_instance(layout.config, "alpha");
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 1);
    overlay::unmount_instance(layout.config, "alpha");
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Resolvers, UserFlocks,
    ::testing::Values(overlay::PathResolver::Openat2, overlay::PathResolver::NofollowWalk),
    [](const ::testing::TestParamInfo<overlay::PathResolver>& p) {
        return std::string(p.param == overlay::PathResolver::Openat2 ? "Openat2" : "NofollowWalk");
    });

TEST(InstanceLock, TwoOperationsOnOneInstanceTakeTurns) {
    const Layout layout = make_layout();
    layout.add_instance("beta", layout.root + "/installation/base");
    // Another operation on alpha, in another process (an executor, the drop-in).
    Holder other([&] {
        try {
            static overlay::InstanceLock held(layout.config, "alpha");
            return true;
        } catch (...) {
            return false;
        }
    });
    ASSERT_TRUE(other.ready());
    EXPECT_TRUE(throws_error(
        [&] { overlay::InstanceLock(layout.config, "alpha", std::chrono::milliseconds(50)); },
        ErrorCode::Busy,
        "instance alpha: another operation on it holds the lock " + layout.lock_dir +
            "/alpha.lock"));
    // Another instance is not held up.
    overlay::mount_instance(layout.config, "beta");
    EXPECT_EQ(overlays_at(layout.merged("beta")), 1);

    // A mount of alpha waits for the other operation to end, then proceeds.
    std::exception_ptr failure;
    std::thread mounter([&] {
        try {
            overlay::mount_instance(layout.config, "alpha");
        } catch (...) {
            failure = std::current_exception();
        }
    });
    // Not a timing assertion: however slow the machine, alpha cannot be
    // mounted while the lock is held.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 0) << "mounted while another held the lock";
    other.release();
    mounter.join();
    EXPECT_FALSE(failure);
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 1);
    overlay::unmount_instance(layout.config, "alpha");
    overlay::unmount_instance(layout.config, "beta");
}

TEST(InstanceLock, LockDirIsMadeRootOnlyAndItsFilesCannotBeOpenedByUsers) {
    Layout layout = make_layout();
    // Missing components are made too, each 0700.
    layout.config.lock_dir = layout.lock_dir + "/run/left4me-overlay/locks";
    { overlay::InstanceLock lock(layout.config, "alpha"); }
    for (const auto& dir : {layout.lock_dir + "/run/left4me-overlay", layout.config.lock_dir}) {
        struct stat st {};
        ASSERT_EQ(::stat(dir.c_str(), &st), 0) << dir;
        EXPECT_EQ(st.st_mode & 07777, 0700u) << dir;
        EXPECT_EQ(st.st_uid, 0u) << dir;
    }
    const auto file = layout.config.lock_dir + "/alpha.lock";
    struct stat st {};
    ASSERT_EQ(::stat(file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    // Even with the directory opened up, the file itself is root's alone.
    ASSERT_EQ(::chmod(layout.config.lock_dir.c_str(), 0755), 0);
    Holder user([&] { return become_nobody() && ::open(file.c_str(), O_RDONLY) < 0; });
    EXPECT_TRUE(user.ready()) << "a user could open the lock file";
    overlay::mount_instance(layout.config, "alpha"); // a 0755 LockDir is accepted as it is
    overlay::unmount_instance(layout.config, "alpha");
}

TEST(InstanceLock, UnsafeLockDirsAreRefused) {
    Layout layout = make_layout();
    const auto base = layout.lock_dir;
    make_dirs(base);
    auto refused = [&](const std::string& lock_dir, const std::string& fragment) {
        layout.config.lock_dir = lock_dir;
        EXPECT_TRUE(throws_error([&] { overlay::mount_instance(layout.config, "alpha"); },
                                 ErrorCode::UnsafePath, fragment))
            << lock_dir;
        EXPECT_EQ(overlays_at(layout.merged("alpha")), 0);
    };

    make_dirs(base + "/user");
    ASSERT_EQ(::chown((base + "/user").c_str(), kNobody, kNobody), 0);
    refused(base + "/user", "LockDir: " + base + "/user is owned by uid 65534, not by root");
    refused(base + "/user/locks", base + "/user is owned by uid 65534");

    make_dirs(base + "/open");
    ASSERT_EQ(::chmod((base + "/open").c_str(), 0777), 0);
    refused(base + "/open", base + "/open is writable by group or others");
    refused(base + "/open/locks", base + "/open is writable by group or others");
    // Sticky like /tmp: others cannot move root's entries, so it may lie above.
    ASSERT_EQ(::chmod((base + "/open").c_str(), 01777), 0);
    refused(base + "/open", base + "/open is writable by group or others");
    layout.config.lock_dir = base + "/open/locks";
    overlay::mount_instance(layout.config, "alpha");
    overlay::unmount_instance(layout.config, "alpha");

    fs::create_symlink(base + "/open/locks", base + "/link");
    refused(base + "/link", base + "/link is a symlink or not a directory");
    write_file(base + "/file", "");
    refused(base + "/file", base + "/file is a symlink or not a directory");

    make_dirs(base + "/loose");
    write_file(base + "/loose/alpha.lock", "");
    ASSERT_EQ(::chmod((base + "/loose/alpha.lock").c_str(), 0644), 0);
    refused(base + "/loose", "instance alpha: lock file " + base +
                                 "/loose/alpha.lock is not a regular file owned by root");
}

} // namespace
