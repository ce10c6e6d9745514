#include "mount_watch.hpp"

#include "error.hpp"
#include "kernel_mount_api.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <unistd.h>

namespace overlay::cmd {

namespace {

// fanotify mount events, or nothing (an older kernel, a seccomp filter
// that denies them, or forced off) and `why` names the failing call.
UniqueFd open_fanotify(std::string& why) {
    const auto failed = [&why](const char* call) {
        why = std::string(call) + ": " + std::strerror(errno);
        return UniqueFd();
    };
    UniqueFd fd(
        ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | kernel::kFanReportMnt,
                        O_RDONLY | O_CLOEXEC));
    if (!fd) {
        return failed("fanotify_init");
    }
    const UniqueFd ns(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
    if (!ns) {
        return failed("open /proc/self/ns/mnt");
    }
    if (::fanotify_mark(fd.get(), FAN_MARK_ADD | kernel::kFanMarkMntns,
                        kernel::kFanMntAttach | kernel::kFanMntDetach, ns.get(), nullptr) != 0) {
        return failed("fanotify_mark");
    }
    return fd;
}

} // namespace

MountWatch::MountWatch(const Config& config) : config_(config), kind_(mount_table_kind(config)) {
    // Mount events name mounts by unique id: they need the statmount table.
    if (config.mount_watch != MountWatchApi::Poll && kind_ == MountTableKind::Statmount) {
        fd_ = open_fanotify(why_);
        if (!fd_ && config.mount_watch == MountWatchApi::Fanotify) {
            throw Error(ErrorCode::Failed, "MountWatch=fanotify: no fanotify mount events "
                                           "(Linux 6.15): " +
                                               why_);
        }
    } else if (config.mount_watch == MountWatchApi::Fanotify) {
        throw Error(ErrorCode::Failed,
                    "MountWatch=fanotify needs the statmount mount table (MountTable): " +
                        mountinfo_reason(config));
    } else if (kind_ == MountTableKind::Mountinfo) {
        why_ = mountinfo_reason(config);
    } else {
        why_ = "MountWatch=poll";
    }
    if (fd_) {
        mode_ = Mode::Fanotify;
    } else {
        fd_.reset(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
        if (!fd_) {
            throw_errno(ErrorCode::Failed, "cannot open /proc/self/mountinfo", errno);
        }
        mode_ = Mode::Poll;
    }
    if (kind_ == MountTableKind::Statmount) {
        try {
            shared_.emplace(config);
        } catch (const Error&) {
            // Not shared: every reader lists the table instead.
        }
    }
    protocol::MountReport ignored;
    take(read_state(), ignored);
    if (shared_) {
        for (const auto& [name, ids] : state_) {
            publish(name);
        }
        try {
            shared_->announce();
        } catch (const Error&) {
            shared_.reset();
        }
    }
}

void MountWatch::publish(const std::string& name) {
    if (!shared_) {
        return;
    }
    std::vector<MountFacts> mounts;
    if (auto it = state_.find(name); it != state_.end()) {
        for (const auto id : it->second) {
            if (auto f = facts_.find(id); f != facts_.end()) {
                mounts.push_back(f->second);
            }
        }
    }
    try {
        shared_->publish(name, mounts);
    } catch (const Error&) {
        // A reader must never trust a stale share: withdraw it.
        shared_.reset();
        try {
            WatchedOverlays withdraw(config_);
        } catch (const Error&) {
        }
    }
}

short MountWatch::events() const noexcept {
    return mode_ == Mode::Fanotify ? POLLIN : POLLPRI;
}

const char* MountWatch::mode_name() const noexcept {
    return mode_ == Mode::Fanotify ? "fanotify" : "poll";
}

bool MountWatch::marked() const {
    pollfd pfd{fd_.get(), events(), 0};
    int ready = 0;
    do {
        ready = ::poll(&pfd, 1, 0);
    } while (ready < 0 && errno == EINTR);
    // An error of poll itself: look, as if something had changed.
    return ready != 0;
}

protocol::MountReport MountWatch::snapshot() const {
    protocol::MountReport report;
    report.complete = true;
    report.how = std::string(mode_name()) + " " + mount_table_name(kind_);
    if (mode_ == Mode::Poll && !why_.empty()) {
        report.how += " (" + why_ + ")";
    }
    for (const auto& [name, ids] : state_) {
        report.instances.emplace_back(name, true);
    }
    return report;
}

MountWatch::State MountWatch::read_state() {
    State now;
    facts_.clear();
    for (const auto& [name, mounts] : all_instance_overlays(kind_)) {
        auto& ids = now[name];
        for (const auto& m : mounts) {
            ids.insert(m.id);
            facts_.emplace(m.id, m);
        }
    }
    return now;
}

void MountWatch::take(State now, protocol::MountReport& report) {
    std::set<std::string> differ;
    for (const auto& [name, ids] : state_) {
        if (auto it = now.find(name); it == now.end() || it->second != ids) {
            differ.insert(name);
        }
    }
    for (const auto& [name, ids] : now) {
        if (!state_.contains(name)) {
            differ.insert(name);
        }
    }
    for (const auto& [name, ids] : state_) {
        auto it = now.find(name);
        if (it == now.end()) {
            report.instances.emplace_back(name, false);
            continue;
        }
        // Still mounted, but by none of the overlays it had: it was
        // unmounted and mounted again in between.
        bool shared = false;
        for (const auto id : it->second) {
            shared = shared || ids.contains(id);
        }
        if (!shared) {
            report.instances.emplace_back(name, false);
            report.instances.emplace_back(name, true);
        }
    }
    for (const auto& [name, ids] : now) {
        if (!state_.contains(name)) {
            report.instances.emplace_back(name, true);
        }
    }
    state_ = std::move(now);
    owner_.clear();
    for (const auto& [name, ids] : state_) {
        for (const auto id : ids) {
            owner_.emplace(id, name);
        }
    }
    for (const auto& name : differ) {
        publish(name);
    }
}

void MountWatch::on_attach(std::uint64_t id, protocol::MountReport& report) {
    if (owner_.contains(id)) {
        return;
    }
    const auto facts = mount_by_id(kind_, id);
    if (!facts) {
        // Gone before it could be asked about; its detach event follows.
        return;
    }
    const auto name = instance_of(*facts);
    if (!name) {
        return;
    }
    const std::string instance(*name);
    auto& ids = state_[instance];
    if (ids.empty()) {
        report.instances.emplace_back(instance, true);
    }
    ids.insert(id);
    owner_.emplace(id, instance);
    facts_.emplace(id, *facts);
    publish(instance);
}

void MountWatch::on_detach(std::uint64_t id, protocol::MountReport& report) {
    const auto it = owner_.find(id);
    if (it == owner_.end()) {
        return;
    }
    const std::string name = it->second;
    owner_.erase(it);
    facts_.erase(id);
    auto& ids = state_[name];
    ids.erase(id);
    if (ids.empty()) {
        state_.erase(name);
        report.instances.emplace_back(name, false);
    }
    publish(name);
}

protocol::MountReport MountWatch::read_events() {
    protocol::MountReport report;
    alignas(fanotify_event_metadata) char buffer[16 * 1024];
    bool overflow = false;
    std::size_t events = 0; // read before the overflow, for the log
    for (;;) {
        const ssize_t n = ::read(fd_.get(), buffer, sizeof buffer);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                break;
            }
            throw_errno(ErrorCode::Failed, "reading fanotify mount events", errno);
        }
        if (n == 0) {
            break;
        }
        auto* meta = reinterpret_cast<const fanotify_event_metadata*>(buffer);
        ssize_t left = n;
        for (; FAN_EVENT_OK(meta, left); meta = FAN_EVENT_NEXT(meta, left)) {
            if (meta->mask & FAN_Q_OVERFLOW) {
                overflow = true;
                continue;
            }
            events += overflow ? 0 : 1;
            std::uint64_t id = 0;
            bool found = false;
            for (std::size_t at = meta->metadata_len;
                 at + sizeof(kernel::FanotifyEventInfoMnt) <= meta->event_len;) {
                kernel::FanotifyEventInfoMnt info{};
                std::memcpy(&info, reinterpret_cast<const char*>(meta) + at, sizeof info);
                if (info.info_type == kernel::kFanEventInfoTypeMnt) {
                    id = info.mnt_id;
                    found = true;
                    break;
                }
                if (info.len == 0) {
                    break;
                }
                at += info.len;
            }
            if (!found || overflow) {
                continue; // after an overflow the table is listed anyway
            }
            const bool attach = (meta->mask & kernel::kFanMntAttach) != 0;
            const bool detach = (meta->mask & kernel::kFanMntDetach) != 0;
            if (attach && detach) {
                continue; // moved within the namespace: still the same mount
            }
            if (attach) {
                on_attach(id, report);
            } else if (detach) {
                on_detach(id, report);
            }
        }
    }
    if (overflow) {
        // Events were dropped: which mounts came and went is unknown, so
        // the table is listed and compared with what was known. Said in
        // the daemon's log, so that a lost event is never silent.
        take(read_state(), report);
        report.note = "the fanotify mount event queue overflowed after " + std::to_string(events) +
                      " events; listed the mount table again and compared";
    }
    return report;
}

protocol::MountReport MountWatch::changes() {
    if (mode_ == Mode::Fanotify) {
        return read_events();
    }
    protocol::MountReport report;
    take(read_state(), report);
    return report;
}

} // namespace overlay::cmd
