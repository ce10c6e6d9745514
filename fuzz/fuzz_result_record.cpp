// The result record an executor writes for the daemon. The executor is
// ours, but it can be killed mid-write, and its fields carry hostile paths
// and names: parsing must never misbehave, and formatting then parsing must
// give back what was meant (no field can forge a line).
#include "fuzz_check.hpp"
#include "result_record.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

using namespace overlay;
using namespace overlay::protocol;

namespace {

bool is_one_printable_line(std::string_view s) {
    for (unsigned char c : s) {
        if (c < 0x20 || c >= 0x7f) {
            return false;
        }
    }
    return true;
}

std::vector<std::string_view> split(std::string_view s) {
    std::vector<std::string_view> parts;
    while (true) {
        const auto nl = s.find('\n');
        parts.push_back(s.substr(0, nl));
        if (nl == std::string_view::npos) {
            return parts;
        }
        s.remove_prefix(nl + 1);
    }
}

// The record as a success, or nullptr.
const ExecutorResult* ok_of(const std::optional<ResultRecord>& record) {
    return record ? std::get_if<ExecutorResult>(&*record) : nullptr;
}

void check_round_trips(std::string_view input) {
    const auto parts = split(input);

    std::vector<std::string> lowers(parts.begin() + 1, parts.end());
    const bool mounted = input.size() % 2 == 1;
    const auto status_record = parse_result_record(format_status(mounted, parts[0], lowers));
    const ExecutorResult* status = ok_of(status_record);
    fuzz::check(status && status->mounted == mounted, "status did not round-trip");
    fuzz::check(status->merged == printable(parts[0]), "merged did not round-trip");
    fuzz::check(status->lowerdirs.size() == lowers.size(), "lowerdir count changed");
    for (std::size_t i = 0; i < lowers.size(); ++i) {
        fuzz::check(status->lowerdirs[i] == printable(lowers[i]), "lowerdir changed");
    }

    std::vector<std::pair<std::string, bool>> instances;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        instances.emplace_back(std::string(parts[i]), i % 2 == 0);
    }
    const auto list_record = parse_result_record(format_list(instances));
    const ExecutorResult* list = ok_of(list_record);
    fuzz::check(list && list->instances.size() == instances.size(),
                "list did not round-trip");
    for (std::size_t i = 0; i < instances.size(); ++i) {
        fuzz::check(list->instances[i].first == printable(instances[i].first) &&
                        list->instances[i].second == instances[i].second,
                    "list entry changed");
    }

    std::vector<std::string> report(parts.begin(), parts.end());
    const auto migrated_record = parse_result_record(format_report(report));
    const ExecutorResult* migrated = ok_of(migrated_record);
    fuzz::check(migrated && migrated->report.size() == report.size(),
                "report did not round-trip");
    for (const auto& line : migrated->report) {
        fuzz::check(is_one_printable_line(line), "report line not one printable line");
    }

    const auto error_record =
        parse_result_record(format_error(Error(ErrorCode::Busy, std::string(input))));
    const ExecutorFailure* error =
        error_record ? std::get_if<ExecutorFailure>(&*error_record) : nullptr;
    fuzz::check(error && error->error == ErrorCode::Busy, "error did not round-trip");
    fuzz::check(is_one_printable_line(error->message), "error message not one printable line");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    // The parser reports a bad record as nullopt and throws nothing at all.
    if (const auto result = parse_result_record(text)) {
        if (const auto* failure = std::get_if<ExecutorFailure>(&*result)) {
            fuzz::check(failure->message.find('\n') == std::string::npos, "message spans lines");
        }
    }
    check_round_trips(text);
    return 0;
}
