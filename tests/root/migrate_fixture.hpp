// The fixture and helpers of the migrate tests (migrate_test.cpp, the
// conversion itself; migrate_frontends_test.cpp, the drop-in, the executor
// and uppers written by a real fuse-overlayfs).
#pragma once

#include "error.hpp"
#include "executor_protocol.hpp"
#include "expect_error.hpp"
#include "fs_open.hpp"
#include "result_record.hpp"
#include "instance_lock.hpp"
#include "migrate.hpp"
#include "operations.hpp"
#include "packet_channel.hpp"
#include "scratch.hpp"
#include "taint_scan.hpp"
#include "unique_fd.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <gtest/gtest.h>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace l4m_migrate_test {

using overlay::ErrorCode;
using overlay::UniqueFd;
using namespace l4m_test;
namespace fs = std::filesystem;

inline void set_x(const std::string& path, const std::string& name, const std::string& value) {
    ASSERT_EQ(::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0), 0)
        << path << " " << name << ": " << std::strerror(errno);
}

inline std::optional<std::string> get_x(const std::string& path, const std::string& name) {
    char buf[256];
    ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof buf);
    if (n < 0) {
        return std::nullopt;
    }
    return std::string(buf, static_cast<std::size_t>(n));
}

// fuse-overlayfs' fallback whiteout: an empty file, mode 0700.
inline void fuse_whiteout(const std::string& dir, const std::string& name) {
    write_file(dir + "/.wh." + name, "");
    ASSERT_EQ(::chmod((dir + "/.wh." + name).c_str(), 0700), 0);
}

inline void kernel_whiteout(const std::string& path) {
    ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0, makedev(0, 0)), 0) << path;
}

// A directory fuse-overlayfs made opaque without privilege.
inline void fuse_opaque_dir(const std::string& dir) {
    make_dirs(dir);
    set_x(dir, "user.fuseoverlayfs.opaque", "y");
    write_file(dir + "/.wh..wh..opq", "");
}

inline bool is_whiteout(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

inline bool exists(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

// Every entry under `top`: path, type, mode, owner, size, contents or
// target. What a user of the instance sees.
inline std::string tree(const std::string& top) {
    std::vector<std::string> lines;
    for (auto it = fs::recursive_directory_iterator(top); it != fs::recursive_directory_iterator();
         ++it) {
        const std::string p = it->path().string();
        struct stat st {};
        ::lstat(p.c_str(), &st);
        std::ostringstream line;
        line << p.substr(top.size()) << " " << std::oct << st.st_mode << std::dec << " "
             << st.st_uid << ":" << st.st_gid;
        if (S_ISREG(st.st_mode)) {
            line << " '" << read_file(p) << "'";
        } else if (S_ISLNK(st.st_mode)) {
            line << " -> " << fs::read_symlink(p).string();
        }
        lines.push_back(line.str());
    }
    std::sort(lines.begin(), lines.end());
    std::string out;
    for (auto& l : lines) {
        out += l + "\n";
    }
    return out;
}

// The upper's owner, and users and groups around it, in a user database of
// this test process's own (bind mounts over /etc/passwd and /etc/group in
// its private mount namespace: the host's files are never changed, and the
// test needs no particular user on the machine). The owner's groups are its
// own (kOwner) and kCrew; kOtherGroup is not one of them.
constexpr uid_t kOwner = 64201;
constexpr gid_t kCrew = 64202;
constexpr gid_t kOtherGroup = 64203;
constexpr uid_t kOther = 64204;
inline std::string owner_ids() {
    return std::to_string(kOwner) + ":" + std::to_string(kOwner);
}

inline void install_test_users() {
    static bool done = false;
    if (done) {
        return;
    }
    const std::string dir = scratch() + "/userdb";
    make_dirs(dir);
    const std::string owner = std::to_string(kOwner);
    const std::string other = std::to_string(kOther);
    write_file(dir + "/passwd", read_file("/etc/passwd") + "l4m-owner:x:" + owner + ":" + owner +
                                    "::/nonexistent:/usr/sbin/nologin\nl4m-other:x:" + other + ":" +
                                    other + "::/nonexistent:/usr/sbin/nologin\n");
    write_file(dir + "/group", read_file("/etc/group") + "l4m-owner:x:" + owner +
                                   ":\nl4m-crew:x:" + std::to_string(kCrew) +
                                   ":l4m-owner\nl4m-strangers:x:" + std::to_string(kOtherGroup) +
                                   ":l4m-other\nl4m-other:x:" + other + ":\n");
    for (const char* f : {"passwd", "group"}) {
        const std::string src = dir + "/" + f;
        const std::string dst = std::string("/etc/") + f;
        ASSERT_EQ(::chmod(src.c_str(), 0644), 0);
        ASSERT_EQ(::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND, nullptr), 0) << dst;
    }
    done = true;
}

inline void chown_to(const std::string& path, uid_t uid, gid_t gid) {
    ASSERT_EQ(::lchown(path.c_str(), uid, gid), 0) << path << ": " << std::strerror(errno);
}

// Runs a shell command as the upper's owner, with its groups.
inline void as_owner(const std::string& command) {
    std::string err;
    ASSERT_EQ(
        run_command({"setpriv", "--reuid=" + std::to_string(kOwner),
                     "--regid=" + std::to_string(kOwner), "--init-groups", "sh", "-c", command},
                    &err),
        0)
        << command << ": " << err;
}

inline bool has_line(const std::vector<std::string>& lines, const std::string& fragment) {
    return std::any_of(lines.begin(), lines.end(),
                       [&](const auto& l) { return l.find(fragment) != std::string::npos; });
}

class Migrate : public ::testing::TestWithParam<overlay::PathResolver> {
  protected:
    void SetUp() override {
        overlay::set_path_resolver(GetParam());
        install_test_users();
        fresh_layout();
    }
    void fresh_layout(overlay::MountApi api = overlay::MountApi::Auto) {
        layout = make_layout(api);
        base = layout.root + "/installation/base";
        mod = layout.root + "/overlays/mod";
        upper = layout.instance_dir("alpha") + "/upper";
        // As a real instance's: its user owns the upper.
        chown_to(upper, kOwner, kOwner);
    }
    void TearDown() override {
        if (overlays_at(layout.merged("alpha")) > 0) {
            ::umount2(layout.merged("alpha").c_str(), MNT_DETACH);
        }
        overlay::set_path_resolver(overlay::PathResolver::Auto);
    }

    // Lowers and a fuse-era upper with one of each kind of entry.
    void build_fuse_era() {
        make_dirs(base + "/keep");
        write_file(base + "/keep/k1", "k1");
        write_file(base + "/keep/k2", "k2");
        make_dirs(base + "/keep/sub");
        write_file(base + "/keep/sub/s1", "s1");
        make_dirs(base + "/keep/sub/deeper");
        write_file(base + "/keep/sub/deeper/d1", "d1");
        make_dirs(base + "/gone");
        write_file(base + "/gone/g1", "g1");
        make_dirs(base + "/opq");
        write_file(base + "/opq/o1", "o1");
        make_dirs(base + "/uo");
        write_file(base + "/uo/x", "x");
        write_file(base + "/c.txt", "c");
        write_file(base + "/pair", "lower pair");
        make_dirs(base + "/odir");

        fuse_whiteout(upper, "b.txt");     // base's b.txt: becomes char 0/0
        fuse_whiteout(upper, "never");     // nothing below: removed
        fuse_whiteout(upper, "gone");      // a lower directory
        kernel_whiteout(upper + "/c.txt"); // kernel form already: stays
        fuse_opaque_dir(upper + "/opq");   // opaque, and a file of its own
        write_file(upper + "/opq/n1", "n1");
        fuse_whiteout(upper + "/opq", "o1"); // in an opaque dir: nothing to hide
        make_dirs(upper + "/keep");          // merged with base/keep
        fuse_whiteout(upper + "/keep", "k1");
        make_dirs(upper + "/keep/sub"); // opaque both ways (privileged fuse)
        set_x(upper + "/keep/sub", "trusted.overlay.opaque", "y");
        write_file(upper + "/keep/sub/.wh..wh..opq", "");
        write_file(upper + "/keep/sub/t1", "t1");
        fuse_opaque_dir(upper + "/keep/sub/deeper"); // nested opaque
        make_dirs(upper + "/uo");                    // user.overlay.opaque only
        set_x(upper + "/uo", "user.overlay.opaque", "y");
        write_file(upper + "/log.txt", "log");
        set_x(upper + "/log.txt", "user.fuseoverlayfs.origin", "origin-bytes");
        set_x(upper + "/log.txt", "user.admin-note", "kept");
        write_file(upper + "/owned", "suid");
        ::chmod((upper + "/owned").c_str(), 0600);
        // Privileged fuse-overlayfs: only root can write security.*.
        set_x(upper + "/owned", "security.fuseoverlayfs.override_stat", "1000:1001:4755");
        write_file(upper + "/mine", "own suid"); // already set-uid, as the override says
        chown_to(upper + "/mine", kOwner, kOwner);
        ASSERT_EQ(::chmod((upper + "/mine").c_str(), 04755), 0);
        set_x(upper + "/mine", "user.fuseoverlayfs.override_stat", owner_ids() + ":4700");
        make_dirs(upper + "/odir"); // given to one of the owner's groups
        chown_to(upper + "/odir", kOwner, kOwner);
        set_x(upper + "/odir", "user.fuseoverlayfs.override_stat",
              std::to_string(kOwner) + ":" + std::to_string(kCrew) + ":40750");
        write_file(upper + "/pair", "crash leftover"); // .wh.pair beside pair
        fuse_whiteout(upper, "pair");
        write_file(upper + "/lonely", "hidden"); // .wh.lonely, nothing below
        fuse_whiteout(upper, "lonely");
        write_file(upper + "/hl1", "linked");
        ASSERT_EQ(::link((upper + "/hl1").c_str(), (upper + "/hl2").c_str()), 0);
        set_x(upper + "/hl1", "user.fuseoverlayfs.origin", "o");
        ASSERT_EQ(::symlink("/etc/passwd", (upper + "/esc").c_str()), 0);
        ASSERT_EQ(::symlink("../../../outside/secret.txt", (upper + "/esc2").c_str()), 0);
        ASSERT_EQ(::mkfifo((upper + "/fifo").c_str(), 0644), 0);
        // A symlink where the lowers have a directory, aimed at a directory
        // outside full of fuse-overlayfs artefacts: never followed.
        make_dirs(base + "/linkdir");
        make_dirs(layout.outside + "/victim");
        fuse_whiteout(layout.outside + "/victim", "a");
        set_x(layout.outside + "/victim", "user.fuseoverlayfs.opaque", "y");
        ASSERT_EQ(::symlink("../../../../outside/victim", (upper + "/linkdir").c_str()), 0);
    }

    // stop_after: throw after this many changes (0: never).
    // setid: the drop-in's Set unless a test says otherwise.
    overlay::MigrationReport migrate(bool dry_run, std::size_t stop_after = 0,
                                     overlay::SetIdBits setid = overlay::SetIdBits::Set) {
        return overlay::migrate_instance(layout.config, "alpha", dry_run, setid, {}, stop_after);
    }

    Layout layout;
    std::string base, mod, upper;
};

} // namespace l4m_migrate_test
