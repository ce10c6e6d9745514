// instance.env is written by the unprivileged host manager: the file's bytes
// are the input, the key is the default LowerdirsKey.
#include "fuzz_check.hpp"
#include "instance_env.hpp"
#include "path_syntax.hpp"

#include <cstddef>
#include <cstdint>

using namespace overlay;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view content(reinterpret_cast<const char*>(data), size);
    try {
        const auto dirs = parse_lowerdirs(content, "L4D2_LOWERDIRS", "fuzz/instance.env");
        // What the mount code relies on without checking again.
        fuzz::check(content.size() <= kMaxInstanceEnvBytes, "accepted a file over 64 KiB");
        fuzz::check(!dirs.empty() && dirs.size() <= kMaxLowerdirs, "lowerdir count out of 1..500");
        for (const auto& dir : dirs) {
            fuzz::check(is_normalized_absolute_path(dir), "lowerdir not normalized absolute");
            fuzz::check(dir.find_first_of(",:\n") == std::string::npos,
                        "lowerdir holds an overlayfs option separator");
        }
    } catch (const Error& e) {
        fuzz::check(e.code() == ErrorCode::BadConfig, "instance.env error is not BadConfig");
        fuzz::check_message(e);
    }
    return 0;
}
