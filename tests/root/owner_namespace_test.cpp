// What the instance owner can do from a user and mount namespace of its
// own, made before the service mounts: rename the live merged away (the
// host's overlay moves with it) and make a new one, move an instance
// directory or a live overlay to where an allowed root belongs, remove
// merged (which detaches the host's overlay). Each test reproduces one
// with a real unprivileged namespace (owner_namespace.hpp) and checks what
// the service makes of it, with the statmount table and with the
// mountinfo fallback forced.
#include "error.hpp"
#include "mount_table.hpp"
#include "operations.hpp"
#include "owner_namespace.hpp"
#include "scratch.hpp"

#include <filesystem>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using overlay::MountTableApi;
using namespace l4m_test;
namespace fs = std::filesystem;

void chown_tree(const std::string& path) {
    ASSERT_EQ(::lchown(path.c_str(), OwnerNamespace::kOwner, OwnerNamespace::kOwner), 0) << path;
    for (const auto& e : fs::recursive_directory_iterator(path)) {
        ASSERT_EQ(::lchown(e.path().c_str(), OwnerNamespace::kOwner, OwnerNamespace::kOwner), 0);
    }
}

// The instance's overlays in this (the "host") namespace, read from
// mountinfo here, not through the code under test.
std::vector<overlay::MountEntry> overlays_of(const std::string& name) {
    std::vector<overlay::MountEntry> out;
    for (auto& e : overlays_under("")) {
        if (e.source == "left4me:" + name) {
            out.push_back(e);
        }
    }
    return out;
}

template <typename F> overlay::Error error_of(F&& f) {
    try {
        f();
    } catch (const overlay::Error& e) {
        return e;
    }
    ADD_FAILURE() << "no error";
    return overlay::Error(ErrorCode::Failed, "none");
}

class OwnerNamespaceTest : public ::testing::TestWithParam<MountTableApi> {
  protected:
    void SetUp() override {
        layout = make_layout();
        layout.config.mount_table = GetParam();
        layout.add_instance("beta", layout.root + "/overlays/mod");
        // The demo layout: the host manager owns Root and everything in it.
        chown_tree(layout.root);
    }
    void TearDown() override {
        for (int i = 0; i < 1000 && !overlays_under(layout.root).empty(); ++i) {
            const auto all = overlays_under(layout.root);
            ::umount2(all.back().mount_point.c_str(), MNT_DETACH);
        }
    }
    std::string inst(const std::string& name) const { return layout.instance_dir(name); }
    Layout layout;
};

TEST_P(OwnerNamespaceTest, RenamedMergedStaysTheInstancesOverlay) {
    OwnerNamespace owner;
    overlay::mount_instance(layout.config, "alpha");
    ASSERT_EQ(owner.rename(inst("alpha") + "/merged", inst("alpha") + "/moved"), 0);
    ASSERT_EQ(owner.mkdir(inst("alpha") + "/merged"), 0);
    // The host's overlay went with the directory.
    ASSERT_EQ(overlays_of("alpha").size(), 1U);
    EXPECT_EQ(overlays_of("alpha")[0].mount_point, inst("alpha") + "/moved");

    const auto e = error_of([&] { overlay::mount_instance(layout.config, "alpha"); });
    EXPECT_EQ(e.code(), ErrorCode::AlreadyMounted) << e.what();
    EXPECT_NE(std::string(e.what()).find("its overlay is at " + inst("alpha") + "/moved"),
              std::string::npos)
        << e.what();
    EXPECT_EQ(overlays_of("alpha").size(), 1U);

    const auto status = overlay::instance_status(layout.config, "alpha");
    EXPECT_TRUE(status.mounted);
    EXPECT_EQ(status.merged, inst("alpha") + "/moved");
    const auto list = overlay::list_instances(layout.config);
    EXPECT_EQ(list, (std::vector<std::pair<std::string, bool>>{{"alpha", true}, {"beta", false}}));

    overlay::unmount_instance(layout.config, "alpha");
    EXPECT_TRUE(overlays_of("alpha").empty());
    EXPECT_FALSE(overlay::instance_status(layout.config, "alpha").mounted);
    // And mountable again, once.
    overlay::mount_instance(layout.config, "alpha");
    EXPECT_EQ(overlays_of("alpha").size(), 1U);
}

TEST_P(OwnerNamespaceTest, HundredRenameAndMountRoundsLeaveOneOverlay) {
    OwnerNamespace owner;
    overlay::mount_instance(layout.config, "alpha");
    int refused = 0;
    for (int round = 0; round < 100; ++round) {
        ASSERT_EQ(owner.rename(inst("alpha") + "/merged",
                               inst("alpha") + "/old-" + std::to_string(round)),
                  0);
        ASSERT_EQ(owner.mkdir(inst("alpha") + "/merged"), 0);
        try {
            overlay::mount_instance(layout.config, "alpha");
        } catch (const overlay::Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::AlreadyMounted) << e.what();
            ++refused;
        }
    }
    EXPECT_EQ(refused, 100);
    ASSERT_EQ(overlays_of("alpha").size(), 1U);
    EXPECT_EQ(overlays_of("alpha")[0].mount_point, inst("alpha") + "/old-0");
    overlay::unmount_instance(layout.config, "alpha");
    EXPECT_TRUE(overlays_of("alpha").empty());
}

TEST_P(OwnerNamespaceTest, UpperOfALiveOverlayIsNotMountedTwice) {
    OwnerNamespace owner;
    overlay::mount_instance(layout.config, "alpha");
    // The whole instance directory renamed: gamma's upper and work are
    // alpha's, in use by alpha's overlay (now under gamma/).
    ASSERT_EQ(owner.rename(inst("alpha"), inst("gamma")), 0);
    ASSERT_EQ(owner.rename(inst("gamma") + "/merged", inst("gamma") + "/moved"), 0);
    ASSERT_EQ(owner.mkdir(inst("gamma") + "/merged"), 0);
    auto e = error_of([&] { overlay::mount_instance(layout.config, "gamma"); });
    EXPECT_EQ(e.code(), ErrorCode::Busy) << e.what();
    EXPECT_NE(std::string(e.what()).find("instance gamma: upper " + inst("gamma") +
                                         "/upper is in use by the live overlay of instance "
                                         "alpha at " +
                                         inst("gamma") + "/moved"),
              std::string::npos)
        << e.what();
    EXPECT_TRUE(overlays_of("gamma").empty());

    // upper/ moved into another instance: the same.
    ASSERT_EQ(owner.rename(inst("beta") + "/upper", inst("beta") + "/upper-own"), 0);
    ASSERT_EQ(owner.rename(inst("gamma") + "/upper", inst("beta") + "/upper"), 0);
    e = error_of([&] { overlay::mount_instance(layout.config, "beta"); });
    EXPECT_EQ(e.code(), ErrorCode::Busy) << e.what();
    EXPECT_TRUE(overlays_of("beta").empty());
    ASSERT_EQ(owner.rename(inst("beta") + "/upper", inst("gamma") + "/upper"), 0);
    ASSERT_EQ(owner.rename(inst("beta") + "/upper-own", inst("beta") + "/upper"), 0);

    // alpha has no directory now, but its overlay is still reachable by name.
    const auto status = overlay::instance_status(layout.config, "alpha");
    EXPECT_TRUE(status.mounted);
    EXPECT_EQ(status.merged, inst("gamma") + "/moved");
    const auto list = overlay::list_instances(layout.config);
    EXPECT_EQ(list, (std::vector<std::pair<std::string, bool>>{
                        {"alpha", true}, {"beta", false}, {"gamma", false}}));
    overlay::unmount_instance(layout.config, "alpha");
    EXPECT_TRUE(overlays_of("alpha").empty());
    EXPECT_EQ(error_of([&] { overlay::instance_status(layout.config, "alpha"); }).code(),
              ErrorCode::NoSuchInstance);
    // Free again: gamma mounts on them.
    overlay::mount_instance(layout.config, "gamma");
    EXPECT_EQ(overlays_of("gamma").size(), 1U);
}

TEST_P(OwnerNamespaceTest, LiveOverlayMovedToAnAllowedRootIsRefused) {
    OwnerNamespace owner;
    overlay::mount_instance(layout.config, "alpha");
    make_dirs(inst("alpha") + "/merged/sub"); // a copy-up into alpha's upper
    // workshop_cache does not exist yet; the owner of Root puts alpha's
    // live overlay there.
    const std::string cache = layout.root + "/workshop_cache";
    ASSERT_EQ(owner.rename(inst("alpha") + "/merged", cache), 0);
    ASSERT_EQ(owner.mkdir(inst("alpha") + "/merged"), 0);
    for (const auto& lower : {cache, cache + "/sub"}) {
        layout.set_env("beta", "L4D2_LOWERDIRS=" + lower + "\n");
        const auto e = error_of([&] { overlay::mount_instance(layout.config, "beta"); });
        EXPECT_EQ(e.code(), ErrorCode::UnsafePath) << e.what();
        EXPECT_NE(std::string(e.what()).find("allowed root " + cache +
                                             " lies on the live overlay of instance alpha (now "
                                             "at " +
                                             cache + ")"),
                  std::string::npos)
            << e.what();
    }
    EXPECT_TRUE(overlays_of("beta").empty());
}

TEST_P(OwnerNamespaceTest, InstancesDirOnAMovedOverlayIsRefused) {
    OwnerNamespace owner;
    overlay::mount_instance(layout.config, "alpha");
    make_dirs(inst("alpha") + "/merged/elsewhere");
    auto config = layout.config;
    config.instances_dir = layout.root + "/instances2/elsewhere";
    ASSERT_EQ(owner.rename(inst("alpha") + "/merged", layout.root + "/instances2"), 0);
    const auto e = error_of([&] { overlay::list_instances(config); });
    EXPECT_EQ(e.code(), ErrorCode::UnsafePath) << e.what();
    EXPECT_NE(std::string(e.what()).find("lies on the live overlay of instance alpha"),
              std::string::npos)
        << e.what();
}

TEST_P(OwnerNamespaceTest, RemovalElsewhereDetachesAndStatusSaysSo) {
    OwnerNamespace owner;
    overlay::mount_instance(layout.config, "alpha");
    // Busy: a file open inside the overlay.
    const int busy = ::open((inst("alpha") + "/merged/a.txt").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(busy, 0);
    EXPECT_EQ(error_of([&] { overlay::unmount_instance(layout.config, "alpha"); }).code(),
              ErrorCode::Busy);
    // In the owner's namespace merged is an empty directory: it can go,
    // and the kernel detaches the host's overlay with it, busy or not.
    ASSERT_EQ(owner.rmdir(inst("alpha") + "/merged"), 0);
    ::close(busy);
    EXPECT_TRUE(overlays_of("alpha").empty());
    ASSERT_EQ(owner.mkdir(inst("alpha") + "/merged"), 0);
    EXPECT_FALSE(overlay::instance_status(layout.config, "alpha").mounted);
    EXPECT_EQ(error_of([&] { overlay::unmount_instance(layout.config, "alpha"); }).code(),
              ErrorCode::NotMounted);
    // Its claim on upper and work is stale, not in the way.
    overlay::mount_instance(layout.config, "alpha");
    EXPECT_EQ(overlays_of("alpha").size(), 1U);
}

TEST_P(OwnerNamespaceTest, BindOfTheOverlayIsTheSameOverlay) {
    overlay::mount_instance(layout.config, "alpha");
    // An admin exposes merged elsewhere.
    const std::string bind = layout.outside + "/alpha-view";
    make_dirs(bind);
    ASSERT_EQ(::mount(layout.merged("alpha").c_str(), bind.c_str(), nullptr, MS_BIND, nullptr), 0);
    auto status = overlay::instance_status(layout.config, "alpha");
    EXPECT_TRUE(status.mounted);
    EXPECT_EQ(status.merged, layout.merged("alpha"));
    EXPECT_EQ(error_of([&] { overlay::mount_instance(layout.config, "alpha"); }).code(),
              ErrorCode::AlreadyMounted);
    const auto e = error_of([&] { overlay::unmount_instance(layout.config, "alpha"); });
    EXPECT_EQ(e.code(), ErrorCode::Busy) << e.what();
    EXPECT_NE(std::string(e.what()).find(bind), std::string::npos) << e.what();
    EXPECT_EQ(overlays_of("alpha").size(), 2U); // nothing unmounted
    ASSERT_EQ(::umount2(bind.c_str(), 0), 0);
    overlay::unmount_instance(layout.config, "alpha");
    EXPECT_TRUE(overlays_of("alpha").empty());
}

// The daemon's executors and the sudo drop-in may read the table in
// different ways (a unit's seccomp filter older than statmount sends the
// daemon's to mountinfo while the drop-in has statmount), so the records
// one writes in LockDir are read by the other: GetParam() is the table of
// the first, the other table the second's. Mount, Unmount and the check
// of a live overlay's upper must work across the two.
TEST_P(OwnerNamespaceTest, RecordsOfTheOtherTableAreReadByTheirOverlay) {
    OwnerNamespace owner; // made before the mounts, as the tests above
    overlay::Config other = layout.config;
    other.mount_table = GetParam() == MountTableApi::Statmount ? MountTableApi::Mountinfo
                                                              : MountTableApi::Statmount;
    // Stale records of the first kind: the second mounts past them.
    overlay::mount_instance(layout.config, "alpha");
    overlay::unmount_instance(layout.config, "alpha");
    overlay::mount_instance(other, "alpha");
    EXPECT_EQ(overlays_of("alpha").size(), 1U);
    // Live records of the second kind: the first sees the overlay.
    EXPECT_EQ(error_of([&] { overlay::mount_instance(layout.config, "alpha"); }).code(),
              ErrorCode::AlreadyMounted);
    EXPECT_TRUE(overlay::instance_status(layout.config, "alpha").mounted);

    // alpha's upper, in use by the overlay the second made, under gamma/.
    ASSERT_EQ(owner.rename(inst("alpha"), inst("gamma")), 0);
    ASSERT_EQ(owner.rename(inst("gamma") + "/merged", inst("gamma") + "/moved"), 0);
    ASSERT_EQ(owner.mkdir(inst("gamma") + "/merged"), 0);
    const auto e = error_of([&] { overlay::mount_instance(layout.config, "gamma"); });
    EXPECT_EQ(e.code(), ErrorCode::Busy) << e.what();
    EXPECT_NE(std::string(e.what()).find("is in use by the live overlay of instance alpha at " +
                                         inst("gamma") + "/moved"),
              std::string::npos)
        << e.what();
    EXPECT_TRUE(overlays_of("gamma").empty());

    overlay::unmount_instance(layout.config, "alpha");
    EXPECT_TRUE(overlays_of("alpha").empty());
    // The second's records are stale now for the first too.
    overlay::mount_instance(layout.config, "gamma");
    EXPECT_EQ(overlays_of("gamma").size(), 1U);
}

INSTANTIATE_TEST_SUITE_P(Tables, OwnerNamespaceTest,
                         ::testing::Values(MountTableApi::Statmount, MountTableApi::Mountinfo),
                         [](const ::testing::TestParamInfo<MountTableApi>& param) {
                             return param.param == MountTableApi::Statmount ? "statmount"
                                                                          : "mountinfo";
                         });

} // namespace
