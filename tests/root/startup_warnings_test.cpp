// What the daemon logs at start: HostPid other than 1, and an InstancesDir
// on a filesystem mounted without nosuid or nodev (copy-up writes setuid
// files and device nodes into upper/ there).
#include "scratch.hpp"
#include "startup_warnings.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace l4m_test;

std::string joined(const std::vector<std::string>& warnings) {
    std::string out;
    for (const auto& w : warnings) {
        out += w + "\n";
    }
    return out;
}

class StartupWarnings : public ::testing::Test {
  protected:
    void SetUp() override {
        layout = make_layout();
        layout.config.host_pid = 1;
        instances = layout.root + "/instances";
    }
    void remount_instances(unsigned long flags) {
        ASSERT_EQ(::mount("tmpfs", instances.c_str(), "tmpfs", flags, "mode=0755"), 0);
    }
    Layout layout;
    std::string instances;
};

TEST_F(StartupWarnings, NoneForHostPidOneAndANosuidNodevInstancesDir) {
    remount_instances(MS_NOSUID | MS_NODEV);
    EXPECT_EQ(joined(overlay::startup_warnings(layout.config)), "");
}

TEST_F(StartupWarnings, HostPidOtherThanOne) {
    remount_instances(MS_NOSUID | MS_NODEV);
    layout.config.host_pid = 4242;
    const auto warnings = overlay::startup_warnings(layout.config);
    ASSERT_EQ(warnings.size(), 1u) << joined(warnings);
    EXPECT_TRUE(warnings[0].starts_with("HostPid is 4242, not 1: ")) << warnings[0];
}

TEST_F(StartupWarnings, InstancesDirWithoutNosuidAndNodev) {
    // The scratch tmpfs the layout lies on is mounted with neither.
    const auto warnings = overlay::startup_warnings(layout.config);
    ASSERT_EQ(warnings.size(), 1u) << joined(warnings);
    EXPECT_TRUE(warnings[0].starts_with("InstancesDir " + instances + " is on the mount at " +
                                        scratch() + " (tmpfs), mounted without nosuid,nodev: "))
        << warnings[0];
    EXPECT_NE(warnings[0].find("copy-up"), std::string::npos) << warnings[0];
}

TEST_F(StartupWarnings, InstancesDirWithOnlyOneOfThem) {
    remount_instances(MS_NOSUID);
    auto warnings = overlay::startup_warnings(layout.config);
    ASSERT_EQ(warnings.size(), 1u) << joined(warnings);
    EXPECT_NE(warnings[0].find("(tmpfs), mounted without nodev: "), std::string::npos)
        << warnings[0];
    ASSERT_EQ(::umount2(instances.c_str(), 0), 0);
    remount_instances(MS_NODEV);
    warnings = overlay::startup_warnings(layout.config);
    ASSERT_EQ(warnings.size(), 1u) << joined(warnings);
    EXPECT_NE(warnings[0].find("mounted without nosuid: "), std::string::npos) << warnings[0];
}

TEST_F(StartupWarnings, AMissingInstancesDirIsAWarningNotAnError) {
    std::filesystem::remove_all(instances);
    layout.config.host_pid = 7;
    const auto warnings = overlay::startup_warnings(layout.config);
    ASSERT_EQ(warnings.size(), 2u) << joined(warnings);
    EXPECT_TRUE(warnings[1].starts_with("cannot check the mount of InstancesDir: ")) << warnings[1];
}

} // namespace

namespace {

// Root, InstancesDir and the allowed roots writable by a user: each named,
// with who may write it and what that user can then do.
TEST(StartupWarningsWritable, EachWritableRootIsNamedWithItsWriter) {
    Layout layout = make_layout();
    layout.config.host_pid = 1;
    const std::string instances = layout.root + "/instances";
    ASSERT_EQ(::mount("tmpfs", instances.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"), 0);
    ASSERT_EQ(joined(overlay::startup_warnings(layout.config)), "");
    ASSERT_EQ(::chown(layout.root.c_str(), 4321, 4321), 0);
    ASSERT_EQ(::chown(instances.c_str(), 4321, 0), 0);
    ASSERT_EQ(::chmod((layout.root + "/overlays").c_str(), 01777), 0);
    const auto warnings = overlay::startup_warnings(layout.config);
    ASSERT_EQ(warnings.size(), 3u) << joined(warnings);
    EXPECT_TRUE(warnings[0].starts_with("Root " + layout.root +
                                        " is writable by uid 4321 (its owner): from a user and "
                                        "mount namespace of its own (unshare -Urm)"))
        << warnings[0];
    EXPECT_NE(warnings[0].find("a live instance overlay included"), std::string::npos);
    EXPECT_TRUE(warnings[1].starts_with("InstancesDir " + instances +
                                        " is writable by uid 4321 (its owner): "))
        << warnings[1];
    EXPECT_TRUE(warnings[2].starts_with("allowed lower root " + layout.root +
                                        "/overlays is writable by everyone (sticky): that user "
                                        "chooses what every instance's lower layers"))
        << warnings[2];
}

} // namespace
