#include "polkit_agent.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <poll.h>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace overlay::ctl {

namespace {

// How long to wait for the agent to register. pkttyagent registers in well
// under a second; an agent that hangs must not hang us: the call then goes
// ahead and polkit reports that it found no agent.
constexpr int kRegisterTimeoutMs = 25000;

class Fd {
  public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    void reset() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = -1;
    }

  private:
    int fd_;
};

} // namespace

PolkitAgent::PolkitAgent() {
    if (::geteuid() == 0 || !::isatty(STDIN_FILENO)) {
        return;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return; // no agent: the call reports what polkit makes of that
    }
    Fd read_end(fds[0]);
    Fd write_end(fds[1]);

    // Everything the child needs is made before fork: after it, only
    // async-signal-safe calls.
    const pid_t parent = ::getpid();
    const std::string notify_fd = std::to_string(write_end.get());
    const std::string process = std::to_string(parent);
    // No --fallback (which systemd passes): polkitd 122 does not use a
    // fallback agent registered for a process (checked: the call is then
    // refused as if there were no agent). A process-scoped agent replaces
    // nobody's: it serves this process only.
    const char* const argv[] = {L4M_PKTTYAGENT, "--notify-fd",   notify_fd.c_str(),
                                "--process",    process.c_str(), nullptr};

    const pid_t pid = ::fork();
    if (pid < 0) {
        return;
    }
    if (pid == 0) {
        // The agent must not outlive us, even if we are killed.
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (::getppid() != parent) {
            ::_exit(1);
        }
        // The notify fd is the one descriptor it inherits besides 0-2
        // (which are the terminal it asks on); the others are O_CLOEXEC.
        ::fcntl(write_end.get(), F_SETFD, 0);
        ::execv(argv[0], const_cast<char* const*>(argv));
        ::_exit(127);
    }
    pid_ = pid;
    write_end.reset();

    // The agent closes (or writes to) the notify fd once it has registered;
    // it also closes when the agent exits.
    pollfd pfd{read_end.get(), POLLIN, 0};
    int r = 0;
    do {
        r = ::poll(&pfd, 1, kRegisterTimeoutMs);
    } while (r < 0 && errno == EINTR);
}

PolkitAgent::~PolkitAgent() {
    if (pid_ <= 0) {
        return;
    }
    ::kill(pid_, SIGTERM);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
}

} // namespace overlay::ctl
