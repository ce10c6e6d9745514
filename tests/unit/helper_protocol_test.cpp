#include "error.hpp"
#include "helper_protocol.hpp"

#include <gtest/gtest.h>
#include <string>
#include <utility>
#include <vector>

namespace overlay::protocol {
namespace {

TEST(HelperProtocol, OkRoundTrip) {
    const auto result = parse_helper_result(format_ok());
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->ok);
    EXPECT_TRUE(result->lowerdirs.empty());
}

TEST(HelperProtocol, EveryErrorRoundTrips) {
    for (auto code :
         {ErrorCode::InvalidName, ErrorCode::NoSuchInstance, ErrorCode::BadConfig,
          ErrorCode::LowerdirNotAllowed, ErrorCode::UnsafePath, ErrorCode::UpperdirTainted,
          ErrorCode::AlreadyMounted, ErrorCode::NotMounted, ErrorCode::Busy, ErrorCode::Failed}) {
        SCOPED_TRACE(std::string(error_name(code)));
        const auto text = format_error(Error(code, "instance 'a': some reason: x y"));
        const auto result = parse_helper_result(text);
        ASSERT_TRUE(result.has_value()) << text;
        EXPECT_FALSE(result->ok);
        EXPECT_EQ(result->error, code);
        EXPECT_EQ(result->message, "instance 'a': some reason: x y");
    }
}

TEST(HelperProtocol, EmptyErrorMessage) {
    const auto result = parse_helper_result(format_error(Error(ErrorCode::Busy, "")));
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->error, ErrorCode::Busy);
    EXPECT_EQ(result->message, "");
}

TEST(HelperProtocol, MessageCannotInjectLines) {
    const auto text = format_error(Error(ErrorCode::Failed, "boom\nok\nmounted 1\r"));
    EXPECT_EQ(text, "error Failed boom\\x0aok\\x0amounted 1\\x0d\n");
    const auto result = parse_helper_result(text);
    ASSERT_TRUE(result.has_value());
    EXPECT_FALSE(result->ok);
    EXPECT_EQ(result->error, ErrorCode::Failed);
    EXPECT_EQ(result->message, "boom\\x0aok\\x0amounted 1\\x0d");
}

TEST(HelperProtocol, StatusRoundTrip) {
    const std::vector<std::string> lowers = {"/var/lib/left4me/overlays/a b", "/x"};
    const auto result =
        parse_helper_result(format_status(true, "/var/lib/left4me/instances/s/merged", lowers));
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->ok);
    EXPECT_TRUE(result->mounted);
    EXPECT_EQ(result->merged, "/var/lib/left4me/instances/s/merged");
    EXPECT_EQ(result->lowerdirs, lowers);

    const auto unmounted = parse_helper_result(format_status(false, "/m", {}));
    ASSERT_TRUE(unmounted.has_value());
    EXPECT_FALSE(unmounted->mounted);
    EXPECT_TRUE(unmounted->lowerdirs.empty());
}

TEST(HelperProtocol, StatusPathsCannotInjectLines) {
    const auto text = format_status(false, "/m\nmounted 1", {"/a\nlower /etc"});
    const auto result = parse_helper_result(text);
    ASSERT_TRUE(result.has_value()) << text;
    EXPECT_FALSE(result->mounted);
    EXPECT_EQ(result->merged, "/m\\x0amounted 1");
    EXPECT_EQ(result->lowerdirs, std::vector<std::string>{"/a\\x0alower /etc"});
}

TEST(HelperProtocol, ListRoundTrip) {
    const std::vector<std::pair<std::string, bool>> instances = {
        {"a", true}, {"b-2", false}, {"c_3", true}};
    const auto result = parse_helper_result(format_list(instances));
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->ok);
    EXPECT_EQ(result->instances, instances);
    const auto empty = parse_helper_result(format_list({}));
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(empty->instances.empty());
}

TEST(HelperProtocol, ReportRoundTripKeepsLinesInOrderAndOneLineEach) {
    const std::vector<std::string> lines = {"convert-whiteout /u/.wh.a -> /u/a (char 0/0)",
                                            "remove-xattr /u/b\\x0a user.x",
                                            "made 2 changes in 3 entries", ""};
    const auto result = parse_helper_result(format_report(lines));
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(result->ok);
    EXPECT_EQ(result->report, lines);
    // A raw line break or control byte in a line cannot forge a record.
    const auto forged = parse_helper_result(format_report({"x\nerror Busy y", "caf\xc3\xa9"}));
    ASSERT_TRUE(forged.has_value());
    EXPECT_TRUE(forged->ok);
    EXPECT_EQ(forged->report, (std::vector<std::string>{"x\\x0aerror Busy y", "caf\\xc3\\xa9"}));
    const auto none = parse_helper_result(format_report({}));
    ASSERT_TRUE(none.has_value());
    EXPECT_TRUE(none->report.empty());
    EXPECT_FALSE(parse_helper_result("ok\nreport x"));
}

TEST(HelperProtocol, RefusesForgedOrTruncatedRecords) {
    struct Bad {
        const char* what;
        std::string text;
    };
    const Bad cases[] = {
        {"empty", ""},
        {"no newline", "ok"},
        {"truncated status", "ok\nmounted 1"},
        {"truncated error", "error Busy busy"},
        {"unknown first line", "OK\n"},
        {"blank first line", "\nok\n"},
        {"unknown record", "ok\nbogus 1\n"},
        {"blank record", "ok\n\n"},
        {"bad flag", "ok\nmounted 2\n"},
        {"empty flag", "ok\nmounted \n"},
        {"flag without value", "ok\nmounted\n"},
        {"instance without flag", "ok\ninstance a\n"},
        {"instance bad flag", "ok\ninstance a yes\n"},
        {"unknown error name", "error Nope message\n"},
        {"error without message", "error Busy\n"},
        {"error plus more lines", "error Busy msg\nok\n"},
        {"error after ok", "ok\nerror Busy msg\n"},
        {"lowercase error name", "error busy msg\n"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        EXPECT_FALSE(parse_helper_result(c.text).has_value());
    }
}

} // namespace
} // namespace overlay::protocol

namespace {
// Core messages already quote hostile bytes as \xNN; the record must carry
// them unchanged, not escape the backslash a second time.
TEST(HelperProtocol, AlreadyPrintableMessagesAreNotEscapedTwice) {
    using namespace overlay;
    const Error error(ErrorCode::UnsafePath,
                      "instance a: /x/" + printable("a\nb") + " is a symlink");
    const auto result = protocol::parse_helper_result(protocol::format_error(error));
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->message, "instance a: /x/a\\x0ab is a symlink");
}
} // namespace
