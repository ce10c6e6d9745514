// left4me-overlayctl: mount, unmount, status and list through the D-Bus
// service org.left4me.Overlay1, in the manner of hostnamectl and udisksctl.
#include "command_line.hpp"
#include "error.hpp"
#include "exit_status.hpp"
#include "output.hpp"
#include "overlay_client.hpp"
#include "polkit_agent.hpp"

#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <optional>
#include <sdbus-c++/Error.h>
#include <string>
#include <vector>

namespace {

using namespace overlay::ctl;
using overlay::printable;
namespace vocabulary = overlay::vocabulary;

constexpr const char* kProgram = "left4me-overlayctl";
// A call that may wait for someone typing a password gets minutes, not the
// bus default of 25 s. Without a prompt, mount still scans the whole upper
// directory for taint, which on a big instance takes a while.
constexpr std::chrono::seconds kInteractiveTimeout{600};
constexpr std::chrono::seconds kMountTimeout{120};
constexpr std::chrono::seconds kQueryTimeout{25};

// Every line this program writes to stderr: one line; what the user typed
// escaped (printable()), the service's words made terminal-safe.
void print_error(const std::string& what, const sdbus::Error& e) {
    std::fprintf(stderr, "%s: %s: %s (%s)\n", kProgram, printable(what).c_str(),
                 terminal_safe(e.getMessage()).c_str(), terminal_safe(e.getName()).c_str());
}

int run(const CommandLine& cl) {
    // Every verb is polkit-checked (status and list too: which instances
    // exist is not for everyone). The agent first: it must be registered
    // before the call reaches polkit, and it is forked while this process
    // is still single-threaded.
    std::optional<PolkitAgent> agent;
    if (cl.ask_password) {
        agent.emplace();
    }
    const auto query_timeout = cl.ask_password ? kInteractiveTimeout : kQueryTimeout;

    std::unique_ptr<OverlayClient> client;
    try {
        client = std::make_unique<OverlayClient>();
    } catch (const sdbus::Error& e) {
        print_error("cannot connect to the system bus", e);
        return kExitUnreachable;
    }

    const std::string what = std::string(vocabulary::verb_info(cl.verb).word) +
                             (cl.instance.empty() ? "" : " " + cl.instance);
    try {
        switch (cl.verb) {
        case Verb::Mount:
            client->mount(cl.instance, cl.ask_password,
                          cl.ask_password ? kInteractiveTimeout : kMountTimeout);
            break;
        case Verb::Unmount:
            client->unmount(cl.instance, cl.ask_password,
                            cl.ask_password ? kInteractiveTimeout : kMountTimeout);
            break;
        case Verb::Status: {
            auto status = client->status(cl.instance, cl.ask_password, query_timeout);
            std::fputs((cl.json != JsonMode::Off
                            ? format_status_json(status, cl.json == JsonMode::Pretty)
                            : format_status_text(status))
                           .c_str(),
                       stdout);
            break;
        }
        case Verb::Migrate: {
            // Migrate runs on the service's own executors with their own
            // limit (MigrateTimeoutSec, at most a day), after which the
            // service kills it and answers: waiting past the largest limit,
            // the caller always gets that answer, never a timeout of its own.
            constexpr std::chrono::seconds kMigrateTimeout{86400 + 60};
            for (const auto& line :
                 client->migrate(cl.instance, cl.dry_run, cl.ask_password, kMigrateTimeout)) {
                std::fputs((terminal_safe(line) + "\n").c_str(), stdout);
            }
            break;
        }
        case Verb::List: {
            auto list = client->list(cl.ask_password, query_timeout);
            std::fputs((cl.json != JsonMode::Off
                            ? format_list_json(list, cl.json == JsonMode::Pretty)
                            : format_list_text(list, cl.legend))
                           .c_str(),
                       stdout);
            break;
        }
        }
    } catch (const sdbus::Error& e) {
        print_error(what, e);
        return exit_status_for_error(e.getName());
    }
    if (std::fflush(stdout) != 0) {
        std::fprintf(stderr, "%s: %s: cannot write the output\n", kProgram,
                     printable(what).c_str());
        return kExitFailed;
    }
    return kExitOk;
}

} // namespace

int main(int argc, char** argv) {
    CommandLine cl;
    try {
        cl = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const UsageError& e) {
        // One line; the words typed are already escaped and bounded.
        std::fprintf(stderr, "%s: %s (see '%s --help')\n", kProgram, e.what(), kProgram);
        return kExitUsage;
    }
    if (cl.help) {
        std::fputs(kHelpText, stdout);
        return kExitOk;
    }
    if (cl.version) {
        std::printf("%s %s\n", kProgram, L4M_VERSION);
        return kExitOk;
    }
    try {
        return run(cl);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: %s\n", kProgram, terminal_safe(e.what()).c_str());
        return kExitFailed;
    }
}
