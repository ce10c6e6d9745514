// left4me-overlayctl's command line and output, without a bus: names are
// checked before anything else, and every name, path or word typed comes
// out escaped and bounded.
#include "command_line.hpp"
#include "error.hpp"
#include "output.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

using namespace overlay::ctl;

CommandLine parse(std::vector<std::string> args) { return parse_command_line(args); }

std::string usage_error(std::vector<std::string> args) {
    try {
        parse(args);
    } catch (const UsageError& e) {
        return e.what();
    }
    ADD_FAILURE() << "no usage error";
    return {};
}

bool only_printable_ascii(const std::string& s) {
    for (unsigned char c : s) {
        if (c < 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

TEST(CtlCommandLine, ListIsTheDefaultVerb) {
    EXPECT_EQ(parse({}).verb, Verb::List);
    EXPECT_EQ(parse({"--no-legend"}).verb, Verb::List);
    EXPECT_FALSE(parse({"--no-legend"}).legend);
    EXPECT_TRUE(parse({"list"}).legend);
}

TEST(CtlCommandLine, JsonModes) {
    EXPECT_EQ(parse({"list"}).json, JsonMode::Off);
    EXPECT_EQ(parse({"--json", "list"}).json, JsonMode::Short);
    EXPECT_EQ(parse({"--json=short", "status", "a"}).json, JsonMode::Short);
    EXPECT_EQ(parse({"--json=pretty", "status", "a"}).json, JsonMode::Pretty);
    EXPECT_EQ(parse({"--json", "--json=off", "list"}).json, JsonMode::Off);
    EXPECT_NE(usage_error({"--json=yaml", "list"}).find("'yaml'"), std::string::npos);
    EXPECT_FALSE(usage_error({"--json", "mount", "a"}).empty());
}

TEST(CtlCommandLine, BadNamesAreRefusedEscapedOnOneBoundedLine) {
    const std::vector<std::string> bad = {
        "a\nb", "\x1b[31mred", std::string(5000, 'x'), "bad.name", "", "a b", "x\x9b" "2J",
        "caf\xc3\xa9", std::string("nul\0x", 5), "../etc"};
    for (const auto& name : bad) {
        for (const char* verb : {"mount", "unmount", "status"}) {
            std::string msg = usage_error({verb, name});
            EXPECT_NE(msg.find("invalid instance name"), std::string::npos) << msg;
            EXPECT_TRUE(only_printable_ascii(msg)) << msg;
            EXPECT_LT(msg.size(), 200U) << msg;
        }
    }
    EXPECT_NE(usage_error({"status", "a\nb"}).find("'a\\x0ab'"), std::string::npos);
    EXPECT_EQ(parse({"status", "good_name-1"}).instance, "good_name-1");
}

TEST(CtlCommandLine, UnknownWordsAreEscapedAndBounded) {
    std::string msg = usage_error({"--\x1b[2J" + std::string(10000, 'y')});
    EXPECT_TRUE(only_printable_ascii(msg)) << msg;
    EXPECT_LT(msg.size(), 200U);
    msg = usage_error({"fr\nob"});
    EXPECT_NE(msg.find("fr\\x0aob"), std::string::npos) << msg;
}

TEST(CtlOutput, TerminalSafeEscapesControlsKeepsUtf8AndTheServicesEscapes) {
    EXPECT_EQ(terminal_safe("plain/path"), "plain/path");
    // Already escaped by the service: left as it is, not escaped twice.
    EXPECT_EQ(terminal_safe("a\\x0ab"), "a\\x0ab");
    EXPECT_EQ(terminal_safe("\x1b[31m"), "\\x1b[31m");
    EXPECT_EQ(terminal_safe("\x7f"), "\\x7f");
    EXPECT_EQ(terminal_safe("caf\xc3\xa9"), "caf\xc3\xa9");             // U+00E9 stays
    EXPECT_EQ(terminal_safe("\xc2\x9b" "2J"), "\\xc2\\x9b2J");            // C1 CSI escaped
    EXPECT_EQ(terminal_safe("\xff\xfe"), "\\xff\\xfe");                   // not UTF-8
    EXPECT_EQ(terminal_safe("\xe2\x82"), "\\xe2\\x82");                   // cut sequence
    EXPECT_EQ(terminal_safe("\xc0\xaf"), "\\xc0\\xaf");                   // overlong
    // Words the user typed: the one printable() of the whole project.
    EXPECT_EQ(overlay::printable("a\\b\xc3\xa9"), "a\\x5cb\\xc3\\xa9");
    EXPECT_EQ(overlay::printable_bounded(std::string(100, 'x'), 10), "xxxxxxxxxx...(100 bytes)");
}

TEST(CtlOutput, ListLegendAndEscaping) {
    InstanceList list = {{"alpha", true}, {"b\x1b", false}};
    EXPECT_EQ(format_list_text(list), "NAME   MOUNTED\nalpha  yes\nb\\x1b  no\n");
    EXPECT_EQ(format_list_text(list, false), "alpha  yes\nb\\x1b  no\n");
}

TEST(CtlOutput, JsonEscapesControlsIncludingC1) {
    InstanceList list = {{"a\x1b\x7f\xc2\x9b\xc3\xa9\"\\", true}};
    EXPECT_EQ(format_list_json(list),
              "[{\"name\":\"a\\u001b\\u007f\\u009b\xc3\xa9\\\"\\\\\",\"mounted\":true}]\n");
}

TEST(CtlOutput, JsonShortAndPretty) {
    InstanceList list = {{"a", true}};
    EXPECT_EQ(format_list_json(list), "[{\"name\":\"a\",\"mounted\":true}]\n");
    EXPECT_EQ(format_list_json(list, true), "[\n  {\"name\": \"a\", \"mounted\": true}\n]\n");
    EXPECT_EQ(format_list_json({}, true), "[]\n");
    InstanceStatus st{"a", true, "/m", {"/l1", "/l2"}};
    EXPECT_EQ(format_status_json(st),
              "{\"instance\":\"a\",\"mounted\":true,\"merged\":\"/m\",\"lowerdirs\":[\"/l1\","
              "\"/l2\"]}\n");
    EXPECT_EQ(format_status_json(st, true),
              "{\n  \"instance\": \"a\",\n  \"mounted\": true,\n  \"merged\": \"/m\",\n"
              "  \"lowerdirs\": [\n    \"/l1\",\n    \"/l2\"\n  ]\n}\n");
    // status text escapes paths
    InstanceStatus evil{"a", false, "/x\n\x1b", {}};
    EXPECT_NE(format_status_text(evil).find("/x\\x0a\\x1b"), std::string::npos);
}

} // namespace
