// Every root-tier test process first moves into a private mount namespace
// with a tmpfs scratch area, so mounts made (or wrongly made) by a test can
// never reach the host, and are all gone when the process exits.
#include "mountinfo.hpp"
#include "scratch.hpp"

#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

namespace {

// A developer's non-root build still lists the tests (ctest discovers them
// at build time) and runs them as skipped; CI runs them as root.
class RequireRoot : public ::testing::Environment {
  public:
    void SetUp() override { GTEST_SKIP() << "the root tier needs root (real mounts)"; }
};

} // namespace

int main(int argc, char** argv) {
    if (::geteuid() != 0) {
        ::testing::InitGoogleTest(&argc, argv);
        ::testing::AddGlobalTestEnvironment(new RequireRoot);
        return RUN_ALL_TESTS();
    }
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        std::perror("root_tests: private mount namespace");
        return 1;
    }
    // The host's own instance overlays (a demo, a real deployment) are
    // copied into this namespace too, and the service counts every
    // "left4me:NAME" overlay wherever it is: detach them here (only here)
    // so that each test sees only what it mounts.
    for (const auto& mount : overlay::read_mountinfo(::getpid())) {
        if (mount.fs_type == "overlay" && mount.source.starts_with("left4me:")) {
            ::umount2(mount.mount_point.c_str(), MNT_DETACH);
        }
    }
    l4m_test::init_scratch();
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
