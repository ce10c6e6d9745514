#include "error.hpp"
#include "instance_env.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace overlay {
namespace {

constexpr const char* kKey = "L4D2_LOWERDIRS";
constexpr const char* kLabel = "inst/instance.env";

using Dirs = std::vector<std::string>;
using namespace std::string_literals;

Dirs parse(const std::string& content) {
    return parse_lowerdirs(content, kKey, kLabel);
}

// "/l/0:/l/1:..." with n entries.
std::string many_dirs(std::size_t n) {
    std::string value;
    for (std::size_t i = 0; i < n; ++i) {
        value += (i == 0 ? "/l/" : ":/l/") + std::to_string(i);
    }
    return value;
}

// A file of exactly `size` bytes: the key line, then a comment padding it.
std::string file_of_size(std::size_t size) {
    std::string content = std::string(kKey) + "=/a\n#";
    content += std::string(size - content.size() - 1, 'x') + "\n";
    return content;
}

struct Good {
    const char* what;
    std::string content;
    Dirs expected;
};

TEST(InstanceEnv, AcceptsGoodFiles) {
    const Good cases[] = {
        {"plain", "L4D2_LOWERDIRS=/a/b:/c\n", {"/a/b", "/c"}},
        {"no final newline", "L4D2_LOWERDIRS=/a", {"/a"}},
        {"export", "export L4D2_LOWERDIRS=/a\n", {"/a"}},
        {"export with tabs and indent", "  export\t\tL4D2_LOWERDIRS=/a\n", {"/a"}},
        {"single quotes", "L4D2_LOWERDIRS='/a b:/c$d\\e'\n", {"/a b", "/c$d\\e"}},
        {"double quotes", "L4D2_LOWERDIRS=\"/a b:/c\"\n", {"/a b", "/c"}},
        {"hash inside quotes", "L4D2_LOWERDIRS='/a#b'\n", {"/a#b"}},
        {"hash inside unquoted", "L4D2_LOWERDIRS=/a#b\n", {"/a#b"}},
        {"trailing blanks", "L4D2_LOWERDIRS=/a \t\n", {"/a"}},
        {"trailing blanks after quote", "L4D2_LOWERDIRS='/a'  \n", {"/a"}},
        {"comments, blanks, other keys",
         "# generated\n\n   \nFOO=bar baz\nOTHER='x y'\nexport PORT=27015\n"
         "   # indented comment\nL4D2_LOWERDIRS=/x\nBAR=\"$HOME `id`\"\nEMPTY=\n",
         {"/x"}},
        {"longer keys are other keys",
         "L4D2_LOWERDIRS_OLD=/old\nL4D2_LOWERDIRS=/new\nXL4D2_LOWERDIRS=/x\n",
         {"/new"}},
        {"order preserved",
         "L4D2_LOWERDIRS=/top:/b/c:/a:/z/y/x:/bottom\n",
         {"/top", "/b/c", "/a", "/z/y/x", "/bottom"}},
        {"root itself", "L4D2_LOWERDIRS=/\n", {"/"}},
        {"non-ASCII path", "L4D2_LOWERDIRS=/caf\xc3\xa9\n", {"/caf\xc3\xa9"}},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        try {
            EXPECT_EQ(parse(c.content), c.expected);
        } catch (const Error& e) {
            ADD_FAILURE() << e.what();
        }
    }
}

TEST(InstanceEnv, OtherKeyName) {
    EXPECT_EQ(parse_lowerdirs("L4D2_LOWERDIRS=/a\nMY_KEY=/b\n", "MY_KEY", kLabel), Dirs{"/b"});
}

TEST(InstanceEnv, FiveHundredLayersAccepted) {
    const auto dirs = parse(std::string(kKey) + "=" + many_dirs(500) + "\n");
    ASSERT_EQ(dirs.size(), 500u);
    EXPECT_EQ(dirs.front(), "/l/0");
    EXPECT_EQ(dirs.back(), "/l/499");
}

TEST(InstanceEnv, Exactly64KiBAccepted) {
    const auto content = file_of_size(kMaxInstanceEnvBytes);
    ASSERT_EQ(content.size(), 65536u);
    EXPECT_EQ(parse(content), Dirs{"/a"});
}

struct Bad {
    const char* what;
    std::string content;
    const char* fragment;
};

TEST(InstanceEnv, RefusesBadFiles) {
    const Bad cases[] = {
        {"missing key", "FOO=/a\n", "inst/instance.env: L4D2_LOWERDIRS is not set"},
        {"empty file", "", "L4D2_LOWERDIRS is not set"},
        {"only a comment", "# L4D2_LOWERDIRS=/a\n", "L4D2_LOWERDIRS is not set"},
        {"empty value", "L4D2_LOWERDIRS=\n", ":1: L4D2_LOWERDIRS: empty value"},
        {"empty quoted value", "\nL4D2_LOWERDIRS=''\n", ":2: L4D2_LOWERDIRS: empty value"},
        {"blank value", "L4D2_LOWERDIRS=   \n", ":1: L4D2_LOWERDIRS: empty value"},
        {"relative", "L4D2_LOWERDIRS=a/b\n",
         ":1: L4D2_LOWERDIRS: lowerdir 1 'a/b' is not absolute"},
        {"relative second", "L4D2_LOWERDIRS=/a:b\n", "lowerdir 2 'b' is not absolute"},
        {"dot", "L4D2_LOWERDIRS=/a/./b\n", "lowerdir 1 '/a/./b' has a '.' component"},
        {"trailing dot", "L4D2_LOWERDIRS=/a/.\n", "has a '.' component"},
        {"dotdot", "L4D2_LOWERDIRS=/a/../b\n", "lowerdir 1 '/a/../b' has a '..' component"},
        {"double slash", "L4D2_LOWERDIRS=/a//b\n", "contains '//'"},
        {"trailing slash", "L4D2_LOWERDIRS=/x:/a/b/\n", "lowerdir 2 '/a/b/' ends with '/'"},
        {"comma", "L4D2_LOWERDIRS=/a,upperdir=/b\n", "lowerdir 1 '/a,upperdir=/b' contains ','"},
        {"empty element", "L4D2_LOWERDIRS=/a::/b\n", "lowerdir 2 is empty"},
        {"leading colon", "L4D2_LOWERDIRS=:/a\n", "lowerdir 1 is empty"},
        {"trailing colon", "L4D2_LOWERDIRS=/a:\n", "lowerdir 2 is empty"},
        {"501 layers", std::string(kKey) + "=" + many_dirs(501) + "\n",
         ":1: L4D2_LOWERDIRS: 501 lowerdirs, at most 500"},
        {"over 64 KiB", file_of_size(kMaxInstanceEnvBytes + 1),
         "inst/instance.env: larger than 65536 bytes"},
        {"NUL in value", "FOO=1\nL4D2_LOWERDIRS=/a\0b\n"s, ":2: NUL byte"},
        {"NUL in other line", "L4D2_LOWERDIRS=/a\n#\0\n"s, ":2: NUL byte"},
        {"unbalanced single", "L4D2_LOWERDIRS='/a\n", ":1: unbalanced single quote"},
        {"unbalanced double", "L4D2_LOWERDIRS=\"/a\n", ":1: unbalanced double quote"},
        {"mixed quotes", "L4D2_LOWERDIRS='/a\"\n", ":1: unbalanced single quote"},
        {"unbalanced in other key", "FOO=\"x\nL4D2_LOWERDIRS=/a\n", ":1: unbalanced double quote"},
        {"newline in quotes", "L4D2_LOWERDIRS='/a\n/b'\n", ":1: unbalanced single quote"},
        {"newline unquoted", "L4D2_LOWERDIRS=/a\n/b\n", ":2: not a KEY=VALUE line"},
        {"text after quote", "L4D2_LOWERDIRS='/a'/b\n", ":1: text after the closing quote"},
        {"comment after quote", "L4D2_LOWERDIRS='/a' # top\n", "text after the closing quote"},
        {"quote inside unquoted", "L4D2_LOWERDIRS=/a'b'\n", "quote character inside an unquoted"},
        {"duplicate", "L4D2_LOWERDIRS=/a\n\nexport L4D2_LOWERDIRS=/b\n",
         ":3: L4D2_LOWERDIRS given again (first on line 1)"},
        {"duplicate identical", "L4D2_LOWERDIRS=/a\nL4D2_LOWERDIRS=/a\n", "given again"},
        {"not an assignment", "FOO=1\nhello world\n", ":2: not a KEY=VALUE line"},
        {"space before =", "L4D2_LOWERDIRS =/a\n", ":1: not a KEY=VALUE line"},
        {"space after =", "L4D2_LOWERDIRS= /a\n", "' ' unquoted"},
        {"digit first", "1FOO=x\n", ":1: not a KEY=VALUE line"},
        {"bare export", "export\n", ":1: not a KEY=VALUE line"},
        {"export without assignment", "export L4D2_LOWERDIRS\n", "not a KEY=VALUE line"},
        {"bare key", "L4D2_LOWERDIRS\n", "not a KEY=VALUE line"},
        {"CRLF", "L4D2_LOWERDIRS=/a\r\n", ":1: carriage return"},
        {"CRLF elsewhere", "# x\r\nL4D2_LOWERDIRS=/a\n", ":1: carriage return"},
        {"unquoted space", "L4D2_LOWERDIRS=/a b\n", "' ' unquoted would mean something else"},
        {"unquoted comment", "L4D2_LOWERDIRS=/a # top\n", "' ' unquoted"},
        {"unquoted dollar", "L4D2_LOWERDIRS=/a$HOME\n", "'$' unquoted"},
        {"unquoted backslash", "L4D2_LOWERDIRS=/a\\:b\n", "'\\x5c' unquoted"},
        {"unquoted semicolon", "L4D2_LOWERDIRS=/a;reboot\n", "';' unquoted"},
        {"double-quoted dollar", "L4D2_LOWERDIRS=\"/a$(id)\"\n", "'$' inside double quotes"},
        {"double-quoted backtick", "L4D2_LOWERDIRS=\"/a`id`\"\n", "'`' inside double quotes"},
        {"control char in path shown safely", "L4D2_LOWERDIRS=/a\x1b[2J/\n",
         "'/a\\x1b[2J/' ends with '/'"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        try {
            const auto dirs = parse(c.content);
            ADD_FAILURE() << "accepted, " << dirs.size() << " lowerdirs";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::BadConfig);
            const std::string message = e.what();
            EXPECT_TRUE(message.starts_with(kLabel)) << message;
            EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
            EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        }
    }
}

TEST(InstanceEnv, LabelIsPrintable) {
    try {
        parse_lowerdirs("", kKey, "bad\nlabel");
        ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "bad\\x0alabel: L4D2_LOWERDIRS is not set");
    }
}

} // namespace
} // namespace overlay
