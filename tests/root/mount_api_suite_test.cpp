// The same suite run once per mount path (layer fds, lowerdir+ strings,
// legacy mount(2)), each forced through MountApi.
#include "expect_error.hpp"
#include "operations.hpp"
#include "scratch.hpp"

#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using overlay::MountApi;
using namespace l4m_test;

class MountApiSuite : public ::testing::TestWithParam<MountApi> {
  protected:
    void SetUp() override { layout = make_layout(GetParam()); }
    void mount(const std::string& name = "alpha") { overlay::mount_instance(layout.config, name); }
    void unmount(const std::string& name = "alpha") {
        overlay::unmount_instance(layout.config, name);
    }
    Layout layout;
};

TEST_P(MountApiSuite, TopLayerWinsAndWritesLandInUpper) {
    mount();
    const auto merged = layout.merged("alpha");
    EXPECT_EQ(overlays_at(merged), 1);
    EXPECT_EQ(read_file(merged + "/a.txt"), "mod-a\n");
    EXPECT_EQ(read_file(merged + "/b.txt"), "base-b\n");
    write_file(merged + "/new.txt", "written\n");
    EXPECT_EQ(read_file(layout.instance_dir("alpha") + "/upper/new.txt"), "written\n");
    EXPECT_FALSE(std::filesystem::exists(layout.root + "/overlays/mod/new.txt"));

    auto mounts = overlays_under(merged);
    ASSERT_EQ(mounts.size(), 1u);
    EXPECT_EQ(mounts[0].source, "left4me:alpha");
    EXPECT_NE(mounts[0].mount_options.find("nosuid"), std::string::npos);
    EXPECT_NE(mounts[0].mount_options.find("nodev"), std::string::npos);

    auto status = overlay::instance_status(layout.config, "alpha");
    EXPECT_TRUE(status.mounted);
    EXPECT_EQ(status.merged, merged);
    ASSERT_EQ(status.lowerdirs.size(), 2u);
    EXPECT_EQ(status.lowerdirs[0], layout.root + "/overlays/mod");

    unmount();
    EXPECT_EQ(overlays_at(merged), 0);
    EXPECT_FALSE(overlay::instance_status(layout.config, "alpha").mounted);
}

TEST_P(MountApiSuite, MountingAMountedInstanceIsAlreadyMountedAndDoesNotStack) {
    mount();
    EXPECT_TRUE(throws_error([&] { mount(); }, ErrorCode::AlreadyMounted, "already holds"));
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 1);
    unmount();
}

TEST_P(MountApiSuite, UnmountingAnUnmountedInstanceIsNotMounted) {
    EXPECT_TRUE(throws_error([&] { unmount(); }, ErrorCode::NotMounted, "nothing is mounted on"));
}

TEST_P(MountApiSuite, BusyUnmountIsBusyAndStaysMounted) {
    mount();
    {
        int fd = ::open((layout.merged("alpha") + "/a.txt").c_str(), O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0);
        EXPECT_TRUE(throws_error([&] { unmount(); }, ErrorCode::Busy, "in use"));
        EXPECT_EQ(overlays_at(layout.merged("alpha")), 1);
        ::close(fd);
    }
    unmount();
    EXPECT_EQ(overlays_at(layout.merged("alpha")), 0);
}

TEST_P(MountApiSuite, FiveHundredLowerdirsMount) {
    std::string lowers;
    for (int i = 0; i < 500; ++i) {
        const auto dir = layout.root + "/overlays/l" + std::to_string(i);
        make_dirs(dir);
        write_file(dir + "/f" + std::to_string(i), std::to_string(i));
        lowers += (i ? ":" : "") + dir;
    }
    layout.add_instance("many", lowers);
    mount("many");
    EXPECT_EQ(overlays_at(layout.merged("many")), 1);
    EXPECT_EQ(read_file(layout.merged("many") + "/f0"), "0");
    EXPECT_EQ(read_file(layout.merged("many") + "/f499"), "499");
    unmount("many");
}

TEST_P(MountApiSuite, FiveHundredAndOneLowerdirsAreRefused) {
    std::string lowers;
    for (int i = 0; i < 501; ++i) {
        const auto dir = layout.root + "/overlays/l" + std::to_string(i);
        make_dirs(dir);
        lowers += (i ? ":" : "") + dir;
    }
    layout.add_instance("toomany", lowers);
    EXPECT_TRUE(throws_error([&] { mount("toomany"); }, ErrorCode::BadConfig, "500"));
    EXPECT_EQ(overlays_under(layout.root).size(), 0u);
}

TEST_P(MountApiSuite, TaintAtUpperRootIsRefused) {
    const auto upper = layout.instance_dir("alpha") + "/upper";
    ASSERT_EQ(::setxattr(upper.c_str(), "user.fuseoverlayfs.opaque", "y", 1, 0), 0);
    EXPECT_TRUE(throws_error([&] { mount(); }, ErrorCode::UpperdirTainted,
                             upper + " carries xattr user.fuseoverlayfs.opaque"));
    EXPECT_EQ(overlays_under(layout.root).size(), 0u);
}

TEST_P(MountApiSuite, TaintFiveLevelsDownIsRefused) {
    const auto upper = layout.instance_dir("alpha") + "/upper";
    make_dirs(upper + "/1/2/3/4/5");
    write_file(upper + "/1/2/3/4/5/file", "x");
    const auto file = upper + "/1/2/3/4/5/file";
    ASSERT_EQ(::setxattr(file.c_str(), "user.fuseoverlayfs.origin", "z", 1, 0), 0);
    EXPECT_TRUE(throws_error([&] { mount(); }, ErrorCode::UpperdirTainted,
                             file + " carries xattr user.fuseoverlayfs.origin"));
    EXPECT_EQ(overlays_under(layout.root).size(), 0u);
}

TEST_P(MountApiSuite, WhiteoutFileIsRefused) {
    const auto upper = layout.instance_dir("alpha") + "/upper";
    make_dirs(upper + "/maps");
    write_file(upper + "/maps/.wh.c1m1.bsp", "");
    EXPECT_TRUE(throws_error([&] { mount(); }, ErrorCode::UpperdirTainted,
                             upper + "/maps/.wh.c1m1.bsp is a '.wh.' entry"));
    EXPECT_EQ(overlays_under(layout.root).size(), 0u);
}

TEST_P(MountApiSuite, OtherXattrsAndSymlinksInUpperAreFine) {
    const auto upper = layout.instance_dir("alpha") + "/upper";
    make_dirs(upper + "/d");
    write_file(upper + "/d/f", "x");
    ASSERT_EQ(::setxattr((upper + "/d/f").c_str(), "user.other", "1", 1, 0), 0);
    std::filesystem::create_symlink("/nonexistent/.wh.x", upper + "/d/link");
    mount();
    EXPECT_EQ(read_file(layout.merged("alpha") + "/d/f"), "x");
    unmount();
}

INSTANTIATE_TEST_SUITE_P(Apis, MountApiSuite,
                         ::testing::Values(MountApi::LayerFds, MountApi::LowerdirStrings,
                                           MountApi::Legacy),
                         [](const ::testing::TestParamInfo<MountApi>& p) {
                             switch (p.param) {
                             case MountApi::LayerFds:
                                 return std::string("LayerFds");
                             case MountApi::LowerdirStrings:
                                 return std::string("LowerdirStrings");
                             case MountApi::Legacy:
                                 return std::string("Legacy");
                             default:
                                 return std::string("Auto");
                             }
                         });

} // namespace
