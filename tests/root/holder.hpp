// A child process that holds something (fds, flocks, a namespace) for a
// test, for as long as the test wants it held.
#pragma once

#include <fcntl.h>
#include <functional>
#include <stdexcept>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

namespace l4m_test {

// A child process that does `setup` (which returns false on failure),
// reports, then holds on (and so keeps its fds and flocks) until released.
class Holder {
  public:
    explicit Holder(const std::function<bool()>& setup) {
        int ready[2], release[2];
        if (::pipe2(ready, O_CLOEXEC) != 0 || ::pipe2(release, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe");
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(ready[0]);
            ::close(release[1]);
            close_all_but(ready[1], release[0]);
            const char ok = setup() ? 'y' : 'n';
            if (::write(ready[1], &ok, 1) != 1) {
                ::_exit(1);
            }
            char byte;
            while (::read(release[0], &byte, 1) > 0) {
            }
            ::_exit(0);
        }
        ::close(ready[1]);
        ::close(release[0]);
        release_ = release[1];
        char ok = 'n';
        ready_ = ::read(ready[0], &ok, 1) == 1 && ok == 'y';
        ::close(ready[0]);
    }
    ~Holder() { release(); }
    Holder(const Holder&) = delete;
    Holder& operator=(const Holder&) = delete;
    bool ready() const { return ready_; }
    pid_t pid() const { return pid_; }
    void release() {
        if (release_ >= 0) {
            ::close(release_);
            release_ = -1;
            ::waitpid(pid_, nullptr, 0);
        }
    }

  private:
    // Another holder's release pipe, inherited, would keep it from ever
    // seeing its end.
    static void close_all_but(int a, int b) {
        if (a > b) {
            std::swap(a, b);
        }
        ::close_range(3, a - 1, 0);
        ::close_range(a + 1, b - 1, 0);
        ::close_range(b + 1, ~0U, 0);
    }

    pid_t pid_ = -1;
    int release_ = -1;
    bool ready_ = false;
};

} // namespace l4m_test
