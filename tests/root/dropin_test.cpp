// The drop-in command as the old sudo callers use it, run in a mount
// namespace of its own: the mount must land in the namespace HostPid names
// (this test's), not in the command's.
#include "error.hpp"
#include "overlay_mount.hpp"
#include "scratch.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace l4m_test;

class DropIn : public ::testing::Test {
  protected:
    void SetUp() override {
        layout = make_layout();
        config_path = layout.root + "/../overlay.conf";
        write_file(config_path, "Root=" + layout.root + "\nHostPid=" + std::to_string(::getpid()) +
                                    "\nLockDir=" + layout.lock_dir + "\n");
        ::chmod(config_path.c_str(), 0644);
    }
    int dropin(const std::vector<std::string>& args, std::string* err = nullptr) {
        std::vector<std::string> argv{"unshare",       "--mount",  "--propagation", "private",
                                      L4M_DROPIN_PATH, "--config", config_path};
        argv.insert(argv.end(), args.begin(), args.end());
        return run_command(argv, err);
    }
    Layout layout;
    std::string config_path;
};

TEST_F(DropIn, MountLandsInTheHostNamespaceAndUmountRemovesIt) {
    std::string err;
    ASSERT_EQ(dropin({"mount", "alpha"}, &err), 0) << err;
    EXPECT_TRUE(err.empty()) << err;
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 1);
    EXPECT_EQ(read_file(layout.merged("alpha") + "/a.txt"), "mod-a\n");
    ASSERT_EQ(dropin({"umount", "alpha"}, &err), 0) << err;
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 0);
}

TEST_F(DropIn, RefusalsExitOneWithOneLineNamingInstanceAndReason) {
    std::string err;
    EXPECT_EQ(dropin({"umount", "alpha"}, &err), 1);
    EXPECT_EQ(err, "left4me-overlay: instance alpha: nothing is mounted on " +
                       layout.merged("alpha") + "\n");
    EXPECT_EQ(dropin({"mount", "ghost"}, &err), 1);
    EXPECT_NE(err.find("instance ghost: no directory"), std::string::npos) << err;
    EXPECT_EQ(dropin({"mount", "../alpha"}, &err), 1);
    EXPECT_NE(err.find("invalid instance name"), std::string::npos) << err;
    EXPECT_TRUE(overlays_under("").empty());
}

TEST_F(DropIn, BadUsageExitsTwo) {
    std::string err;
    EXPECT_EQ(dropin({"mount"}, &err), 2);
    EXPECT_NE(err.find("mount takes exactly one instance name"), std::string::npos) << err;
    EXPECT_EQ(dropin({"frobnicate", "alpha"}, &err), 2);
    EXPECT_EQ(dropin({"--bogus", "mount", "alpha"}, &err), 2);
}

TEST_F(DropIn, ConfigNotOwnedByRootIsRefused) {
    // Under sudo, a caller-chosen config would choose what gets mounted.
    ASSERT_EQ(::chown(config_path.c_str(), 65534, 65534), 0);
    std::string err;
    EXPECT_EQ(dropin({"mount", "alpha"}, &err), 1);
    EXPECT_NE(err.find("owned by"), std::string::npos) << err;
    EXPECT_TRUE(overlays_under("").empty());
}

TEST_F(DropIn, StatusAndListPrintMountedState) {
    std::string err;
    ASSERT_EQ(dropin({"mount", "alpha"}, &err), 0) << err;
    ASSERT_EQ(run_command({"sh", "-c",
                           std::string("unshare -m ") + L4M_DROPIN_PATH + " --config " +
                               config_path + " status alpha | grep -qx 'mounted: yes'"}),
              0);
    ASSERT_EQ(run_command({"sh", "-c",
                           std::string(L4M_DROPIN_PATH) + " --config " + config_path +
                               " list | grep -qx 'alpha mounted'"}),
              0);
    ASSERT_EQ(dropin({"umount", "alpha"}, &err), 0) << err;
}

TEST(LegacyMountData, RefusesWhatDoesNotFitOnePage) {
    std::vector<int> small(500, 999);
    EXPECT_LT(overlay::legacy_mount_data(small, 3, 4, "alpha").size(), 4096u);
    std::vector<int> big(500, 1000000000);
    try {
        overlay::legacy_mount_data(big, 3, 4, "alpha");
        FAIL() << "500 ten-digit descriptors cannot fit one page";
    } catch (const overlay::Error& e) {
        EXPECT_EQ(e.code(), overlay::ErrorCode::Failed);
        EXPECT_NE(std::string(e.what()).find("500 lowerdirs do not fit the one page"),
                  std::string::npos)
            << e.what();
    }
}

} // namespace
