// The command line of left4me-overlayctl: verbs and options, nothing else.
#pragma once

#include "vocabulary.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace overlay::ctl {

using Verb = vocabulary::Verb;

// --json (same as --json=short), --json=short, --json=pretty, --json=off.
enum class JsonMode { Off, Short, Pretty };

struct CommandLine {
    Verb verb = Verb::List; // with no verb: list, as systemd's tools do
    std::string instance;   // empty for list; checked (valid name) when set
    bool ask_password = true;
    JsonMode json = JsonMode::Off;
    bool legend = true;   // --no-legend: no column header
    bool dry_run = false; // --dry-run: migrate changes nothing
    bool help = false;
    bool version = false;
};

// Thrown for bad usage (exit status 2). The message is one line, with every
// word the user typed escaped and bounded (printable_bounded()).
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// args excludes argv[0]. Checks the instance name's syntax too, so that a
// bad name is refused before the bus is touched.
CommandLine parse_command_line(const std::vector<std::string>& args);

// The verb as the user types it, for messages ("mount", "unmount", ...).

extern const char* const kHelpText;

} // namespace overlay::ctl
