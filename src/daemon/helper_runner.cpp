#include "helper_runner.hpp"

#include "unique_fd.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace overlay::daemon {

namespace {

// The helper's record is small (a status lists at most 500 lowerdirs of at
// most PATH_MAX escaped bytes); anything far beyond is a runaway helper.
constexpr std::size_t kMaxRecord = 16 * 1024 * 1024;
constexpr int kResultFd = 3;

// The helper runs with root privileges: it gets no environment from the
// daemon's caller chain, only a fixed PATH.
char kPath[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

class SpawnFileActions {
  public:
    SpawnFileActions() {
        if (int err = posix_spawn_file_actions_init(&actions_); err != 0) {
            throw_errno(ErrorCode::Failed, "posix_spawn_file_actions_init", err);
        }
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
    SpawnAttr() {
        if (int err = posix_spawnattr_init(&attr_); err != 0) {
            throw_errno(ErrorCode::Failed, "posix_spawnattr_init", err);
        }
    }
    ~SpawnAttr() { posix_spawnattr_destroy(&attr_); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
    posix_spawnattr_t* get() { return &attr_; }

  private:
    posix_spawnattr_t attr_{};
};

void check(int err, const char* what) {
    if (err != 0) {
        throw_errno(ErrorCode::Failed, what, err);
    }
}

std::string describe_status(int status) {
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

} // namespace

HelperRunner::HelperRunner(std::string helper_path, std::string config_path,
                           std::chrono::milliseconds timeout)
    : helper_path_(std::move(helper_path)), config_path_(std::move(config_path)),
      timeout_(timeout) {}

HelperOutcome HelperRunner::run(std::string_view verb, std::string_view instance) const noexcept {
    try {
        return run_or_throw(verb, instance);
    } catch (const Error& e) {
        HelperOutcome out;
        out.error = ErrorCode::Failed;
        out.message =
            std::string(instance.empty() ? "list" : instance) + ": cannot run helper: " + e.what();
        return out;
    } catch (...) {
        HelperOutcome out;
        out.error = ErrorCode::Failed;
        out.message = "cannot run helper";
        return out;
    }
}

HelperOutcome HelperRunner::run_or_throw(std::string_view verb, std::string_view instance) const {
    const std::string subject =
        instance.empty() ? std::string(verb) : "instance " + std::string(instance);

    // CLOEXEC on both ends: the daemon spawns helpers from several threads
    // at once, and a write end leaked into another helper would hold our
    // EOF back until that one exits. Only the dup2 onto fd 3 in this child
    // clears the flag.
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw_errno(ErrorCode::Failed, "pipe2", errno);
    }
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    if (write_end.get() <= kResultFd) {
        // dup2(3, 3) would keep FD_CLOEXEC on old C libraries: move it away.
        write_end = UniqueFd(fcntl(write_end.get(), F_DUPFD_CLOEXEC, 10));
        if (!write_end) {
            throw_errno(ErrorCode::Failed, "fcntl(F_DUPFD_CLOEXEC)", errno);
        }
    }

    SpawnFileActions actions;
    check(posix_spawn_file_actions_addopen(actions.get(), STDIN_FILENO, "/dev/null", O_RDONLY, 0),
          "posix_spawn_file_actions_addopen");
    // Whatever the helper prints goes where its stderr goes (the journal).
    check(posix_spawn_file_actions_adddup2(actions.get(), STDERR_FILENO, STDOUT_FILENO),
          "posix_spawn_file_actions_adddup2");
    check(posix_spawn_file_actions_adddup2(actions.get(), write_end.get(), kResultFd),
          "posix_spawn_file_actions_adddup2");

    // The daemon blocks SIGTERM/SIGINT for its signalfd: the helper must
    // start with an empty mask and default dispositions, or it could not be
    // stopped.
    SpawnAttr attr;
    sigset_t empty;
    sigemptyset(&empty);
    sigset_t all;
    sigfillset(&all);
    check(posix_spawnattr_setsigmask(attr.get(), &empty), "posix_spawnattr_setsigmask");
    check(posix_spawnattr_setsigdefault(attr.get(), &all), "posix_spawnattr_setsigdefault");
    check(posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF),
          "posix_spawnattr_setflags");

    std::string fd_arg = std::to_string(kResultFd);
    std::vector<std::string> args{helper_path_,  "--config", config_path_,
                                  "--result-fd", fd_arg,     std::string(verb)};
    if (!instance.empty()) {
        args.emplace_back(instance);
    }
    std::vector<char*> argv;
    for (auto& a : args) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    char* envp[] = {kPath, nullptr};

    pid_t pid = -1;
    int err = posix_spawn(&pid, helper_path_.c_str(), actions.get(), attr.get(), argv.data(), envp);
    if (err != 0) {
        HelperOutcome out;
        out.message = subject + ": cannot start helper " + helper_path_ + ": " + strerror(err);
        return out;
    }
    write_end.reset();

    std::string record;
    bool overflow = false;
    bool timed_out = false;
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd pfd{read_end.get(), POLLIN, 0};
        int ready = left.count() > 0 ? ::poll(&pfd, 1, static_cast<int>(left.count())) : 0;
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready == 0) {
            timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        if (record.size() + static_cast<std::size_t>(n) > kMaxRecord) {
            overflow = true;
            ::kill(pid, SIGKILL);
            break;
        }
        record.append(buf, static_cast<std::size_t>(n));
    }
    read_end.reset();

    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            throw_errno(ErrorCode::Failed, "waitpid", errno);
        }
    }

    HelperOutcome out;
    if (timed_out) {
        out.message = subject + ": helper did not finish within " +
                      std::to_string(timeout_.count()) + " ms and was killed";
        return out;
    }
    if (overflow) {
        out.message = subject + ": helper wrote more than " + std::to_string(kMaxRecord) +
                      " bytes and was killed";
        return out;
    }
    auto parsed = protocol::parse_helper_result(record);
    const bool exited = WIFEXITED(status);
    const int code = exited ? WEXITSTATUS(status) : -1;
    if (parsed && parsed->ok && exited && code == 0) {
        out.ok = true;
        out.result = std::move(*parsed);
        return out;
    }
    if (parsed && !parsed->ok && exited && code == 1) {
        out.error = parsed->error;
        out.message = std::move(parsed->message);
        return out;
    }
    // Anything else is a helper that broke its contract: say how it ended,
    // never trust half a record.
    out.message = subject + ": helper " + describe_status(status) +
                  (parsed ? " with an inconsistent result record" : " without a result record");
    return out;
}

} // namespace overlay::daemon
