// The daemon's side of the helper contract, against stand-in helpers
// (shell scripts): every way a helper can end maps to one outcome.
#include "helper_runner.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <string>
#include <sys/stat.h>

namespace {

using overlay::ErrorCode;
using overlay::daemon::HelperRunner;
namespace fs = std::filesystem;

class HelperRunnerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/l4m-helper-runner-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
    }
    void TearDown() override { fs::remove_all(dir); }

    std::string helper(const std::string& body) {
        const auto path = dir + "/helper" + std::to_string(++count);
        std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
        ::chmod(path.c_str(), 0755);
        return path;
    }

    std::string dir;
    int count = 0;
};

TEST_F(HelperRunnerTest, OkRecordAndExitZeroIsSuccess) {
    HelperRunner runner(helper("printf 'ok\\nmounted 1\\nmerged /m\\nlower /a\\n' >&3"), "/c");
    auto out = runner.run("status", "alpha");
    ASSERT_TRUE(out.ok) << out.message;
    EXPECT_TRUE(out.result.mounted);
    EXPECT_EQ(out.result.merged, "/m");
    EXPECT_EQ(out.result.lowerdirs, std::vector<std::string>{"/a"});
}

TEST_F(HelperRunnerTest, PassesConfigResultFdVerbAndName) {
    HelperRunner runner(helper("printf 'error Failed %s\\n' \"$*\" >&3; exit 1"), "/etc/x.conf");
    auto out = runner.run("mount", "alpha");
    ASSERT_FALSE(out.ok);
    EXPECT_EQ(out.message, "--config /etc/x.conf --result-fd 3 mount alpha");
}

TEST_F(HelperRunnerTest, ErrorRecordAndExitOneKeepsNameAndMessage) {
    HelperRunner runner(helper("printf 'error Busy instance alpha: in use\\n' >&3; exit 1"), "/c");
    auto out = runner.run("umount", "alpha");
    ASSERT_FALSE(out.ok);
    EXPECT_EQ(out.error, ErrorCode::Busy);
    EXPECT_EQ(out.message, "instance alpha: in use");
}

TEST_F(HelperRunnerTest, NoRecordIsFailedSayingHowItEnded) {
    HelperRunner runner(helper("exit 0"), "/c");
    auto out = runner.run("mount", "alpha");
    ASSERT_FALSE(out.ok);
    EXPECT_EQ(out.error, ErrorCode::Failed);
    EXPECT_EQ(out.message, "instance alpha: helper exited with status 0 without a result record");
}

TEST_F(HelperRunnerTest, KilledHelperIsFailedNamingTheSignal) {
    HelperRunner runner(helper("printf 'ok\\n' >&3; kill -9 $$"), "/c");
    auto out = runner.run("mount", "alpha");
    ASSERT_FALSE(out.ok);
    EXPECT_EQ(out.message,
              "instance alpha: helper was killed by signal SIGKILL with an inconsistent result "
              "record");
}

TEST_F(HelperRunnerTest, OkRecordWithFailingExitIsNotTrusted) {
    HelperRunner runner(helper("printf 'ok\\n' >&3; exit 1"), "/c");
    auto out = runner.run("mount", "alpha");
    EXPECT_FALSE(out.ok);
    EXPECT_EQ(out.error, ErrorCode::Failed);
}

TEST_F(HelperRunnerTest, HungHelperIsKilledAfterTheTimeout) {
    HelperRunner runner(helper("exec sleep 30"), "/c", std::chrono::milliseconds(300));
    const auto start = std::chrono::steady_clock::now();
    auto out = runner.run("mount", "alpha");
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(out.ok);
    EXPECT_EQ(out.message, "instance alpha: helper did not finish within 300 ms and was killed");
    EXPECT_LT(took, std::chrono::seconds(5));
}

TEST_F(HelperRunnerTest, MissingHelperIsFailedNamingThePath) {
    HelperRunner runner(dir + "/nonexistent", "/c");
    auto out = runner.run("list", "");
    ASSERT_FALSE(out.ok);
    EXPECT_EQ(out.message,
              "list: cannot start helper " + dir + "/nonexistent: No such file or directory");
}

} // namespace
