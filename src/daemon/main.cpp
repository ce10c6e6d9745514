// left4me-overlayd: options, wiring, and the order of start-up and shutdown.
#include "authorizer.hpp"
#include "event_loop.hpp"
#include "helper_runner.hpp"
#include "instance_queue.hpp"
#include "journal_log.hpp"
#include "overlay_service.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <getopt.h>
#include <memory>
#include <optional>
#include <sdbus-c++/sdbus-c++.h>
#include <string>
#include <syslog.h>

namespace {

using overlay::daemon::EventLoop;

constexpr const char* kBusName = "org.left4me.Overlay1";
// Each helper is a root process doing file-system work: however many calls
// arrive (status needs no authorization), at most this many run at once.
constexpr std::size_t kMaxConcurrentHelpers = 16;

struct Options {
    std::string config = "/etc/left4me/overlay.conf";
    std::string helper = L4M_HELPER_PATH;
    std::chrono::seconds exit_idle_time{30};
};

void usage(std::FILE* out) {
    std::fprintf(out,
                 "Usage: left4me-overlayd [OPTIONS]\n"
                 "D-Bus system service org.left4me.Overlay1: mounts and unmounts left4me\n"
                 "instance overlays on behalf of callers authorized by polkit.\n\n"
                 "  --config PATH            configuration passed to the helper\n"
                 "                           (default /etc/left4me/overlay.conf)\n"
                 "  --helper PATH            privileged helper to run (default %s)\n"
                 "  --exit-idle-time SECONDS exit after this long without calls; 0 = never\n"
                 "                           (default 30)\n"
                 "  --version                print the version and exit\n"
                 "  --help                   print this help and exit\n",
                 L4M_HELPER_PATH);
}

Options parse_options(int argc, char** argv) {
    enum { kConfig = 1000, kHelper, kIdle, kVersion, kHelp };
    static const option kLong[] = {{"config", required_argument, nullptr, kConfig},
                                   {"helper", required_argument, nullptr, kHelper},
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
        case kHelper:
            opts.helper = optarg;
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
    if (opts.helper.empty() || opts.helper.front() != '/') {
        std::fprintf(stderr, "left4me-overlayd: --helper needs an absolute path\n");
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
    // First: blocks SIGTERM/SIGINT before any thread exists.
    EventLoop loop;
    auto bus = sdbus::createSystemBusConnection();
    HelperRunner runner(opts.helper, opts.config);
    Authorizer authorizer;
    InstanceQueue queue(kMaxConcurrentHelpers);
    auto service = std::make_unique<OverlayService>(*bus, loop, authorizer, queue, runner);
    // Last: callers are served from the moment they can reach us.
    bus->requestName(kBusName);
    log_message(LOG_INFO, std::string("left4me-overlayd ") + L4M_VERSION + " serving " + kBusName +
                              " (helper " + opts.helper + ", config " + opts.config + ")");

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
    // Running helpers finish (a half-done mount is worse than a late exit);
    // their completions can no longer be delivered after a disconnect.
    queue.stop();
    authorizer.stop();
    if (end == EventLoop::End::BusDisconnected) {
        service->dismiss_all();
    }
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
