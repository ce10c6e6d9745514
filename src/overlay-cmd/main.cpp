// left4me-overlay: runs as root (through sudo, or spawned by
// left4me-overlayd) on behalf of callers who are not. It enters the host
// mount namespace first, then does one operation through the core.
#include "command_line.hpp"
#include "config.hpp"
#include "error.hpp"
#include "helper_protocol.hpp"
#include "host_namespace.hpp"
#include "instance_name.hpp"
#include "operations.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <iostream>
#include <stdexcept>
#include <string>
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

void write_all(int fd, const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return; // the daemon went away; our exit status still tells
        }
        done += static_cast<std::size_t>(n);
    }
}

// For the daemon the record is the report (it logs it, with the caller's
// identity); a second copy on stderr would only repeat it without fields.
void report_failure(const cmd::CommandLine& cl, const Error& e) {
    if (cl.result_fd >= 0) {
        write_all(cl.result_fd, protocol::format_error(e));
    } else {
        std::cerr << "left4me-overlay: " << e.what() << "\n";
    }
}

std::string run(const cmd::CommandLine& cl, const Config& config) {
    switch (cl.verb) {
    case Verb::Mount:
        mount_instance(config, cl.name);
        return protocol::format_ok();
    case Verb::Unmount:
        unmount_instance(config, cl.name);
        return protocol::format_ok();
    case Verb::Status: {
        auto status = instance_status(config, cl.name);
        if (cl.result_fd < 0) {
            std::cout << "instance: " << cl.name << "\n"
                      << "mounted: " << (status.mounted ? "yes" : "no") << "\n"
                      << "merged: " << printable(status.merged) << "\n";
            for (const auto& lower : status.lowerdirs) {
                std::cout << "lowerdir: " << printable(lower) << "\n";
            }
        }
        return protocol::format_status(status.mounted, status.merged, status.lowerdirs);
    }
    case Verb::List: {
        auto instances = list_instances(config);
        if (cl.result_fd < 0) {
            for (const auto& [name, mounted] : instances) {
                std::cout << name << (mounted ? " mounted" : " not-mounted") << "\n";
            }
        }
        return protocol::format_list(instances);
    }
    }
    return protocol::format_ok();
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
    if (cl.result_fd >= 0 && ::fcntl(cl.result_fd, F_GETFD) < 0) {
        std::cerr << "left4me-overlay: --result-fd " << cl.result_fd << " is not open\n";
        return 2;
    }
    try {
        // Name syntax first: it needs no privilege and touches nothing.
        if (cl.verb != Verb::List) {
            validate_instance_name(cl.name);
        }
        if (::geteuid() != 0) {
            throw Error(ErrorCode::Failed, "left4me-overlay must run as root (use sudo, or "
                                           "left4me-overlayctl through the D-Bus service)");
        }
        const Config config = load_config(cl.config_path);
        enter_host_mount_namespace(config.host_pid);
        const std::string record = run(cl, config);
        if (cl.result_fd >= 0) {
            write_all(cl.result_fd, record);
        }
        return 0;
    } catch (const Error& e) {
        report_failure(cl, e);
        return 1;
    } catch (const std::exception& e) {
        report_failure(cl, Error(ErrorCode::Failed, printable(e.what())));
        return 1;
    }
}
