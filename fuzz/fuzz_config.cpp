// /etc/left4me/overlay.conf. Root-owned, but a typo in it must give a clear
// BadConfig at start-up, never undefined behaviour, and what it accepts must
// satisfy what the core assumes of a Config.
#include "config.hpp"
#include "fuzz_check.hpp"
#include "path_syntax.hpp"

#include <cstddef>
#include <cstdint>
#include <linux/mount.h>

using namespace overlay;

namespace {

void check_path(const std::string& path, const char* what) {
    fuzz::check(is_normalized_absolute_path(path), what);
    fuzz::check(path.find_first_of(",:") == std::string::npos, what);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        const Config c = parse_config(text, "fuzz.conf");
        check_path(c.root, "Root not a clean absolute path");
        check_path(c.instances_dir, "InstancesDir not a clean absolute path");
        fuzz::check(c.instances_dir != "/", "InstancesDir is /");
        fuzz::check(!c.allowed_lower_roots.empty(), "no allowed lower root");
        for (const auto& lower_root : c.allowed_lower_roots) {
            check_path(lower_root, "allowed root not a clean absolute path");
            fuzz::check(lower_root != "/", "allowed root is /");
            fuzz::check(!is_path_beneath(lower_root, c.instances_dir) &&
                            !is_path_beneath(c.instances_dir, lower_root),
                        "allowed root overlaps InstancesDir");
        }
        fuzz::check(!c.lowerdirs_key.empty(), "empty LowerdirsKey");
        check_path(c.lock_dir, "LockDir not a clean absolute path");
        fuzz::check(c.lock_dir != "/", "LockDir is /");
        fuzz::check(c.host_pid >= 1 && c.host_pid <= 4194304, "HostPid out of range");
        const auto atime = c.mount_attr_flags & MOUNT_ATTR__ATIME;
        fuzz::check(atime == 0 || atime == MOUNT_ATTR_NOATIME || atime == MOUNT_ATTR_STRICTATIME,
                    "more than one atime mode");
    } catch (const Error& e) {
        fuzz::check(e.code() == ErrorCode::BadConfig, "config error is not BadConfig");
        fuzz::check_message(e);
    }
    return 0;
}
