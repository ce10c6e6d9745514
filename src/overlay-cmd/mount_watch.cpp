#include "mount_watch.hpp"

#include "error.hpp"
#include "mounted_instances.hpp"
#include "mountinfo.hpp"

#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace overlay::cmd {

MountWatch::MountWatch(const Config& config)
    // Opened before the first read: a change between the two is seen.
    : fd_(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC)) {
    if (!fd_) {
        throw_errno(ErrorCode::Failed, "cannot open /proc/self/mountinfo", errno);
    }
    mounted_ = mounted_instances(config, read_mountinfo(::getpid()));
}

bool MountWatch::marked() const {
    pollfd pfd{fd_.get(), POLLPRI, 0};
    int ready = 0;
    do {
        ready = ::poll(&pfd, 1, 0);
    } while (ready < 0 && errno == EINTR);
    // An error of poll itself: read the table, as if it had changed.
    return ready != 0;
}

protocol::MountReport MountWatch::snapshot() const {
    protocol::MountReport report;
    report.complete = true;
    for (const auto& [name, id] : mounted_) {
        report.instances.emplace_back(name, true);
    }
    return report;
}

protocol::MountReport MountWatch::changes(const Config& config) {
    auto now = mounted_instances(config, read_mountinfo(::getpid()));
    protocol::MountReport report;
    for (const auto& [name, id] : mounted_) {
        auto it = now.find(name);
        if (it == now.end() || it->second != id) {
            report.instances.emplace_back(name, false);
        }
    }
    for (const auto& [name, id] : now) {
        auto it = mounted_.find(name);
        if (it == mounted_.end() || it->second != id) {
            report.instances.emplace_back(name, true);
        }
    }
    mounted_ = std::move(now);
    return report;
}

} // namespace overlay::cmd
