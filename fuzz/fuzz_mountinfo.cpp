// /proc/PID/mountinfo of the host namespace: the kernel writes it, but mount
// points and sources are chosen by whoever mounts (an unprivileged user in
// a user namespace can mount too), so its fields are hostile text.
#include "fuzz_check.hpp"
#include "mountinfo.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace overlay;

namespace {

// The kernel's mangle(): these bytes are written as \ooo.
std::string kernel_escape(std::string_view field) {
    std::string out;
    for (unsigned char c : field) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\\' || c == '#' || c == '\0') {
            out += '\\';
            out += static_cast<char>('0' + (c >> 6));
            out += static_cast<char>('0' + ((c >> 3) & 7));
            out += static_cast<char>('0' + (c & 7));
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}

// Whatever bytes a mount point and a source hold, the line the kernel would
// write for them parses back to exactly those bytes (the daemon compares
// mount points with the instance's merged path byte for byte).
void check_round_trip(std::string_view input) {
    const auto cut = input.find('\n');
    const auto mount_point = input.substr(0, cut);
    const auto source = cut == std::string_view::npos ? std::string_view{} : input.substr(cut + 1);
    if (mount_point.empty()) {
        return;
    }
    const std::string line = "36 35 0:42 / " + kernel_escape(mount_point) +
                             " rw,nosuid shared:7 - overlay " + kernel_escape(source) +
                             " rw,lowerdir=/a\n";
    const auto mounts = parse_mountinfo(line);
    fuzz::check(mounts.size() == 1, "round trip: not one entry");
    fuzz::check(mounts[0].mount_point == mount_point, "round trip: mount point changed");
    fuzz::check(mounts[0].source == source, "round trip: source changed");
    fuzz::check(find_mount_at(mounts, mount_point) == &mounts[0], "round trip: not found");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const auto mounts = parse_mountinfo(text);
        for (const auto& m : mounts) {
            fuzz::check(!m.mount_point.empty() && !m.fs_type.empty(), "empty required field");
        }
        if (!mounts.empty()) {
            fuzz::check(find_mount_at(mounts, mounts.back().mount_point) == &mounts.back(),
                        "find_mount_at: the last entry does not win");
        }
    } catch (const Error& e) {
        fuzz::check(e.code() == ErrorCode::Failed, "mountinfo error is not Failed");
        fuzz::check_message(e);
    }
    check_round_trip(text);
    return 0;
}
