// Paths under Root belong to the unprivileged user. Each attack here must
// end in a specific error with nothing mounted anywhere and nothing outside
// the layout opened (watched with inotify).
#include "expect_error.hpp"
#include "fs_open.hpp"
#include "operations.hpp"
#include "scratch.hpp"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <sys/inotify.h>
#include <thread>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using namespace l4m_test;
namespace fs = std::filesystem;

// Records any open or read of the outside directory or the files in it.
class OutsideWatch {
  public:
    explicit OutsideWatch(const std::string& dir) : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
        ::inotify_add_watch(fd_, dir.c_str(), IN_OPEN | IN_ACCESS);
    }
    ~OutsideWatch() { ::close(fd_); }
    bool touched() const {
        char buf[4096];
        return ::read(fd_, buf, sizeof buf) > 0;
    }

  private:
    int fd_;
};

// Run once with openat2 and once with the O_NOFOLLOW walk used where a
// sandbox answers ENOSYS for openat2.
class SymlinkAttack : public ::testing::TestWithParam<overlay::PathResolver> {
  protected:
    void TearDown() override { overlay::set_path_resolver(overlay::PathResolver::Auto); }
    void SetUp() override {
        overlay::set_path_resolver(GetParam());
        layout = make_layout();
        // A complete, valid-looking layout outside, for symlinks to lead to.
        for (const char* sub : {"/upper", "/work", "/merged", "/lower"}) {
            make_dirs(layout.outside + sub);
        }
        write_file(layout.outside + "/instance.env",
                   "L4D2_LOWERDIRS=" + layout.root + "/installation/base\n");
    }
    void expect_refused(ErrorCode code, const std::string& fragment) {
        OutsideWatch watch(layout.outside);
        EXPECT_TRUE(
            throws_error([&] { overlay::mount_instance(layout.config, "alpha"); }, code, fragment));
        EXPECT_TRUE(overlays_under("").empty()) << "an overlay was mounted somewhere";
        EXPECT_FALSE(watch.touched()) << "something outside the layout was opened";
    }
    void replace_with_symlink(const std::string& path, const std::string& target) {
        fs::remove_all(path);
        fs::create_symlink(target, path);
    }
    Layout layout;
};

TEST_P(SymlinkAttack, LowerdirOutsideEveryAllowedRoot) {
    layout.set_env("alpha", "L4D2_LOWERDIRS=" + layout.outside + "\n");
    expect_refused(ErrorCode::LowerdirNotAllowed, layout.outside + " is not beneath any");
}

TEST_P(SymlinkAttack, LowerdirWithDotDot) {
    layout.set_env("alpha", "L4D2_LOWERDIRS=" + layout.root + "/installation/../../outside\n");
    expect_refused(ErrorCode::BadConfig, "instance.env:1");
}

TEST_P(SymlinkAttack, LowerdirThatIsASymlink) {
    fs::create_symlink(layout.outside, layout.root + "/installation/link");
    layout.set_env("alpha", "L4D2_LOWERDIRS=" + layout.root + "/installation/link\n");
    expect_refused(ErrorCode::UnsafePath, "installation/link is or passes through a symlink");
}

TEST_P(SymlinkAttack, LowerdirWithASymlinkedComponentPointingOutside) {
    fs::create_symlink(layout.outside, layout.root + "/overlays/dir");
    layout.set_env("alpha", "L4D2_LOWERDIRS=" + layout.root + "/overlays/dir/lower\n");
    expect_refused(ErrorCode::UnsafePath, "overlays/dir/lower is or passes through a symlink");
}

TEST_P(SymlinkAttack, AllowedRootItselfASymlink) {
    fs::remove_all(layout.root + "/installation");
    fs::create_symlink(layout.outside, layout.root + "/installation");
    layout.set_env("alpha", "L4D2_LOWERDIRS=" + layout.root + "/installation/lower\n");
    expect_refused(ErrorCode::UnsafePath, "installation is or passes through a symlink");
}

TEST_P(SymlinkAttack, InstanceDirReplacedBySymlink) {
    replace_with_symlink(layout.instance_dir("alpha"), layout.outside);
    expect_refused(ErrorCode::UnsafePath, "instances/alpha is or passes through a symlink");
}

TEST_P(SymlinkAttack, InstanceEnvReplacedBySymlink) {
    replace_with_symlink(layout.instance_dir("alpha") + "/instance.env",
                         layout.outside + "/instance.env");
    expect_refused(ErrorCode::UnsafePath, "instance.env is a symlink");
}

TEST_P(SymlinkAttack, InstanceEnvIsAFifo) {
    const auto env = layout.instance_dir("alpha") + "/instance.env";
    fs::remove(env);
    ASSERT_EQ(::mkfifo(env.c_str(), 0644), 0);
    expect_refused(ErrorCode::UnsafePath, "instance.env is not a regular file");
}

TEST_P(SymlinkAttack, HugeInstanceEnvIsRefusedNotCut) {
    // Valid as far as 64 KiB go: a reader that cut the file would accept it.
    std::string env = "L4D2_LOWERDIRS=" + layout.root + "/installation/base\n";
    env += std::string(64 * 1024 - env.size(), '#');
    layout.set_env("alpha", env + "\n");
    expect_refused(ErrorCode::BadConfig, "instance.env: larger than 65536 bytes");
}

TEST_P(SymlinkAttack, UpperReplacedBySymlink) {
    replace_with_symlink(layout.instance_dir("alpha") + "/upper", layout.outside + "/upper");
    expect_refused(ErrorCode::UnsafePath, "alpha/upper is or passes through a symlink");
}

TEST_P(SymlinkAttack, WorkReplacedBySymlink) {
    replace_with_symlink(layout.instance_dir("alpha") + "/work", layout.outside + "/work");
    expect_refused(ErrorCode::UnsafePath, "alpha/work is or passes through a symlink");
}

TEST_P(SymlinkAttack, MergedReplacedBySymlink) {
    replace_with_symlink(layout.instance_dir("alpha") + "/merged", layout.outside + "/merged");
    expect_refused(ErrorCode::UnsafePath, "alpha/merged is or passes through a symlink");
}

TEST_P(SymlinkAttack, MergedIsAFile) {
    fs::remove_all(layout.instance_dir("alpha") + "/merged");
    write_file(layout.instance_dir("alpha") + "/merged", "");
    expect_refused(ErrorCode::UnsafePath, "alpha/merged is not a directory");
}

TEST_P(SymlinkAttack, UnmountThroughASymlinkedInstanceTouchesNothing) {
    // An overlay mounted outside by someone else must not be unmountable
    // by pointing an instance at it.
    overlay::mount_instance(layout.config, "alpha");
    const auto mounted = layout.merged("alpha");
    fs::rename(layout.instance_dir("alpha"), layout.root + "/instances/real");
    fs::create_symlink(layout.root + "/instances/real", layout.instance_dir("alpha"));
    layout.add_instance("beta", layout.root + "/installation/base");
    fs::remove_all(layout.instance_dir("beta") + "/merged");
    fs::create_symlink(layout.root + "/instances/real/merged",
                       layout.instance_dir("beta") + "/merged");
    EXPECT_TRUE(throws_error([&] { overlay::unmount_instance(layout.config, "alpha"); },
                             ErrorCode::UnsafePath, "symlink"));
    EXPECT_TRUE(throws_error([&] { overlay::unmount_instance(layout.config, "beta"); },
                             ErrorCode::UnsafePath, "symlink"));
    EXPECT_EQ(overlays_at(layout.root + "/instances/real/merged"), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Resolvers, SymlinkAttack,
    ::testing::Values(overlay::PathResolver::Openat2, overlay::PathResolver::NofollowWalk),
    [](const ::testing::TestParamInfo<overlay::PathResolver>& p) {
        return std::string(p.param == overlay::PathResolver::Openat2 ? "Openat2" : "NofollowWalk");
    });

} // namespace
