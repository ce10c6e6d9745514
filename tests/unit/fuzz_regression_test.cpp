// Regression tests for parser bugs found by the fuzz targets (fuzz/). Each
// names the target that found it; the input is also kept as a seed in
// fuzz/corpus/TARGET/regress-*.
#include "config.hpp"
#include "path_syntax.hpp"

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace overlay {
namespace {

// fuzz_config: with Root=/ the relative defaults were joined as
// "//instances", "//installation", ...: not normalized, so every later
// is_path_beneath() against them was false.
TEST(FuzzRegression, RootSlashDefaultsAreNormalized) {
    const auto c = parse_config("Root=/\n", "t.conf");
    EXPECT_EQ(c.root, "/");
    EXPECT_EQ(c.instances_dir, "/instances");
    EXPECT_EQ(c.allowed_lower_roots,
              (std::vector<std::string>{"/installation", "/overlays", "/global_overlay_cache",
                                        "/workshop_cache"}));
    EXPECT_TRUE(is_normalized_absolute_path(c.instances_dir));
    for (const auto& lower_root : c.allowed_lower_roots) {
        EXPECT_TRUE(is_normalized_absolute_path(lower_root)) << lower_root;
    }
}

} // namespace
} // namespace overlay
