// The drop-in's command line: the old sudo helper's words, the daemon's
// --serve, and refusals that name what was wrong (exit 2 in main()).
#include "command_line.hpp"

#include <gtest/gtest.h>
#include <stdexcept>
#include <string>
#include <vector>

namespace overlay::cmd {
namespace {

std::string usage_error(const std::vector<std::string>& args) {
    try {
        parse_command_line(args);
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    ADD_FAILURE() << "accepted";
    return {};
}

TEST(DropInCommandLine, TheOldHelpersWordsAndTheirAliases) {
    EXPECT_EQ(parse_command_line({"mount", "alpha"}).verb, Verb::Mount);
    EXPECT_EQ(parse_command_line({"umount", "alpha"}).verb, Verb::Unmount);
    EXPECT_EQ(parse_command_line({"unmount", "alpha"}).verb, Verb::Unmount);
    EXPECT_EQ(parse_command_line({"status", "alpha"}).verb, Verb::Status);
    EXPECT_EQ(parse_command_line({"list"}).verb, Verb::List);
    const auto m = parse_command_line({"--config", "/etc/x.conf", "migrate", "beta", "--dry-run"});
    EXPECT_EQ(m.verb, Verb::Migrate);
    EXPECT_EQ(m.name, "beta");
    EXPECT_EQ(m.config_path, "/etc/x.conf");
    EXPECT_TRUE(m.dry_run);
    EXPECT_EQ(parse_command_line({"mount", "a"}).config_path, "/etc/left4me/overlay.conf");
    EXPECT_EQ(parse_command_line({"--config=/c", "list"}).config_path, "/c");
}

TEST(DropInCommandLine, ServeTakesADescriptorAndNoVerb) {
    const auto s = parse_command_line({"--config", "/c", "--serve", "3", "--watch"});
    EXPECT_EQ(s.serve_fd, 3);
    EXPECT_TRUE(s.watch);
    EXPECT_NE(usage_error({"--serve", "2"}).find("at least 3"), std::string::npos);
    EXPECT_NE(usage_error({"--serve", "x3"}).find("at least 3"), std::string::npos);
    EXPECT_NE(usage_error({"--serve", "3", "mount", "a"}).find("--serve takes no verb"),
              std::string::npos);
    EXPECT_NE(usage_error({"--watch", "list"}).find("--watch needs --serve"), std::string::npos);
}

// --migrate makes the executor the one role that keeps CAP_CHOWN and
// CAP_FOWNER: only with --serve, never with --watch.
TEST(DropInCommandLine, MigrateMarksAServingExecutorOnly) {
    const auto m = parse_command_line({"--serve", "4", "--migrate"});
    EXPECT_EQ(m.serve_fd, 4);
    EXPECT_TRUE(m.migrate);
    EXPECT_FALSE(m.watch);
    EXPECT_FALSE(parse_command_line({"--serve", "3"}).migrate);
    EXPECT_FALSE(parse_command_line({"migrate", "a"}).migrate);
    EXPECT_NE(usage_error({"--serve", "3", "--watch", "--migrate"}).find("different executors"),
              std::string::npos);
    EXPECT_NE(usage_error({"--migrate", "migrate", "a"}).find("--migrate needs --serve"),
              std::string::npos);
}

TEST(DropInCommandLine, BadUsageSaysWhat) {
    EXPECT_NE(usage_error({}).find("no verb"), std::string::npos);
    EXPECT_NE(usage_error({"mount"}).find("takes exactly one instance name"), std::string::npos);
    EXPECT_NE(usage_error({"mount", "a", "b"}).find("takes exactly one"), std::string::npos);
    EXPECT_NE(usage_error({"list", "a"}).find("takes no instance name"), std::string::npos);
    EXPECT_NE(usage_error({"--bogus", "mount", "a"}).find("unknown option"), std::string::npos);
    EXPECT_NE(usage_error({"--config"}).find("--config needs a value"), std::string::npos);
    EXPECT_NE(usage_error({"mount", "a", "--dry-run"}).find("only for migrate"), std::string::npos);
    // An unknown verb is shown escaped and cut: no raw bytes to a terminal.
    const std::string msg = usage_error({"fr\x1b[2J" + std::string(5000, 'x')});
    EXPECT_NE(msg.find("fr\\x1b[2J"), std::string::npos) << msg;
    EXPECT_LT(msg.size(), 200U);
}

TEST(DropInCommandLine, HelpWinsOverEverythingElse) {
    EXPECT_TRUE(parse_command_line({"--help"}).help);
    EXPECT_TRUE(parse_command_line({"mount", "-h"}).help);
}

} // namespace
} // namespace overlay::cmd
