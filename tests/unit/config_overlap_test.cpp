#include "config.hpp"
#include "error.hpp"

#include <gtest/gtest.h>
#include <string>

namespace {

// One instance's upper/work/merged must never be usable as another's
// lowerdir, so allowed roots and InstancesDir may not contain each other.
TEST(ConfigOverlap, AllowedRootsMayNotOverlapInstancesDir) {
    const char* bad[] = {
        "Root=/srv/l\nAllowedLowerRoots=instances\n",
        "Root=/srv/l\nAllowedLowerRoots=installation instances/a\n",
        "Root=/srv/l\nInstancesDir=installation/inst\n",
        "Root=/srv/l\nAllowedLowerRoots=/srv\n",
    };
    for (const char* text : bad) {
        SCOPED_TRACE(text);
        try {
            overlay::parse_config(text, "overlay.conf");
            ADD_FAILURE() << "accepted";
        } catch (const overlay::Error& e) {
            EXPECT_EQ(e.code(), overlay::ErrorCode::BadConfig);
            EXPECT_NE(std::string(e.what()).find("overlaps InstancesDir"), std::string::npos)
                << e.what();
            EXPECT_NE(std::string(e.what()).find("overlay.conf:"), std::string::npos) << e.what();
        }
    }
    EXPECT_NO_THROW(overlay::parse_config("Root=/srv/l\nAllowedLowerRoots=instances2\n", "c"));
}

} // namespace
