// Why the service reads mountinfo instead of the statmount table: the
// reason is the failing call and its errno text, so that a log reader can
// tell a seccomp filter that predates statmount from an old kernel.
#include "config.hpp"
#include "kernel_mount_api.hpp"
#include "mount_table.hpp"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace overlay {
namespace {

// What statmount_unusable_reason() says in a child whose seccomp filter fails
// `nr` with `err` (the way systemd 252's filters treat system calls it does
// not know: the unit's SystemCallErrorNumber=EPERM, ENOSYS in nspawn's),
// read back over a pipe.
std::string reason_with_syscall_denied(long nr, int err) {
    int fds[2];
    if (::pipe(fds) != 0) {
        return "pipe failed";
    }
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        sock_filter code[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<__u32>(nr), 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | static_cast<__u32>(err)),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
        std::string out;
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
            ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
            out = std::string("seccomp: ") + std::strerror(errno);
        } else {
            out = statmount_unusable_reason();
        }
        const auto n = ::write(fds[1], out.data(), out.size());
        ::_exit(n == static_cast<ssize_t>(out.size()) ? 0 : 1);
    }
    ::close(fds[1]);
    std::string got;
    char buf[256];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
        got.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return got;
}

#if defined(__x86_64__)
TEST(MountTableReason, ASeccompFilterDenyingListmountIsNamed) {
    EXPECT_EQ(reason_with_syscall_denied(kernel::kSysListmount, EPERM),
              "listmount: Operation not permitted");
}

TEST(MountTableReason, ASeccompFilterDenyingStatmountIsNamed) {
    // listmount passes (on Linux 6.8+), statmount is the call that fails.
    const auto reason = reason_with_syscall_denied(kernel::kSysStatmount, ENOSYS);
    if (reason.starts_with("listmount:")) {
        GTEST_SKIP() << "this kernel has no listmount: " << reason;
    }
    EXPECT_EQ(reason, "statmount: Function not implemented");
}
#endif

TEST(MountTableReason, ForcedTablesSayWhy) {
    Config config;
    config.mount_table = MountTableApi::Mountinfo;
    EXPECT_EQ(mount_table_kind(config), MountTableKind::Mountinfo);
    EXPECT_EQ(mountinfo_reason(config), "MountTable=mountinfo");
    config.mount_table = MountTableApi::Statmount;
    EXPECT_EQ(mountinfo_reason(config), "");
}

TEST(MountTableReason, AutoIsEmptyExactlyWhenStatmountIsUsed) {
    const Config config;
    EXPECT_EQ(mountinfo_reason(config).empty(),
              mount_table_kind(config) == MountTableKind::Statmount);
}

} // namespace
} // namespace overlay
