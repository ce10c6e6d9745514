// The words of org.left4me.Overlay1, once: its names, its verbs (what the
// CLI, the drop-in, the executors, polkit and the logs call each of them)
// and its error names. The daemon, left4me-overlayctl and left4me-overlay
// all read them from here; adding a verb is a row below and its handler.
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace overlay::vocabulary {

inline constexpr std::string_view kBusName = "org.left4me.Overlay1";
inline constexpr std::string_view kObjectPath = "/org/left4me/Overlay1";

// org.left4me.Overlay1.Error. + error_name(ErrorCode) (error.hpp).
inline constexpr std::string_view kErrorPrefix = "org.left4me.Overlay1.Error.";
// The authorization verdicts and the refusal over the limits.
inline constexpr std::string_view kAccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
inline constexpr std::string_view kInteractiveAuthorizationRequired =
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired";
inline constexpr std::string_view kLimitsExceeded = "org.freedesktop.DBus.Error.LimitsExceeded";

enum class Verb { Mount, Unmount, Status, List, Migrate };

// What a verb answers on the bus.
enum class Reply { Nothing, Status, List, Report };

struct VerbInfo {
    Verb verb;
    std::string_view word;          // left4me-overlayctl and the logs
    std::string_view executor_word; // left4me-overlay: the drop-in and the executors' requests
    std::string_view dry_run_word;  // the executors' request for a dry run ("": none)
    std::string_view method;        // the D-Bus method
    std::string_view polkit_action; // checked for every caller but root
    std::string_view phrase;        // "Not authorized to PHRASE instance NAME"
    bool takes_instance;
    bool changes_state;  // changes the instance: logged when authorized, one per instance at a time
    bool changes_mounts; // a mount or an unmount: the watcher's report precedes the reply
    Reply reply;
};

inline constexpr std::array<VerbInfo, 5> kVerbs{{
    {Verb::Mount, "mount", "mount", "", "Mount", "org.left4me.overlay.mount", "mount", true, true,
     true, Reply::Nothing},
    {Verb::Unmount, "unmount", "umount", "", "Unmount", "org.left4me.overlay.unmount", "unmount",
     true, true, true, Reply::Nothing},
    // Reading state has an action too: which instances exist, and which
    // layers they stack, is not for every local user.
    {Verb::Status, "status", "status", "", "GetStatus", "org.left4me.overlay.status",
     "read the status of", true, false, false, Reply::Status},
    {Verb::List, "list", "list", "", "ListInstances", "org.left4me.overlay.status",
     "list the instances", false, false, false, Reply::List},
    // Rewrites an instance's upper as root: for administrators only (the
    // shipped rule does not grant it).
    {Verb::Migrate, "migrate", "migrate", "migrate-dry-run", "Migrate",
     "org.left4me.overlay.migrate", "migrate", true, true, false, Reply::Report},
}};

constexpr const VerbInfo& verb_info(Verb verb) {
    for (const auto& v : kVerbs) {
        if (v.verb == verb) {
            return v;
        }
    }
    return kVerbs.front(); // not reached: every Verb has a row (checked below)
}

namespace detail {
constexpr bool every_verb_once() {
    for (std::size_t i = 0; i < kVerbs.size(); ++i) {
        if (static_cast<std::size_t>(kVerbs[i].verb) != i) {
            return false;
        }
    }
    return kVerbs.size() == static_cast<std::size_t>(Verb::Migrate) + 1;
}
} // namespace detail
static_assert(detail::every_verb_once(), "kVerbs: one row per Verb, in enum order");

// The verb a word names (the CLI's words, or the drop-in's); "umount" and
// "unmount" are both accepted by both, as umount(8) users type either.
constexpr std::optional<Verb> verb_from_word(std::string_view word) {
    for (const auto& v : kVerbs) {
        if (v.word == word || v.executor_word == word) {
            return v.verb;
        }
    }
    return std::nullopt;
}

} // namespace overlay::vocabulary
