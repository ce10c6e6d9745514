#include "error.hpp"
#include "instance_name.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace overlay {
namespace {

TEST(InstanceName, AcceptsValidNames) {
    for (const std::string& name : std::vector<std::string>{"a", "server1", "Server_1", "a-b", "_x",
                                                            "0", "9lives", std::string(64, 'x')}) {
        SCOPED_TRACE(name);
        EXPECT_TRUE(is_valid_instance_name(name));
        EXPECT_NO_THROW(validate_instance_name(name));
    }
}

struct BadName {
    const char* what;
    std::string name;
    const char* fragment;
};

TEST(InstanceName, RefusesBadNames) {
    const BadName cases[] = {
        {"empty", "", "is empty"},
        {"dot", ".", "at position 1"},
        {"dotdot", "..", "at position 1"},
        {"slash", "a/b", "at position 2"},
        {"leading dash", "-a", "starts with '-'"},
        {"65 chars", std::string(65, 'a'), "longer than 64"},
        {"space", "a b", "at position 2"},
        {"leading space", " a", "at position 1"},
        {"utf-8", "caf\xc3\xa9", "'caf\\xc3\\xa9'"},
        {"NUL inside", std::string("a\0b", 3), "'a\\x00b'"},
        {"newline", "a\nb", "'a\\x0ab'"},
        {"backslash", "a\\b", "'a\\x5cb'"},
        {"glob", "a*", "outside [A-Za-z0-9_-]"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.what);
        EXPECT_FALSE(is_valid_instance_name(c.name));
        try {
            validate_instance_name(c.name);
            ADD_FAILURE() << "accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::InvalidName);
            const std::string message = e.what();
            EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
            EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        }
    }
}

TEST(InstanceName, HugeNameIsShownShortened) {
    const std::string name(1 << 20, 'a');
    try {
        validate_instance_name(name);
        ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), ErrorCode::InvalidName);
        EXPECT_LT(std::string(e.what()).size(), 200u);
        EXPECT_NE(std::string(e.what()).find("...'"), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace overlay
