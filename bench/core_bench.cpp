// l4m-bench-core: the floor under every other figure in bench/. The core's
// own mount_instance/unmount_instance and its taint scan, in this process:
// no bus, no polkit, no exec, no sudo. Prints one duration in nanoseconds
// per line on stdout; bench/bench.py computes the statistics.
//
//   l4m-bench-core --config CONF pair NAME N      mount+unmount pairs
//   l4m-bench-core --config CONF mount NAME N     mount alone (unmount untimed)
//   l4m-bench-core --config CONF forkpair NAME N  each operation in a fork()ed
//                                                 child: the shape of a
//                                                 fork-per-operation executor,
//                                                 without the exec
//   l4m-bench-core --config CONF vforkpair NAME N the same with clone(CLONE_VM |
//                                                 CLONE_VFORK): no page-table
//                                                 copy, the parent waits
//   l4m-bench-core taint UPPER N                  check_upper_untainted
//   l4m-bench-core --config CONF migrate NAME N   migrate_instance, N real runs
//   l4m-bench-core --config CONF migrate-dry NAME N  N dry runs
//                                                 (after each: a "# migrate"
//                                                 line with the report's counts)
//
// Runs as root inside the bench fixture's mount namespace.
#include "config.hpp"
#include "error.hpp"
#include "host_namespace.hpp"
#include "migrate.hpp"
#include "operations.hpp"
#include "taint_scan.hpp"
#include "unique_fd.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <sched.h>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

long long ns_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

// Collected first and printed at the end, so that writing to the pipe is
// not inside any timed region.
void print_all(const std::vector<long long>& samples) {
    for (long long ns : samples) {
        std::printf("%lld\n", ns);
    }
}

int usage() {
    std::fprintf(stderr, "usage: l4m-bench-core --config CONF pair|mount NAME N\n"
                         "       l4m-bench-core taint UPPER N\n");
    return 2;
}

int run(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    std::string config_path;
    if (args.size() >= 2 && args[0] == "--config") {
        config_path = args[1];
        args.erase(args.begin(), args.begin() + 2);
    }
    if (args.size() != 3) {
        return usage();
    }
    const std::string_view mode = args[0];
    const std::string target(args[1]);
    const int n = std::atoi(std::string(args[2]).c_str());
    std::vector<long long> samples;
    samples.reserve(static_cast<std::size_t>(n));

    if (mode == "taint") {
        for (int i = 0; i < n; ++i) {
            // A fresh descriptor each time, as the helper has: the one
            // opened before was read to its end.
            overlay::UniqueFd upper(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            if (!upper) {
                std::perror(target.c_str());
                return 1;
            }
            const auto start = Clock::now();
            overlay::check_upper_untainted(upper.get(), target, "bench");
            samples.push_back(ns_since(start));
        }
        print_all(samples);
        return 0;
    }
    if (config_path.empty() ||
        (mode != "pair" && mode != "mount" && mode != "forkpair" && mode != "vforkpair" &&
         mode != "migrate" && mode != "migrate-dry")) {
        return usage();
    }
    // Once, outside the timed loop: the helper pays the config load and the
    // setns per call, which the bus and sudo figures include; the floor is
    // the core's own work.
    const overlay::Config config = overlay::load_config(config_path);
    overlay::enter_host_mount_namespace(config.host_pid);
    if (mode == "migrate" || mode == "migrate-dry") {
        std::vector<std::string> counts;
        for (int i = 0; i < n; ++i) {
            const auto start = Clock::now();
            const auto report = overlay::migrate_instance(config, target, mode == "migrate-dry",
                                                          overlay::SetIdBits::Refuse);
            samples.push_back(ns_since(start));
            counts.push_back("# migrate entries " + std::to_string(report.totals.entries) +
                             " changes " + std::to_string(report.totals.changes()) + " verified " +
                             std::to_string(report.verified_entries));
        }
        print_all(samples);
        for (const auto& c : counts) {
            std::printf("%s\n", c.c_str());
        }
        return 0;
    }
    if (mode == "forkpair") {
        // This process is single-threaded, so the child may do anything.
        auto in_child = [&](void (*op)(const overlay::Config&, std::string_view)) {
            const pid_t pid = ::fork();
            if (pid == 0) {
                try {
                    op(config, target);
                    std::_Exit(0);
                } catch (...) {
                    std::_Exit(1);
                }
            }
            int status = 0;
            if (pid < 0 || ::waitpid(pid, &status, 0) != pid || status != 0) {
                throw overlay::Error(overlay::ErrorCode::Failed, "forked operation failed");
            }
        };
        for (int i = 0; i < n; ++i) {
            const auto start = Clock::now();
            in_child(overlay::mount_instance);
            in_child(overlay::unmount_instance);
            samples.push_back(ns_since(start));
        }
        print_all(samples);
        return 0;
    }
    if (mode == "vforkpair") {
        // The child shares our memory and we are suspended until it exits,
        // as inside posix_spawn: what fork() costs beyond that here is the
        // copy of the page tables and the copy-on-write faults after it.
        struct Job {
            const overlay::Config* config;
            const std::string* name;
            void (*op)(const overlay::Config&, std::string_view);
        };
        static std::vector<char> stack(1 << 20);
        auto in_child = [&](void (*op)(const overlay::Config&, std::string_view)) {
            Job job{&config, &target, op};
            const pid_t pid = ::clone(
                [](void* arg) -> int {
                    auto* j = static_cast<Job*>(arg);
                    try {
                        j->op(*j->config, *j->name);
                        return 0;
                    } catch (...) {
                        return 1;
                    }
                },
                stack.data() + stack.size(), CLONE_VM | CLONE_VFORK | SIGCHLD, &job);
            int status = 0;
            if (pid < 0 || ::waitpid(pid, &status, 0) != pid || status != 0) {
                throw overlay::Error(overlay::ErrorCode::Failed, "vforked operation failed");
            }
        };
        for (int i = 0; i < n; ++i) {
            const auto start = Clock::now();
            in_child(overlay::mount_instance);
            in_child(overlay::unmount_instance);
            samples.push_back(ns_since(start));
        }
        print_all(samples);
        return 0;
    }
    for (int i = 0; i < n; ++i) {
        const auto start = Clock::now();
        overlay::mount_instance(config, target);
        if (mode == "mount") {
            samples.push_back(ns_since(start));
            overlay::unmount_instance(config, target);
        } else {
            overlay::unmount_instance(config, target);
            samples.push_back(ns_since(start));
        }
    }
    print_all(samples);
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const overlay::Error& e) {
        std::fprintf(stderr, "l4m-bench-core: %s\n", e.what());
        return 1;
    }
}
