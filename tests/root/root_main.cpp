// Every root-tier test process first moves into a private mount namespace
// with a tmpfs scratch area, so mounts made (or wrongly made) by a test can
// never reach the host, and are all gone when the process exits.
#include "scratch.hpp"

#include <cstdio>
#include <cstdlib>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

int main(int argc, char** argv) {
    if (::geteuid() != 0) {
        std::fprintf(stderr, "root_tests must run as root (real mounts)\n");
        return 1;
    }
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        std::perror("root_tests: private mount namespace");
        return 1;
    }
    l4m_test::init_scratch();
    ::testing::InitGoogleTest(&argc, argv);
    return RUN_ALL_TESTS();
}
