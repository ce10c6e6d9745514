// Instance names arrive from any bus client (before authorization: only
// name syntax is checked first, docs/architecture.md). Both entry points must agree
// with each other and with the rule written out independently here.
#include "fuzz_check.hpp"
#include "instance_name.hpp"

#include <cstddef>
#include <cstdint>

using namespace overlay;

namespace {

bool reference_valid(std::string_view name) {
    if (name.empty() || name.size() > 64 || name.front() == '-') {
        return false;
    }
    for (char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view name(reinterpret_cast<const char*>(data), size);
    const bool expected = reference_valid(name);
    fuzz::check(is_valid_instance_name(name) == expected, "is_valid_instance_name disagrees");
    bool thrown = false;
    try {
        validate_instance_name(name);
    } catch (const Error& e) {
        thrown = true;
        fuzz::check(e.code() == ErrorCode::InvalidName, "name error is not InvalidName");
        fuzz::check_message(e);
        // A name can be megabytes: the message quotes only a prefix.
        fuzz::check(std::string_view(e.what()).size() < 512, "name error message unbounded");
    }
    fuzz::check(thrown != expected, "validate_instance_name disagrees");
    return 0;
}
