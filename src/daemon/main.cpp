// left4me-overlayd: options, wiring, and the order of start-up and shutdown.
#include "authorizer.hpp"
#include "call_limits.hpp"
#include "config_path.hpp"
#include "event_loop.hpp"
#include "executor_pool.hpp"
#include "journal_log.hpp"
#include "overlay_service.hpp"
#include "process_capabilities.hpp"
#include "sdbus_compat.hpp"
#include "vocabulary.hpp"
#include "watch_worker.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <getopt.h>
#include <memory>
#include <optional>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <syslog.h>

namespace {

using overlay::daemon::EventLoop;

const overlay::sdbus_compat::ServiceName kBusName{std::string(overlay::vocabulary::kBusName)};
// The first executor's hello carries the daemon's settings. One that
// cannot start, or says nothing in this time, leaves the daemon serving with
// the defaults (and each call saying what is wrong with the executor).
constexpr std::chrono::seconds kFirstHelloTimeout{10};

struct Options {
    std::string config = overlay::kDefaultConfigPath;
    std::string executor = L4M_EXECUTOR_PATH;
    std::chrono::seconds exit_idle_time{30};
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "Usage: left4me-overlayd [OPTIONS]\n"
                 "D-Bus system service org.left4me.Overlay1: mounts and unmounts left4me\n"
                 "instance overlays on behalf of callers authorized by polkit.\n\n"
                 "  --config PATH            configuration passed to the executors\n"
                 "                           (default %s)\n"
                 "  --executor PATH          privileged executor to run (default %s)\n"
                 "  --exit-idle-time SECONDS exit after this long without calls; 0 = never\n"
                 "                           (default 30)\n"
                 "  --version                print the version and exit\n"
                 "  --help                   print this help and exit\n",
                 overlay::kDefaultConfigPath, L4M_EXECUTOR_PATH);
}

Options parse_options(int argc, char** argv) {
    enum { kConfig = 1000, kExecutor, kIdle, kVersion, kHelp };
    static const option kLong[] = {{"config", required_argument, nullptr, kConfig},
                                   {"executor", required_argument, nullptr, kExecutor},
                                   {"exit-idle-time", required_argument, nullptr, kIdle},
                                   {"version", no_argument, nullptr, kVersion},
                                   {"help", no_argument, nullptr, kHelp},
                                   {nullptr, 0, nullptr, 0}};
    Options opts;
    int c = 0;
    while ((c = getopt_long(argc, argv, "", kLong, nullptr)) != -1) {
        switch (c) {
        case kConfig:
            opts.config = optarg;
            break;
        case kExecutor:
            opts.executor = optarg;
            break;
        case kIdle: {
            char* end = nullptr;
            errno = 0;
            unsigned long long s = std::strtoull(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || optarg[0] == '-' ||
                s > 365ULL * 24 * 3600) {
                std::fprintf(stderr, "left4me-overlayd: bad --exit-idle-time '%s'\n", optarg);
                std::exit(2);
            }
            opts.exit_idle_time = std::chrono::seconds(s);
            break;
        }
        case kVersion:
            std::printf("left4me-overlayd %s\n", L4M_VERSION);
            std::exit(0);
        case kHelp:
            usage(stdout);
            std::exit(0);
        default:
            usage(stderr);
            std::exit(2);
        }
    }
    if (optind != argc) {
        std::fprintf(stderr, "left4me-overlayd: unexpected argument '%s'\n", argv[optind]);
        std::exit(2);
    }
    if (opts.executor.empty() || opts.executor.front() != '/') {
        std::fprintf(stderr, "left4me-overlayd: --executor needs an absolute path\n");
        std::exit(2);
    }
    return opts;
}

void release_name(sdbus::IConnection& bus) {
    try {
        bus.releaseName(kBusName);
    } catch (const std::exception& e) {
        overlay::daemon::log_message(LOG_WARNING,
                                     std::string("cannot release the bus name: ") + e.what());
    }
}

int run(const Options& opts) {
    using namespace overlay::daemon;
    using overlay::protocol::ExecutorHello;
    using overlay::protocol::MountReport;
    // Before any thread exists (each thread has its own sets, copied at its
    // creation): nothing stays effective; the executors' capabilities stay
    // permitted only, for the executors it starts (process_capabilities.hpp).
    overlay::protocol::limit_capabilities(overlay::protocol::ProcessRole::Daemon);
    // First: blocks SIGTERM/SIGINT before any thread exists.
    EventLoop loop;

    // The watching executor starts first: its hello tells the settings of
    // everything else, and it reads the mount table while the bus connects.
    OverlayService* service_on_bus_thread = nullptr;
    std::promise<ExecutorHello> first_hello;
    bool hello_seen = false;
    Executor::Options watch_options;
    watch_options.executor_path = opts.executor;
    watch_options.config_path = opts.config;
    watch_options.watch = true;
    watch_options.on_hello = [&](const ExecutorHello& hello) {
        for (const auto& w : hello.warnings) {
            log_message(LOG_WARNING, w);
        }
        if (!hello.config_error.empty()) {
            log_message(LOG_ERR, "executor cannot use its config: " + hello.config_error);
        }
        if (!std::exchange(hello_seen, true)) {
            first_hello.set_value(hello);
        }
    };
    watch_options.on_start_failed = [&](const std::string&) {
        if (!std::exchange(hello_seen, true)) {
            first_hello.set_value(ExecutorHello{}); // the defaults, at once
        }
    };
    watch_options.on_report = [&](const MountReport& report) {
        loop.post([&service_on_bus_thread, report] {
            if (service_on_bus_thread != nullptr) {
                service_on_bus_thread->on_mount_report(report);
            }
        });
    };
    auto hello_future = first_hello.get_future();
    WatchWorker watch(std::move(watch_options));

    auto bus = sdbus::createSystemBusConnection();
    overlay::DaemonSettings settings;
    if (hello_future.wait_for(kFirstHelloTimeout) == std::future_status::ready) {
        const auto hello = hello_future.get();
        if (hello.config_error.empty()) {
            settings = hello.settings;
        }
    } else {
        log_message(LOG_ERR, "no executor started within " +
                                 std::to_string(kFirstHelloTimeout.count()) +
                                 " s; serving with the default settings");
    }
    ExecutorPool::Options pool_options;
    pool_options.executor_path = opts.executor;
    pool_options.config_path = opts.config;
    pool_options.operation_executors = settings.executors;
    pool_options.timeout = std::chrono::seconds(settings.operation_timeout_sec);
    pool_options.migrate_executors = settings.migrate_executors;
    pool_options.migrate_timeout = std::chrono::seconds(settings.migrate_timeout_sec);
    ExecutorPool executors(pool_options, watch);
    CallLimits limits(settings.max_pending_calls, settings.max_pending_calls_per_user);
    // Its GLib context runs on this thread, in the bus loop: a polkit check
    // starts where the call arrived and its answer comes back there.
    Authorizer authorizer(settings.max_concurrent_authorizations,
                          settings.max_concurrent_authorizations_per_user,
                          GlibThread::Runner::ThisThread);
    loop.poll_glib(authorizer.context());
    if (settings.max_concurrent_authorizations > 1 &&
        settings.max_concurrent_authorizations_per_user >= settings.max_concurrent_authorizations) {
        log_message(LOG_WARNING,
                    "MaxConcurrentAuthorizationsPerUser (" +
                        std::to_string(settings.max_concurrent_authorizations_per_user) +
                        ") is not below MaxConcurrentAuthorizations (" +
                        std::to_string(settings.max_concurrent_authorizations) +
                        "): one user's polkit checks held open by their agent can "
                        "make every other user's calls wait");
    }
    auto service = std::make_unique<OverlayService>(*bus, loop, authorizer, limits, executors);
    service_on_bus_thread = service.get();
    // Last: callers are served from the moment they can reach us.
    bus->requestName(kBusName);
    log_message(LOG_INFO,
                std::string("left4me-overlayd ") + L4M_VERSION + " serving " + kBusName +
                    " (executor " + opts.executor + ", config " + opts.config + "; " +
                    std::to_string(settings.executors) + " operation executors, " +
                    std::to_string(settings.max_pending_calls) + " pending calls at most, " +
                    std::to_string(settings.max_pending_calls_per_user) + " per user, " +
                    std::to_string(settings.max_concurrent_authorizations) +
                    " polkit checks at once, " +
                    std::to_string(settings.max_concurrent_authorizations_per_user) + " per user)");
    log_message(LOG_INFO, std::to_string(settings.migrate_executors) +
                              " migrate executors, each migration at most " +
                              std::to_string(settings.migrate_timeout_sec) + " s");

    enum class Phase { Serving, IdleExit, Stopping } phase = Phase::Serving;
    EventLoop::Hooks hooks;
    hooks.on_signal = [&](int signal) {
        if (phase == Phase::Stopping) {
            return;
        }
        log_message(LOG_INFO, std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") +
                                  ", finishing " + std::to_string(service->pending()) +
                                  " pending calls");
        if (phase == Phase::Serving) {
            release_name(*bus);
        }
        phase = Phase::Stopping;
        service->begin_shutdown();
    };
    hooks.on_bus_message = [&] { service->note_activity(); };
    hooks.deadline = [&]() -> std::optional<EventLoop::Clock::time_point> {
        if (phase != Phase::Serving || opts.exit_idle_time.count() == 0 ||
            service->pending() != 0) {
            return std::nullopt;
        }
        return service->last_activity() + opts.exit_idle_time;
    };
    hooks.on_deadline = [&] {
        // Give the name up first: calls already routed to us are still
        // served (the loop runs until none is pending), later ones make
        // the bus start a new instance.
        log_message(LOG_INFO, "idle, exiting");
        release_name(*bus);
        phase = Phase::IdleExit;
    };
    hooks.done = [&] { return phase != Phase::Serving && service->pending() == 0; };

    const auto end = loop.run(*bus, hooks);
    if (end == EventLoop::End::BusDisconnected) {
        service->begin_shutdown();
    }
    // Running operations finish (a half-done mount is worse than a late
    // exit); their completions can no longer be delivered after a
    // disconnect.
    executors.stop();
    watch.stop();
    authorizer.stop();
    if (end == EventLoop::End::BusDisconnected) {
        service->dismiss_all();
    }
    service_on_bus_thread = nullptr;
    service.reset();
    log_message(LOG_INFO, "stopped");
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    const Options opts = parse_options(argc, argv);
    try {
        return run(opts);
    } catch (const std::exception& e) {
        overlay::daemon::log_message(LOG_ERR, std::string("fatal: ") + e.what());
        return 1;
    }
}
