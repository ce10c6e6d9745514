#include "config.hpp"
#include "error.hpp"
#include "expect_error.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>
#include <linux/mount.h>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace overlay {
namespace {

constexpr const char* kFile = "/etc/left4me/overlay.conf";

using Paths = std::vector<std::string>;

Config parse(const std::string& text) {
    return parse_config(text, kFile);
}

void expect_defaults(const Config& c) {
    EXPECT_EQ(c.root, "/var/lib/left4me");
    EXPECT_EQ(c.instances_dir, "/var/lib/left4me/instances");
    EXPECT_EQ(c.allowed_lower_roots,
              (Paths{"/var/lib/left4me/installation", "/var/lib/left4me/overlays",
                     "/var/lib/left4me/global_overlay_cache", "/var/lib/left4me/workshop_cache"}));
    EXPECT_EQ(c.lowerdirs_key, "L4D2_LOWERDIRS");
    EXPECT_EQ(c.host_pid, 1);
    EXPECT_EQ(c.mount_options, "nosuid,nodev");
    EXPECT_EQ(c.mount_attr_flags, std::uint64_t{MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
    EXPECT_EQ(c.legacy_mount_flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV));
    EXPECT_EQ(c.mount_api, MountApi::Auto);
    EXPECT_EQ(c.lock_dir, "/run/left4me-overlay/locks");
}

TEST(Config, Defaults) {
    expect_defaults(default_config());
    expect_defaults(parse(""));
    expect_defaults(parse("# nothing set\n\n   \n\t# indented\n"));
}

TEST(Config, AllKeys) {
    const auto c = parse("# left4me\n"
                         "Root=/srv/l4m\n"
                         "  InstancesDir =  inst/a  \n"
                         "AllowedLowerRoots=installation   /opt/steam/l4d2\tcache/ws\n"
                         "LowerdirsKey=_MY_KEY1\n"
                         "HostPid=4194304\n"
                         "MountOptions=nosuid, nodev,noexec\n"
                         "MountApi=legacy\n"
                         "LockDir = /run/l4m/locks\n");
    EXPECT_EQ(c.root, "/srv/l4m");
    EXPECT_EQ(c.instances_dir, "/srv/l4m/inst/a");
    EXPECT_EQ(c.allowed_lower_roots,
              (Paths{"/srv/l4m/installation", "/opt/steam/l4d2", "/srv/l4m/cache/ws"}));
    EXPECT_EQ(c.lowerdirs_key, "_MY_KEY1");
    EXPECT_EQ(c.host_pid, 4194304);
    EXPECT_EQ(c.mount_options, "nosuid, nodev,noexec");
    EXPECT_EQ(c.mount_attr_flags,
              std::uint64_t{MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC});
    EXPECT_EQ(c.legacy_mount_flags, static_cast<unsigned long>(MS_NOSUID | MS_NODEV | MS_NOEXEC));
    EXPECT_EQ(c.mount_api, MountApi::Legacy);
    EXPECT_EQ(c.lock_dir, "/run/l4m/locks");
}

TEST(Config, LockDirIsNotJoinedOntoRootNorMovedByIt) {
    // Root's contents belong to a user; the locks must never be there by default.
    EXPECT_EQ(parse("Root=/srv/x\n").lock_dir, "/run/left4me-overlay/locks");
    EXPECT_EQ(parse("LockDir=/x\nRoot=/srv/x\n").lock_dir, "/x");
}

TEST(Config, RootAfterRelativeEntries) {
    const auto c = parse("InstancesDir=inst\nAllowedLowerRoots=a /abs/b\nRoot=/srv/x\n");
    EXPECT_EQ(c.root, "/srv/x");
    EXPECT_EQ(c.instances_dir, "/srv/x/inst");
    EXPECT_EQ(c.allowed_lower_roots, (Paths{"/srv/x/a", "/abs/b"}));
}

TEST(Config, DefaultRelativeEntriesFollowRoot) {
    const auto c = parse("Root=/srv/x\n");
    EXPECT_EQ(c.instances_dir, "/srv/x/instances");
    EXPECT_EQ(c.allowed_lower_roots,
              (Paths{"/srv/x/installation", "/srv/x/overlays", "/srv/x/global_overlay_cache",
                     "/srv/x/workshop_cache"}));
}

TEST(Config, RootSlash) {
    const auto c = parse("Root=/\nInstancesDir=inst\nAllowedLowerRoots=lower\n");
    EXPECT_EQ(c.instances_dir, "/inst");
    EXPECT_EQ(c.allowed_lower_roots, Paths{"/lower"});
}

TEST(Config, MountOptionsMapping) {
    struct Case {
        const char* value;
        std::uint64_t attr;
        unsigned long legacy;
    };
    const Case cases[] = {
        {"", 0, 0},
        {"nosuid", MOUNT_ATTR_NOSUID, MS_NOSUID},
        {"nodev", MOUNT_ATTR_NODEV, MS_NODEV},
        {"noexec", MOUNT_ATTR_NOEXEC, MS_NOEXEC},
        {"noatime", MOUNT_ATTR_NOATIME, MS_NOATIME},
        {"nodiratime", MOUNT_ATTR_NODIRATIME, MS_NODIRATIME},
        {"relatime", MOUNT_ATTR_RELATIME, MS_RELATIME},
        {"strictatime", MOUNT_ATTR_STRICTATIME, MS_STRICTATIME},
        {"noatime,nodiratime", MOUNT_ATTR_NOATIME | MOUNT_ATTR_NODIRATIME,
         MS_NOATIME | MS_NODIRATIME},
        {"nodev,nosuid,noexec,relatime,nodiratime",
         MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NODIRATIME,
         MS_NODEV | MS_NOSUID | MS_NOEXEC | MS_RELATIME | MS_NODIRATIME},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.value);
        const auto config = parse(std::string("MountOptions=") + c.value + "\n");
        EXPECT_EQ(config.mount_options, c.value);
        EXPECT_EQ(config.mount_attr_flags, c.attr);
        EXPECT_EQ(config.legacy_mount_flags, c.legacy);
    }
}

TEST(Config, MountApiValues) {
    EXPECT_EQ(parse("MountApi=auto").mount_api, MountApi::Auto);
    EXPECT_EQ(parse("MountApi=fd").mount_api, MountApi::LayerFds);
    EXPECT_EQ(parse("MountApi=string").mount_api, MountApi::LowerdirStrings);
    EXPECT_EQ(parse("MountApi=legacy").mount_api, MountApi::Legacy);
}

TEST(Config, HostPidValues) {
    EXPECT_EQ(parse("HostPid=1").host_pid, 1);
    EXPECT_EQ(parse("HostPid=12345").host_pid, 12345);
}

struct Bad {
    const char* what;
    std::string text;
    std::string fragment;
};

// n components of 200 bytes: 201 * n bytes.
std::string long_path(int n) {
    std::string path;
    for (int i = 0; i < n; ++i) {
        path += "/" + std::string(200, 'r');
    }
    return path;
}

void expect_refused(const Bad& c) {
    SCOPED_TRACE(c.what);
    // Every refusal names the file first, on one line.
    EXPECT_TRUE(l4m_test::throws_error([&] { parse(c.text); }, ErrorCode::BadConfig,
                                       std::string(kFile) + ":"));
    EXPECT_TRUE(l4m_test::throws_error([&] { parse(c.text); }, ErrorCode::BadConfig, c.fragment));
    try {
        parse(c.text);
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_TRUE(message.starts_with(std::string(kFile) + ":")) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
}

TEST(Config, RefusesBadSyntax) {
    const Bad cases[] = {
        {"unknown key", "# c\n\nFoo=1\n", "overlay.conf:3: unknown key 'Foo'"},
        {"key case", "root=/x\n", ":1: unknown key 'root'"},
        {"hostile key", "\x1b]0;x=1\n", "unknown key '\\x1b]0;x'"},
        {"duplicate", "Root=/a\n#\nRoot=/a\n", ":3: duplicate key 'Root' (first on line 1)"},
        {"duplicate after Root resolved", "MountApi=fd\nMountApi=fd\n", ":2: duplicate key"},
        {"no =", "Root\n", ":1: not a KEY=VALUE line"},
        {"no key", "=x\n", ":1: not a KEY=VALUE line"},
        {"NUL", std::string("Root=/a\0\n", 9), ":1: NUL byte"},
        {"CRLF", "Root=/a\r\n", ":1: carriage return"},
        // The bad value is reported on its own line even when Root comes later.
        {"line of a relative entry", "InstancesDir=a/../b\nRoot=/srv\n", ":1: InstancesDir"},
    };
    for (const auto& c : cases) {
        expect_refused(c);
    }
}

TEST(Config, RefusesBadPaths) {
    const Bad cases[] = {
        {"relative Root", "Root=var/lib\n", ":1: Root 'var/lib' is not absolute"},
        {"empty Root", "Root=\n", "Root '' is not absolute"},
        {"Root ..", "Root=/a/../b\n", "Root '/a/../b' has a '..' component"},
        {"Root .", "Root=/a/.\n", "has a '.' component"},
        {"Root //", "Root=/a//b\n", "contains '//'"},
        {"Root trailing /", "Root=/a/\n", "Root '/a/' ends with '/'"},
        {"Root comma", "Root=/a,b\n", "Root '/a,b' contains ','"},
        {"Root colon", "Root=/a:b\n", "Root '/a:b' contains ':'"},
        {"InstancesDir empty", "InstancesDir=\n", "InstancesDir '' is empty"},
        {"InstancesDir ..", "InstancesDir=../etc\n", "has a '..' component"},
        {"InstancesDir .", "InstancesDir=.\n", "has a '.' component"},
        {"InstancesDir trailing /", "InstancesDir=inst/\n", "ends with '/'"},
        {"InstancesDir //", "InstancesDir=/a//b\n", "contains '//'"},
        {"InstancesDir slash", "InstancesDir=/\n", "InstancesDir must not be '/'"},
        {"InstancesDir comma", "InstancesDir=a,b\n", "contains ','"},
        {"AllowedLowerRoots empty", "AllowedLowerRoots=\n",
         ":1: AllowedLowerRoots needs at least one"},
        {"AllowedLowerRoots blank", "AllowedLowerRoots= \t \n", "needs at least one"},
        {"AllowedLowerRoots slash", "AllowedLowerRoots=a /\n", "must not contain '/'"},
        {"AllowedLowerRoots Root slash .", "Root=/\nAllowedLowerRoots=.\n",
         ":2: AllowedLowerRoots '.' has a '.' component"},
        {"AllowedLowerRoots ..", "AllowedLowerRoots=a ../b\n",
         "AllowedLowerRoots '../b' has a '..' component"},
        {"AllowedLowerRoots colon", "AllowedLowerRoots=/a:/b\n", "contains ':'"},
        {"AllowedLowerRoots comma", "AllowedLowerRoots=a,b\n", "contains ','"},
        {"AllowedLowerRoots trailing /", "AllowedLowerRoots=/x/\n", "ends with '/'"},
        {"LockDir relative", "LockDir=locks\n", ":1: LockDir 'locks' is not absolute"},
        {"LockDir empty", "LockDir=\n", "LockDir '' is not absolute"},
        {"LockDir slash", "LockDir=/\n", "LockDir must not be '/'"},
        {"LockDir ..", "LockDir=/run/../tmp\n", "LockDir '/run/../tmp' has a '..' component"},
        {"LockDir trailing /", "LockDir=/run/l/\n", "ends with '/'"},
        {"LockDir colon", "LockDir=/run/a:b\n", "contains ':'"},
        {"joined too long", "Root=" + long_path(20) + "\nInstancesDir=" + std::string(200, 'i'),
         ":2: InstancesDir '" + std::string(200, 'i') +
             "' joined onto Root is longer than PATH_MAX"},
    };
    for (const auto& c : cases) {
        expect_refused(c);
    }
}

TEST(Config, RefusesBadValues) {
    const Bad cases[] = {
        {"LowerdirsKey empty", "LowerdirsKey=\n", "LowerdirsKey '' is not a shell variable name"},
        {"LowerdirsKey digit", "LowerdirsKey=1A\n", "not a shell variable name"},
        {"LowerdirsKey dash", "LowerdirsKey=A-B\n", "not a shell variable name"},
        {"LowerdirsKey space", "LowerdirsKey=A B\n", "not a shell variable name"},
        {"LowerdirsKey =", "LowerdirsKey=A=B\n", "LowerdirsKey 'A=B'"},
        {"HostPid empty", "HostPid=\n", "HostPid '' is not a number from 1 to 4194304"},
        {"HostPid 0", "HostPid=0\n", "HostPid '0' is not a number"},
        {"HostPid negative", "HostPid=-1\n", "HostPid '-1'"},
        {"HostPid plus", "HostPid=+1\n", "HostPid '+1'"},
        {"HostPid too big", "HostPid=4194305\n", "HostPid '4194305'"},
        {"HostPid overflow", "HostPid=99999999999999999999999\n", "not a number"},
        {"HostPid suffix", "HostPid=12x\n", "HostPid '12x'"},
        {"HostPid hex", "HostPid=0x10\n", "HostPid '0x10'"},
        {"HostPid inner space", "HostPid=1 2\n", "HostPid '1 2'"},
        {"MountOptions empty element", "MountOptions=nosuid,,nodev\n",
         ":1: MountOptions: empty option"},
        {"MountOptions trailing comma", "MountOptions=nosuid,\n", "empty option"},
        {"MountOptions unknown", "MountOptions=nosuid,suid\n",
         "MountOptions: unknown option 'suid'"},
        {"MountOptions ro", "MountOptions=ro\n", "unknown option 'ro'"},
        {"MountOptions case", "MountOptions=NOSUID\n", "unknown option 'NOSUID'"},
        {"MountOptions twice", "MountOptions=nosuid,nodev,nosuid\n", "'nosuid' given twice"},
        {"MountOptions two atime modes", "MountOptions=noatime,relatime\n",
         "'noatime' and 'relatime' both set the atime mode"},
        {"MountOptions strict and no", "MountOptions=strictatime,noatime\n", "atime mode"},
        {"MountApi empty", "MountApi=\n", "MountApi '' is not one of auto, fd, string, legacy"},
        {"MountApi case", "MountApi=Auto\n", "MountApi 'Auto'"},
        {"MountApi other", "MountApi=new\n", "MountApi 'new'"},
    };
    for (const auto& c : cases) {
        expect_refused(c);
    }
}

// load_config: these need root (chown, files owned by uid 0), as the tests run in CI.
class LoadConfig : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::geteuid() != 0) {
            GTEST_SKIP() << "needs root (chown, files owned by uid 0)";
        }
        char dir[] = "/tmp/l4m-config-test.XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        dir_ = dir;
    }
    void TearDown() override {
        if (!dir_.empty()) {
            std::filesystem::remove_all(dir_);
        }
    }

    std::string write(const std::string& name, const std::string& text, mode_t mode = 0644) {
        const auto path = dir_ + "/" + name;
        std::ofstream(path) << text;
        EXPECT_EQ(::chmod(path.c_str(), mode), 0);
        return path;
    }

    void expect_refused(const std::string& path, const std::string& fragment) {
        try {
            load_config(path);
            ADD_FAILURE() << path << " accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), ErrorCode::BadConfig);
            const std::string message = e.what();
            EXPECT_TRUE(message.starts_with(path + ":")) << message;
            EXPECT_NE(message.find(fragment), std::string::npos) << message;
        }
    }

    std::string dir_;
};

TEST_F(LoadConfig, ReadsRootOwnedFile) {
    const auto path = write("overlay.conf", "Root=/srv/x\nHostPid=7\n", 0600);
    const auto c = load_config(path);
    EXPECT_EQ(c.root, "/srv/x");
    EXPECT_EQ(c.host_pid, 7);
    EXPECT_EQ(c.mount_attr_flags, std::uint64_t{MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV});
}

TEST_F(LoadConfig, ParseErrorsNameTheFile) {
    expect_refused(write("overlay.conf", "\nBogus=1\n"), ":2: unknown key 'Bogus'");
}

TEST_F(LoadConfig, RefusesFileOwnedByOthers) {
    const auto path = write("overlay.conf", "Root=/srv/x\n");
    ASSERT_EQ(::chown(path.c_str(), 65534, 0), 0);
    expect_refused(path, "owned by uid 65534, not by root");
    expect_refused(path, "runs under sudo");
}

TEST_F(LoadConfig, RefusesGroupOrOtherWritableFile) {
    expect_refused(write("g.conf", "", 0664), "writable by group or others");
    expect_refused(write("o.conf", "", 0606), "writable by group or others");
}

TEST_F(LoadConfig, RefusesSymlink) {
    const auto target = write("real.conf", "Root=/srv/x\n");
    const auto link = dir_ + "/link.conf";
    ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
    expect_refused(link, "symbolic link");
}

TEST_F(LoadConfig, RefusesNonRegularFiles) {
    expect_refused(dir_, "not a regular file");
    const auto fifo = dir_ + "/fifo";
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    expect_refused(fifo, "not a regular file"); // and does not block opening it
}

TEST_F(LoadConfig, RefusesLargeFile) {
    expect_refused(write("big.conf", std::string(64 * 1024 + 1, '#')), "larger than 65536 bytes");
    EXPECT_NO_THROW(load_config(write("max.conf", std::string(64 * 1024, '#'))));
}

TEST_F(LoadConfig, MissingExplicitPathIsAnError) {
    expect_refused(dir_ + "/missing.conf", "cannot open: No such file or directory");
}

// Whatever this machine has in /etc/left4me, the check runs in a child in a
// private mount namespace where that folder is an empty tmpfs.
TEST(LoadDefaultConfig, MissingDefaultPathGivesDefaults) {
    if (::geteuid() != 0) {
        GTEST_SKIP() << "needs root (a private mount namespace)";
    }
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            ::_exit(2);
        }
        if (::access("/etc/left4me", F_OK) == 0 &&
            ::mount("tmpfs", "/etc/left4me", "tmpfs", 0, nullptr) != 0) {
            ::_exit(3);
        }
        try {
            const Config got = load_config(kDefaultConfigPath);
            const Config want = default_config();
            const bool same = got.root == want.root && got.instances_dir == want.instances_dir &&
                              got.allowed_lower_roots == want.allowed_lower_roots &&
                              got.lowerdirs_key == want.lowerdirs_key &&
                              got.host_pid == want.host_pid &&
                              got.mount_attr_flags == want.mount_attr_flags &&
                              got.legacy_mount_flags == want.legacy_mount_flags;
            ::_exit(same ? 0 : 4);
        } catch (...) {
            ::_exit(5);
        }
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0) << "2/3: namespace set-up failed, 4: not the defaults, "
                                         "5: load_config threw";
}

} // namespace
} // namespace overlay
