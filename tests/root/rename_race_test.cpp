// A thread swaps a lowerdir and merged for symlinks to outside directories
// (atomically, renameat2 RENAME_EXCHANGE) in a tight loop while mounts
// repeat: every mount that succeeds must be inside the layout, with the
// layout's content, and nothing outside may ever be mounted on or shown.
#include "error.hpp"
#include "fs_open.hpp"
#include "operations.hpp"
#include "scratch.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace {

using overlay::MountApi;
using namespace l4m_test;
namespace fs = std::filesystem;

using overlay::PathResolver;

class RenameRace : public ::testing::TestWithParam<std::tuple<MountApi, PathResolver>> {
  protected:
    void TearDown() override { overlay::set_path_resolver(PathResolver::Auto); }
};

TEST_P(RenameRace, NeverMountsOutsideTheLayout) {
    overlay::set_path_resolver(std::get<1>(GetParam()));
    Layout layout = make_layout(std::get<0>(GetParam()));
    const auto inst = layout.instance_dir("alpha");
    const auto lower = layout.root + "/overlays/mod";
    make_dirs(layout.outside + "/lower");
    write_file(layout.outside + "/lower/a.txt", "outside-a\n");
    make_dirs(layout.outside + "/merged");
    fs::create_symlink(layout.outside + "/lower", layout.root + "/overlays/mod-swap");
    fs::create_symlink(layout.outside + "/merged", inst + "/merged-swap");

    std::atomic<bool> stop{false};
    std::atomic<long> swaps{0};
    std::thread swapper;
    // Joined on every way out, a failed ASSERT's early return included.
    struct Joiner {
        std::atomic<bool>& stop;
        std::thread& thread;
        ~Joiner() {
            stop = true;
            if (thread.joinable()) {
                thread.join();
            }
        }
    } joiner{stop, swapper};
    swapper = std::thread([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            ::renameat2(AT_FDCWD, lower.c_str(), AT_FDCWD, (lower + "-swap").c_str(),
                        RENAME_EXCHANGE);
            // EBUSY once merged is a mount point: mount points cannot move.
            ::renameat2(AT_FDCWD, (inst + "/merged").c_str(), AT_FDCWD,
                        (inst + "/merged-swap").c_str(), RENAME_EXCHANGE);
            swaps.fetch_add(1, std::memory_order_relaxed);
        }
    });

    int mounted = 0;
    int refused = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < deadline) {
        try {
            overlay::mount_instance(layout.config, "alpha");
            ++mounted;
        } catch (const overlay::Error& e) {
            ++refused;
            ASSERT_TRUE(e.code() == overlay::ErrorCode::UnsafePath ||
                        e.code() == overlay::ErrorCode::BadConfig)
                << e.what();
        }
        // A rename already past its mount-point check when the mount lands
        // still completes (RENAME_EXCHANGE within one directory does not
        // lock the moved directory), so the mounted directory, always the
        // instance's own, can change its name once right after: unmount by
        // the name the mount table gives now, and read it again if that
        // name moved away under us.
        for (int round = 0; !overlays_under("").empty(); ++round) {
            ASSERT_LT(round, 100) << "the overlay kept moving";
            for (const auto& m : overlays_under("")) {
                ASSERT_TRUE(m.mount_point.starts_with(inst + "/"))
                    << "mounted on " << m.mount_point;
                // The top layer is the layout's mod dir, never the outside one.
                ASSERT_NE(read_file(m.mount_point + "/a.txt"), "outside-a\n");
                if (::umount2(m.mount_point.c_str(), UMOUNT_NOFOLLOW) != 0) {
                    ASSERT_EQ(errno, EINVAL) << m.mount_point << ": " << std::strerror(errno);
                }
            }
        }
        ASSERT_TRUE(overlays_under("").empty());
        EXPECT_TRUE(fs::is_empty(layout.outside + "/merged"));
    }
    stop = true;
    swapper.join();
    std::printf("rename race: %d mounts, %d refusals, %ld swap rounds\n", mounted, refused,
                swaps.load());
    EXPECT_GT(mounted, 0);
    EXPECT_GT(refused, 0);
    EXPECT_GT(swaps.load(), 1000);
}

INSTANTIATE_TEST_SUITE_P(
    ApisAndResolvers, RenameRace,
    ::testing::Combine(::testing::Values(MountApi::LayerFds, MountApi::LowerdirStrings,
                                         MountApi::Legacy),
                       ::testing::Values(PathResolver::Openat2, PathResolver::NofollowWalk)),
    [](const ::testing::TestParamInfo<std::tuple<MountApi, PathResolver>>& p) {
        const MountApi api = std::get<0>(p.param);
        return std::string(api == MountApi::LayerFds          ? "LayerFds"
                           : api == MountApi::LowerdirStrings ? "LowerdirStrings"
                                                              : "Legacy") +
               (std::get<1>(p.param) == PathResolver::Openat2 ? "_Openat2" : "_NofollowWalk");
    });

} // namespace
