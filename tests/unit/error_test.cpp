#include "error.hpp"

#include <cerrno>
#include <gtest/gtest.h>
#include <string>

namespace overlay {
namespace {

using namespace std::string_literals;

TEST(Printable, EscapesWhatIsNotPrintableAscii) {
    struct Case {
        std::string in;
        const char* out;
    };
    const Case cases[] = {
        {"", ""},
        {"plain text, with: punctuation!~", "plain text, with: punctuation!~"},
        {"a\nb", "a\\x0ab"},
        {"\r\t", "\\x0d\\x09"},
        {"\0"s, "\\x00"},
        {"\x1b[31m", "\\x1b[31m"},
        {"\x7f", "\\x7f"},
        {"back\\slash", "back\\x5cslash"},
        {"caf\xc3\xa9", "caf\\xc3\\xa9"},
        {"\xff\x80", "\\xff\\x80"},
        {" ", " "},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.out);
        EXPECT_EQ(printable(c.in), c.out);
    }
}

TEST(Printable, EveryByte) {
    for (int b = 0; b < 256; ++b) {
        const auto out = printable(std::string(1, static_cast<char>(b)));
        if (b >= 0x20 && b < 0x7f && b != '\\') {
            EXPECT_EQ(out, std::string(1, static_cast<char>(b)));
        } else {
            EXPECT_EQ(out.size(), 4u);
            EXPECT_EQ(out.substr(0, 2), "\\x");
        }
    }
}

TEST(ErrorNames, RoundTrip) {
    for (auto code :
         {ErrorCode::InvalidName, ErrorCode::NoSuchInstance, ErrorCode::BadConfig,
          ErrorCode::LowerdirNotAllowed, ErrorCode::UnsafePath, ErrorCode::UpperdirTainted,
          ErrorCode::AlreadyMounted, ErrorCode::NotMounted, ErrorCode::Busy, ErrorCode::Failed}) {
        const auto name = error_name(code);
        EXPECT_EQ(error_code_from_name(name), code) << name;
    }
    EXPECT_EQ(error_name(ErrorCode::UpperdirTainted), "UpperdirTainted");
    EXPECT_FALSE(error_code_from_name("").has_value());
    EXPECT_FALSE(error_code_from_name("busy").has_value());
    EXPECT_FALSE(error_code_from_name("Busy ").has_value());
}

TEST(ThrowErrno, NamesContextAndErrno) {
    try {
        throw_errno(ErrorCode::Busy, "umount /x", EBUSY);
        ADD_FAILURE() << "did not throw";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::Busy);
        EXPECT_STREQ(e.what(), "umount /x: Device or resource busy");
    }
}

} // namespace
} // namespace overlay
