// What the daemon and a persistent executor (left4me-overlay --serve) say
// to each other, beside the result record of result_record.hpp. Text,
// one field per line, hostile bytes already printable():
//
// daemon -> executor, one request per message:
//   mount NAME | umount NAME | status NAME | list | sync
//   migrate NAME | migrate-dry-run NAME   convert a fuse-era upper (migrate.hpp)
// executor -> daemon:
//   hello               first message, once: the daemon's settings from the
//   KEY VALUE ...       config (see ExecutorHello), then any
//   warning TEXT        start-up warnings, or
//   config-error TEXT   when the config could not be loaded
//   <result record>     the answer to a request (result_record.hpp)
//   restart             instead of an answer: the config now names another
//                       host namespace; start a new executor and ask again
//   mounts [NOTE]       (watching executor only) the instances whose
//   NAME 0|1 ...        mounted state changed since the last report; NOTE
//                       says when they were found otherwise than one event
//                       at a time (the event queue overflowed: the table
//                       was listed again), for the daemon's log
//   mounts-all [HOW]    (watching executor only, first after hello) every
//   NAME ...            mounted instance; HOW says how the watcher hears of
//                       changes ("fanotify statmount", "poll mountinfo", ...)
#pragma once

#include "daemon_settings.hpp"
#include "vocabulary.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace overlay::protocol {

// A verb of org.left4me.Overlay1, in the words of its row of the verb table
// (vocabulary.hpp: executor_word, or dry_run_word for a dry run), or, with
// no verb, sync: answered once every mount change so far is reported.
struct Request {
    std::optional<vocabulary::Verb> verb; // nullopt: sync
    std::string instance;                 // when the verb takes one
    bool dry_run = false;                 // only for a verb with a dry_run_word
};

inline constexpr std::string_view kSyncWord = "sync";

std::string format_request(const Request& request);
// nullopt on anything malformed (unknown verb, missing or extra name).
std::optional<Request> parse_request(std::string_view text);
// The request's word on the wire ("umount", "migrate-dry-run", "sync").
std::string_view request_word(const Request& request) noexcept;

struct ExecutorHello {
    DaemonSettings settings; // the config's, or the defaults when it has none
    std::vector<std::string> warnings;
    std::string config_error; // empty when the config loaded
};

std::string format_hello(const ExecutorHello& hello);
std::optional<ExecutorHello> parse_hello(std::string_view text);

inline constexpr std::string_view kRestart = "restart\n";

struct MountReport {
    bool complete = false; // mounts-all: instances not named are not mounted
    std::string how;       // mounts-all only: how the watcher hears of changes
    std::string note;      // mounts only: what the daemon should log about them
    std::vector<std::pair<std::string, bool>> instances;
};

std::string format_mount_report(const MountReport& report);
// nullopt when text is not a mount report (then it is a reply).
std::optional<MountReport> parse_mount_report(std::string_view text);

} // namespace overlay::protocol
