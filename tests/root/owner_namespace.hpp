// The instance owner with a user and mount namespace of its own, made
// before the service mounts (as `unshare -Urm` would): a child process
// that drops to an unprivileged uid, unshares CLONE_NEWUSER|CLONE_NEWNS,
// makes its mounts private, then renames, makes and removes directories
// on command. In its namespace the host's overlays made later are no
// mount points, so it can move or remove their directories.
#pragma once

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace l4m_test {

class OwnerNamespace {
  public:
    static constexpr uid_t kOwner = 4321;

    OwnerNamespace() {
        int to[2], from[2];
        if (::pipe2(to, O_CLOEXEC) != 0 || ::pipe2(from, O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe");
        }
        pid_ = ::fork();
        if (pid_ == 0) {
            ::close(to[1]);
            ::close(from[0]);
            serve(to[0], from[1]);
        }
        ::close(to[0]);
        ::close(from[1]);
        to_ = to[1];
        from_ = from[0];
        if (answer() != 0) {
            throw std::runtime_error("owner namespace: set-up failed");
        }
    }
    ~OwnerNamespace() {
        ::close(to_);
        ::close(from_);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    OwnerNamespace(const OwnerNamespace&) = delete;
    OwnerNamespace& operator=(const OwnerNamespace&) = delete;

    // 0 or the errno of the call, made as the owner in its namespace.
    int rename(const std::string& from, const std::string& to) { return ask('r', from, to); }
    int mkdir(const std::string& path) { return ask('m', path, ""); }
    int rmdir(const std::string& path) { return ask('d', path, ""); }

  private:
    struct Command {
        char op;
        char a[1536];
        char b[1536];
    };

    [[noreturn]] static void serve(int in, int out) {
        int err = 0;
        if (::setgroups(0, nullptr) != 0 || ::setresgid(kOwner, kOwner, kOwner) != 0 ||
            ::setresuid(kOwner, kOwner, kOwner) != 0 || ::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            err = errno == 0 ? EPERM : errno;
        }
        if (::write(out, &err, sizeof err) != sizeof err || err != 0) {
            ::_exit(1);
        }
        Command c{};
        while (::read(in, &c, sizeof c) == static_cast<ssize_t>(sizeof c)) {
            int rc = -1;
            switch (c.op) {
            case 'r':
                rc = ::rename(c.a, c.b);
                break;
            case 'm':
                rc = ::mkdir(c.a, 0755);
                break;
            case 'd':
                rc = ::rmdir(c.a);
                break;
            }
            err = rc == 0 ? 0 : errno;
            if (::write(out, &err, sizeof err) != sizeof err) {
                ::_exit(1);
            }
        }
        ::_exit(0);
    }

    int ask(char op, const std::string& a, const std::string& b) {
        Command c{};
        c.op = op;
        if (a.size() >= sizeof c.a || b.size() >= sizeof c.b) {
            throw std::runtime_error("owner namespace: path too long");
        }
        std::memcpy(c.a, a.c_str(), a.size() + 1);
        std::memcpy(c.b, b.c_str(), b.size() + 1);
        if (::write(to_, &c, sizeof c) != static_cast<ssize_t>(sizeof c)) {
            throw std::runtime_error("owner namespace: gone");
        }
        return answer();
    }

    int answer() {
        int err = 0;
        if (::read(from_, &err, sizeof err) != sizeof err) {
            throw std::runtime_error("owner namespace: no answer");
        }
        return err;
    }

    pid_t pid_ = -1;
    int to_ = -1;
    int from_ = -1;
};

} // namespace l4m_test
