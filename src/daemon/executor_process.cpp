#include "executor_process.hpp"

#include "error.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace overlay::daemon {

namespace {

constexpr int kExecutorFd = 3;

// The executor runs with root privileges: it gets no environment from the
// daemon's caller chain, only a fixed PATH.
char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

void check(int err, const char* what) {
    if (err != 0) {
        throw_errno(ErrorCode::Failed, what, err);
    }
}

class SpawnFileActions {
  public:
    SpawnFileActions() {
        check(posix_spawn_file_actions_init(&actions_), "posix_spawn_file_actions_init");
    }
    ~SpawnFileActions() { posix_spawn_file_actions_destroy(&actions_); }
    SpawnFileActions(const SpawnFileActions&) = delete;
    SpawnFileActions& operator=(const SpawnFileActions&) = delete;
    posix_spawn_file_actions_t* get() { return &actions_; }

  private:
    posix_spawn_file_actions_t actions_{};
};

class SpawnAttr {
  public:
    SpawnAttr() { check(posix_spawnattr_init(&attr_), "posix_spawnattr_init"); }
    ~SpawnAttr() { posix_spawnattr_destroy(&attr_); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
    posix_spawnattr_t* get() { return &attr_; }

  private:
    posix_spawnattr_t attr_{};
};

} // namespace

std::string describe_wait_status(int status) {
    if (WIFEXITED(status)) {
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        const char* name = sigabbrev_np(WTERMSIG(status));
        return "was killed by signal " +
               (name != nullptr ? std::string("SIG") + name : std::to_string(WTERMSIG(status)));
    }
    return "ended with wait status " + std::to_string(status);
}

ExecutorProcess::ExecutorProcess(const std::string& executor_path, const std::string& config_path,
                                 bool watch, bool migrate) {
    // CLOEXEC on both ends: executors are started from several threads, and
    // an end leaked into another executor would keep our socket open after
    // its own executor died. Only the dup2 onto fd 3 in the child clears it.
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
        throw_errno(ErrorCode::Failed, "socketpair", errno);
    }
    socket_ = UniqueFd(fds[0]);
    UniqueFd child_end(fds[1]);
    if (child_end.get() <= kExecutorFd) {
        // dup2(3, 3) would keep FD_CLOEXEC: move it away first.
        child_end = UniqueFd(::fcntl(child_end.get(), F_DUPFD_CLOEXEC, 10));
        if (!child_end) {
            throw_errno(ErrorCode::Failed, "fcntl(F_DUPFD_CLOEXEC)", errno);
        }
    }

    SpawnFileActions actions;
    check(posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0),
          "posix_spawn_file_actions_addopen");
    // Whatever the executor prints goes where our stderr goes (the journal).
    check(posix_spawn_file_actions_adddup2(actions.get(), STDERR_FILENO, STDOUT_FILENO),
          "posix_spawn_file_actions_adddup2");
    check(posix_spawn_file_actions_adddup2(actions.get(), child_end.get(), kExecutorFd),
          "posix_spawn_file_actions_adddup2");

    // The daemon blocks SIGTERM/SIGINT for its signalfd: the executor must
    // start with an empty mask and default dispositions, or it could not
    // be stopped.
    SpawnAttr attr;
    sigset_t empty;
    sigemptyset(&empty);
    sigset_t all;
    sigfillset(&all);
    check(posix_spawnattr_setsigmask(attr.get(), &empty), "posix_spawnattr_setsigmask");
    check(posix_spawnattr_setsigdefault(attr.get(), &all), "posix_spawnattr_setsigdefault");
    check(posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF),
          "posix_spawnattr_setflags");

    std::vector<std::string> args{executor_path, "--config", config_path, "--serve",
                                  std::to_string(kExecutorFd)};
    if (watch) {
        args.emplace_back("--watch");
    }
    if (migrate) {
        args.emplace_back("--migrate"); // it keeps CAP_CHOWN, CAP_FOWNER
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    char* envp[] = {kPath, nullptr};

    const int err =
        posix_spawn(&pid_, executor_path.c_str(), actions.get(), attr.get(), argv.data(), envp);
    if (err != 0) {
        pid_ = -1;
        throw Error(ErrorCode::Failed, "cannot start executor " + printable(executor_path) + ": " +
                                           std::strerror(err));
    }
    // Unreaped, the pid cannot be reused: this pidfd is surely that child.
    pidfd_ = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0)));
}

ExecutorProcess::~ExecutorProcess() {
    if (pid_ > 0 && !reaped_) {
        socket_.reset();
        reap(std::chrono::milliseconds(2000));
    }
}

std::string ExecutorProcess::kill_and_reap() noexcept {
    if (pid_ <= 0 || reaped_) {
        return "was already gone";
    }
    ::kill(pid_, SIGKILL);
    return reap(std::chrono::milliseconds(0));
}

std::string ExecutorProcess::reap(std::chrono::milliseconds grace) noexcept {
    if (pid_ <= 0 || reaped_) {
        return "was already gone";
    }
    socket_.reset();
    if (pidfd_) {
        pollfd pfd{pidfd_.get(), POLLIN, 0};
        int ready = 0;
        do {
            ready = ::poll(&pfd, 1, static_cast<int>(grace.count()));
        } while (ready < 0 && errno == EINTR);
        if (ready == 0) {
            ::kill(pid_, SIGKILL);
        }
    }
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
        if (errno != EINTR) {
            reaped_ = true;
            return "could not be waited for: " + std::string(std::strerror(errno));
        }
    }
    reaped_ = true;
    return describe_wait_status(status);
}

} // namespace overlay::daemon
