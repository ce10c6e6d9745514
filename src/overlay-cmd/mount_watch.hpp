// The watching executor's view of the host's instance overlays: which
// instances have one (by mount id, wherever it is), and what changed since
// it last looked. Two ways to hear of changes (Config::mount_watch):
// - fanotify mount events on the host's mount namespace (Linux 6.15:
//   FAN_REPORT_MNT, FAN_MARK_MNTNS, FAN_MNT_ATTACH/FAN_MNT_DETACH): each
//   event names one mount by its unique id, and only that mount is asked
//   about (statmount); the whole table is listed again only when the
//   event queue overflowed;
// - on older kernels, POLLPRI on /proc/self/mountinfo, which the kernel
//   raises after any change to the namespace's mounts: each wake-up lists
//   the table again and compares.
// Each change of an instance's mounted state is one entry, in order. An
// instance whose overlays all went and a new one came between two looks
// is reported unmounted then mounted: with unique ids (statmount) a new
// overlay never looks like the old one.
#pragma once

#include "config.hpp"
#include "executor_protocol.hpp"
#include "mount_table.hpp"
#include "unique_fd.hpp"
#include "watched_overlays.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace overlay::cmd {

class MountWatch {
  public:
    enum class Mode { Fanotify, Poll };

    // Starts listening, then reads the table once (in that order: a change
    // between the two is seen).
    explicit MountWatch(const Config& config);

    int fd() const noexcept { return fd_.get(); }
    // What to poll fd() for.
    short events() const noexcept;
    Mode mode() const noexcept { return mode_; }
    const char* mode_name() const noexcept;

    // Whether anything happened since the last changes() (a poll() that
    // does not wait).
    bool marked() const;

    // Every instance mounted now (as last read).
    protocol::MountReport snapshot() const;

    // What changed since the last call (possibly nothing).
    protocol::MountReport changes();

  private:
    using State = std::map<std::string, std::set<std::uint64_t>>;
    State read_state();
    // Reports the difference between state_ and `now`, then takes it.
    void take(State now, protocol::MountReport& report);
    void on_attach(std::uint64_t id, protocol::MountReport& report);
    void on_detach(std::uint64_t id, protocol::MountReport& report);
    protocol::MountReport read_events();
    // Shares what it knows of `name` through LockDir (watched_overlays.hpp).
    // A failure withdraws the whole share: readers then list the table.
    void publish(const std::string& name);

    Config config_;
    MountTableKind kind_;
    std::optional<WatchedOverlays> shared_;
    Mode mode_ = Mode::Poll;
    std::string why_; // why not fanotify statmount, for the first report
    UniqueFd fd_;
    State state_;                                // instance -> its overlays' mount ids
    std::map<std::uint64_t, std::string> owner_; // mount id -> instance
    std::map<std::uint64_t, MountFacts> facts_;  // mount id -> what it is
};

} // namespace overlay::cmd
