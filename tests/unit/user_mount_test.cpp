#include "user_mount.hpp"

#include <gtest/gtest.h>

namespace overlay {
namespace {

MountEntry entry(const std::string& type, const std::string& super_options) {
    MountEntry e;
    e.fs_type = type;
    e.super_options = super_options;
    return e;
}

TEST(UserMountOwner, AUsersFuseMountIsNamed) {
    EXPECT_EQ(user_mount_owner(entry("fuse", "rw,user_id=1000,group_id=1000")),
              "a FUSE mount of uid 1000");
    EXPECT_EQ(user_mount_owner(entry("fuse.sshfs", "rw,user_id=1001,group_id=1001,allow_other")),
              "a FUSE mount of uid 1001");
    EXPECT_EQ(user_mount_owner(entry("fuseblk", "rw,user_id=7,group_id=0,blksize=4096")),
              "a FUSE mount of uid 7");
    // Not "user_id=0" exactly.
    EXPECT_EQ(user_mount_owner(entry("fuse", "rw,user_id=00")), "a FUSE mount of uid 00");
    EXPECT_EQ(user_mount_owner(entry("fuse", "rw,group_id=0")), "a FUSE mount of an unknown user");
    EXPECT_EQ(user_mount_owner(entry("fuse.x", "")), "a FUSE mount of an unknown user");
}

TEST(UserMountOwner, RootsFuseMountsAndOtherFilesystemsAreNot) {
    EXPECT_EQ(user_mount_owner(entry("fuse.mergerfs", "rw,user_id=0,group_id=0,allow_other")),
              std::nullopt);
    EXPECT_EQ(user_mount_owner(entry("fuse", "user_id=0")), std::nullopt);
    for (const char* type : {"ext4", "xfs", "tmpfs", "overlay", "btrfs", "fusectl", "nfs4"}) {
        EXPECT_EQ(user_mount_owner(entry(type, "rw,user_id=1000")), std::nullopt) << type;
    }
}

} // namespace
} // namespace overlay
