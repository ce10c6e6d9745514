// l4m-bench-client: the D-Bus side of bench/. A compiled client built from
// the generated proxy (overlay1_dbus_proxy), so that a figure is the
// service's cost and not a client's start-up (busctl or gdbus per call
// would add an exec, a bus handshake and, for busctl, introspection).
// The connection is made once per client, outside every timed region.
// Durations go to stdout, one per line, in nanoseconds; bench/bench.py
// does the statistics.
//
//   pairs NAME N              Mount+Unmount of NAME, N times (1 warm-up pair)
//   mount NAME N              Mount timed, Unmount untimed
//   status NAME N             GetStatus of NAME, N times (1 warm-up call)
//   list N                    ListInstances, N times (1 warm-up call)
//                             These four end with a line "# processes D": the
//                             delta of the `processes` line of /proc/stat
//                             (every fork/clone on the machine) over the
//                             timed loop only.
//   mountloop NAME            Mount (timed) + Unmount until stdin says
//                             "stop"; waits for "go" first; one line per
//                             Mount: ns, or "E <error name>" (the flood's
//                             victim: a member's Mount while others flood)
//   flood NAME N CONNS        N calls with NO_REPLY_EXPECTED, GetStatus(NAME)
//                             and Mount(NAME) alternately, spread over CONNS
//                             connections (one thread each), as fast as the
//                             bus takes them (raw sd-bus, flushed); prints
//                             "ready" once connected, waits for "go" on
//                             stdin, prints "half" after N/2 sent, and at
//                             the end "sent N ns", then, once a call
//                             with a reply on each connection is answered
//                             (all before it read), "drained ns [errors]"
//   throughput PREFIX K SECS  K threads, each with its own connection (its
//                             own bus name, as K callers), pairs on PREFIXi;
//                             prints "pairs seconds"
//   hold                      prints its unique bus name, waits for EOF on
//                             stdin (the subject of the polkit figure)
//   polkit SUBJECT ACTION INSTANCE N [CANCEL]
//                             CheckAuthorization alone, like the daemon's
//                             (system-bus-name subject, "instance" detail,
//                             no interaction); must run as root (details).
//                             With CANCEL, each check carries a cancellation
//                             id CANCEL-i, as libpolkit-gobject sends one for
//                             a call made with a GCancellable
//   spawnpair NAME N CMD ARGS...
//                             runs CMD ARGS mount NAME, then CMD ARGS umount
//                             NAME, N times, timing each pair with both
//                             execs (the sudo drop-in's and the bare
//                             helper's shape)
//   startup NAME DAEMON ARGS...
//                             spawns the daemon, prints ns from spawn to
//                             NameOwnerChanged, to the reply of the first
//                             call, Mount(NAME) (run as root), then to the
//                             first ListInstances reply; unmounts NAME
#include "overlay1_proxy.hpp"
#include "sdbus_compat.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <sdbus-c++/sdbus-c++.h>
#include <spawn.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
namespace sdbus_compat = overlay::sdbus_compat;
constexpr const char* kBusName = "org.left4me.Overlay1";
constexpr const char* kObjectPath = "/org/left4me/Overlay1";

long long ns_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
}

// The generated proxy on a borrowed connection: no event-loop thread, the
// calls are plain blocking round trips, as a host manager would make them.
class Overlay : public sdbus::ProxyInterfaces<org::left4me::Overlay1_proxy> {
  public:
    explicit Overlay(sdbus::IConnection& bus)
        : ProxyInterfaces(bus, sdbus_compat::ServiceName(kBusName),
                          sdbus_compat::object_path(kObjectPath)) {
        registerProxy();
    }
    ~Overlay() { unregisterProxy(); }

  private:
    void onMountChanged(const std::string&, const bool&) override {}
};

void print_all(const std::vector<long long>& samples) {
    for (long long ns : samples) {
        std::printf("%lld\n", ns);
    }
}

// Processes (and threads) created on the whole machine since boot.
long long processes_created() {
    std::ifstream in("/proc/stat");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("processes ", 0) == 0) {
            return std::atoll(line.c_str() + 10);
        }
    }
    throw std::runtime_error("no processes line in /proc/stat");
}

void print_processes(long long before) {
    std::printf("# processes %lld\n", processes_created() - before);
}

int pairs(const std::string& name, int n, bool mount_only) {
    auto bus = sdbus::createSystemBusConnection();
    Overlay overlay(*bus);
    overlay.Mount(name); // warm-up: first-call costs (page faults, caches)
    overlay.Unmount(name);
    std::vector<long long> samples;
    samples.reserve(static_cast<std::size_t>(n));
    const long long forks = processes_created();
    for (int i = 0; i < n; ++i) {
        const auto start = Clock::now();
        overlay.Mount(name);
        if (mount_only) {
            samples.push_back(ns_between(start, Clock::now()));
            overlay.Unmount(name);
        } else {
            overlay.Unmount(name);
            samples.push_back(ns_between(start, Clock::now()));
        }
    }
    print_processes(forks);
    print_all(samples);
    return 0;
}

// GetStatus(NAME) or, with an empty name, ListInstances: N timed calls.
int queries(const std::string& name, int n) {
    auto bus = sdbus::createSystemBusConnection();
    Overlay overlay(*bus);
    auto call = [&] {
        if (name.empty()) {
            auto list = overlay.ListInstances();
            if (list.empty()) {
                throw std::runtime_error("ListInstances answered no instance");
            }
        } else {
            overlay.GetStatus(name);
        }
    };
    call(); // warm-up
    std::vector<long long> samples;
    samples.reserve(static_cast<std::size_t>(n));
    const long long forks = processes_created();
    for (int i = 0; i < n; ++i) {
        const auto start = Clock::now();
        call();
        samples.push_back(ns_between(start, Clock::now()));
    }
    print_processes(forks);
    print_all(samples);
    return 0;
}

// The flood's victim: one Mount per "go" round until "stop"; errors are
// figures too (a refused Mount is what the flood must not cause).
int mountloop(const std::string& name) {
    auto bus = sdbus::createSystemBusConnection();
    Overlay overlay(*bus);
    overlay.Mount(name); // warm-up
    overlay.Unmount(name);
    std::printf("ready\n");
    std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line) || line != "go") {
        return 1;
    }
    // Mounts back to back until "stop" arrives (read by a thread).
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        std::string l;
        while (std::getline(std::cin, l) && l != "stop") {
        }
        stop = true;
    });
    do {
        const auto start = Clock::now();
        try {
            overlay.Mount(name);
            const long long ns = ns_between(start, Clock::now());
            overlay.Unmount(name);
            std::printf("%lld\n", ns);
        } catch (const sdbus::Error& e) {
            std::printf("E %s %lld %s\n", e.getName().c_str(), ns_between(start, Clock::now()),
                        e.getMessage().c_str());
        }
        std::fflush(stdout);
    } while (!stop);
    reader.join();
    return 0;
}

void sd_check(int r, const char* what) {
    if (r < 0) {
        throw std::runtime_error(std::string(what) + ": " + std::strerror(-r));
    }
}

// N no-reply calls over CONNS connections. Raw sd-bus: sd_bus_send queues
// what the socket does not take, sd_bus_flush pushes it all to the bus.
int flood(const std::string& name, int n, int conns) {
    std::vector<sd_bus*> buses(static_cast<std::size_t>(conns), nullptr);
    for (auto& b : buses) {
        sd_check(sd_bus_open_system(&b), "sd_bus_open_system");
        // sd_bus_open_system started it; the unique name waits for Hello.
        const char* unique = nullptr;
        sd_check(sd_bus_get_unique_name(b, &unique), "sd_bus_get_unique_name");
    }
    std::printf("ready\n");
    std::fflush(stdout);
    std::string line;
    if (!std::getline(std::cin, line) || line != "go") {
        return 1;
    }
    std::atomic<long long> sent{0};
    std::atomic<bool> half_said{false};
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < conns; ++c) {
        threads.emplace_back([&, c] {
            sd_bus* b = buses[static_cast<std::size_t>(c)];
            const int mine = n / conns + (c < n % conns ? 1 : 0);
            for (int i = 0; i < mine; ++i) {
                sd_bus_message* m = nullptr;
                const bool mount = (i % 2) == 1;
                sd_check(sd_bus_message_new_method_call(b, &m, kBusName, kObjectPath, kBusName,
                                                        mount ? "Mount" : "GetStatus"),
                         "sd_bus_message_new_method_call");
                sd_check(sd_bus_message_append(m, "s", name.c_str()), "sd_bus_message_append");
                sd_check(sd_bus_message_set_expect_reply(m, 0), "set_expect_reply");
                sd_check(sd_bus_send(b, m, nullptr), "sd_bus_send");
                sd_bus_message_unref(m);
                if (++sent == n / 2 && !half_said.exchange(true)) {
                    std::printf("half\n");
                    std::fflush(stdout);
                }
                if ((i & 63) == 63) {
                    sd_check(sd_bus_flush(b), "sd_bus_flush");
                }
            }
            sd_check(sd_bus_flush(b), "sd_bus_flush");
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    std::printf("sent %lld %lld\n", sent.load(), ns_between(start, Clock::now()));
    std::fflush(stdout);
    // One call with a reply per connection: the daemon reads a connection's
    // messages in order, so its answer (a status, or LimitsExceeded) means
    // every flood message before it has been read.
    std::string errors;
    for (auto* b : buses) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message* reply = nullptr;
        if (sd_bus_call_method(b, kBusName, kObjectPath, kBusName, "GetStatus", &error, &reply,
                               "s", name.c_str()) < 0) {
            errors += std::string(" ") + (error.name != nullptr ? error.name : "?");
        }
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
    }
    std::printf("drained %lld%s\n", ns_between(start, Clock::now()), errors.c_str());
    std::fflush(stdout);
    for (auto* b : buses) {
        sd_bus_flush_close_unref(b);
    }
    return 0;
}

int throughput(const std::string& prefix, int clients, double seconds) {
    std::mutex mutex;
    std::condition_variable cv;
    int ready = 0;
    bool go = false;
    std::atomic<bool> stop{false};
    std::atomic<long long> total{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            try {
                auto bus = sdbus::createSystemBusConnection();
                Overlay overlay(*bus);
                const std::string name = prefix + std::to_string(i);
                overlay.Mount(name); // warm-up, outside the timed window
                overlay.Unmount(name);
                {
                    std::unique_lock lock(mutex);
                    ++ready;
                    cv.notify_all();
                    cv.wait(lock, [&] { return go; });
                }
                long long done = 0;
                while (!stop.load(std::memory_order_relaxed)) {
                    overlay.Mount(name);
                    overlay.Unmount(name);
                    ++done;
                }
                total += done;
            } catch (const std::exception& e) {
                std::fprintf(stderr, "client %d: %s\n", i, e.what());
                ++failures;
                std::unique_lock lock(mutex);
                ++ready;
                cv.notify_all();
            }
        });
    }
    {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return ready == clients; });
        go = true;
    }
    cv.notify_all();
    const auto start = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& t : threads) {
        t.join();
    }
    // Pairs in flight at the stop finish and count; the window ends with
    // the last of them, so the rate is not inflated.
    const double elapsed = static_cast<double>(ns_between(start, Clock::now())) / 1e9;
    std::printf("%lld %.6f\n", total.load(), elapsed);
    return failures == 0 ? 0 : 1;
}

int hold() {
    auto bus = sdbus::createSystemBusConnection();
    std::printf("%s\n", bus->getUniqueName().c_str());
    std::fflush(stdout);
    std::string line;
    while (std::getline(std::cin, line)) {
    }
    return 0;
}

int polkit(const std::string& subject_name, const std::string& action, const std::string& instance,
           int n, const std::string& cancel) {
    auto bus = sdbus::createSystemBusConnection();
    auto authority = sdbus_compat::proxy(*bus, "org.freedesktop.PolicyKit1",
                                         "/org/freedesktop/PolicyKit1/Authority");
    using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
    const Subject subject{std::string("system-bus-name"),
                          std::map<std::string, sdbus::Variant>{{"name", sdbus::Variant(subject_name)}}};
    const std::map<std::string, std::string> details{{"instance", instance}};
    int checks = 0;
    auto check = [&] {
        sdbus::Struct<bool, bool, std::map<std::string, std::string>> result;
        const std::string id = cancel.empty() ? std::string() : cancel + "-" + std::to_string(checks);
        ++checks;
        authority->callMethod("CheckAuthorization")
            .onInterface("org.freedesktop.PolicyKit1.Authority")
            .withArguments(subject, action, details, std::uint32_t{0}, id)
            .storeResultsTo(result);
        if (!std::get<0>(result)) {
            throw std::runtime_error("polkit did not authorize " + subject_name + " for " + action);
        }
    };
    check(); // warm-up
    std::vector<long long> samples;
    samples.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        const auto start = Clock::now();
        check();
        samples.push_back(ns_between(start, Clock::now()));
    }
    print_all(samples);
    return 0;
}

// One child, spawned and reaped; its output goes to /dev/null (our stdout
// carries the figures).
void spawn_and_wait(const std::vector<char*>& argv) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    int err = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) {
        throw std::runtime_error(std::string("cannot spawn ") + argv[0] + ": " +
                                 std::strerror(err));
    }
    int status = 0;
    if (::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        throw std::runtime_error(std::string(argv[0]) + " failed (wait status " +
                                 std::to_string(status) + ")");
    }
}

int spawnpair(const std::string& name, int n, char** cmd) {
    std::vector<char*> mount_argv;
    for (char** p = cmd; *p != nullptr; ++p) {
        mount_argv.push_back(*p);
    }
    std::vector<char*> umount_argv = mount_argv;
    std::string mount_word = "mount";
    std::string umount_word = "umount";
    std::string instance = name;
    mount_argv.push_back(mount_word.data());
    mount_argv.push_back(instance.data());
    mount_argv.push_back(nullptr);
    umount_argv.push_back(umount_word.data());
    umount_argv.push_back(instance.data());
    umount_argv.push_back(nullptr);
    spawn_and_wait(mount_argv); // warm-up
    spawn_and_wait(umount_argv);
    std::vector<long long> samples;
    samples.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        const auto start = Clock::now();
        spawn_and_wait(mount_argv);
        spawn_and_wait(umount_argv);
        samples.push_back(ns_between(start, Clock::now()));
    }
    print_all(samples);
    return 0;
}

int startup(const std::string& name, char** daemon_argv) {
    auto bus = sdbus::createSystemBusConnection();
    auto dbus = sdbus_compat::proxy(*bus, "org.freedesktop.DBus", "/org/freedesktop/DBus");
    std::promise<Clock::time_point> owned;
    std::atomic<bool> seen{false};
    dbus->uponSignal("NameOwnerChanged")
        .onInterface("org.freedesktop.DBus")
        .call([&](const std::string& name, const std::string&, const std::string& owner) {
            if (name == kBusName && !owner.empty() && !seen.exchange(true)) {
                owned.set_value(Clock::now());
            }
        });
    sdbus_compat::finish_signals(*dbus); // the AddMatch round trip is done by here, before the spawn
    bus->enterEventLoopAsync();

    // The daemon's log must not hold our stdout open (the caller reads it
    // to EOF); the spawned daemon outlives us and is stopped by bench.py.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const auto start = Clock::now();
    const int err = posix_spawn(&pid, daemon_argv[0], &actions, nullptr, daemon_argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    if (err != 0) {
        std::fprintf(stderr, "cannot spawn %s: %s\n", daemon_argv[0], std::strerror(err));
        return 1;
    }
    auto future = owned.get_future();
    if (future.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
        std::fprintf(stderr, "the daemon did not own %s\n", kBusName);
        return 1;
    }
    const auto name_owned = future.get();
    Overlay overlay(*bus);
    overlay.Mount(name); // the first call: root, so no polkit check
    const auto first_mount = Clock::now();
    overlay.ListInstances();
    const auto first_list = Clock::now();
    overlay.Unmount(name);
    bus->leaveEventLoop();
    std::printf("%d %lld %lld %lld\n", pid, ns_between(start, name_owned),
                ns_between(start, first_mount), ns_between(start, first_list));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        const std::vector<std::string> args(argv + 1, argv + argc);
        if (args.size() == 3 && (args[0] == "pairs" || args[0] == "mount")) {
            return pairs(args[1], std::atoi(args[2].c_str()), args[0] == "mount");
        }
        if (args.size() == 3 && args[0] == "status") {
            return queries(args[1], std::atoi(args[2].c_str()));
        }
        if (args.size() == 2 && args[0] == "list") {
            return queries(std::string(), std::atoi(args[1].c_str()));
        }
        if (args.size() == 2 && args[0] == "mountloop") {
            return mountloop(args[1]);
        }
        if (args.size() == 4 && args[0] == "flood") {
            return flood(args[1], std::atoi(args[2].c_str()), std::atoi(args[3].c_str()));
        }
        if (args.size() == 4 && args[0] == "throughput") {
            return throughput(args[1], std::atoi(args[2].c_str()), std::atof(args[3].c_str()));
        }
        if (args.size() == 1 && args[0] == "hold") {
            return hold();
        }
        if ((args.size() == 5 || args.size() == 6) && args[0] == "polkit") {
            return polkit(args[1], args[2], args[3], std::atoi(args[4].c_str()),
                          args.size() == 6 ? args[5] : std::string());
        }
        if (args.size() >= 4 && args[0] == "spawnpair") {
            return spawnpair(args[1], std::atoi(args[2].c_str()), argv + 4);
        }
        if (args.size() >= 3 && args[0] == "startup") {
            return startup(args[1], argv + 3);
        }
        std::fprintf(stderr, "usage: see the comment at the top of bench/client_bench.cpp\n");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "l4m-bench-client: %s\n", e.what());
        return 1;
    }
}
