// Shared by the fuzz targets: what counts as a finding besides a crash or a
// sanitizer report. libFuzzer reports an exception that leaves
// LLVMFuzzerTestOneInput as a crash, so a target catches overlay::Error only:
// any other exception type escaping a parser is a finding by itself.
#pragma once

#include "error.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace overlay::fuzz {

// An invariant the parser promises; abort() makes libFuzzer keep the input.
[[noreturn]] inline void finding(const char* what) {
    std::fprintf(stderr, "FUZZ FINDING: %s\n", what);
    std::abort();
}

inline void check(bool ok, const char* what) {
    if (!ok) {
        finding(what);
    }
}

// Error messages go into D-Bus strings (valid UTF-8 required, or sdbus-c++
// refuses to send the reply and the caller hangs), logs and one-line result
// records: every byte must be printable ASCII.
inline void check_message(const Error& e) {
    const std::string_view message = e.what();
    check(!message.empty(), "empty error message");
    for (unsigned char c : message) {
        check(c >= 0x20 && c < 0x7f, "error message has a byte outside printable ASCII");
    }
}

} // namespace overlay::fuzz
