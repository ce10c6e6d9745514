// Layers, upper, work and the instance dir must stay on the mount of the
// root they were opened beneath. A tmpfs stands in for a user's FUSE mount
// (FUSE does not work on this machine); a live overlay moved or bind-mounted
// under an allowed root stands in for a user renaming a live instance there.
#include "expect_error.hpp"
#include "fs_open.hpp"
#include "operations.hpp"
#include "scratch.hpp"
#include "taint_scan.hpp"
#include "unique_fd.hpp"

#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using namespace l4m_test;
namespace fs = std::filesystem;

void mount_tmpfs(const std::string& dir) {
    make_dirs(dir);
    ASSERT_EQ(::mount("tmpfs", dir.c_str(), "tmpfs", 0, "mode=0755"), 0) << dir;
}

// Not "bind": ADL would find std::bind for string arguments.
void bind_mount(const std::string& from, const std::string& to) {
    make_dirs(to);
    ASSERT_EQ(::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr), 0) << to;
}

// Run once with openat2 and once with the O_NOFOLLOW walk.
class MountBoundary : public ::testing::TestWithParam<overlay::PathResolver> {
  protected:
    void SetUp() override {
        overlay::set_path_resolver(GetParam());
        layout = make_layout();
    }
    void TearDown() override { overlay::set_path_resolver(overlay::PathResolver::Auto); }
    void mount(const std::string& name = "alpha") { overlay::mount_instance(layout.config, name); }
    void expect_refused(const std::string& name, const std::string& fragment) {
        const auto before = overlays_under("").size();
        EXPECT_TRUE(throws_error([&] { mount(name); }, ErrorCode::UnsafePath, fragment));
        EXPECT_EQ(overlays_under("").size(), before) << "an overlay was mounted";
        EXPECT_EQ(overlays_at(layout.merged(name)), 0);
    }
    Layout layout;
};

TEST_P(MountBoundary, LowerdirOnAMountUnderAnAllowedRootIsRefused) {
    const auto fuse = layout.root + "/overlays/fuse";
    mount_tmpfs(fuse);
    make_dirs(fuse + "/sub");
    write_file(fuse + "/a.txt", "from the user's mount\n");
    layout.set_env("alpha", "L4D2_LOWERDIRS=" + fuse + "\n");
    expect_refused("alpha", "instance alpha: " + fuse + " is on another mount than " + layout.root +
                                "/overlays");
    // Beneath the mount's root, too.
    layout.set_env("alpha",
                   "L4D2_LOWERDIRS=" + layout.root + "/installation/base:" + fuse + "/sub\n");
    expect_refused("alpha", fuse + "/sub is on another mount");
}

TEST_P(MountBoundary, LiveOverlayRenamedIntoAnAllowedRootIsRefusedAsALayer) {
    mount("alpha");
    // The attack: the user renames the mounted instance into
    // overlays/ (a directory holding a mount point may be renamed).
    fs::rename(layout.instance_dir("alpha"), layout.root + "/overlays/alpha");
    const auto live = layout.root + "/overlays/alpha/merged";
    ASSERT_EQ(overlays_at(live), 1);
    layout.add_instance("beta", live);
    expect_refused("beta", "instance beta: " + live + " is on another mount");
    ASSERT_EQ(::umount2(live.c_str(), UMOUNT_NOFOLLOW), 0);
}

TEST_P(MountBoundary, LiveOverlayBindMountedUnderAnAllowedRootIsRefusedAsALayer) {
    mount("alpha");
    const auto bound = layout.root + "/installation/bound";
    bind_mount(layout.merged("alpha"), bound);
    layout.add_instance("beta", bound);
    expect_refused("beta", "instance beta: " + bound + " is on another mount");
    ASSERT_EQ(::umount2(bound.c_str(), UMOUNT_NOFOLLOW), 0);
    overlay::unmount_instance(layout.config, "alpha");
}

TEST_P(MountBoundary, AllowedRootThatIsAMountPointOfItsOwnWorks) {
    // The admin keeps the installation on a separate disk mounted at the
    // allowed root itself: layers on that mount are its own.
    const auto installation = layout.root + "/installation";
    mount_tmpfs(installation);
    make_dirs(installation + "/base");
    write_file(installation + "/base/b.txt", "disk-b\n");
    mount("alpha");
    EXPECT_EQ(read_file(layout.merged("alpha") + "/a.txt"), "mod-a\n");
    EXPECT_EQ(read_file(layout.merged("alpha") + "/b.txt"), "disk-b\n");
    overlay::unmount_instance(layout.config, "alpha");
    // A mount beneath that root is still another mount.
    mount_tmpfs(installation + "/base/nested");
    layout.set_env("alpha", "L4D2_LOWERDIRS=" + installation + "/base/nested\n");
    expect_refused("alpha", installation + "/base/nested is on another mount");
}

TEST_P(MountBoundary, UpperOnAMountInsideTheInstanceDirIsRefused) {
    const auto upper = layout.instance_dir("alpha") + "/upper";
    mount_tmpfs(upper);
    expect_refused("alpha", "instance alpha: " + upper + " is on another mount than " +
                                layout.instance_dir("alpha"));
}

TEST_P(MountBoundary, WorkOnAMountInsideTheInstanceDirIsRefused) {
    const auto work = layout.instance_dir("alpha") + "/work";
    mount_tmpfs(work);
    expect_refused("alpha", "instance alpha: " + work + " is on another mount");
}

TEST_P(MountBoundary, InstanceDirThatIsAMountPointIsRefused) {
    const auto dir = layout.instance_dir("alpha");
    bind_mount(dir, dir); // the same files, but a mount of its own
    expect_refused("alpha", "instance alpha: " + dir + " is on another mount than " + layout.root +
                                "/instances");
    EXPECT_TRUE(throws_error([&] { overlay::unmount_instance(layout.config, "alpha"); },
                             ErrorCode::UnsafePath, "on another mount"));
}

TEST_P(MountBoundary, InstancesDirThatIsAMountPointOfItsOwnWorks) {
    const auto instances = layout.root + "/instances";
    mount_tmpfs(instances);
    layout.add_instance("alpha",
                        layout.root + "/overlays/mod:" + layout.root + "/installation/base");
    mount("alpha");
    EXPECT_EQ(read_file(layout.merged("alpha") + "/a.txt"), "mod-a\n");
    overlay::unmount_instance(layout.config, "alpha");
}

TEST_P(MountBoundary, AMountInsideUpperIsRefusedNotSkipped) {
    // The overlay ignores mounts inside its upper and uses what lies
    // beneath them; the taint scan cannot see beneath. Here a tainted
    // directory is hidden under a clean mount.
    const auto upper = layout.instance_dir("alpha") + "/upper";
    make_dirs(upper + "/maps");
    write_file(upper + "/maps/.wh.c1m1.bsp", "");
    mount_tmpfs(upper + "/maps");
    expect_refused("alpha", "upperdir entry " + upper + "/maps is on another mount");
    overlay::UniqueFd fd(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    EXPECT_TRUE(throws_error([&] { overlay::check_upper_untainted(fd.get(), upper, "alpha"); },
                             ErrorCode::UnsafePath, upper + "/maps is on another mount"));
}

INSTANTIATE_TEST_SUITE_P(
    Resolvers, MountBoundary,
    ::testing::Values(overlay::PathResolver::Openat2, overlay::PathResolver::NofollowWalk),
    [](const ::testing::TestParamInfo<overlay::PathResolver>& p) {
        return std::string(p.param == overlay::PathResolver::Openat2 ? "Openat2" : "NofollowWalk");
    });

} // namespace
