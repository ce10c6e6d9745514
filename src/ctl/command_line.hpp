// The command line of left4me-overlayctl: verbs and options, nothing else.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace overlay::ctl {

enum class Verb { Mount, Unmount, Status, List };

struct CommandLine {
    Verb verb = Verb::List;
    std::string instance; // empty for list
    bool ask_password = true;
    bool json = false;
    bool help = false;
    bool version = false;
};

// Thrown for bad usage (exit status 2); the message names the problem.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// args excludes argv[0].
CommandLine parse_command_line(const std::vector<std::string>& args);

// The verb as the user types it, for messages ("mount", "unmount", ...).
const char* verb_word(Verb verb);

extern const char* const kHelpText;

} // namespace overlay::ctl
