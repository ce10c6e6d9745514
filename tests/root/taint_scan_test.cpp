// check_upper_untainted on its own: the cases its faster walk (measured in
// bench/) must keep right. It lists file xattrs by name from a working
// directory it moves through the tree, with a small first buffer.
#include "expect_error.hpp"
#include "scratch.hpp"
#include "taint_scan.hpp"
#include "unique_fd.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <string>
#include <sys/xattr.h>
#include <unistd.h>

namespace {

using overlay::ErrorCode;
using overlay::UniqueFd;
using namespace l4m_test;

class TaintScan : public ::testing::Test {
  protected:
    void SetUp() override {
        upper =
            scratch() + "/taint-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        make_dirs(upper);
    }
    UniqueFd open_upper() const {
        return UniqueFd(::open(upper.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    }
    void scan(int fd) const { overlay::check_upper_untainted(fd, upper, "t"); }
    static std::string cwd() { return std::filesystem::current_path().string(); }
    std::string upper;
};

TEST_F(TaintScan, WorkingDirectoryIsRestoredAfterACleanAndATaintedScan) {
    make_dirs(upper + "/a/b");
    write_file(upper + "/a/b/f", "x");
    const std::string before = cwd();
    scan(open_upper().get());
    EXPECT_EQ(cwd(), before);
    ASSERT_EQ(::setxattr((upper + "/a/b/f").c_str(), "user.fuseoverlayfs.origin", "z", 1, 0), 0);
    EXPECT_TRUE(throws_error([&] { scan(open_upper().get()); }, ErrorCode::UpperdirTainted,
                             upper + "/a/b/f carries xattr user.fuseoverlayfs.origin"));
    EXPECT_EQ(cwd(), before);
}

TEST_F(TaintScan, ADescriptorAlreadyReadToItsEndIsStillScannedInFull) {
    write_file(upper + "/.wh.gone", "");
    UniqueFd fd = open_upper();
    // Read the directory to its end through the caller's descriptor.
    DIR* dir = ::fdopendir(::dup(fd.get()));
    ASSERT_NE(dir, nullptr);
    while (::readdir(dir) != nullptr) {
    }
    ::closedir(dir);
    EXPECT_TRUE(throws_error([&] { scan(fd.get()); }, ErrorCode::UpperdirTainted,
                             upper + "/.wh.gone is a '.wh.' entry"));
}

TEST_F(TaintScan, AnXattrListLongerThanTheFirstBufferIsReadInFull) {
    const std::string file = upper + "/many";
    write_file(file, "x");
    // About 4 KiB of names before the offending one: past the first try.
    for (int i = 0; i < 100; ++i) {
        const std::string name = "user.padding-padding-padding-" + std::to_string(i);
        ASSERT_EQ(::setxattr(file.c_str(), name.c_str(), "1", 1, 0), 0);
    }
    ASSERT_EQ(::setxattr(file.c_str(), "user.fuseoverlayfs.whiteout", "", 0, 0), 0);
    EXPECT_TRUE(throws_error([&] { scan(open_upper().get()); }, ErrorCode::UpperdirTainted,
                             file + " carries xattr user.fuseoverlayfs.whiteout"));
}

TEST_F(TaintScan, TaintAfterADeepSubtreeIsFoundInTheRightDirectory) {
    // The walk leaves d1/x/y/z and comes back to the top for d2: files there
    // must be looked up in d2, not in a directory left earlier.
    make_dirs(upper + "/d1/x/y/z");
    write_file(upper + "/d1/x/y/z/f", "x");
    make_dirs(upper + "/d2");
    write_file(upper + "/d2/f", "x");
    ASSERT_EQ(::setxattr((upper + "/d2/f").c_str(), "user.fuseoverlayfs.opaque", "y", 1, 0), 0);
    EXPECT_TRUE(throws_error([&] { scan(open_upper().get()); }, ErrorCode::UpperdirTainted,
                             upper + "/d2/f carries xattr user.fuseoverlayfs.opaque"));
}

TEST_F(TaintScan, FifosSocketsAndSymlinksAreNotOpenedAndPass) {
    ASSERT_EQ(::mkfifo((upper + "/fifo").c_str(), 0600), 0);
    std::filesystem::create_symlink("/nonexistent", upper + "/link");
    write_file(upper + "/f", "x");
    ASSERT_EQ(::setxattr((upper + "/f").c_str(), "user.other", "1", 1, 0), 0);
    scan(open_upper().get()); // a blocking open of the FIFO would hang here
}

} // namespace
