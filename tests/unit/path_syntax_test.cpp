#include "path_syntax.hpp"

#include <climits>
#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace overlay {
namespace {

TEST(PathSyntax, NormalizedAbsolute) {
    for (const std::string& good :
         std::vector<std::string>{"/", "/a", "/a/b", "/a b/c", "/.a", "/a./..b", "/...",
                                  "/" + std::string(NAME_MAX, 'n')}) {
        SCOPED_TRACE(good);
        EXPECT_TRUE(is_normalized_absolute_path(good));
        EXPECT_EQ(absolute_path_problem(good), nullptr);
    }
    struct Bad {
        std::string path;
        const char* problem;
    };
    const Bad bad[] = {
        {"", "is empty"},
        {"a", "is not absolute"},
        {"a/b", "is not absolute"},
        {"/a/", "ends with '/'"},
        {"//", "ends with '/'"},
        {"//a", "contains '//'"},
        {"/a//b", "contains '//'"},
        {"/.", "has a '.' component"},
        {"/a/./b", "has a '.' component"},
        {"/..", "has a '..' component"},
        {"/a/../b", "has a '..' component"},
        {"/a/..", "has a '..' component"},
        {std::string("/a\0b", 4), "contains a NUL byte"},
        {"/" + std::string(NAME_MAX + 1, 'n'), "has a component longer than NAME_MAX"},
        {"/" + std::string(PATH_MAX, 'p'), "is longer than PATH_MAX"},
    };
    for (const auto& b : bad) {
        SCOPED_TRACE(b.path.substr(0, 40));
        EXPECT_FALSE(is_normalized_absolute_path(b.path));
        ASSERT_NE(absolute_path_problem(b.path), nullptr);
        EXPECT_STREQ(absolute_path_problem(b.path), b.problem);
    }
}

TEST(PathSyntax, PathMaxBoundary) {
    // PATH_MAX counts the terminating NUL.
    std::string path;
    while (path.size() + 201 <= PATH_MAX - 1) {
        path += "/" + std::string(200, 'x');
    }
    path += "/" + std::string(PATH_MAX - 1 - path.size() - 1, 'y');
    ASSERT_EQ(path.size(), static_cast<std::size_t>(PATH_MAX - 1));
    EXPECT_TRUE(is_normalized_absolute_path(path));
    EXPECT_FALSE(is_normalized_absolute_path(path + "z"));
}

TEST(PathSyntax, NormalizedRelative) {
    for (const char* good : {"a", "a/b", "instances", ".x/y"}) {
        SCOPED_TRACE(good);
        EXPECT_TRUE(is_normalized_relative_path(good));
    }
    for (const char* bad : {"", "/a", ".", "..", "a/.", "../a", "a//b", "a/", "/"}) {
        SCOPED_TRACE(bad);
        EXPECT_FALSE(is_normalized_relative_path(bad));
        EXPECT_NE(relative_path_problem(bad), nullptr);
    }
}

TEST(PathSyntax, Beneath) {
    struct Case {
        const char* path;
        const char* root;
        bool beneath;
        const char* below;
    };
    const Case cases[] = {
        {"/a", "/a", true, ""},
        {"/a/b", "/a", true, "b"},
        {"/a/b/c", "/a", true, "b/c"},
        {"/ab", "/a", false, nullptr},
        {"/a", "/a/b", false, nullptr},
        {"/b/a", "/a", false, nullptr},
        {"/x/y", "/", true, "x/y"},
        {"/", "/", true, ""},
        {"/a/../b", "/a", false, nullptr}, // not normalized: never beneath
        {"/a/b", "/a/", false, nullptr},
        {"a/b", "a", false, nullptr},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.path) + " under " + c.root);
        EXPECT_EQ(is_path_beneath(c.path, c.root), c.beneath);
        if (c.beneath) {
            EXPECT_EQ(path_below(c.path, c.root), c.below);
        }
    }
}

} // namespace
} // namespace overlay
