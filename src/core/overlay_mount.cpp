#include "overlay_mount.hpp"

#include "error.hpp"
#include "fs_open.hpp"
#include "working_directory.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/utsname.h>
#include <unistd.h>

namespace overlay {

namespace {

constexpr std::size_t kPageSize = 4096; // what mount(2) copies of its data

class MountFailure {
  public:
    // `what`: "instance 'x': mount on PATH", and the like.
    MountFailure(const std::string& what, MountApi api)
        : prefix_(what + " (" + mount_api_name(api) + "): ") {}

    [[noreturn]] void raise(const std::string& step, int err, int fsfd = -1) const {
        std::string msg = prefix_ + step + ": " + std::strerror(err);
        if (fsfd >= 0) {
            auto kernel = fs_context_messages(fsfd);
            if (!kernel.empty()) {
                msg += " (kernel: " + kernel + ")";
            }
        }
        if (err == EBUSY) {
            throw Error(ErrorCode::Busy, msg);
        }
        throw Error(ErrorCode::Failed, msg);
    }

  private:
    std::string prefix_;
};

// The one fsopen/fsconfig/fsmount sequence: an overlay of `lowers` (top
// first) and, when `upper` >= 0, `upper` and `work`, as a detached mount
// with `attrs`. Layers go by descriptor (LayerFds) or as /proc/self/fd
// names, "lowerdir+" one at a time, or for Legacy (only a read-only view
// comes here: the read-write mount then uses mount(2)) the old "lowerdir"
// list in one string.
UniqueFd create_overlay(const std::string& source, const std::vector<int>& lowers, int upper,
                        int work, MountApi api, unsigned int attrs, const MountFailure& failure) {
    UniqueFd fs(::fsopen("overlay", FSOPEN_CLOEXEC));
    if (!fs) {
        failure.raise("fsopen", errno);
    }
    auto set_string = [&](const char* key, const std::string& value) {
        if (::fsconfig(fs.get(), FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
            failure.raise(std::string("fsconfig ") + key + "=" + printable(value), errno, fs.get());
        }
    };
    auto set_layer = [&](const char* key, int fd) {
        if (api == MountApi::LayerFds) {
            if (::fsconfig(fs.get(), FSCONFIG_SET_FD, key, nullptr, fd) != 0) {
                failure.raise(std::string("fsconfig ") + key + " fd " + std::to_string(fd), errno,
                              fs.get());
            }
        } else {
            set_string(key, proc_fd_path(fd));
        }
    };
    set_string("source", source);
    if (api == MountApi::Legacy) {
        std::string joined;
        for (int fd : lowers) {
            joined += (joined.empty() ? "" : ":") + proc_fd_path(fd);
        }
        set_string("lowerdir", joined);
    } else {
        for (int fd : lowers) {
            set_layer("lowerdir+", fd);
        }
    }
    if (upper >= 0) {
        set_layer("upperdir", upper);
        set_layer("workdir", work);
    }
    if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
        failure.raise("create", errno, fs.get());
    }
    UniqueFd mnt(::fsmount(fs.get(), FSMOUNT_CLOEXEC, attrs));
    if (!mnt) {
        failure.raise("fsmount", errno, fs.get());
    }
    return mnt;
}

std::vector<int> fds_of(const std::vector<UniqueFd>& fds) {
    std::vector<int> out;
    out.reserve(fds.size());
    for (const auto& fd : fds) {
        out.push_back(fd.get());
    }
    return out;
}

void mount_with_fs_context(const OverlayLayers& layers, const std::string& source,
                           const Config& config, MountApi api, const MountFailure& failure) {
    const UniqueFd mnt =
        create_overlay(source, fds_of(layers.lowers), layers.upper, layers.work, api,
                       static_cast<unsigned int>(config.mount_attr_flags), failure);
    if (::move_mount(mnt.get(), "", layers.merged, "",
                     MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
        failure.raise("move_mount", errno);
    }
}

void mount_legacy(const OverlayLayers& layers, const std::string& source, const Config& config,
                  std::string_view instance, const MountFailure& failure) {
    const std::string data =
        legacy_mount_data(fds_of(layers.lowers), layers.upper, layers.work, instance);
    // The layer names in `data` are relative to /proc/self/fd, so the
    // working directory must be there for this one call; the helper is
    // single-threaded, and the old directory is restored.
    WorkingDirectory saved_cwd;
    if (::chdir("/proc/self/fd") != 0) {
        failure.raise("chdir /proc/self/fd", errno);
    }
    int rc = ::mount(source.c_str(), std::to_string(layers.merged).c_str(), "overlay",
                     config.legacy_mount_flags, data.c_str());
    int err = errno;
    saved_cwd.restore();
    if (rc != 0) {
        failure.raise("mount(2)", err);
    }
}

} // namespace

std::string fs_context_messages(int fsfd) {
    std::string out;
    char buf[1024];
    for (;;) {
        ssize_t n = ::read(fsfd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        std::string_view msg(buf, static_cast<std::size_t>(n));
        if (!msg.empty() && msg.back() == '\n') {
            msg.remove_suffix(1);
        }
        // Each message starts with its level ("e ", "w ", "i "): noise here.
        if (msg.size() > 2 && msg[1] == ' ') {
            msg.remove_prefix(2);
        }
        out += out.empty() ? "" : "; ";
        out += printable(msg);
    }
    return out;
}

const char* mount_api_name(MountApi api) {
    switch (api) {
    case MountApi::LayerFds:
        return "layer fds";
    case MountApi::LowerdirStrings:
        return "lowerdir+ strings";
    case MountApi::Legacy:
        return "legacy mount(2)";
    case MountApi::Auto:
        break;
    }
    return "auto";
}

MountApi resolve_mount_api(MountApi requested) {
    if (requested != MountApi::Auto) {
        return requested;
    }
    utsname u{};
    int major = 0;
    int minor = 0;
    if (::uname(&u) != 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) {
        return MountApi::Legacy;
    }
    const int version = major * 1000 + minor;
    if (version >= 6013) {
        return MountApi::LayerFds;
    }
    if (version >= 6008) {
        return MountApi::LowerdirStrings;
    }
    return MountApi::Legacy;
}

std::string legacy_mount_data(const std::vector<int>& lowers, int upper, int work,
                              std::string_view instance) {
    std::string data = "lowerdir=";
    for (std::size_t i = 0; i < lowers.size(); ++i) {
        data += (i ? ":" : "") + std::to_string(lowers[i]);
    }
    data += ",upperdir=" + std::to_string(upper) + ",workdir=" + std::to_string(work);
    if (data.size() >= kPageSize) {
        throw Error(ErrorCode::Failed,
                    instance_context(instance) + std::to_string(lowers.size()) +
                        " lowerdirs do not fit the one page of mount(2) options (" +
                        std::to_string(data.size() + 1) + " bytes > " + std::to_string(kPageSize) +
                        ")");
    }
    return data;
}

void mount_overlay(const OverlayLayers& layers, const std::string& source, const Config& config,
                   std::string_view instance, std::string_view merged_path) {
    const MountApi api = resolve_mount_api(config.mount_api);
    const MountFailure failure(instance_context(instance) + "mount on " + printable(merged_path),
                               api);
    if (api == MountApi::Legacy) {
        mount_legacy(layers, source, config, instance, failure);
    } else {
        mount_with_fs_context(layers, source, config, api, failure);
    }
}

UniqueFd mount_read_only_view(const std::vector<int>& layers, const std::string& source,
                              const Config& config, const std::string& what) {
    const MountApi api = resolve_mount_api(config.mount_api);
    return create_overlay(source, layers, -1, -1, api,
                          MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
                              MOUNT_ATTR_NOEXEC,
                          MountFailure(what, api));
}

} // namespace overlay
