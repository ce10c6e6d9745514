// One running executor: left4me-overlay exec'd by posix_spawn (a clean
// single-threaded image; the multi-threaded daemon is never forked into),
// `EXECUTOR --config CONFIG --serve 3 [--watch|--migrate]`, with one end of a
// SOCK_SEQPACKET socketpair as its fd 3. Owns the socket and the child:
// destroying it closes the socket (the executor exits on EOF), waits a
// little, then kills and reaps.
#pragma once

#include "unique_fd.hpp"

#include <chrono>
#include <string>
#include <sys/types.h>

namespace overlay::daemon {

class ExecutorProcess {
  public:
    // Throws overlay::Error(Failed) naming the executor when it cannot start.
    ExecutorProcess(const std::string& executor_path, const std::string& config_path, bool watch,
                    bool migrate = false);
    ~ExecutorProcess();
    ExecutorProcess(const ExecutorProcess&) = delete;
    ExecutorProcess& operator=(const ExecutorProcess&) = delete;

    pid_t pid() const noexcept { return pid_; }
    int socket() const noexcept { return socket_.get(); }

    // SIGKILL, reap, and say how it ended ("was killed by signal SIGKILL").
    std::string kill_and_reap() noexcept;
    // After its socket closed: reap (waiting at most `grace`, then killing)
    // and say how it ended.
    std::string reap(std::chrono::milliseconds grace) noexcept;

  private:
    pid_t pid_ = -1;
    UniqueFd pidfd_;
    UniqueFd socket_;
    bool reaped_ = false;
};

// "exited with status 1", "was killed by signal SIGSEGV", ...
std::string describe_wait_status(int status);

} // namespace overlay::daemon
