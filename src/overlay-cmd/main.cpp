// left4me-overlay: runs as root on behalf of callers who are not. Through
// sudo it enters the host mount namespace, does one operation through the
// core and exits; started by left4me-overlayd with --serve it is that
// daemon's persistent executor (serve.hpp).
#include "command_line.hpp"
#include "config.hpp"
#include "error.hpp"
#include "host_namespace.hpp"
#include "instance_name.hpp"
#include "migrate.hpp"
#include "operations.hpp"
#include "serve.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <iostream>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

using namespace overlay;
using overlay::cmd::Verb;

// With fd 0, 1 or 2 closed by a hostile parent, the next file we open would
// take its number, and our messages would be written into it.
void ensure_standard_fds() {
    for (int fd = 0; fd < 3; ++fd) {
        if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
            int null = ::open("/dev/null", O_RDWR);
            if (null != fd) {
                std::_Exit(2);
            }
        }
    }
}

void report_failure(const Error& e) {
    std::cerr << "left4me-overlay: " << e.what() << "\n";
}

void run(const cmd::CommandLine& cl, const Config& config) {
    switch (cl.verb) {
    case Verb::Mount:
        mount_instance(config, cl.name);
        return;
    case Verb::Unmount:
        unmount_instance(config, cl.name);
        return;
    case Verb::Status: {
        auto status = instance_status(config, cl.name);
        std::cout << "instance: " << cl.name << "\n"
                  << "mounted: " << (status.mounted ? "yes" : "no") << "\n"
                  << "merged: " << printable(status.merged) << "\n";
        for (const auto& lower : status.lowerdirs) {
            std::cout << "lowerdir: " << printable(lower) << "\n";
        }
        return;
    }
    case Verb::Migrate: {
        // Each change is printed as it is made, so that a run that fails
        // half way (verification, a refusal deep in the tree) still shows
        // what it changed; the error then follows on stderr. Every line is
        // already printable().
        const auto report =
            // The drop-in runs as root outside the unit: it may set the
            // set-id bits a security.* override asks for.
            migrate_instance(config, cl.name, cl.dry_run, SetIdBits::Set,
                             [](const std::string& line) {
                                 std::cout << line << "\n" << std::flush;
                             });
        for (const auto& line : report.summary_lines()) {
            std::cout << line << "\n";
        }
        return;
    }
    case Verb::List:
        for (const auto& [name, mounted] : list_instances(config)) {
            std::cout << name << (mounted ? " mounted" : " not-mounted") << "\n";
        }
        return;
    }
}

} // namespace

int main(int argc, char** argv) {
    ensure_standard_fds();
    ::umask(077);
    cmd::CommandLine cl;
    try {
        cl = cmd::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const std::invalid_argument& e) {
        std::cerr << "left4me-overlay: " << e.what() << "\n" << cmd::kUsage;
        return 2;
    }
    if (cl.help) {
        std::cout << cmd::kUsage;
        return 0;
    }
    if (cl.serve_fd >= 0) {
        if (::geteuid() != 0) {
            std::cerr << "left4me-overlay: --serve must run as root\n";
            return 2;
        }
        int type = 0;
        socklen_t len = sizeof type;
        if (::getsockopt(cl.serve_fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
            type != SOCK_SEQPACKET) {
            std::cerr << "left4me-overlay: --serve " << cl.serve_fd
                      << " is not a SOCK_SEQPACKET socket\n";
            return 2;
        }
        // Nothing the executor might start inherits the daemon's socket.
        ::fcntl(cl.serve_fd, F_SETFD, FD_CLOEXEC);
        return cmd::serve({cl.serve_fd, cl.config_path, cl.watch, cl.migrate});
    }
    try {
        // Name syntax first: it needs no privilege and touches nothing.
        if (vocabulary::verb_info(cl.verb).takes_instance) {
            validate_instance_name(cl.name);
        }
        if (::geteuid() != 0) {
            throw Error(ErrorCode::Failed, "left4me-overlay must run as root (use sudo, or "
                                           "left4me-overlayctl through the D-Bus service)");
        }
        const Config config = load_config(cl.config_path);
        enter_host_mount_namespace(config.host_pid);
        run(cl, config);
        return 0;
    } catch (const Error& e) {
        report_failure(e);
        return 1;
    } catch (const std::exception& e) {
        report_failure(Error(ErrorCode::Failed, printable(e.what())));
        return 1;
    }
}
