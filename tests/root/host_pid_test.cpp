// HostPid names the namespace the mounts go to. A pid can be recycled by a
// process a user made with `unshare -U -m`, whose mount namespace that user
// owns and arranges: it must be refused before setns, with nothing mounted
// anywhere.
#include "expect_error.hpp"
#include "holder.hpp"
#include "host_namespace.hpp"
#include "mountinfo.hpp"
#include "scratch.hpp"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using namespace l4m_test;

// In a forked child (setns would move the test process itself): 0 when
// enter_host_mount_namespace(pid) succeeded, 1 when it threw Failed with
// `fragment` in its message, 2 otherwise.
int enter_in_child(pid_t pid, const std::string& fragment) {
    const pid_t child = ::fork();
    if (child == 0) {
        try {
            overlay::enter_host_mount_namespace(pid);
            ::_exit(0);
        } catch (const overlay::Error& e) {
            const bool expected = e.code() == ErrorCode::Failed &&
                                  std::string(e.what()).find(fragment) != std::string::npos;
            if (!expected) {
                std::fprintf(stderr, "%s\n", e.what());
            }
            ::_exit(expected ? 1 : 2);
        }
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}

// A process in a user namespace of its own, with a mount namespace that
// user namespace owns: what `unshare -U -m` makes.
bool unshare_user_and_mount() {
    return ::unshare(CLONE_NEWUSER | CLONE_NEWNS) == 0;
}

TEST(HostPid, ANamespaceOwnedByThisHostsUserNamespaceIsEntered) {
    // This test's own mount namespace, made by root (root_main.cpp).
    EXPECT_EQ(enter_in_child(::getpid(), ""), 0);
}

TEST(HostPid, AMountNamespaceOwnedByAnotherUserNamespaceIsRefused) {
    Holder foreign(unshare_user_and_mount);
    ASSERT_TRUE(foreign.ready());
    const auto pid = std::to_string(foreign.pid());
    EXPECT_EQ(enter_in_child(foreign.pid(), "HostPid " + pid + ": the mount namespace /proc/" +
                                                pid + "/ns/mnt belongs to another user namespace"),
              1);
}

TEST(HostPid, TheDropInRefusesItAndMountsNothing) {
    Holder foreign(unshare_user_and_mount);
    ASSERT_TRUE(foreign.ready());
    const Layout layout = make_layout();
    const auto config = layout.root + "/../overlay.conf";
    write_file(config, "Root=" + layout.root + "\nHostPid=" + std::to_string(foreign.pid()) +
                           "\nLockDir=" + layout.lock_dir + "\n");
    ASSERT_EQ(::chmod(config.c_str(), 0644), 0);
    std::string err;
    EXPECT_EQ(run_command({L4M_DROPIN_PATH, "--config", config, "mount", "alpha"}, &err), 1);
    EXPECT_NE(err.find("belongs to another user namespace"), std::string::npos) << err;
    EXPECT_NE(err.find("not entered"), std::string::npos) << err;
    EXPECT_TRUE(overlays_under("").empty());
    for (const auto& e : overlay::read_mountinfo(foreign.pid())) {
        EXPECT_NE(e.source, "left4me:alpha")
            << "mounted in the foreign namespace at " << e.mount_point;
    }
}

} // namespace
