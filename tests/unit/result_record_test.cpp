#include "error.hpp"
#include "result_record.hpp"

#include <gtest/gtest.h>
#include <string>
#include <utility>
#include <vector>

namespace overlay::protocol {
namespace {

// The record parsed as a success (fails the test otherwise).
const ExecutorResult& ok_of(const std::optional<ResultRecord>& record) {
    static const ExecutorResult kNone;
    if (!record || !std::holds_alternative<ExecutorResult>(*record)) {
        ADD_FAILURE() << "not an ok record";
        return kNone;
    }
    return std::get<ExecutorResult>(*record);
}

// The record parsed as a failure (fails the test otherwise).
const ExecutorFailure& failure_of(const std::optional<ResultRecord>& record) {
    static const ExecutorFailure kNone;
    if (!record || !std::holds_alternative<ExecutorFailure>(*record)) {
        ADD_FAILURE() << "not an error record";
        return kNone;
    }
    return std::get<ExecutorFailure>(*record);
}

TEST(ResultRecord, OkRoundTrip) {
    const auto result = parse_result_record(format_ok());
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(ok_of(result).lowerdirs.empty());
}

TEST(ResultRecord, EveryErrorRoundTrips) {
    for (auto code :
         {ErrorCode::InvalidName, ErrorCode::NoSuchInstance, ErrorCode::BadConfig,
          ErrorCode::LowerdirNotAllowed, ErrorCode::UnsafePath, ErrorCode::UpperdirTainted,
          ErrorCode::AlreadyMounted, ErrorCode::NotMounted, ErrorCode::Busy, ErrorCode::Failed}) {
        SCOPED_TRACE(std::string(error_name(code)));
        const auto text = format_error(Error(code, "instance 'a': some reason: x y"));
        const auto result = parse_result_record(text);
        ASSERT_TRUE(result.has_value()) << text;
        EXPECT_EQ(failure_of(result).error, code);
        EXPECT_EQ(failure_of(result).message, "instance 'a': some reason: x y");
    }
}

TEST(ResultRecord, EmptyErrorMessage) {
    const auto result = parse_result_record(format_error(Error(ErrorCode::Busy, "")));
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(failure_of(result).error, ErrorCode::Busy);
    EXPECT_EQ(failure_of(result).message, "");
}

TEST(ResultRecord, MessageCannotInjectLines) {
    const auto text = format_error(Error(ErrorCode::Failed, "boom\nok\nmounted 1\r"));
    EXPECT_EQ(text, "error Failed boom\\x0aok\\x0amounted 1\\x0d\n");
    const auto result = parse_result_record(text);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(failure_of(result).error, ErrorCode::Failed);
    EXPECT_EQ(failure_of(result).message, "boom\\x0aok\\x0amounted 1\\x0d");
}

TEST(ResultRecord, StatusRoundTrip) {
    const std::vector<std::string> lowers = {"/var/lib/left4me/overlays/a b", "/x"};
    const auto result =
        parse_result_record(format_status(true, "/var/lib/left4me/instances/s/merged", lowers));
    ASSERT_TRUE(result.has_value());
    EXPECT_TRUE(ok_of(result).mounted);
    EXPECT_EQ(ok_of(result).merged, "/var/lib/left4me/instances/s/merged");
    EXPECT_EQ(ok_of(result).lowerdirs, lowers);

    const auto unmounted = parse_result_record(format_status(false, "/m", {}));
    ASSERT_TRUE(unmounted.has_value());
    EXPECT_FALSE(ok_of(unmounted).mounted);
    EXPECT_TRUE(ok_of(unmounted).lowerdirs.empty());
}

TEST(ResultRecord, StatusPathsCannotInjectLines) {
    const auto text = format_status(false, "/m\nmounted 1", {"/a\nlower /etc"});
    const auto result = parse_result_record(text);
    ASSERT_TRUE(result.has_value()) << text;
    EXPECT_FALSE(ok_of(result).mounted);
    EXPECT_EQ(ok_of(result).merged, "/m\\x0amounted 1");
    EXPECT_EQ(ok_of(result).lowerdirs, std::vector<std::string>{"/a\\x0alower /etc"});
}

TEST(ResultRecord, ListRoundTrip) {
    const std::vector<std::pair<std::string, bool>> instances = {
        {"a", true}, {"b-2", false}, {"c_3", true}};
    const auto result = parse_result_record(format_list(instances));
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(ok_of(result).instances, instances);
    const auto empty = parse_result_record(format_list({}));
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(ok_of(empty).instances.empty());
}

TEST(ResultRecord, ReportRoundTripKeepsLinesInOrderAndOneLineEach) {
    const std::vector<std::string> lines = {"convert-whiteout /u/.wh.a -> /u/a (char 0/0)",
                                            "remove-xattr /u/b\\x0a user.x",
                                            "made 2 changes in 3 entries", ""};
    const auto result = parse_result_record(format_report(lines));
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(ok_of(result).report, lines);
    // A raw line break or control byte in a line cannot forge a record.
    const auto forged = parse_result_record(format_report({"x\nerror Busy y", "caf\xc3\xa9"}));
    ASSERT_TRUE(forged.has_value());
    EXPECT_EQ(ok_of(forged).report, (std::vector<std::string>{"x\\x0aerror Busy y", "caf\\xc3\\xa9"}));
    const auto none = parse_result_record(format_report({}));
    ASSERT_TRUE(none.has_value());
    EXPECT_TRUE(ok_of(none).report.empty());
    EXPECT_FALSE(parse_result_record("ok\nreport x"));
}

TEST(ResultRecord, RefusesForgedOrTruncatedRecords) {
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
        EXPECT_FALSE(parse_result_record(c.text).has_value());
    }
}

} // namespace
} // namespace overlay::protocol

namespace {
// Core messages already quote hostile bytes as \xNN; the record must carry
// them unchanged, not escape the backslash a second time.
TEST(ResultRecord, AlreadyPrintableMessagesAreNotEscapedTwice) {
    using namespace overlay;
    const Error error(ErrorCode::UnsafePath,
                      "instance a: /x/" + printable("a\nb") + " is a symlink");
    const auto result = protocol::parse_result_record(protocol::format_error(error));
    ASSERT_TRUE(result.has_value());
    ASSERT_TRUE(std::holds_alternative<protocol::ExecutorFailure>(*result));
    EXPECT_EQ(std::get<protocol::ExecutorFailure>(*result).message,
              "instance a: /x/a\\x0ab is a symlink");
}
} // namespace
