// What the daemon and its executors say besides the result record:
// requests, hello and mount reports. Executors can die mid-message and
// names come from directories a user made: parsing must never misbehave,
// and formatting then parsing must give back what was meant.
#include "executor_protocol.hpp"
#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

using namespace overlay::protocol;

namespace {

void check_round_trips(std::string_view input) {
    const std::string name(input.substr(0, input.find('\n')));
    using overlay::vocabulary::Verb;
    for (const Request& request : {Request{Verb::Mount, name}, Request{Verb::Unmount, name},
                                   Request{Verb::Status, name}, Request{Verb::Migrate, name},
                                   Request{Verb::Migrate, name, true}}) {
        if (name.empty()) {
            break;
        }
        const auto parsed = parse_request(format_request(request));
        // A name is printable() on the wire: one word, no line breaks.
        if (name.find(' ') == std::string::npos) {
            overlay::fuzz::check(parsed.has_value(), "parsed.has_value()");
            overlay::fuzz::check(parsed->verb == request.verb && parsed->dry_run == request.dry_run,
                                 "parsed->verb == request.verb && parsed->dry_run == request.dry_run");
        }
    }
    ExecutorHello hello;
    hello.warnings.emplace_back(input);
    hello.config_error = std::string(input);
    hello.settings.executors = static_cast<unsigned>(input.size());
    const auto back = parse_hello(format_hello(hello));
    overlay::fuzz::check(back.has_value(), "back.has_value()");
    overlay::fuzz::check(back->warnings.size() == 1, "back->warnings.size() == 1");
    overlay::fuzz::check(back->settings.executors == hello.settings.executors, "back->settings.executors == hello.settings.executors");
    overlay::fuzz::check(!input.empty() == !back->config_error.empty(), "!input.empty() == !back->config_error.empty()");

    MountReport report;
    if (!name.empty() && name.find(' ') == std::string::npos) {
        report.instances.emplace_back(name, input.size() % 2 == 0);
    }
    report.note = std::string(input);
    const auto parsed_report = parse_mount_report(format_mount_report(report));
    overlay::fuzz::check(parsed_report.has_value(), "parsed_report.has_value()");
    overlay::fuzz::check(parsed_report->instances.size() == report.instances.size(), "parsed_report->instances.size() == report.instances.size()");
    overlay::fuzz::check(!input.empty() == !parsed_report->note.empty(), "!input.empty() == !parsed_report->note.empty()");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    // Whatever a broken executor sends: never a crash.
    (void)parse_request(input);
    (void)parse_hello(input);
    (void)parse_mount_report(input);
    check_round_trips(input);
    return 0;
}
